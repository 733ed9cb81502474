"""Train on synthetic, test on real (TSTR): the utility of a released table.

Every reference is trained with the same host model (what a researcher receiving the table would
train) and tested on the same held-out real split:

- ``synthetic``: trained on the released synthetic table;
- ``full_data``: trained on the whole private training split (the upper reference);
- ``random_subset``: trained on a random real subset of the synthetic table's size, stratified
  with the same number of rows per class (a non-private reference: sharing it would disclose
  real patients).

The same rules hold for every training table (:mod:`zodc.evaluate.survival` shares them):

- **Missing values** (NaN in the encoded features, of any table): a model that accepts NaN
  (scikit-learn's ``allow_nan`` tag: decision trees, random forests, histogram gradient boosting)
  gets them as they are; any other (logistic regression, gradient boosting, Cox, ...) gets a median
  imputation fitted on each training table alone and applied to the test split with that table's
  medians (:func:`impute_median`).
- **Failures** (``on_failure``). ``"report"``, the owner's report of ``zodc condense``: an encoded
  column constant in a training table (a category level absent from a small table; the columns a
  feature selection did not learn) is left out of that table's fit, and listed with the tables it
  is constant in; a fit or a prediction that fails scores ``None`` (never a number) and is
  listed under ``failures`` with the error's class and a short message whose numbers are
  redacted; the result says what was done (``preprocessing``). ``"chance"``, the default kept for
  callers that average many tables alike: a failed fit predicts the uniform distribution (AUROC
  0.5) and no column is left out.

Could this leak? These numbers are computed on real records and are *not* covered by the
privacy guarantee: they are for the data owner's review. Publish them only as an additional,
non-private release.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from zodc.errors import ConfigError

ON_FAILURE = ("chance", "report")


def auroc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """AUROC of ``(n, K)`` probabilities; one-vs-rest macro average for ``K > 2``.

    A model that predicts a constant scores 0.5 (not an error).

    Could one record change this? Yes: AUROC ranks every record against the others (a pairwise
    statistic, not a sum of per-record terms); it is a non-private report (module docstring).
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    num_classes = proba.shape[1]
    if num_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    present = np.unique(y_true)
    scores = [roc_auc_score(y_true == c, proba[:, c]) for c in present]
    return float(np.mean(scores))


