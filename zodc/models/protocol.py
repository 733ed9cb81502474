"""The model protocol: what zodc needs of a model to condense for it.

A model is anything with a ``task`` and two factories::

    class MyModel:
        task = "classification"                 # or "survival"
        name = "my model"
        def host(self, num_classes):            # an unfitted estimator, fitted on each perturbed table
            return SomeClassifier(...)          # classification: fit(X, y[, sample_weight]) / predict_proba(X)
        def native(self, num_classes):          # a zodc.kernels-style device kernel, or None
            return None

``Condenser(MyModel())`` then condenses for it: on the host (a batched callback over worker
processes) when ``native`` returns ``None``, on the device otherwise. A survival host model has
``fit(X, time, event[, sample_weight])`` and ``predict_survival(X, times)`` (lifelines' and
scikit-survival's estimators are adapted by :func:`~zodc.models.survival.as_survival_model`). A
native kernel has ``fit(key, X, y)`` / ``predict_proba(params, X)`` (survival: ``fit(key, X,
time, event[, sample_weight])`` / ``predict_survival(params, X, times)``), pure and vmappable.
The presets (:mod:`zodc.models.presets`) implement this protocol; a plain scikit-learn classifier
or a survival model passed as ``model`` is wrapped in :class:`HostModel`. ``docs/models.md`` walks
through one (XGBoost on the host).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from sklearn.utils.validation import has_fit_parameter

from zodc.errors import ConfigError
from zodc.models.presets import BACKENDS, Preset, get_preset
from zodc.models.survival import accepts_sample_weight, as_survival_model

TASKS = ("classification", "survival")


@runtime_checkable
class Model(Protocol):
    """What a model provides (see the module docstring)."""

    task: str

    def host(self, num_classes: int) -> Any: ...

    def native(self, num_classes: int) -> Any | None: ...


class HostModel:
    """A user's estimator as a :class:`Model` on the host path (no native kernel).

    ``task`` is read from the estimator's interface: ``predict_proba`` → classification; a survival
    interface (:func:`~zodc.models.survival.as_survival_model`) → survival."""

    def __init__(self, estimator: Any):
        self.estimator = estimator
        self.name = type(estimator).__name__
        if hasattr(estimator, "fit") and hasattr(estimator, "predict_proba"):
            self.task = "classification"
        else:
            try:
                as_survival_model(estimator)
            except ConfigError:
                raise ConfigError("`model` must be a preset name, an estimator with fit/predict_proba, or a survival "
                                  f"model (fit(X, time, event) / predict_survival). Got {estimator!r}.") from None
            self.task = "survival"

    def host(self, num_classes: int) -> Any:
        return self.estimator if self.task == "classification" else as_survival_model(self.estimator)

    def native(self, num_classes: int) -> None:
        return None


def as_model(model: Any) -> Model:
    """A preset name, a :class:`Model`, or an estimator (wrapped in :class:`HostModel`)."""
    if isinstance(model, str):
        return get_preset(model)
    if isinstance(model, Model) and getattr(model, "task", None) in TASKS:
        return model
    return HostModel(model)


def model_task(model: Any) -> str | None:
    """The task ``model`` is for, or ``None`` for an object of no recognisable kind (never raises)."""
    try:
        return as_model(model).task
    except ConfigError:
        return None


def accepts_weights(model: Model, num_classes: int) -> bool:
    """Whether the model's host estimator fits case weights (``sample_weight``)."""
    host = model.host(num_classes)
    return has_fit_parameter(host, "sample_weight") if model.task == "classification" else accepts_sample_weight(host)


def resolve_backend(model: Model, backend: str) -> str:
    """``"auto"`` → ``"native"`` where the model has a kernel in this installation, else ``"host"``."""
    if backend not in BACKENDS:
        raise ConfigError(f"`backend` must be one of {list(BACKENDS)}. Got {backend!r}.")
    available = native_available(model)
    if backend == "auto":
        return "native" if available else "host"
    if backend == "native" and not available:
        if isinstance(model, HostModel):
            raise ConfigError("`backend='native'` needs a named preset; a custom estimator runs on the host.")
        raise ConfigError(f"model {getattr(model, 'name', model)!r} has no native kernel in this installation; use "
                          "backend='host'.")
    return backend


def native_available(model: Model) -> bool:
    """Whether the model has a native kernel in this installation (a missing import: no)."""
    try:
        return model.native(2) is not None
    except (ImportError, AttributeError):
        return False
    except ConfigError:  # the kernel exists but refuses this shape (binary-only boosting): decided at fit
        return True


__all__ = ["HostModel", "Model", "Preset", "accepts_weights", "as_model", "model_task", "native_available",
           "resolve_backend"]
