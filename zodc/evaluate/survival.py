"""Survival utility of a released table: train on synthetic, test on real (TSTR).

Mirrors :mod:`zodc.evaluate.utility`: every reference is trained with the same host survival model
and tested on the same held-out real split —

- ``synthetic``: trained on the released synthetic table;
- ``full_data``: trained on the whole private training split (the upper reference);
- ``random_subset``: trained on uniformly drawn real subsets of the synthetic table's size
  (a non-private reference: sharing it would disclose real patients).

Metrics: Harrell's C-index (higher risk = shorter survival) and, when a time grid is given, the
integrated Brier score of Graf et al. (1999) with a Kaplan–Meier censoring distribution.

Missing values and failures follow :mod:`zodc.evaluate.utility`'s rules, the same for every training
table: NaN features go as they are to a model that accepts them, else a median imputation fitted on
each training table alone; with ``on_failure="report"`` (the owner's report of ``zodc condense``) an
encoded column constant in any training table is left out of all of them and a fit or prediction
that fails scores ``None`` with its error listed, never C-index 0.5.

Could this leak? Everything here is computed on real records and is *not* covered by the privacy
guarantee (the censoring Kaplan–Meier included): the numbers are for the data owner's review.
Publish them only as an additional, non-private release.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from zodc.errors import DataError
from zodc.models.survival import as_survival_model

__all__ = ["concordance_index", "integrated_brier_score", "kaplan_meier", "survival_utility"]


def _vectors(**arrays: Any) -> dict[str, np.ndarray]:
    out = {name: np.asarray(values, dtype=np.float64).ravel() for name, values in arrays.items()}
    sizes = {values.size for values in out.values()}
    if len(sizes) != 1:
        raise DataError(f"{', '.join('`' + n + '`' for n in out)} must have the same length. "
                        f"Got {[values.size for values in out.values()]}.")
    for name, values in out.items():
        if not np.all(np.isfinite(values)):
            raise DataError(f"`{name}` contains NaN or inf in {int((~np.isfinite(values)).sum())} entries.")
    return out


def concordance_index(time: np.ndarray, risk: np.ndarray, event: np.ndarray) -> float:
    """Harrell's C-index; higher ``risk`` means *shorter* survival.

    A pair ``(i, j)`` is comparable when ``i`` had an event and left first: ``t_i < t_j``, or
    ``t_i == t_j`` with ``j`` censored (a censoring at an event's time is taken to come after it);
    two events at the same time are not comparable. A comparable pair is concordant when
    ``risk_i > risk_j`` and counts 1/2 when the risks tie. These are lifelines' rules:
    ``concordance_index(time, risk, event) == lifelines.utils.concordance_index(time, -risk, event)``.

    Could this leak? It summarises the records it is given; on real records the result is not
    private (see the module docstring).
    Could one record change this? Yes: it enters every comparable pair it belongs to.

    Args:
      time: ``(n,)`` observed times.
      risk: ``(n,)`` predicted risk scores.
      event: ``(n,)`` 1 = event, 0 = censored.

    Returns:
      C in ``[0, 1]``.

    Raises:
      DataError: mismatched lengths, NaN / inf, or no comparable pair (e.g. no event).
    """
    values = _vectors(time=time, risk=risk, event=event)
    time, risk, event = values["time"], values["risk"], values["event"] > 0
    concordant = 0.0
    pairs = 0
    chunk = max(1, 2_000_000 // max(time.size, 1))
    event_rows = np.flatnonzero(event)
    for start in range(0, event_rows.size, chunk):
        rows = event_rows[start:start + chunk]
        t_i, r_i = time[rows, None], risk[rows, None]
        comparable = (t_i < time[None, :]) | ((t_i == time[None, :]) & ~event[None, :])
        pairs += int(comparable.sum())
        concordant += float(np.sum(comparable * ((r_i > risk[None, :]) + 0.5 * (r_i == risk[None, :]))))
    if pairs == 0:
        raise DataError("the C-index needs at least one comparable pair (an event before another time); none found.")
    return concordant / pairs


def kaplan_meier(time: np.ndarray, event: np.ndarray,
                 weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate of ``P(T > t)``.

    Args:
      time: ``(n,)`` times.
      event: ``(n,)`` 1 = the event of interest happened at ``time``, 0 = censored. (For the
        censoring distribution pass ``1 - event``.)
      weight: optional ``(n,)`` non-negative case weights (a soft-event table's copies); deaths
        and risk sets count weight instead of rows.

    Returns:
      ``(knots (K,), survival (K,))``: the distinct times and the right-continuous estimate there.

    Could one record change this? Yes: it is in every risk set up to its time (on real records,
    not private: module docstring).
    """
    values = _vectors(time=time, event=event)
    time, event = values["time"], values["event"] > 0
    weight = np.ones(time.size) if weight is None else np.asarray(weight, np.float64)
    knots, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=event * weight, minlength=knots.size)
    leaving = np.bincount(inverse, weights=weight, minlength=knots.size)
    at_risk = leaving[::-1].cumsum()[::-1]
    return knots, np.cumprod(1.0 - deaths / at_risk)