def fit_predict_proba(estimator: Any, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                      num_classes: int, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Fits a clone of ``estimator`` (with ``sample_weight`` if given: a soft-label release) and
    returns ``(n_test, num_classes)`` probabilities.

    Classes missing from ``y_train`` get probability 0; a fit that fails predicts the uniform
    distribution for every test record (and so scores AUROC 0.5) rather than raising. A test
    record the fitted model cannot predict (its prediction raises, or is non-finite) gets the
    uniform distribution alone: the batch is predicted through
    :func:`zodc.models.host.predict_rows`, record by record if it fails.

    Could one record change this? A test record: only its own row (it never reaches the fit). A
    training record: every row, through the fit (these references are not private; the private
    search trains on a released synthetic table only).
    """
    from zodc.models.host import predict_rows

    uniform = np.full((X_test.shape[0], num_classes), 1.0 / num_classes)
    model = clone(estimator)
    try:
        if sample_weight is None:
            model.fit(X_train, y_train)
        else:
            model.fit(X_train, y_train, sample_weight=np.asarray(sample_weight, np.float64))
        present = np.asarray(model.classes_, dtype=np.int64)
    except Exception:  # noqa: BLE001 - a failed reference fit is reported as chance, not a crash
        return uniform
    proba_present = predict_rows(model.predict_proba, X_test, (present.size,))
    proba = np.zeros((X_test.shape[0], num_classes))
    proba[:, present] = proba_present
    failed = ~np.all(np.isfinite(proba), axis=1)  # a record the model cannot predict: chance, for it alone
    proba[failed] = uniform[failed]
    return proba


def stratified_subset(rng: np.random.Generator, y: np.ndarray, rows_per_class: int) -> np.ndarray:
    """Indices of ``rows_per_class`` records drawn without replacement from each class (all of a
    class's records when it has fewer)."""
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        chosen.append(rng.choice(members, size=min(rows_per_class, members.size), replace=False))
    return np.sort(np.concatenate(chosen))


# --------------------------------------------------------------------------- rules shared by every reference

_NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class ReferenceFailure(Exception):
    """A reference that could not be scored: ``stage`` (``"fit"``, ``"predict"``, ...) and the
    error's class and message."""

    def __init__(self, stage: str, error: str, message: str):
        super().__init__(f"{stage}: {error}: {message}")
        self.stage, self.error, self.message = stage, error, message

    @classmethod
    def from_exception(cls, stage: str, error: BaseException) -> "ReferenceFailure":
        return cls(stage, type(error).__name__, short_message(error))

    def as_dict(self, table: str) -> dict[str, str]:
        return {"table": table, "stage": self.stage, "error": self.error, "message": self.message}


def short_message(error: BaseException, limit: int = 160) -> str:
    """The first line of ``error``'s message, at most ``limit`` characters, every number in it
    replaced by ``#`` (a message may quote a value of a real record; names like ``x3`` are kept)."""
    lines = str(error).strip().splitlines()
    text = _NUMBER.sub("#", lines[0].strip()) if lines else ""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def accepts_missing(estimator: Any) -> bool:
    """Whether the host model fits and predicts NaN features as they are: scikit-learn's
    ``allow_nan`` estimator tag (for a :class:`~zodc.models.survival.ScikitSurvivalModel`, the
    wrapped estimator's). ``False`` when the tag cannot be read (lifelines' Cox among others)."""
    from zodc.models.survival import ScikitSurvivalModel

    target = estimator.estimator if isinstance(estimator, ScikitSurvivalModel) else estimator
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(target).input_tags.allow_nan)
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: assume NaN is refused
        return False


def impute_median(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN in ``X_train`` and ``X_test`` replaced by the median of ``X_train``'s observed values
    in that column (0, the middle of the encoded range, for a column with none observed). The
    inputs are returned unchanged when neither has a NaN."""
    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    missing_train, missing_test = np.isnan(X_train), np.isnan(X_test)
    if not (missing_train.any() or missing_test.any()):
        return X_train, X_test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: its median is NaN
        medians = np.nanmedian(X_train, axis=0) if X_train.shape[0] else np.full(X_train.shape[1], np.nan)
    medians = np.where(np.isfinite(medians), medians, 0.0)
    return np.where(missing_train, medians, X_train), np.where(missing_test, medians, X_test)


def prepare_features(accepts_nan: bool, X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The missing-value rule (module docstring): as they are for a model that accepts NaN, else
    :func:`impute_median` fitted on ``X_train``."""
    return (np.asarray(X_train), np.asarray(X_test)) if accepts_nan else impute_median(X_train, X_test)


def constant_columns(X: np.ndarray) -> np.ndarray:
    """``(d,)`` bool: the columns whose observed (non-NaN) values do not vary (by more than 1e-9)
    in ``X``, a column with no observed value included."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        return np.ones(X.shape[1], dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
    return ~(spread > 1e-9)


def shared_columns(training: dict[str, Sequence[np.ndarray]],
                   feature_names: Sequence[str] | None = None) -> tuple[np.ndarray, list[dict[str, str]]]:
    """The columns every training table keeps: those constant in none of them.

    Args:
      training: ``{reference name: [X, ...]}``, e.g. ``{"synthetic": [X], "full_data": [X],
        "random_subset": [X of each draw]}``.
      feature_names: the encoded columns' names (``x0``, ``x1``, ... if ``None``).

    Returns:
      ``(keep (d,) bool, dropped)``; ``dropped`` lists ``{"column", "reason"}`` for each column
      left out, the reason naming the tables it is constant in (for several draws, how many).
    """
    width = next(np.asarray(X).shape[1] for tables in training.values() for X in tables)
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(width)]
    if len(names) != width:
        raise ConfigError(f"`feature_names` must name the {width} encoded columns. Got {len(names)}.")
    counts = {name: np.sum([constant_columns(X) for X in tables], axis=0) for name, tables in training.items()}
    keep = ~np.any([c > 0 for c in counts.values()], axis=0)
    dropped = []
    for j in np.flatnonzero(~keep):
        where = []
        for name, tables in training.items():
            if counts[name][j]:
                total = len(tables)
                where.append(name if total == 1 else f"{name} ({int(counts[name][j])} of {total} draws)")
        dropped.append({"column": names[j], "reason": "constant in " + ", ".join(where)})
    return keep, dropped


def missing_value_report(accepts_nan: bool, cells: dict[str, int]) -> dict[str, Any]:
    """What the missing-value rule did, for the ``preprocessing`` entry of a report."""
    rule = ("passed to the model as they are (it accepts NaN)" if accepts_nan else
            "median imputation fitted on each training table alone (the synthetic table, the full data, each "
            "random subset) and applied to the test split with that table's medians")
    return {"model_accepts_nan": bool(accepts_nan), "rule": rule, "missing_cells": {k: int(v) for k, v in cells.items()}}


def mean_over_draws(draws: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """``{key: mean, key_sd: sd}`` over the draws whose ``key`` is not ``None`` (``None`` when no
    draw has it; the sd is ``None`` below two draws)."""
    out: dict[str, Any] = {}
    for key in keys:
        values = [d[key] for d in draws if d.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
        out[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return out


def report_references(evaluate: Callable[[tuple, tuple], tuple[dict[str, Any], ReferenceFailure | None]],
                      synthetic: tuple, train: tuple, test: tuple, subsets: Sequence[np.ndarray], keys: Sequence[str],
                      *, accepts_nan: bool, feature_names: Sequence[str] | None, note: str) -> dict[str, Any]:
    """The ``"report"`` rule (module docstring), alike for every task.

    An encoded column constant in a training table (``synthetic``, ``train``, ``train`` at each of
    ``subsets``) is left out of that table's fit and of the test records it is scored on (each
    table's model sees the columns that vary in it), and listed; ``evaluate(table, test)`` then
    scores the synthetic table, the full data and each subset, returning ``(scores, failure)``
    (``scores`` with ``"fit_failed"``; ``failure`` ``None`` or the :class:`ReferenceFailure`, listed
    under the table's name).

    Args:
      evaluate: one reference's scores, as above.
      synthetic, train, test: tuples whose first element is the encoded ``X`` (the others, e.g.
        the labels, are kept as they are; each of ``train``'s is indexed by a subset's rows).
      subsets: the random subsets' row indices into ``train``.
      keys: the scores averaged over the draws (:func:`mean_over_draws`).
      feature_names: the encoded columns' names, for the report of the columns left out.
      note: the result's ``"note"``.

    Returns:
      ``{"synthetic", "full_data", "random_subset" (with "num_draws", "num_failed"), "test_rows",
      "note", "dropped_constant_columns", "preprocessing", "failures"}``.
    """
    X_synthetic, X_train, X_test = (np.asarray(t[0]) for t in (synthetic, train, test))
    _, dropped = shared_columns({"synthetic": [X_synthetic], "full_data": [X_train],
                                 "random_subset": [X_train[rows] for rows in subsets]}, feature_names)
    missing = {"synthetic": np.isnan(X_synthetic).sum(), "full_data": np.isnan(X_train).sum(),
               "test": np.isnan(X_test).sum()}
    failures: list[dict[str, str]] = []

    def score(table: str, rows: tuple) -> dict[str, Any]:
        # Each table's model sees the columns that vary in that table (a column constant in a
        # 20-row table is no reason to hide it from the full data's model, or from another table's).
        keep = ~constant_columns(np.asarray(rows[0]))
        rows = (np.asarray(rows[0])[:, keep],) + tuple(rows[1:])
        scores, failure = evaluate(rows, (X_test[:, keep],) + tuple(test[1:]))
        if failure is not None:
            failures.append(failure.as_dict(table))
        return scores

    synthetic_scores = score("synthetic", synthetic)
    full_scores = score("full_data", train)
    draws = [score(f"random_subset (draw {i + 1} of {len(subsets)})", tuple(np.asarray(a)[rows] for a in train))
             for i, rows in enumerate(subsets)]
    random_scores = mean_over_draws(draws, keys)
    random_scores["num_draws"] = len(subsets)
    random_scores["num_failed"] = int(sum(d["fit_failed"] for d in draws))
    return {"synthetic": synthetic_scores, "full_data": full_scores, "random_subset": random_scores,
            "test_rows": int(X_test.shape[0]), "note": note, "dropped_constant_columns": len(dropped),
            "preprocessing": {"dropped_columns": dropped, "missing_values": missing_value_report(accepts_nan, missing)},
            "failures": failures}


def check_on_failure(on_failure: str) -> None:
    if on_failure not in ON_FAILURE:
        raise ConfigError(f"`on_failure` must be one of {list(ON_FAILURE)}. Got {on_failure!r}.")


# --------------------------------------------------------------------------- classification

def _scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():  # a class the test split lacks: the score is over the classes it holds
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(y_true, proba.argmax(axis=1)))
    return {"auroc": auroc(y_true, proba), "balanced_accuracy": balanced}


def fit_predict_proba_or_fail(estimator: Any, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                              num_classes: int, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """:func:`fit_predict_proba` without a fallback: ``(n_test, num_classes)`` probabilities, or
    :class:`ReferenceFailure` when the fit or the prediction raises, or any test record's
    probabilities are not finite (AUROC ranks every record: none can be scored alone)."""
    model = clone(estimator)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on tiny tables; a real failure raises
            if sample_weight is None:
                model.fit(X_train, y_train)
            else:
                model.fit(X_train, y_train, sample_weight=np.asarray(sample_weight, np.float64))
        present = np.asarray(model.classes_, dtype=np.int64)
    except Exception as error:  # noqa: BLE001 - reported, never scored
        raise ReferenceFailure.from_exception("fit", error) from None
    try:
        proba_present = np.asarray(model.predict_proba(X_test), dtype=np.float64)
    except Exception as error:  # noqa: BLE001 - reported, never scored
        raise ReferenceFailure.from_exception("predict", error) from None
    if proba_present.shape != (X_test.shape[0], present.size):
        raise ReferenceFailure("predict", "ShapeError", f"predict_proba returned shape {proba_present.shape}")
    bad = ~np.all(np.isfinite(proba_present), axis=1)
    if bad.any():
        raise ReferenceFailure("predict", "NonFinitePrediction",
                               f"non-finite probabilities for {int(bad.sum())} of {bad.size} test records")
    proba = np.zeros((X_test.shape[0], num_classes))
    proba[:, present] = proba_present
    return proba


def classification_utility(estimator: Any, synthetic: tuple[np.ndarray, np.ndarray],
                           train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
                           num_classes: int, rows_per_class: int, random_state: int = 0,
                           num_random_subsets: int = 5, on_failure: str = "chance",
                           feature_names: Sequence[str] | None = None) -> dict[str, Any]:
    """TSTR AUROC and balanced accuracy of the synthetic table next to the real references.

    Args:
      estimator: unfitted host model (a scikit-learn classifier).
      synthetic, train, test: ``(X (r, d), y (r,))`` pairs in encoded space (``X`` may hold NaN:
        the missing-value rule of the module docstring); ``synthetic`` may carry a third element,
        the rows' ``sample_weight`` (a soft-label release; ``None``: unweighted).
      num_classes: ``K``.
      rows_per_class: size of the random real subset per class (the synthetic table's).
      random_state: seed of the random subsets.
      num_random_subsets: the random-subset reference is averaged over this many draws (it is
        noisy on its own: one draw is one seed's luck).
      on_failure: ``"chance"`` or ``"report"`` (module docstring).
      feature_names: the encoded columns' names, for the report of the columns left out.

    Returns:
      ``{"synthetic": {...}, "full_data": {...}, "random_subset": {... , "num_draws"}, "test_rows"}``.
      With ``on_failure="report"`` also: ``"fit_failed"`` in each reference (scores ``None`` when
      True), ``"num_failed"`` and the spread ``"auroc_sd"``, ``"balanced_accuracy_sd"`` over the
      draws that succeeded in ``random_subset`` (their mean; ``None`` if none did), and
      ``"metric"``, ``"num_classes"``, ``"note"``, ``"dropped_constant_columns"`` (a count),
      ``"preprocessing"`` (``dropped_columns``, ``missing_values``) and ``"failures"``.

    Could one record change this? Yes, every number (AUROC and balanced accuracy are not sums of
    bounded per-record terms; training records enter the references' fits): not private. With
    ``"chance"`` a test record that cannot be predicted is scored as chance alone
    (:func:`fit_predict_proba`); with ``"report"`` the reference is reported as failed.
    """
    check_on_failure(on_failure)
    X_test, y_test = (np.asarray(a) for a in test)
    X_synthetic, y_synthetic, *weight = synthetic
    weight = weight[0] if weight else None
    X_synthetic, y_synthetic = np.asarray(X_synthetic), np.asarray(y_synthetic)
    X_train, y_train = (np.asarray(a) for a in train)
    rng = np.random.default_rng(random_state)
    subsets = [stratified_subset(rng, y_train, rows_per_class) for _ in range(num_random_subsets)]
    accepts_nan = accepts_missing(estimator)

    if on_failure == "chance":
        def score(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> dict[str, float]:
            X, X_eval = prepare_features(accepts_nan, X, X_test)
            return _scores(y_test, fit_predict_proba(estimator, X, y, X_eval, num_classes, sample_weight=sample_weight))

        synthetic_scores = score(X_synthetic, y_synthetic, weight)
        full_scores = score(X_train, y_train)
        subset_scores = [score(X_train[rows], y_train[rows]) for rows in subsets]
        random_scores = {key: float(np.mean([s[key] for s in subset_scores])) for key in subset_scores[0]}
        random_scores["num_draws"] = num_random_subsets
        return {"synthetic": synthetic_scores, "full_data": full_scores, "random_subset": random_scores,
                "test_rows": int(X_test.shape[0])}

    def evaluate(table: tuple, test: tuple) -> tuple[dict[str, Any], ReferenceFailure | None]:
        (X, y, *weight), (X_test, y_test) = table, test
        X, X_eval = prepare_features(accepts_nan, X, X_test)
        try:
            proba = fit_predict_proba_or_fail(estimator, X, y, X_eval, num_classes, weight[0] if weight else None)
        except ReferenceFailure as failure:
            return {"auroc": None, "balanced_accuracy": None, "fit_failed": True}, failure
        return {**_scores(y_test, proba), "fit_failed": False}, None

    note = ("AUROC (one-vs-rest macro average for more than 2 classes) and balanced accuracy; a fit or prediction "
            "that fails is null (see failures), never a score. random_subset: real subsets of the synthetic table's "
            "size, stratified by class (not private), averaged over the draws that succeeded.")
    return {"metric": "auroc", "num_classes": int(num_classes),
            **report_references(evaluate, (X_synthetic, y_synthetic, weight), (X_train, y_train), (X_test, y_test),
                                subsets, ("auroc", "balanced_accuracy"), accepts_nan=accepts_nan,
                                feature_names=feature_names, note=note)}
