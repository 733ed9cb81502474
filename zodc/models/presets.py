"""Named model presets: the classical clinical models zodc condenses for.

A preset names one model in two implementations: the *host* reference (a scikit-learn estimator,
fitted through the batched callback) and, where a kernel exists, the *native* device kernel from
``zodc.kernels`` with the same hyperparameters. Utility is always judged with the host reference:
it is what a researcher receiving the synthetic table will train.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from zodc.errors import ConfigError

BACKENDS = ("auto", "native", "host")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named model.

    Attributes:
      name: preset name.
      task: ``"classification"`` or ``"survival"``.
      description: one line for ``zodc models`` and the report.
      host_factory: ``(num_classes) -> unfitted host estimator``.
      native_factory: ``(num_classes) -> zodc.kernels model``, or ``None`` where no kernel exists.
    """

    name: str
    task: str
    description: str
    host_factory: Callable[[int], Any]
    native_factory: Callable[[int], Any] | None = None

    # The model protocol (zodc.models.protocol.Model): the two factories.
    def host(self, num_classes: int) -> Any:
        return self.host_factory(num_classes)

    def native(self, num_classes: int) -> Any | None:
        return None if self.native_factory is None else self.native_factory(num_classes)


def _tree(num_classes: int):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=4, random_state=0)


def _forest(num_classes: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=50, max_depth=4, random_state=0, n_jobs=1)


def _boosting(num_classes: int):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(n_estimators=50, max_depth=3, learning_rate=0.1, random_state=0)


def _logistic(num_classes: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000)


def _native_tree(num_classes: int):
    from zodc.kernels.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(n_classes=num_classes, max_depth=4)


def _native_forest(num_classes: int):
    from zodc.kernels.forest import RandomForestClassifier

    return RandomForestClassifier(n_classes=num_classes, n_estimators=50, max_depth=4)


def _native_logistic(num_classes: int):
    from zodc.kernels.logistic import LogisticRegression

    return LogisticRegression(n_classes=num_classes, C=1.0)


def _native_boosting(num_classes: int):
    from zodc.kernels.boosting import GradientBoostingClassifier

    if num_classes != 2:
        raise ConfigError(f"the native `boosting` kernel is binary only; this target has {num_classes} classes. Use backend='host'.")
    return GradientBoostingClassifier(n_estimators=50, max_depth=3, learning_rate=0.1)


def _cox(num_classes: int):
    # Survival presets ignore num_classes (the factory signature is shared with classification).
    from zodc.models.survival import LifelinesCoxPH

    return LifelinesCoxPH(penalizer=0.1)


def _native_cox(num_classes: int):
    from zodc.kernels.cox import CoxPH

    return CoxPH(penalizer=0.1, ties="efron")


def _survival_forest(num_classes: int):
    try:
        from sksurv.ensemble import RandomSurvivalForest
    except ImportError as error:
        raise ConfigError("model 'survival_forest' needs scikit-survival, an optional GPL-3.0 dependency: "
                          "`pip install zodc[survival]`.") from error
    from zodc.models.survival import ScikitSurvivalModel

    return ScikitSurvivalModel(RandomSurvivalForest(n_estimators=50, max_depth=4, random_state=0, n_jobs=1))


PRESETS: dict[str, Preset] = {
    "tree": Preset("tree", "classification", "CART decision tree, depth 4", _tree, _native_tree),
    "forest": Preset("forest", "classification", "random forest, 50 trees of depth 4", _forest, _native_forest),
    "boosting": Preset("boosting", "classification", "gradient boosting, 50 trees of depth 3", _boosting, _native_boosting),
    "logistic": Preset("logistic", "classification", "L2 logistic regression, C = 1 (multinomial for > 2 classes)", _logistic, _native_logistic),
    "cox": Preset("cox", "survival", "Cox proportional hazards, L2 penalizer 0.1 (lifelines; Efron ties)", _cox, _native_cox),
    "survival_forest": Preset("survival_forest", "survival", "random survival forest, 50 trees of depth 4 (needs scikit-survival, GPL-3.0)", _survival_forest),
}


def get_preset(name: str, task: str | None = None) -> Preset:
    """Looks a preset up by name, with an error that lists the choices."""
    if name not in PRESETS:
        raise ConfigError(f"`model` must be one of {sorted(PRESETS)} or an estimator with fit/predict_proba. Got {name!r}.")
    preset = PRESETS[name]
    if task is not None and preset.task != task:
        choices = sorted(p.name for p in PRESETS.values() if p.task == task)
        raise ConfigError(f"model {name!r} is a {preset.task} model but the data are {task}; choose one of {choices}.")
    return preset