def _step(knots: np.ndarray, values: np.ndarray, times: np.ndarray, left_limit: bool = False) -> np.ndarray:
    index = np.searchsorted(knots, times, side="left" if left_limit else "right") - 1
    return np.where(index >= 0, values[np.maximum(index, 0)], 1.0)


def integrated_brier_score(time: np.ndarray, event: np.ndarray, survival: np.ndarray, grid: np.ndarray,
                           censoring_time: np.ndarray, censoring_event: np.ndarray) -> float:
    """Integrated Brier score with inverse-probability-of-censoring weights (Graf et al. 1999).

    ``BS(tau) = mean_i [ S(tau|x_i)^2 1{t_i <= tau, e_i = 1} / G(t_i-) + (1 - S(tau|x_i))^2 1{t_i > tau} / G(tau) ]``
    with ``G`` the Kaplan–Meier of the censoring times of ``(censoring_time, censoring_event)``
    (the training split, as scikit-survival does), ``G(t-)`` its left limit (a censoring at an event's
    time comes after it), floored at ``1e-8``. ``IBS = trapezoid(BS, grid) / (grid[-1] - grid[0])``
    over the grid points below the largest test time.

    Could this leak? Computed on real records; not private (module docstring).
    Could one record change this? Yes: a training record through the censoring Kaplan–Meier, a
    test record through the mean and the grid's cut at the largest test time.

    Args:
      time: ``(n,)`` test times.
      event: ``(n,)`` test events.
      survival: ``(n, G)`` predicted survival at ``grid``.
      grid: ``(G,)`` increasing times.
      censoring_time, censoring_event: ``(r,)`` the split that estimates the censoring distribution.

    Returns:
      The IBS (0 is perfect; a constant 0.5 prediction scores 0.25 without censoring).

    Raises:
      DataError: shapes disagree, or fewer than 2 grid points lie below the largest test time.
    """
    values = _vectors(time=time, event=event)
    time, event = values["time"], values["event"] > 0
    grid = np.asarray(grid, dtype=np.float64).ravel()
    survival = np.asarray(survival, dtype=np.float64)
    if survival.shape != (time.size, grid.size):
        raise DataError(f"`survival` must have shape ({time.size}, {grid.size}). Got {survival.shape}.")
    keep = grid < time.max()
    if keep.sum() < 2:
        raise DataError(f"`grid` needs at least 2 times below the largest test time {time.max()}. Got {grid.tolist()}.")
    grid, survival = grid[keep], np.clip(survival[:, keep], 0.0, 1.0)
    knots, censoring = kaplan_meier(censoring_time, 1 - np.asarray(censoring_event))
    g_event = np.maximum(_step(knots, censoring, time, left_limit=True), 1e-8)     # (n,)
    g_grid = np.maximum(_step(knots, censoring, grid), 1e-8)                        # (G,)
    died = (event[:, None] & (time[:, None] <= grid[None, :])) / g_event[:, None]
    alive = (time[:, None] > grid[None, :]) / g_grid[None, :]
    brier = np.mean(survival**2 * died + (1.0 - survival) ** 2 * alive, axis=0)
    return float(np.trapezoid(brier, grid) / (grid[-1] - grid[0]))


def _resolve(preset_or_estimator: Any) -> Any:
    if isinstance(preset_or_estimator, str):
        from zodc.models.presets import get_preset

        return get_preset(preset_or_estimator, task="survival").host_factory(0)
    if hasattr(preset_or_estimator, "host_factory"):
        return preset_or_estimator.host_factory(0)
    return preset_or_estimator


