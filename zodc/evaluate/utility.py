"""Train on synthetic, test on real (TSTR): the utility of a released table.

Every reference is trained with the same host model (what a researcher receiving the table would
train) and tested on the same held-out real split:

- ``synthetic``: trained on the released synthetic table;
- ``full_data``: trained on the whole private training split (the upper reference);
- ``random_subset``: trained on a random real subset of the synthetic table's size, stratified
  with the same number of rows per class (a non-private reference: sharing it would disclose
  real patients).

Could this leak? These numbers are computed on real records and are *not* covered by the
privacy guarantee: they are for the data owner's review. Publish them only as an additional,
non-private release.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, roc_auc_score


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


def _scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {
        "auroc": auroc(y_true, proba),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, proba.argmax(axis=1))),
    }


def classification_utility(estimator: Any, synthetic: tuple[np.ndarray, np.ndarray],
                           train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
                           num_classes: int, rows_per_class: int, random_state: int = 0,
                           num_random_subsets: int = 5) -> dict[str, Any]:
    """TSTR AUROC and balanced accuracy of the synthetic table next to the real references.

    Args:
      estimator: unfitted host model (a scikit-learn classifier).
      synthetic, train, test: ``(X (r, d), y (r,))`` pairs in encoded space; ``synthetic`` may carry a
        third element, the rows' ``sample_weight`` (a soft-label release; ``None``: unweighted).
      num_classes: ``K``.
      rows_per_class: size of the random real subset per class (the synthetic table's).
      random_state: seed of the random subsets.
      num_random_subsets: the random-subset reference is averaged over this many draws (it is
        noisy on its own: one draw is one seed's luck).

    Returns:
      ``{"synthetic": {...}, "full_data": {...}, "random_subset": {... , "num_draws"}, "test_rows"}``.

    Could one record change this? Yes, every number (AUROC and balanced accuracy are not sums of
    bounded per-record terms; training records enter the references' fits): not private. A test
    record that cannot be predicted is scored as chance alone (:func:`fit_predict_proba`).
    """
    X_test, y_test = test
    X_synthetic, y_synthetic, *weight = synthetic
    synthetic_scores = _scores(y_test, fit_predict_proba(estimator, X_synthetic, y_synthetic, X_test, num_classes,
                                                         sample_weight=weight[0] if weight else None))
    full_scores = _scores(y_test, fit_predict_proba(estimator, *train, X_test, num_classes))
    rng = np.random.default_rng(random_state)
    subset_scores = []
    for _ in range(num_random_subsets):
        rows = stratified_subset(rng, train[1], rows_per_class)
        subset_scores.append(_scores(y_test, fit_predict_proba(estimator, train[0][rows], train[1][rows], X_test, num_classes)))
    random_scores = {key: float(np.mean([s[key] for s in subset_scores])) for key in subset_scores[0]}
    random_scores["num_draws"] = num_random_subsets
    return {"synthetic": synthetic_scores, "full_data": full_scores, "random_subset": random_scores,
            "test_rows": int(X_test.shape[0])}