def _evaluate(estimator: Any, train: tuple, test: tuple, grid: np.ndarray | None,
              censoring: tuple, accepts_nan: bool = False) -> dict[str, Any]:
    """One reference: fit on ``train``, score on ``test``.

    A fit that fails (or a risk that cannot be predicted for some test record: the C-index is
    pairwise, so no record can be scored alone) reports C-index 0.5 and ``fit_failed``. The
    survival curves are predicted per record (:func:`zodc.models.host.predict_rows`): a test
    record whose curve cannot be predicted or is non-finite gets the null model's curve (the
    training rows' marginal Kaplan–Meier) alone.

    Could one record change this? Yes: the C-index and the censoring weights are not per-record
    sums, and training records enter the fit. Not private (module docstring); the per-record
    fallback keeps one unpredictable test record from replacing the others' curves.
    """
    from zodc.evaluate.utility import prepare_features
    from zodc.models.host import predict_rows

    X_train, time_train, event_train = (np.asarray(a) for a in train[:3])
    weight = np.asarray(train[3], np.float64) if len(train) > 3 and train[3] is not None else None
    X_test, time_test, event_test = (np.asarray(a) for a in test)
    X_train, X_test = prepare_features(accepts_nan, X_train, X_test)
    grid = None if grid is None else np.asarray(grid, dtype=np.float64)

    def null_survival() -> np.ndarray:
        # The null model: the marginal Kaplan–Meier of the same training rows, for everyone.
        knots, km = kaplan_meier(time_train, event_train, weight)
        return np.tile(_step(knots, km, grid), (X_test.shape[0], 1))

    failed = False
    risk, survival = np.zeros(X_test.shape[0]), None
    try:
        model = as_survival_model(estimator)
        model = model.fit(X_train, time_train, event_train) if weight is None else \
            model.fit(X_train, time_train, event_train, sample_weight=weight)
    except Exception:  # noqa: BLE001 - a failed reference fit is reported as chance, not a crash
        failed = True
        if grid is not None:
            survival = null_survival()
    else:
        predicted_risk = predict_rows(model.predict_risk, X_test)
        if np.all(np.isfinite(predicted_risk)):
            risk = predicted_risk
        else:
            failed = True
        if grid is not None:
            survival = predict_rows(lambda X: model.predict_survival(X, grid), X_test, (grid.size,))
            unpredicted = ~np.all(np.isfinite(survival), axis=1)
            if np.any(unpredicted):
                survival[unpredicted] = null_survival()[unpredicted]
    scores: dict[str, Any] = {"c_index": concordance_index(time_test, risk, event_test), "fit_failed": failed}
    if grid is not None:
        scores["integrated_brier"] = integrated_brier_score(time_test, event_test, survival, grid, *censoring)
    return scores


def drop_constant_columns(synthetic: tuple, train: tuple, test: tuple) -> tuple[tuple, tuple, tuple, int]:
    """Leaves out the encoded feature columns constant in the synthetic table, from all three.

    lifelines' Cox cannot fit a column that is constant in its training table (a category level
    absent from a small table: the fit diverges and would score as failed); an analyst fitting Cox
    on the table drops it, and the references are then scored on the same columns.

    Args:
      synthetic, train, test: ``(X, time, event[, sample_weight])`` as for :func:`survival_utility`.

    Returns:
      ``(synthetic, train, test, number of columns dropped)``.

    Could one record change this? Only a row of ``synthetic``: which columns go depends on it alone
    (the ``train`` and ``test`` records change nothing).
    """
    X = np.asarray(synthetic[0])
    varying = np.ptp(X, axis=0) > 1e-9 if len(X) else np.zeros(X.shape[1], bool)
    if varying.all():
        return synthetic, train, test, 0
    keep = lambda triple: (np.asarray(triple[0])[:, varying],) + tuple(triple[1:])
    return keep(synthetic), keep(train), keep(test), int((~varying).sum())


def _evaluate_or_fail(estimator: Any, train: tuple, test: tuple, grid: np.ndarray | None, censoring: tuple,
                      accepts_nan: bool) -> tuple[dict[str, Any], Any]:
    """One reference for the owner's report: fit on ``train``, score on ``test``, no fallback.

    Returns ``(scores, failure)``: ``scores`` holds ``c_index`` (``None`` when the fit fails or a
    test record's risk cannot be predicted: the C-index is pairwise, so no record can be scored
    alone), ``fit_failed`` and, with a grid, ``integrated_brier`` (``None`` when the fit fails or a
    test record's curve cannot be predicted); ``failure`` is ``None`` or the
    :class:`~zodc.evaluate.utility.ReferenceFailure` that left a score ``None``.

    Could one record change this? Yes (as :func:`_evaluate`); not private (module docstring).
    """
    from zodc.evaluate.utility import ReferenceFailure, prepare_features

    X_train, time_train, event_train = (np.asarray(a) for a in train[:3])
    weight = np.asarray(train[3], np.float64) if len(train) > 3 and train[3] is not None else None
    X_test, time_test, event_test = (np.asarray(a) for a in test)
    X_train, X_test = prepare_features(accepts_nan, X_train, X_test)
    scores: dict[str, Any] = {"c_index": None, "fit_failed": True}
    if grid is not None:
        scores["integrated_brier"] = None
    try:
        model = as_survival_model(estimator)
        model = model.fit(X_train, time_train, event_train) if weight is None else \
            model.fit(X_train, time_train, event_train, sample_weight=weight)
    except Exception as error:  # noqa: BLE001 - reported, never scored
        return scores, ReferenceFailure.from_exception("fit", error)
    try:
        risk = np.asarray(model.predict_risk(X_test), dtype=np.float64)
    except Exception as error:  # noqa: BLE001 - reported, never scored
        return scores, ReferenceFailure.from_exception("predict", error)
    if risk.shape != (X_test.shape[0],):
        return scores, ReferenceFailure("predict", "ShapeError", f"predict_risk returned shape {risk.shape}")
    if not np.all(np.isfinite(risk)):
        return scores, ReferenceFailure("predict", "NonFinitePrediction", f"non-finite risk for "
                                        f"{int((~np.isfinite(risk)).sum())} of {risk.size} test records")
    scores["c_index"], scores["fit_failed"] = concordance_index(time_test, risk, event_test), False
    if grid is None:
        return scores, None
    try:
        survival = np.asarray(model.predict_survival(X_test, grid), dtype=np.float64)
    except Exception as error:  # noqa: BLE001 - reported, never scored
        return scores, ReferenceFailure.from_exception("predict_survival", error)
    if survival.shape != (X_test.shape[0], grid.size):
        return scores, ReferenceFailure("predict_survival", "ShapeError", f"predict_survival returned shape {survival.shape}")
    unpredicted = ~np.all(np.isfinite(survival), axis=1)
    if unpredicted.any():
        return scores, ReferenceFailure("predict_survival", "NonFinitePrediction", f"non-finite survival curves "
                                        f"for {int(unpredicted.sum())} of {unpredicted.size} test records")
    scores["integrated_brier"] = integrated_brier_score(time_test, event_test, survival, grid, *censoring)
    return scores, None


def survival_utility(preset_or_estimator: Any, synthetic: tuple, train: tuple, test: tuple, *, num_rows: int,
                     random_state: int = 0, num_random_subsets: int = 5,
                     time_grid: np.ndarray | None = None, on_failure: str = "chance",
                     feature_names: Sequence[str] | None = None) -> dict[str, Any]:
    """TSTR C-index (and integrated Brier score) of the synthetic table next to the real references.

    A fit that fails is never an exception. With ``on_failure="chance"`` (the default, for callers
    that average many tables alike) it scores C-index 0.5 (and the integrated Brier score of the
    training rows' marginal Kaplan–Meier), with ``fit_failed`` True. With ``"report"`` (the owner's
    report) its scores are ``None``, the error is listed under ``failures``, and every encoded
    column constant in any training table (synthetic, full data, any random subset) is left out
    of all of them and listed under ``preprocessing`` (:mod:`zodc.evaluate.utility`).

    Could this leak? Yes: the references are computed on real records; see the module docstring.
    Could one record change this? Yes, every number (see :func:`_evaluate`); a test record the
    model cannot predict gets the null curve alone.

    Args:
      preset_or_estimator: a survival preset name (``"cox"``, ``"survival_forest"``), a
        :class:`~zodc.models.presets.Preset`, or a host survival model
        (:func:`~zodc.models.survival.as_survival_model`).
      synthetic, train, test: ``(X (r, d), time (r,), event (r,))`` in encoded feature space and
        the schema's time units (decode the synthetic log-times first). ``synthetic`` may carry a
        fourth element, the rows' ``sample_weight`` (a soft-event release; ``None``: unweighted).
      num_rows: size of each random real subset (the synthetic table's ``m``).
      random_state: seed of the random subsets.
      num_random_subsets: the random-subset reference is averaged over this many draws.
      time_grid: ``(G,)`` times for the integrated Brier score; ``None`` skips it. The censoring
        distribution of the IPCW weights is the training split's Kaplan–Meier.
      on_failure: ``"chance"`` or ``"report"`` (above).
      feature_names: the encoded columns' names, for the report of the columns left out.

    Returns:
      ``{"synthetic": {"c_index", "fit_failed"[, "integrated_brier"]}, "full_data": {...},
      "random_subset": {"c_index"[, "integrated_brier"], "num_draws", "num_failed"},
      "test_rows", "note"}``. With ``"report"``, ``random_subset`` averages the draws that
      succeeded (``None`` if none did) and adds their spread (``"c_index_sd"``,
      ``"integrated_brier_sd"``); the result adds ``"metric"``, ``"dropped_constant_columns"`` (a
      count), ``"preprocessing"`` (``dropped_columns``, ``missing_values``) and ``"failures"``.

    Raises:
      DataError: the test split has no comparable pair.
      ConfigError: unknown preset, or ``num_rows`` / ``num_random_subsets`` not positive integers.
    """
    from zodc.errors import ConfigError
    from zodc.evaluate.utility import accepts_missing, check_on_failure

    for name, value in (("num_rows", num_rows), ("num_random_subsets", num_random_subsets)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"`{name}` must be a positive integer. Got {value!r}.")
    check_on_failure(on_failure)
    estimator = _resolve(preset_or_estimator)
    try:
        accepts_nan = accepts_missing(as_survival_model(estimator))
    except ConfigError:  # not a survival model: every fit fails, and says so
        accepts_nan = False
    grid = None if time_grid is None else np.asarray(time_grid, dtype=np.float64)
    censoring = (np.asarray(train[1]), np.asarray(train[2]))
    rng = np.random.default_rng(random_state)
    num_train = np.asarray(train[1]).shape[0]
    subsets = [np.sort(rng.choice(num_train, size=min(int(num_rows), num_train), replace=False))
               for _ in range(num_random_subsets)]
    if on_failure == "report":
        return _report_utility(estimator, synthetic, train, test, subsets, grid, censoring, accepts_nan, feature_names)
    synthetic_scores = _evaluate(estimator, synthetic, test, grid, censoring, accepts_nan)
    full_scores = _evaluate(estimator, train, test, grid, censoring, accepts_nan)
    draws = [_evaluate(estimator, tuple(np.asarray(a)[rows] for a in train), test, grid, censoring, accepts_nan)
             for rows in subsets]
    random_scores: dict[str, Any] = {key: float(np.mean([d[key] for d in draws]))
                                     for key in draws[0] if key != "fit_failed"}
    random_scores["num_draws"] = int(num_random_subsets)
    random_scores["num_failed"] = int(sum(d["fit_failed"] for d in draws))
    note = ("C-index: Harrell's, higher risk = shorter survival; a failed fit scores 0.5. "
            "random_subset: uniform real subsets of the synthetic table's size (not private). "
            "All references use real records and are not covered by the DP guarantee.")
    if grid is not None:
        note += " integrated_brier: Graf et al. (1999) IPCW with the training split's censoring Kaplan-Meier."
    return {"synthetic": synthetic_scores, "full_data": full_scores, "random_subset": random_scores,
            "test_rows": int(np.asarray(test[1]).shape[0]), "note": note}


def _report_utility(estimator: Any, synthetic: tuple, train: tuple, test: tuple, subsets: list[np.ndarray],
                    grid: np.ndarray | None, censoring: tuple, accepts_nan: bool,
                    feature_names: Sequence[str] | None) -> dict[str, Any]:
    """:func:`survival_utility` with ``on_failure="report"``."""
    from zodc.evaluate.utility import report_references

    synthetic, train, test = ((np.asarray(t[0], dtype=np.float64),) + tuple(t[1:]) for t in (synthetic, train, test))
    note = ("C-index: Harrell's, higher risk = shorter survival; a fit or prediction that fails is null (see "
            "failures), never a score. random_subset: uniform real subsets of the synthetic table's size (not "
            "private), averaged over the draws that succeeded. All references use real records and are not "
            "covered by the DP guarantee.")
    if grid is not None:
        note += " integrated_brier: Graf et al. (1999) IPCW with the training split's censoring Kaplan-Meier."
    return {"metric": "c_index",
            **report_references(lambda table, test: _evaluate_or_fail(estimator, table, test, grid, censoring,
                                                                      accepts_nan),
                                synthetic, train, test, subsets,
                                ("c_index",) + (("integrated_brier",) if grid is not None else ()),
                                accepts_nan=accepts_nan, feature_names=feature_names, note=note)}
