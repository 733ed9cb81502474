"""The alternatives a clinical data owner has to releasing a condensed table, at the same size.

The utility benchmark's baselines (:mod:`benchmarks.runner`); not part of the installed ``zodc``
package. :func:`mst` and :func:`aim` need ``mbi`` (``pip install -e '.[bench]'``); the others only
zodc's own dependencies.

Every baseline returns a DataFrame in the schema's columns, units and levels (what
:meth:`zodc.data.TableEncoder.decode` produces), so the same train-on-synthetic, test-on-real
evaluation applies to all of them and to the condensed table. The private ones return a
:class:`~zodc.privacy.Ledger` whose total meets the target ``(epsilon, delta)``: their noise is
*calibrated* to it with :mod:`zodc.privacy.calibration`, never hand-picked.

Non-private references (sharing them discloses real patients; they bound what is attainable):

- :func:`full_data`: the whole private training split (the upper reference);
- :func:`random_subset`: ``k`` real records per class;
- :func:`kmeans_centroids`: ``k`` k-means centroids per class (a classical non-private
  "condensation"; a centroid is an average of real records, not a DP release).

Private generators (same ``k`` rows per class as the condensed table):

- :func:`dp_gaussian`: DP class-conditional Gaussian. Per class, DP counts, sums and sums of
  squares (diagonal) or of outer products (full covariance) of the records in the public-bounds
  scaled space ``[-1, 1]^d``, one Gaussian mechanism each (classes partition the records, so each
  query's sensitivity is that of one record); means and covariances are post-processed from them
  and ``k`` rows per class are sampled and clipped to the box.
- :func:`mst`: MST (McKenna, Sheldon and Miklau 2021, arXiv:2108.04978) on the ``mbi`` package
  (Private-PGM). Numeric columns are cut into ``num_bins`` equal-width bins of their *public*
  schema bounds (survival time: on the log scale); 1-way marginals of every attribute are measured
  with Gaussian noise, a maximum spanning tree of 2-way marginals is selected with the exponential
  mechanism (weights: L1 distance between the 2-way marginal and the product of noisy 1-way
  marginals), the tree's 2-way marginals are measured, Private-PGM estimates a graphical model and
  samples records; bins decode to their midpoints. One third of the zCDP budget goes to each part
  as in the reference implementation. Left out: the reference's domain compression (merging rare
  1-way values), which only helps large domains; here domains are ``num_bins`` wide.
- :func:`aim`: AIM (McKenna, Mullins, Sheldon and Miklau 2022, arXiv:2201.12677) on the same
  discretisation: a workload of 2-way marginals (and 3-way ones with the target), rounds of
  exponential-mechanism selection of the worst-approximated candidate under a model-size limit,
  Gaussian measurement, budget annealing, Private-PGM estimation; its documentation lists the
  defaults that keep it cheap on a 2-core machine.

MST and AIM give a column whose schema allows missing values one more code ("missing"), released
as missing cells; a missing number in a column that does not allow them sits in the middle bin,
where zodc's encoder puts it.

Survival (``m`` rows, the schema's time and event columns): :func:`full_data`,
:func:`random_subset_survival` (``m`` real records), :func:`kmeans_survival` (centroids within
each event status, time = cluster median; not private), :func:`dp_gaussian_survival` (the DP
Gaussian conditional on the event status, log-time a column), :func:`mst` and :func:`aim` with
``num_rows`` (event as a categorical attribute, time in public log-scale bins).

Accounting. Each Gaussian measurement of several queries with joint L2 sensitivity 1 and noise
std ``sigma`` is ``GaussianEvent(sigma)``. The exponential mechanism with parameter ``eps`` is
``eps^2 / 8``-zCDP (bounded range; Cesar and Rogers 2021, arXiv:2004.07223), i.e. its RDP at
order ``a`` is at most ``a eps^2 / 8`` — exactly the RDP curve of ``GaussianEvent(2 / eps)`` — and
is recorded as that event. Everything is composed by zodc's RDP ledger and calibrated with
:func:`~zodc.privacy.calibrate_noise_multiplier`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from zodc.data.schema import CategoricalColumn, NumericColumn, Schema
from zodc.data.transform import TableEncoder
from zodc.data.validation import validate_table
from zodc.errors import ConfigError, DataError
from zodc.privacy.calibration import calibrate_noise_multiplier
from zodc.privacy.events import ComposedEvent, GaussianEvent, SelfComposedEvent
from zodc.privacy.ledger import Ledger

__all__ = ["BaselineResult", "aim", "aim_event", "dp_gaussian", "dp_gaussian_survival", "event_split", "full_data",
           "kmeans_centroids", "kmeans_survival", "mst", "random_subset", "random_subset_survival", "BASELINES",
           "PRIVATE_BASELINES"]

BASELINES = ("full_data", "random_subset", "kmeans_centroids", "dp_gaussian", "mst", "aim")
PRIVATE_BASELINES = ("dp_gaussian", "mst", "aim")


class BaselineResult(NamedTuple):
    """A baseline's table and what it cost.

    Attributes:
      table: DataFrame in the schema's columns (``schema.column_names``), units and levels.
      ledger: the mechanisms spent (private baselines), else ``None``.
      epsilon: the ledger's epsilon at ``delta`` (``inf`` for non-private references and for
        ``epsilon = inf`` runs of the private generators).
      private: whether the table is a DP release.
      details: what the mechanism used (noise multipliers, selected cliques, ...), JSON-friendly.
    """

    table: pd.DataFrame
    ledger: Ledger | None
    epsilon: float
    private: bool
    details: dict


def _check_gaussian_options(covariance: str, shares) -> tuple:
    """Validates the DP Gaussian's ``covariance`` and budget ``shares``; returns the shares as floats."""
    if covariance not in ("diagonal", "full"):
        raise ConfigError(f"`covariance` must be 'diagonal' or 'full'. Got {covariance!r}.")
    shares = tuple(float(s) for s in shares)
    if len(shares) != 3 or any(not s > 0 for s in shares) or abs(sum(shares) - 1) > 1e-9:
        raise ConfigError(f"`shares` must be three positive numbers summing to 1. Got {shares}.")
    return shares


def _quiet_clean(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The table validated against the public schema, out-of-bound values clipped without a warning
    (condensation already warned the owner about them), index reset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_table(frame, schema, on_out_of_bounds="clip").reset_index(drop=True)


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _check_rows(rows_per_class: Any) -> int:
    if isinstance(rows_per_class, bool) or not isinstance(rows_per_class, (int, np.integer)) or rows_per_class < 1:
        raise ConfigError(f"`rows_per_class` must be an integer >= 1. Got {rows_per_class!r}.")
    return int(rows_per_class)


def _check_budget(epsilon: Any, delta: Any) -> tuple[float, float]:
    try:
        epsilon = float(epsilon)
    except (TypeError, ValueError):
        raise ConfigError(f"`epsilon` must be a number > 0 (or inf). Got {epsilon!r}.") from None
    if math.isnan(epsilon) or epsilon <= 0:
        raise ConfigError(f"`epsilon` must be > 0 (or inf). Got {epsilon}.")
    if not isinstance(delta, (int, float)) or not 0 < delta < 1:
        raise ConfigError(f"`delta` must be in (0, 1). Got {delta!r}.")
    return epsilon, float(delta)


def _classification(schema: Schema) -> None:
    if schema.task != "classification":
        raise DataError(f"schema {schema.name!r} is for {schema.task}; this baseline needs a classification schema.")


def _encoded(frame: pd.DataFrame, schema: Schema):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # out-of-bounds values are clipped, as the Condenser does
        encoder = TableEncoder(schema)
        table = encoder.encode(validate_table(frame, schema, on_out_of_bounds="clip"))
    return encoder, np.asarray(table.X, np.float64), np.asarray(table.y)


# ---------------------------------------------------------------------------------------------------
# Non-private references


def full_data(frame: pd.DataFrame, schema: Schema) -> BaselineResult:
    """The whole private training table (validated): the upper reference. Not private."""
    table = _quiet_clean(frame, schema)
    return BaselineResult(table, None, math.inf, False, {"rows": int(len(table))})


def random_subset(frame: pd.DataFrame, schema: Schema, rows_per_class: int, random_state: Any = None) -> BaselineResult:
    """``rows_per_class`` real records drawn without replacement from each class. Not private.

    Classes with fewer records contribute all of theirs.
    """
    _classification(schema)
    rows_per_class = _check_rows(rows_per_class)
    rng = _rng(random_state)
    clean = _quiet_clean(frame, schema)
    codes = np.asarray(TableEncoder(schema).encode(clean).y)
    chosen = [rng.choice(np.flatnonzero(codes == c), size=min(rows_per_class, int((codes == c).sum())), replace=False)
              for c in range(schema.n_classes) if (codes == c).any()]
    rows = np.sort(np.concatenate(chosen))
    return BaselineResult(clean.iloc[rows].reset_index(drop=True), None, math.inf, False,
                          {"rows": int(rows.size)})


def kmeans_centroids(frame: pd.DataFrame, schema: Schema, rows_per_class: int, random_state: Any = None) -> BaselineResult:
    """``rows_per_class`` k-means centroids per class in the encoded ``[-1, 1]`` space. Not private.

    Centroids are decoded like a synthetic table (categoricals: sign / argmax of the ±1 coding).
    A class with at most ``rows_per_class`` records contributes its records.
    """
    from sklearn.cluster import KMeans

    _classification(schema)
    rows_per_class = _check_rows(rows_per_class)
    seed = int(_rng(random_state).integers(2**31 - 1))
    encoder, X, y = _encoded(frame, schema)
    centres, labels = [], []
    for c in range(schema.n_classes):
        members = X[y == c]
        if members.shape[0] == 0:
            continue
        if members.shape[0] <= rows_per_class:
            block = members
        else:
            block = KMeans(n_clusters=rows_per_class, n_init=4, random_state=seed).fit(members).cluster_centers_
        centres.append(block)
        labels.append(np.full(block.shape[0], c))
    table = encoder.decode(np.concatenate(centres), y=np.concatenate(labels))
    return BaselineResult(table, None, math.inf, False, {"rows": int(len(table))})


# ---------------------------------------------------------------------------------------------------
# DP class-conditional Gaussian


def dp_gaussian_event(noise_multiplier: float, shares: tuple[float, float, float]) -> ComposedEvent:
    """The three Gaussian releases of :func:`dp_gaussian` for an overall noise multiplier ``z``.

    Query ``j`` gets noise multiplier ``z / sqrt(shares[j])``; as the shares sum to 1, the
    composition has the RDP of ``GaussianEvent(z)``.
    """
    return ComposedEvent(tuple(GaussianEvent(noise_multiplier / math.sqrt(share)) for share in shares))


def dp_gaussian(frame: pd.DataFrame, schema: Schema, rows_per_class: int, *, epsilon: float, delta: float = 1e-5,
                covariance: str = "diagonal", shares: tuple[float, float, float] = (0.1, 0.45, 0.45),
                min_variance: float = 1e-3, random_state: Any = None) -> BaselineResult:
    """DP class-conditional Gaussian generator, ``rows_per_class`` samples per class.

    In the encoded space ``[-1, 1]^d`` (public schema bounds; every record has
    ``||x||_2 <= sqrt(d)``), per class ``c``: a DP count ``n_c`` (sensitivity 1), a DP sum
    ``s_c = sum x`` (sensitivity ``sqrt(d)``) and a DP second moment, ``sum x**2`` (diagonal,
    sensitivity ``sqrt(d)``) or ``sum x x^T`` (full, Frobenius sensitivity ``d``). Classes
    partition the records, so each of the three is one Gaussian mechanism over all classes
    (add/remove one record changes one class). Post-processing: ``mu_c = s_c / max(n_c, 1)``
    clipped to the box, covariance ``S_c / n_c - mu mu^T`` projected to a positive definite
    matrix with variances in ``[min_variance, 1]``; samples are clipped to the box and decoded.

    Args:
      frame: the private training table (schema columns).
      schema: public classification schema.
      rows_per_class: ``k``: samples per class.
      epsilon: target epsilon (``inf``: the exact moments, no noise).
      delta: target delta.
      covariance: ``"diagonal"`` (default: noise grows with ``d``, not ``d^2``) or ``"full"``.
      shares: shares of the zCDP budget of counts, sums, second moments (positive, sum 1).
      min_variance: variance floor in encoded units.
      random_state: seed or ``np.random.Generator``.

    Returns:
      :class:`BaselineResult` with the ledger (``epsilon <= target``) and, in ``details``, the
      overall ``noise_multiplier`` and each query's noise std.

    Raises:
      ConfigError: bad arguments (named). PrivacyBudgetError: target not attainable.
    """
    _classification(schema)
    rows_per_class = _check_rows(rows_per_class)
    epsilon, delta = _check_budget(epsilon, delta)
    shares = _check_gaussian_options(covariance, shares)
    rng = _rng(random_state)
    encoder, X, y = _encoded(frame, schema)
    moments = _dp_group_moments(X, y, schema.n_classes, epsilon, delta, covariance, shares, min_variance, rng,
                                ("class_counts", "class_sums", "class_second_moments"), "class")
    samples, labels = [], []
    for c in range(schema.n_classes):
        samples.append(_draw(moments, c, rows_per_class, rng))
        labels.append(np.full(rows_per_class, c))
    table = encoder.decode(np.concatenate(samples), y=np.concatenate(labels))
    return BaselineResult(table, moments.ledger, moments.epsilon, True,
                          dict(moments.details, noisy_class_counts=[float(c) for c in moments.counts]))


class _GroupMoments(NamedTuple):
    counts: np.ndarray          # (G,) noisy counts
    means: np.ndarray           # (G, d) in the box
    covariances: list           # G x (d,) variances (diagonal) or (d, d) matrices (full)
    covariance: str
    ledger: Ledger | None
    epsilon: float
    details: dict


def _dp_group_moments(X: np.ndarray, groups: np.ndarray, num_groups: int, epsilon: float, delta: float,
                      covariance: str, shares: tuple, min_variance: float, rng: np.random.Generator,
                      names: tuple[str, str, str], what: str) -> _GroupMoments:
    """DP counts, sums and second moments of ``X (n, d)`` in ``[-1, 1]^d`` per group (a partition).

    Three Gaussian mechanisms, jointly calibrated to ``(epsilon, delta)`` (see :func:`dp_gaussian`);
    means clipped to the box, covariances projected to variances in ``[min_variance, 1]``.
    """
    d = X.shape[1]
    private = math.isfinite(epsilon)
    ledger = Ledger()
    if private:
        noise_multiplier = calibrate_noise_multiplier(epsilon, delta, lambda z: dp_gaussian_event(z, shares))
    else:
        noise_multiplier = 0.0
    sensitivities = (1.0, math.sqrt(d), math.sqrt(d) if covariance == "diagonal" else float(d))
    stds = tuple(0.0 if not private else noise_multiplier / math.sqrt(share) * sensitivity
                 for share, sensitivity in zip(shares, sensitivities))
    descriptions = (f"DP record count per {what} (sensitivity 1)",
                    f"DP per-{what} sums of the encoded features (L2 sensitivity sqrt(d) = {sensitivities[1]:.4g})",
                    f"DP per-{what} {'sums of squares' if covariance == 'diagonal' else 'sums of outer products'} "
                    f"(L2 sensitivity {sensitivities[2]:.4g})")
    if private:
        for name, share, description in zip(names, shares, descriptions):
            ledger.add(name, GaussianEvent(noise_multiplier / math.sqrt(share)), description)

    onehot = np.eye(num_groups)[groups]                               # (n, G)
    counts = onehot.sum(axis=0) + rng.normal(0.0, stds[0], num_groups) if private else onehot.sum(axis=0)
    sums = onehot.T @ X
    if covariance == "diagonal":
        second = onehot.T @ (X**2)                                    # (G, d)
    else:
        second = np.einsum("nk,ni,nj->kij", onehot, X, X)             # (G, d, d)
    if private:
        sums = sums + rng.normal(0.0, stds[1], sums.shape)
        noise = rng.normal(0.0, stds[2], second.shape)
        if covariance == "full":  # one noisy upper triangle, mirrored (post-processing)
            noise = np.triu(noise) + np.swapaxes(np.triu(noise, 1), -1, -2)
        second = second + noise
    means, covariances = [], []
    for g in range(num_groups):
        n_g = max(float(counts[g]), 1.0)
        mean = np.clip(sums[g] / n_g, -1.0, 1.0)
        if covariance == "diagonal":
            cov = np.clip(second[g] / n_g - mean**2, min_variance, 1.0)
        else:
            cov = second[g] / n_g - np.outer(mean, mean)
            values, vectors = np.linalg.eigh((cov + cov.T) / 2)
            cov = (vectors * np.clip(values, min_variance, 1.0)) @ vectors.T
        means.append(mean)
        covariances.append(cov)
    spent = ledger.epsilon(delta) if private else math.inf
    return _GroupMoments(counts, np.asarray(means), covariances, covariance, ledger if private else None, spent,
                         {"noise_multiplier": noise_multiplier, "noise_std": dict(zip(names, stds)),
                          "covariance": covariance, "shares": list(shares)})


def _draw(moments: _GroupMoments, group: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` samples ``(rows, d)`` of group ``group``'s Gaussian, clipped to the box."""
    mean, cov = moments.means[group], moments.covariances[group]
    if moments.covariance == "diagonal":
        draw = mean + np.sqrt(cov) * rng.standard_normal((rows, mean.size))
    else:
        draw = rng.multivariate_normal(mean, cov, size=rows, method="cholesky")
    return np.clip(draw, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------------
# Survival: the same alternatives for (features, time, event) tables of ``num_rows`` rows


def _survival(schema: Schema) -> None:
    if schema.task != "survival":
        raise DataError(f"schema {schema.name!r} is for {schema.task}; this baseline needs a survival schema.")


def _survival_encoded(frame: pd.DataFrame, schema: Schema):
    """Encoder, features ``(n, d)`` in ``[-1, 1]``, log-time scaled to ``[-1, 1]`` by the public bounds ``(n,)``,
    events ``(n,)`` 0/1, and the clean table."""
    clean = _quiet_clean(frame, schema)
    encoder = TableEncoder(schema)
    table = encoder.encode(clean)
    log_time = np.asarray(encoder.encode_time(np.asarray(table.time, np.float64)), np.float64)
    return encoder, np.asarray(table.X, np.float64), log_time, np.asarray(table.event, np.int64), clean


def _decode_survival(encoder: TableEncoder, schema: Schema, X: np.ndarray, time: np.ndarray,
                     event: np.ndarray) -> pd.DataFrame:
    table = encoder.decode(X, time=time, event=event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_table(table[list(schema.column_names)], schema, on_out_of_bounds="clip",
                              require_variation=False).reset_index(drop=True)


def event_split(num_rows: int, event_rate: float) -> int:
    """Events among ``num_rows`` synthetic rows at ``event_rate``: rounded, at least one of each status."""
    if num_rows < 2:
        return int(num_rows)
    return int(min(max(round(num_rows * float(event_rate)), 1), num_rows - 1))


def random_subset_survival(frame: pd.DataFrame, schema: Schema, num_rows: int, random_state: Any = None) -> BaselineResult:
    """``num_rows`` real records drawn uniformly without replacement (as :func:`~zodc.evaluate.survival_utility`'s
    reference). Not private."""
    _survival(schema)
    num_rows = _check_rows(num_rows)
    rng = _rng(random_state)
    clean = _quiet_clean(frame, schema)
    rows = np.sort(rng.choice(len(clean), size=min(num_rows, len(clean)), replace=False))
    return BaselineResult(clean.iloc[rows].reset_index(drop=True), None, math.inf, False, {"rows": int(rows.size)})


def kmeans_survival(frame: pd.DataFrame, schema: Schema, num_rows: int, random_state: Any = None) -> BaselineResult:
    """k-means centroids within each event status. Not private.

    The ``num_rows`` rows are split between events and censorings in the table's own event rate
    (:func:`event_split`); within a status, k-means runs on the encoded features with the scaled
    log-time as one more column; a centroid's features decode like a synthetic row and its time is
    the median time of its cluster's records. A status with at most its share of records
    contributes its records.
    """
    from sklearn.cluster import KMeans

    _survival(schema)
    num_rows = _check_rows(num_rows)
    seed = int(_rng(random_state).integers(2**31 - 1))
    encoder, X, log_time, event, clean = _survival_encoded(frame, schema)
    times = clean[schema.time.name].to_numpy(np.float64)
    num_events = event_split(num_rows, float(event.mean()))
    features, out_time, out_event = [], [], []
    for status, size in ((1, num_events), (0, num_rows - num_events)):
        members = np.flatnonzero(event == status)
        if members.size == 0 or size == 0:
            continue
        if members.size <= size:
            features.append(X[members])
            out_time.append(times[members])
        else:
            Z = np.column_stack([X[members], log_time[members]])
            fitted = KMeans(n_clusters=size, n_init=4, random_state=seed).fit(Z)
            features.append(fitted.cluster_centers_[:, :-1])
            out_time.append(np.array([np.median(times[members][fitted.labels_ == c]) for c in range(size)]))
        out_event.append(np.full(features[-1].shape[0], status))
    table = _decode_survival(encoder, schema, np.concatenate(features), np.concatenate(out_time), np.concatenate(out_event))
    return BaselineResult(table, None, math.inf, False, {"rows": int(len(table)), "events": int(np.sum(table[schema.event]))})


def dp_gaussian_survival(frame: pd.DataFrame, schema: Schema, num_rows: int, *, epsilon: float, delta: float = 1e-5,
                         covariance: str = "diagonal", shares: tuple[float, float, float] = (0.1, 0.45, 0.45),
                         min_variance: float = 1e-3, random_state: Any = None) -> BaselineResult:
    """DP Gaussian generator conditional on the event status, ``num_rows`` rows.

    :func:`dp_gaussian` with the event status as the class and the log-time (scaled to ``[-1, 1]``
    by the public time bounds) as one more column: per status, a DP count, DP sums and DP second
    moments of the ``d + 1`` encoded values (three Gaussian mechanisms jointly calibrated to
    ``(epsilon, delta)``, in a ledger). The events among the ``num_rows`` rows follow the public
    ``schema.event_rate`` when there is one, else the DP counts (post-processing); sampled
    log-times decode to times within the bounds.

    Args:
      frame: the private training table (schema columns, time and event included).
      schema: public survival schema.
      num_rows: rows to release.
      epsilon, delta: target budget (``epsilon = inf``: exact moments, no noise).
      covariance, shares, min_variance, random_state: as :func:`dp_gaussian`.

    Returns:
      :class:`BaselineResult` with the ledger (``epsilon <= target``).

    Raises:
      ConfigError: bad arguments. PrivacyBudgetError: target not attainable.
    """
    _survival(schema)
    num_rows = _check_rows(num_rows)
    epsilon, delta = _check_budget(epsilon, delta)
    shares = _check_gaussian_options(covariance, shares)
    rng = _rng(random_state)
    encoder, X, log_time, event, _ = _survival_encoded(frame, schema)
    Z = np.column_stack([X, log_time])
    moments = _dp_group_moments(Z, event, 2, epsilon, delta, covariance, shares, min_variance, rng,
                                ("event_counts", "event_sums", "event_second_moments"), "event status")
    if schema.event_rate is not None:
        rate, source = float(schema.event_rate), "public schema event_rate"
    else:
        clipped = np.clip(moments.counts, 1.0, None)
        rate, source = float(clipped[1] / clipped.sum()), "DP event counts"
    num_events = event_split(num_rows, rate)
    draws, events = [], []
    for status, size in ((1, num_events), (0, num_rows - num_events)):
        if size:
            draws.append(_draw(moments, status, size, rng))
            events.append(np.full(size, status))
    draws = np.concatenate(draws)
    times = np.asarray(encoder.decode_time(draws[:, -1]), np.float64)
    table = _decode_survival(encoder, schema, draws[:, :-1], times, np.concatenate(events))
    return BaselineResult(table, moments.ledger, moments.epsilon, True,
                          dict(moments.details, noisy_event_counts=[float(c) for c in moments.counts],
                               event_rate=rate, event_rate_source=source))


# ---------------------------------------------------------------------------------------------------
# MST on Private-PGM (mbi)


class _Attribute(NamedTuple):
    name: str
    size: int            # codes, the "missing" slot included
    kind: str            # "numeric", "log_numeric" (survival time) or "categorical"
    column: Any
    missing: bool = False  # the schema allows missing values: the last code is "missing"


def _bins(attribute: _Attribute) -> int:
    """Codes that are values (bins or levels): the size less the "missing" slot."""
    return attribute.size - int(attribute.missing)


def _attributes(schema: Schema, num_bins: int) -> list[_Attribute]:
    attributes = []
    for column in schema.columns:
        missing = bool(getattr(column, "missing", False))
        if isinstance(column, NumericColumn):
            size = num_bins
            if column.integer:  # never more bins than whole numbers in the bounds
                size = max(1, min(num_bins, math.floor(column.upper) - math.ceil(column.lower) + 1))
            attributes.append(_Attribute(column.name, size + int(missing), "numeric", column, missing))
        else:
            attributes.append(_Attribute(column.name, len(column.categories) + int(missing), "categorical", column,
                                         missing))
    if schema.time is not None:
        attributes.append(_Attribute(schema.time.name, num_bins, "log_numeric", schema.time))
        attributes.append(_Attribute(schema.event, 2, "categorical", CategoricalColumn(schema.event, (0, 1))))
    return attributes


def _edges(attribute: _Attribute) -> np.ndarray:
    column = attribute.column
    if attribute.kind == "log_numeric":
        return np.exp(np.linspace(math.log(column.lower), math.log(column.upper), _bins(attribute) + 1))
    return column.from_unit(np.linspace(0.0, 1.0, _bins(attribute) + 1))  # equal width in the encoded space


def _discretise(clean: pd.DataFrame, attributes: list[_Attribute]) -> dict[str, np.ndarray]:
    """Codes ``0 .. size - 1`` of each attribute. A missing value is the last code of a column whose schema
    allows missing values; elsewhere a missing number sits in the middle bin (where the encoder puts it)."""
    from zodc.data.validation import category_codes

    codes = {}
    for attribute in attributes:
        values = clean[attribute.name]
        if attribute.kind == "categorical":
            code = np.asarray(category_codes(values, attribute.column.categories), np.int64)
            if attribute.missing:
                code = np.where(code < 0, attribute.size - 1, code)
            elif (code < 0).any():
                raise DataError(f"column {attribute.name!r} holds values that are no level of the schema (and the "
                                "schema does not allow missing values): the marginal-based baselines need a level.")
        else:
            inner = _edges(attribute)[1:-1]
            numbers = values.to_numpy(np.float64)
            absent = np.isnan(numbers)
            middle = attribute.column.from_unit(0.5) if attribute.kind == "numeric" else inner[inner.size // 2]
            code = np.searchsorted(inner, np.where(absent, middle, numbers), side="right").astype(np.int64)
            if attribute.missing:
                code = np.where(absent, attribute.size - 1, code)
        codes[attribute.name] = code
    return codes


def _undiscretise(codes: dict[str, np.ndarray], attributes: list[_Attribute], rng: np.random.Generator) -> pd.DataFrame:
    """Bins → midpoints (geometric for log-time), rounded for integer columns; codes → levels; the
    "missing" code → a missing cell."""
    columns = {}
    for attribute in attributes:
        code = np.asarray(codes[attribute.name], np.int64)
        column = attribute.column
        absent = code >= _bins(attribute)  # only the "missing" slot lies beyond the values
        code = np.where(absent, 0, code)
        if attribute.kind == "categorical":
            values = np.asarray(list(column.categories), dtype=object)[code]
            if absent.any():
                values = np.where(absent, None, values)
            columns[attribute.name] = values
            continue
        edges = _edges(attribute)
        if attribute.kind == "log_numeric":
            values = np.sqrt(edges[code] * edges[code + 1])
        else:  # the bin's middle in the encoded space (arithmetic for linear columns)
            values = column.from_unit((code + 0.5) / _bins(attribute))
        if column.integer:
            values = np.clip(np.round(values), math.ceil(column.lower), math.floor(column.upper))
        columns[attribute.name] = np.where(absent, np.nan, values)
    return pd.DataFrame(columns)


def mst_event(noise_multiplier: float, num_selections: int) -> ComposedEvent:
    """MST's three parts for an overall noise multiplier ``z`` (total zCDP ``rho = 1 / (2 z^2)``).

    1-way and 2-way measurements: ``GaussianEvent(sqrt(3) z)`` each (``rho / 3``); the
    ``num_selections`` exponential mechanisms share ``rho / 3``: each is
    ``GaussianEvent(z sqrt(3 num_selections))`` (the Gaussian with the same zCDP curve).
    """
    parts = [GaussianEvent(math.sqrt(3.0) * noise_multiplier)]
    if num_selections > 0:
        parts.append(SelfComposedEvent(GaussianEvent(noise_multiplier * math.sqrt(3.0 * num_selections)), num_selections))
        parts.append(GaussianEvent(math.sqrt(3.0) * noise_multiplier))
    return ComposedEvent(tuple(parts))


@contextlib.contextmanager
def _global_numpy_seeded(rng: np.random.Generator):
    """Seeds numpy's *global* random state from ``rng`` inside the block, and restores it after.

    ``mbi``'s ``synthetic_data`` draws with ``np.random.choice`` / ``np.random.shuffle`` and takes
    no seed, so without this an MST table changed from run to run with the same ``random_state``
    (the utility benchmark's MST column then differed between two runs of the same cell). The
    caller's global state is left as it was.
    """
    saved = np.random.get_state()
    np.random.seed(int(rng.integers(2**32 - 1)))
    try:
        yield
    finally:
        np.random.set_state(saved)


def _exponential_mechanism(rng: np.random.Generator, scores: np.ndarray, epsilon: float, sensitivity: float) -> int:
    """Index drawn with probability ∝ exp(epsilon * score / (2 sensitivity)); argmax when epsilon is inf."""
    if math.isinf(epsilon):
        return int(np.argmax(scores))
    logits = epsilon / (2.0 * sensitivity) * (scores - scores.max())
    probabilities = np.exp(logits)
    return int(rng.choice(scores.size, p=probabilities / probabilities.sum()))


def _pgm_inputs(frame: pd.DataFrame, schema: Schema, rows_per_class, num_rows, num_bins: int, random_state):
    """What MST and AIM both start from: the checked table size, the generator, and the validated
    table discretised on public bins — the one-level columns apart (they carry nothing: left out of
    the model, their level put back), the others' codes, names and ``mbi.Domain``."""
    import mbi

    if not isinstance(num_bins, (int, np.integer)) or isinstance(num_bins, bool) or num_bins < 2:
        raise ConfigError(f"`num_bins` must be an integer >= 2. Got {num_bins!r}.")
    if schema.task == "classification":
        if rows_per_class is not None:
            rows_per_class = _check_rows(rows_per_class)
    elif num_rows is None:
        raise ConfigError("`num_rows` is required for a survival schema.")
    if rows_per_class is None and num_rows is None:
        raise ConfigError("give `rows_per_class` (classification) or `num_rows`.")
    rng, clean, attributes = _rng(random_state), _quiet_clean(frame, schema), _attributes(schema, int(num_bins))
    constant = [a for a in attributes if a.size == 1]
    modelled = [a for a in attributes if a.size > 1]
    names = [a.name for a in modelled]
    return (rows_per_class, rng, constant, modelled, _discretise(clean, modelled), names,
            mbi.Domain(names, [a.size for a in modelled]))


def mst(frame: pd.DataFrame, schema: Schema, rows_per_class: int | None = None, *, epsilon: float,
        delta: float = 1e-5, num_bins: int = 8, num_rows: int | None = None, estimation_iters: int = 1000,
        oversample: int = 20, random_state: Any = None) -> BaselineResult:
    """MST (McKenna, Sheldon and Miklau 2021, arXiv:2108.04978) on Private-PGM (``mbi``).

    Args:
      frame: the private training table (schema columns).
      schema: public schema (classification or survival).
      rows_per_class: classification: ``k`` rows per class, drawn from a larger sample of the
        model (``oversample * k * K`` rows; with replacement for a class the sample is short of).
      epsilon: target epsilon (``inf``: exact marginals, tree by argmax).
      delta: target delta.
      num_bins: equal-width bins of each numeric column's public bounds (log scale for survival
        time); integer columns get at most one bin per whole number.
      num_rows: survival (or classification without ``rows_per_class``): rows to sample.
      estimation_iters: Private-PGM mirror-descent iterations.
      oversample: see ``rows_per_class``.
      random_state: seed or ``np.random.Generator``.

    Returns:
      :class:`BaselineResult`: the decoded table, the ledger (``epsilon <= target``), and in
      ``details`` the noise multipliers and the selected tree's edges.
    """
    import mbi
    from networkx.utils import UnionFind

    epsilon, delta = _check_budget(epsilon, delta)
    rows_per_class, rng, constant, modelled, codes, names, domain = _pgm_inputs(
        frame, schema, rows_per_class, num_rows, num_bins, random_state)
    data = mbi.Dataset(codes, domain)
    num_selections = max(len(names) - 1, 0)
    private = math.isfinite(epsilon)

    ledger = Ledger()
    if private:
        noise_multiplier = calibrate_noise_multiplier(epsilon, delta, lambda z: mst_event(z, num_selections))
        sigma = math.sqrt(3.0) * noise_multiplier
        selection_epsilon = 2.0 / (noise_multiplier * math.sqrt(3.0 * num_selections)) if num_selections else math.inf
    else:
        noise_multiplier, sigma, selection_epsilon = 0.0, 0.0, math.inf

    def measure(cliques: list[tuple[str, ...]]) -> list:
        # Each record adds one count to every clique's marginal: scaling clique i by 1/sqrt(L)
        # gives joint L2 sensitivity 1, so the whole set is one Gaussian with noise std sigma.
        weight = 1.0 / math.sqrt(len(cliques))
        out = []
        for clique in cliques:
            exact = np.asarray(data.project(clique).datavector(), np.float64)
            noisy = exact + (rng.normal(0.0, sigma, exact.size) / weight if private else 0.0)
            out.append(mbi.LinearMeasurement(noisy, clique, stddev=(sigma / weight) if private else 1.0))
        return out

    one_way = measure([(name,) for name in names])
    if private:
        ledger.add("mst_one_way", GaussianEvent(sigma), f"{len(names)} one-way marginals, joint L2 sensitivity 1")

    edges: list[tuple[str, str]] = []
    if num_selections:
        # Weights: L1 distance between each exact 2-way marginal and the product of the noisy
        # 1-way marginals (the independence model MST starts from).
        total = max(float(np.mean([m.noisy_measurement.sum() for m in one_way])), 1.0)
        marginals = {m.clique[0]: np.clip(np.asarray(m.noisy_measurement), 0.0, None) for m in one_way}
        marginals = {k: (v / v.sum() if v.sum() > 0 else np.full(v.size, 1.0 / v.size)) for k, v in marginals.items()}
        weights = {}
        for a, b in itertools.combinations(names, 2):
            exact = np.asarray(data.project((a, b)).datavector(), np.float64)
            weights[(a, b)] = float(np.abs(exact - total * np.outer(marginals[a], marginals[b]).ravel()).sum())
        components = UnionFind(names)
        for _ in range(num_selections):
            candidates = [e for e in weights if components[e[0]] != components[e[1]]]
            scores = np.array([weights[e] for e in candidates])
            # Adding or removing a record moves each L1 weight by at most 1 (its own cell) plus
            # the change in the noisy-marginal model, which is data independent here: sensitivity 1.
            choice = candidates[_exponential_mechanism(rng, scores, selection_epsilon, 1.0)]
            edges.append(choice)
            components.union(*choice)
        if private:
            ledger.add("mst_selection", SelfComposedEvent(GaussianEvent(2.0 / selection_epsilon), num_selections),
                       f"{num_selections} exponential mechanisms (eps {selection_epsilon:.4g} each, "
                       f"{selection_epsilon**2 / 8:.4g}-zCDP, recorded as the Gaussian with the same RDP curve)")
    two_way = measure(edges) if edges else []
    if private and edges:
        ledger.add("mst_two_way", GaussianEvent(sigma), f"{len(edges)} two-way marginals of the tree, joint L2 sensitivity 1")

    model = mbi.estimation.MirrorDescent().estimate(domain, one_way + two_way, iters=int(estimation_iters))
    table = _release(model, schema, modelled, constant, rows_per_class, num_rows, oversample, rng)
    spent = ledger.epsilon(delta) if private else math.inf
    return BaselineResult(table, ledger if private else None, spent, True,
                          {"noise_multiplier": noise_multiplier, "marginal_noise_std": sigma,
                           "selection_epsilon": selection_epsilon, "num_bins": int(num_bins),
                           "tree": [list(e) for e in edges]})


def _release(model, schema: Schema, modelled: list[_Attribute], constant: list[_Attribute], rows_per_class: int | None,
             num_rows: int | None, oversample: int, rng: np.random.Generator, draw=None) -> pd.DataFrame:
    """Rows sampled from a fitted ``mbi`` model, decoded to the schema's columns (MST and AIM).

    Classification with ``rows_per_class``: ``oversample * k * K`` rows are sampled and ``k`` of
    each class drawn from them (with replacement for a class the sample is short of; a class with
    no sampled row is drawn from the model conditionally on the label). Otherwise ``num_rows``
    rows. ``draw(rows)`` returns the sampled codes per attribute; by default the model's own
    ``synthetic_data``, which samples with numpy's global state, seeded here from ``rng`` and restored.
    """
    if draw is None:
        def draw(rows: int) -> dict:
            with _global_numpy_seeded(rng):
                return {k: np.asarray(v) for k, v in model.synthetic_data(rows=int(rows)).to_dict().items()}
    if schema.task == "classification" and rows_per_class is not None:
        num_classes = schema.n_classes
        sample = draw(int(oversample) * rows_per_class * num_classes)
        target = sample[schema.target]
        picked = []
        for c in range(num_classes):
            members = np.flatnonzero(target == c)
            if members.size == 0:  # the model put (almost) no mass on this class: draw it conditionally
                sample = _conditional_sample(model, schema.target, c, rows_per_class, sample)
                members = np.flatnonzero(sample[schema.target] == c)
            picked.append(rng.choice(members, size=rows_per_class, replace=members.size < rows_per_class))
        rows = np.concatenate(picked)
        codes_out = {k: np.asarray(v)[rows] for k, v in sample.items()}
    else:
        codes_out = draw(int(num_rows))
    table = _undiscretise(codes_out, modelled, rng)
    for attribute in constant:
        table[attribute.name] = attribute.column.categories[0] if attribute.kind == "categorical" else attribute.column.lower
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_table(table[list(schema.column_names)], schema, on_out_of_bounds="clip",
                              require_variation=False).reset_index(drop=True)


def _conditional_sample(model, target: str, label: int, rows: int, sample: dict) -> dict:
    """Appends ``rows`` records with ``target = label``, other attributes from the model (rare fallback).

    Draws from the model's marginal of each other attribute jointly with the label where the
    model has that pair, else the attribute's marginal: post-processing of the fitted model.
    """
    rng = np.random.default_rng(label)
    out = {k: list(np.asarray(v)) for k, v in sample.items()}
    for name in sample:
        if name == target:
            values = np.full(rows, label)
        else:
            try:
                joint = np.asarray(model.project((target, name)).datavector(flatten=False), np.float64)
                p = np.clip(joint[label], 0, None)
            except Exception:  # noqa: BLE001 - fall back to the attribute's own marginal
                p = np.clip(np.asarray(model.project((name,)).datavector(), np.float64), 0, None)
            p = p / p.sum() if p.sum() > 0 else np.full(p.size, 1.0 / p.size)
            values = rng.choice(p.size, size=rows, p=p)
        out[name].extend(values.tolist())
    return {k: np.asarray(v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------------
# AIM on Private-PGM (mbi)


def aim_event(one_way_sigma: float, num_one_way: int, rounds: list[tuple[float, float]]) -> ComposedEvent:
    """AIM's whole release as one event: the ``num_one_way`` 1-way measurements at noise std
    ``one_way_sigma``, then per round ``(selection_epsilon, sigma)`` an exponential mechanism
    (``GaussianEvent(2 / selection_epsilon)``, the Gaussian with its ``eps^2 / 8``-zCDP curve, as in
    :func:`mst_event`) and a Gaussian measurement of one marginal (L2 sensitivity 1:
    ``GaussianEvent(sigma)``). A round with ``selection_epsilon = inf`` (nothing to choose from)
    has no selection part. The rounds' parameters are chosen adaptively (budget annealing); zCDP
    composes under such fully adaptive choices as long as their total stays within the budget
    (privacy filters, Whitehouse et al. 2022, arXiv:2210.01431), which :func:`aim` enforces.
    """
    parts: list = [SelfComposedEvent(GaussianEvent(float(one_way_sigma)), int(num_one_way))]
    for selection_epsilon, sigma in rounds:
        if math.isfinite(selection_epsilon):
            parts.append(GaussianEvent(2.0 / float(selection_epsilon)))
        parts.append(GaussianEvent(float(sigma)))
    return ComposedEvent(tuple(parts))


def _canonical(clique, index: dict[str, int]) -> tuple[str, ...]:
    return tuple(sorted(clique, key=index.__getitem__))


def _aim_candidates(names: list[str], targets: tuple[str, ...], target_triples: bool,
                    workload_weights: dict | None = None) -> tuple[list[tuple], dict[tuple, float]]:
    """AIM's workload and its candidates with their weights (McKenna et al. 2022, section 4).

    Workload ``W``: every 2-way marginal of the attributes; with ``target_triples``, also every
    3-way marginal of two attributes and the target (classification: the class; survival: time
    and event, i.e. ``(a, time, event)``). Each workload marginal has weight ``c_s = 1``. The
    candidates are the downward closure of ``W``; candidate ``r`` has weight
    ``w_r = sum_s c_s |r ∩ s|`` (how much of the workload it informs).
    """
    index = {name: i for i, name in enumerate(names)}
    workload = [_canonical(pair, index) for pair in itertools.combinations(names, 2)]
    if target_triples:
        others = [n for n in names if n not in targets]
        if len(targets) == 1:
            workload += [_canonical(pair + targets, index) for pair in itertools.combinations(others, 2)]
        else:
            workload += [_canonical((name,) + tuple(targets), index) for name in others]
    workload = list(dict.fromkeys(workload))
    weights = {s: 1.0 for s in workload}
    if workload_weights:
        weights.update({_canonical(s, index): float(w) for s, w in workload_weights.items()})
    closure = sorted({_canonical(sub, index) for s in workload for size in range(1, len(s) + 1)
                      for sub in itertools.combinations(s, size)}, key=lambda c: (len(c), [index[a] for a in c]))
    candidates = {r: sum(weights[s] * len(set(r) & set(s)) for s in workload) for r in closure}
    return workload, candidates


def _logsumexp(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if not axes:
        return values
    top = values.max(axis=axes, keepdims=True)
    return np.log(np.exp(values - top).sum(axis=axes)) + np.squeeze(top, axis=axes)


class _NumpyPGM:
    """A graphical model on measured cliques, estimated in numpy: AIM's per-round model.

    Private-PGM's estimator (McKenna, Sheldon and Miklau 2019, arXiv:1901.09136, Algorithm 1, as in
    ``mbi.estimation.MirrorDescent``: mirror descent on the potentials of the maximal measured
    cliques, L2 loss ``sum_m ||(mu_m - y_m) / sigma_m||^2 / 2``, step ``2 / (L total)`` with the
    same Armijo search) with junction-tree belief propagation in log space, in numpy. ``mbi``
    recompiles its JAX programs whenever the set of cliques changes — every AIM round, seconds
    each on two cores — while the models here are a few thousand cells; the released model is
    still estimated by ``mbi`` (:func:`aim`). Arrays are over attributes in the domain's order.
    """

    def __init__(self, domain, cliques: list[tuple[str, ...]]):
        import mbi
        from mbi.clique_utils import maximal_subset

        self.domain = domain
        self.index = {name: i for i, name in enumerate(domain.attributes)}
        self.sizes = dict(domain.config)
        self.potentials = [_canonical(c, self.index) for c in maximal_subset([tuple(c) for c in cliques])]
        tree, self.elimination_order = mbi.junction_tree.make_junction_tree(domain, self.potentials)
        self.cliques = [_canonical(c, self.index) for c in mbi.junction_tree.maximal_cliques(tree)]
        relabel = {node: _canonical(node, self.index) for node in tree.nodes}
        self.order = [(relabel[a], relabel[b]) for a, b in mbi.junction_tree.message_passing_order(tree)]
        # Neighbours in a fixed order, so that sums of messages do not depend on set iteration order.
        self.neighbours = {relabel[c]: sorted(relabel[n] for n in tree.neighbors(c)) for c in tree.nodes}
        self.home = {p: next(c for c in self.cliques if set(p) <= set(c)) for p in self.potentials}

    def shape(self, clique) -> tuple[int, ...]:
        return tuple(self.sizes[a] for a in clique)

    @staticmethod
    def expand(values: np.ndarray, attrs: tuple, target: tuple) -> np.ndarray:
        """``values`` over ``attrs`` (a subset of ``target``, same order) broadcastable over ``target``."""
        shape = [values.shape[attrs.index(a)] if a in attrs else 1 for a in target]
        return values.reshape(shape)

    @staticmethod
    def project(values: np.ndarray, attrs: tuple, onto: tuple) -> np.ndarray:
        return values.sum(axis=tuple(i for i, a in enumerate(attrs) if a not in onto))

    def log_tables(self, theta: dict) -> dict:
        tables = {c: np.zeros(self.shape(c)) for c in self.cliques}
        for p, values in theta.items():
            home = self.home[p]
            tables[home] = tables[home] + self.expand(values, p, home)
        return tables

    def beliefs(self, theta: dict, total: float) -> dict:
        """Calibrated clique marginals (counts summing to ``total``) of the model with log-potentials ``theta``."""
        tables = self.log_tables(theta)
        messages: dict = {}
        for i, j in self.order:  # a message leaves i once every other neighbour's has arrived
            incoming = tables[i]
            for k in self.neighbours[i]:
                if k != j:
                    incoming = incoming + self.expand(messages[(k, i)], tuple(a for a in i if a in k), i)
            messages[(i, j)] = _logsumexp(incoming, tuple(n for n, a in enumerate(i) if a not in j))
        out = {}
        for c in self.cliques:
            belief = tables[c]
            for k in self.neighbours[c]:
                belief = belief + self.expand(messages[(k, c)], tuple(a for a in c if a in k), c)
            belief = np.exp(belief - _logsumexp(belief, tuple(range(belief.ndim))))
            out[c] = belief * (total / belief.sum())
        return out

    def marginal(self, beliefs: dict, theta: dict, clique: tuple, total: float) -> np.ndarray:
        """The model's marginal (counts) on ``clique``: a projection of a clique belief when one holds it,
        else variable elimination over the log-potentials."""
        for c in self.cliques:
            if set(clique) <= set(c):
                return self.project(beliefs[c], c, clique)
        factors = [(c, t) for c, t in self.log_tables(theta).items()]
        query = set(clique)
        while True:
            hidden = {a for c, _ in factors for a in c} - query
            if not hidden:
                break

            def cost(a):
                return math.prod(self.sizes[b] for b in set().union(*(set(c) for c, _ in factors if a in c)))
            variable = min(sorted(hidden, key=self.index.__getitem__), key=cost)
            joined = [(c, t) for c, t in factors if variable in c]
            attrs = _canonical(set().union(*(set(c) for c, _ in joined)), self.index)
            table = sum(self.expand(t, c, attrs) for c, t in joined)
            table = np.broadcast_to(table, self.shape(attrs))
            factors = [(c, t) for c, t in factors if variable not in c]
            factors.append((tuple(a for a in attrs if a != variable), _logsumexp(table, (attrs.index(variable),))))
        table = np.zeros(self.shape(clique))
        for c, t in factors:
            table = table + self.expand(t, c, clique)
        table = np.exp(table - table.max())
        return table * (total / table.sum())

    def sample(self, theta: dict, total: float, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``rows`` records: ``mbi``'s ``synthetic_data`` (randomised rounding: the first attribute's
        counts rounded, each next one drawn within every group of equal earlier values by stratified
        uniforms over its conditional CDF), in the reverse elimination order, with the parents in the
        domain's order and ``rng`` for every draw — reproducible from the seed alone (``mbi`` orders
        parents by set iteration, which changes with ``PYTHONHASHSEED``, i.e. from process to process).
        """
        beliefs = self.beliefs(theta, total)
        data: dict[str, np.ndarray] = {}
        used: set = set()
        for column in reversed(list(self.elimination_order)):
            parents = _canonical({a for c in self.cliques if column in c for a in c} & used, self.index)
            used.add(column)
            size = self.sizes[column]
            if not parents:
                counts = self.marginal(beliefs, theta, (column,), total)
                counts = counts * (rows / counts.sum())
                whole = np.floor(counts).astype(np.int64)
                extra = rows - int(whole.sum())
                if extra > 0:
                    frac = counts - whole
                    whole[rng.choice(size, extra, replace=False, p=frac / frac.sum())] += 1
                values = np.repeat(np.arange(size), whole)
                rng.shuffle(values)
                data[column] = values
                continue
            attrs = _canonical(parents + (column,), self.index)
            joint = np.moveaxis(self.marginal(beliefs, theta, attrs, total), attrs.index(column), -1)
            totals = joint.sum(axis=-1, keepdims=True)
            cdf = np.cumsum(np.divide(joint, totals, out=np.zeros_like(joint), where=totals != 0), axis=-1)
            current = np.stack([data[a] for a in parents], axis=-1)
            uniques, inverse, counts = np.unique(current, axis=0, return_inverse=True, return_counts=True)
            inverse = inverse.ravel()
            order = np.argsort(inverse, kind="stable")
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            for group, start in enumerate(starts):
                rng.shuffle(order[start:start + counts[group]])
            ranks = np.empty(rows, dtype=np.int64)
            ranks[order] = np.arange(rows) - starts[inverse[order]]
            uniform = (ranks + rng.random(rows)) / counts[inverse]
            group_cdf = cdf[tuple(uniques.T)][inverse]                  # (rows, size)
            data[column] = np.minimum((group_cdf <= uniform[:, None]).sum(axis=1), size - 1)
        return {name: data[name] for name in self.domain.attributes}

    def fit(self, measurements: list[tuple[tuple, np.ndarray, float]], theta: dict | None, total: float,
            iters: int) -> dict:
        """Mirror descent from ``theta`` (potentials of earlier rounds carried into the cliques holding them)."""
        start = {p: np.zeros(self.shape(p)) for p in self.potentials}
        for p, values in (theta or {}).items():
            home = next((q for q in self.potentials if set(p) <= set(q)), None)
            if home is not None:
                start[home] = start[home] + self.expand(values, p, home)
        route = [(next(q for q in self.potentials if set(c) <= set(q)), c, y.reshape(self.shape(c)), s)
                 for c, y, s in measurements]
        blocks: dict = {}
        for home, c, _, s in route:
            blocks[home] = blocks.get(home, 0.0) + math.prod(self.shape(home)) / math.prod(self.shape(c)) / s**2
        alpha = 2.0 / (max(blocks.values()) * total)

        def evaluate(theta):
            beliefs = self.beliefs(theta, total)
            mu = {p: self.project(beliefs[self.home[p]], self.home[p], p) for p in self.potentials}
            loss, grad = 0.0, {p: np.zeros(self.shape(p)) for p in self.potentials}
            for home, c, y, s in route:
                diff = self.project(mu[home], home, c) - y
                loss += 0.5 * float(np.sum(diff**2)) / s**2
                grad[home] = grad[home] + self.expand(diff / s**2, c, home)
            return mu, loss, grad

        theta = start
        mu, loss, grad = evaluate(theta)
        for _ in range(int(iters)):
            candidate = {p: theta[p] - alpha * grad[p] for p in theta}
            mu2, loss2, grad2 = evaluate(candidate)
            if loss - loss2 >= 0.5 * alpha * sum(float(np.sum(grad[p] * (mu[p] - mu2[p]))) for p in theta):
                theta, mu, loss, grad = candidate, mu2, loss2, grad2
                alpha *= 1.01
            else:
                alpha *= 0.5
        return theta


def _model_megabytes(domain, cliques: list[tuple[str, ...]]) -> float:
    """``mbi.junction_tree.hypothetical_model_size`` (MB of float64 cells in the junction tree's maximal
    cliques) without building the tree: the same greedy elimination order (the attribute whose
    cliques' union is smallest, first in domain order among equals; a tree's edges when the cliques
    form a tree), whose elimination cliques' maximal members are the triangulated graph's maximal
    cliques. Several times faster; AIM asks it for every candidate in every round."""
    sizes = domain.config
    edges = {frozenset(pair) for c in cliques for pair in itertools.combinations(set(c), 2)}
    if len(edges) == len(sizes) - 1 > 0:  # a tree (if connected): mbi eliminates its leaves, no fill-in
        parent = {a: a for a in sizes}

        def root(a):
            while parent[a] != a:
                a = parent[a]
            return a
        for a, b in (tuple(e) for e in edges):
            parent[root(a)] = root(b)
        if len({root(a) for a in sizes}) == 1:
            return sum(math.prod(sizes[b] for b in e) for e in edges) * 8 / 2**20
    remaining = [frozenset(c) for c in cliques]
    unmarked = list(domain.attributes)
    eliminated = []
    while unmarked:
        best, best_cost, best_union = None, None, None
        for a in unmarked:
            union = frozenset().union(*(c for c in remaining if a in c)) | {a}
            cost = math.prod(sizes[b] for b in union) if union else 1
            if best_cost is None or cost < best_cost:
                best, best_cost, best_union = a, cost, union
        unmarked.remove(best)
        eliminated.append(best_union)
        remaining = [c for c in remaining if best not in c] + [best_union - {best}]
    maximal = [c for c in set(eliminated) if not any(c < other for other in eliminated)]
    return sum(math.prod(sizes[b] for b in c) for c in maximal) * 8 / 2**20


def _estimated_total(measurements: list[tuple[tuple, np.ndarray, float]]) -> float:
    """Minimum-variance unbiased estimate of the record count from the noisy marginals (as ``mbi``)."""
    estimates = np.array([float(np.sum(y)) for _, y, _ in measurements])
    variances = np.array([s**2 * y.size for _, y, s in measurements])
    if np.all(variances == 0):
        return max(1.0, float(estimates.mean()))
    variances = np.maximum(variances, 1e-12)
    return max(1.0, float(np.average(estimates, weights=1.0 / variances)))


def aim(frame: pd.DataFrame, schema: Schema, rows_per_class: int | None = None, *, epsilon: float,
        delta: float = 1e-5, num_bins: int = 8, num_rows: int | None = None, rounds: int | None = None,
        max_rounds: int = 24, max_model_size: float = 1.0, target_triples: bool = True,
        round_iters: int = 100, estimation_iters: int = 1000, oversample: int = 20,
        random_state: Any = None) -> BaselineResult:
    """AIM (McKenna, Mullins, Sheldon and Miklau 2022, arXiv:2201.12677) on Private-PGM (``mbi``).

    The data are discretised as in :func:`mst` (``num_bins`` equal-width bins of the public bounds,
    log-scale survival time, a "missing" code where the schema allows missing values). The
    algorithm is the paper's (Algorithm 2), in zCDP with total budget ``rho``:

    - workload: every 2-way marginal, with ``target_triples`` also every 3-way marginal with the
      target (``(a, b, class)``; survival ``(a, time, event)``); candidates: its downward closure,
      weighted by their overlap with the workload (:func:`_aim_candidates`);
    - initialisation: ``T = rounds`` (default ``16 d``, ``d`` attributes),
      ``sigma = sqrt(T / (2 * 0.9 rho))``, selection ``eps = sqrt(8 * 0.1 rho / T)``; every 1-way
      marginal measured with Gaussian noise ``sigma``;
    - each round: the candidates whose addition keeps the model (junction tree) within
      ``max_model_size * rho_used / rho`` MB, or that the model already holds, compete in an
      exponential mechanism with quality ``w_r (||M_r(D) - M_r(model)||_1 - sqrt(2 / pi) sigma n_r)``
      (``n_r`` cells; the second term is the L1 error the noise itself would bring, so a large
      marginal must be worse approximated to be chosen) and sensitivity ``max w_r``; the chosen
      marginal is measured with Gaussian noise ``sigma`` and the model re-estimated;
    - budget annealing: when the re-estimated marginal moved by less than
      ``sqrt(2 / pi) sigma n_r`` (L1), ``sigma`` halves and ``eps`` doubles; when less than two
      rounds' budget is left, the last round spends exactly what remains.

    Cheap enough for a 2-core machine (documented departures from the reference code): at most
    ``max_rounds`` rounds — the round that reaches the cap spends the rest of the budget; the
    per-round models are fitted with ``round_iters`` mirror-descent steps of
    :class:`_NumpyPGM` (the same estimator as ``mbi``'s, without JAX recompilation), and only the
    released model is estimated by ``mbi`` (``estimation_iters`` steps, warm-started from the last
    round's potentials); its records are drawn by :meth:`_NumpyPGM.sample` (``mbi``'s randomised
    rounding, reproducible from ``random_state`` in every process); ``max_model_size`` defaults
    to 1 MB (the paper's 80 MB is for large domains; here the binned domains are a few thousand
    cells per marginal).

    Accounting: the budget ``rho`` is that of ``GaussianEvent(z)`` with ``z`` calibrated to
    ``(epsilon, delta)`` by zodc's RDP accountant; the 1-way measurements, each selection (an
    ``eps``-exponential mechanism is ``eps^2 / 8``-zCDP, recorded as ``GaussianEvent(2 / eps)``, as in
    MST) and each measurement are recorded in the ledger; their zCDP costs sum to at most ``rho``,
    so the composed RDP curve lies below ``GaussianEvent(z)``'s and the ledger's epsilon below the
    target. :func:`aim_event` gives the same composition as one event.

    Args:
      frame: the private training table (schema columns).
      schema: public schema (classification or survival).
      rows_per_class: classification: ``k`` rows per class (``oversample * k * K`` rows sampled, ``k``
        of each class taken, as :func:`mst`).
      epsilon: target epsilon (``inf``: exact measurements, selection by argmax, ``max_rounds`` rounds).
      delta: target delta.
      num_bins: bins of each numeric column (see :func:`mst`).
      num_rows: survival (or classification without ``rows_per_class``): rows to sample.
      rounds: ``T`` of the budget initialisation (default ``16 d``).
      max_rounds: cap on the selection rounds (the last spends what is left).
      max_model_size: junction-tree size limit in MB at the end of the budget.
      target_triples: add the 3-way marginals with the target to the workload.
      round_iters: mirror-descent steps per round (warm-started).
      estimation_iters: ``mbi`` mirror-descent steps of the released model.
      oversample: see ``rows_per_class``.
      random_state: seed or ``np.random.Generator``.

    Returns:
      :class:`BaselineResult`: the decoded table, the ledger (``epsilon <= target``), and in
      ``details`` the budget ``rho``, the noise of each round, the measured cliques and the rounds.

    Raises:
      ConfigError: bad arguments (named). PrivacyBudgetError: target not attainable.
    """
    import mbi

    epsilon, delta = _check_budget(epsilon, delta)
    for name, value in (("max_rounds", max_rounds), ("round_iters", round_iters),
                        ("estimation_iters", estimation_iters), ("oversample", oversample)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"`{name}` must be an integer >= 1. Got {value!r}.")
    if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1):
        raise ConfigError(f"`rounds` must be an integer >= 1 or None. Got {rounds!r}.")
    if not isinstance(max_model_size, (int, float)) or isinstance(max_model_size, bool) or not max_model_size > 0:
        raise ConfigError(f"`max_model_size` must be a number > 0 (MB). Got {max_model_size!r}.")
    rows_per_class, rng, constant, modelled, codes, names, domain = _pgm_inputs(
        frame, schema, rows_per_class, num_rows, num_bins, random_state)
    index = {name: i for i, name in enumerate(names)}
    targets = tuple(t for t in ((schema.target,) if schema.task == "classification"
                                else (schema.time.name, schema.event)) if t in index)
    _, candidates = _aim_candidates(names, targets, target_triples and bool(targets))

    def answer(clique: tuple) -> np.ndarray:
        shape = tuple(domain.config[a] for a in clique)
        cells = np.ravel_multi_index(tuple(codes[a] for a in clique), shape)
        return np.bincount(cells, minlength=math.prod(shape)).astype(np.float64)

    answers = {r: answer(r) for r in list(candidates) + [(name,) for name in names]}
    private = math.isfinite(epsilon)
    d = len(names)
    T = int(rounds) if rounds is not None else 16 * d
    if T < d:  # the 1-way marginals alone take 0.9 d / T of the budget
        raise ConfigError(f"`rounds` must be at least the number of modelled attributes ({d}). Got {rounds}.")
    if private:
        noise_multiplier = calibrate_noise_multiplier(epsilon, delta, lambda z: GaussianEvent(z))
        rho = (1.0 - 1e-9) / (2.0 * noise_multiplier**2)  # a hair below: round-off never tips the sum over
        sigma = math.sqrt(T / (2.0 * 0.9 * rho))
        selection_epsilon = math.sqrt(8.0 * 0.1 * rho / T)
    else:
        noise_multiplier, rho, sigma, selection_epsilon = 0.0, math.inf, 0.0, math.inf

    def measure(clique: tuple, std: float) -> tuple:
        exact = answers[clique]
        noisy = exact + rng.normal(0.0, std, exact.size) if private else exact.copy()
        return (clique, noisy, std if private else 1.0)

    one_way_sigma = sigma
    measurements = [measure((name,), sigma) for name in names]
    rho_used = d * 0.5 / sigma**2 if private else 0.0
    history: list[dict] = []
    event_rounds: list[tuple[float, float]] = []
    model = _NumpyPGM(domain, [m[0] for m in measurements])
    total = _estimated_total(measurements)
    theta = model.fit(measurements, None, total, round_iters)
    for t in range(1, int(max_rounds) + 1 if candidates else 1):  # one attribute: its 1-way marginal only
        last = t == int(max_rounds)
        if private:
            if last or rho - rho_used < 2.0 * (0.5 / sigma**2 + selection_epsilon**2 / 8.0):
                remaining = rho - rho_used
                sigma = math.sqrt(1.0 / (2.0 * 0.9 * remaining))
                selection_epsilon = math.sqrt(8.0 * 0.1 * remaining)
                last = True
            rho_used += selection_epsilon**2 / 8.0 + 0.5 / sigma**2
            size_limit = max_model_size * rho_used / rho
        else:
            size_limit = max_model_size * t / int(max_rounds)
        held = {sub for c in model.potentials for size in range(1, len(c) + 1) for sub in itertools.combinations(c, size)}
        pool = {}
        for r, weight in candidates.items():
            if r in held or _model_megabytes(domain, model.potentials + [r]) <= size_limit:
                pool[r] = weight
        if not private:  # exact measurements: a measured marginal is already fitted
            measured = {m[0] for m in measurements}
            pool = {r: w for r, w in pool.items() if r not in measured} or pool
        beliefs = model.beliefs(theta, total)
        keys = list(pool)
        estimates = {r: model.marginal(beliefs, theta, r, total) for r in keys}
        bias = math.sqrt(2.0 / math.pi) * sigma
        scores = np.array([pool[r] * (np.abs(answers[r] - estimates[r].ravel()).sum() - bias * answers[r].size)
                           for r in keys])
        chosen = keys[_exponential_mechanism(rng, scores, selection_epsilon, max(pool.values()))]
        measurements.append(measure(chosen, sigma))
        before = estimates[chosen].ravel()
        model = _NumpyPGM(domain, [m[0] for m in measurements])
        total = _estimated_total(measurements)
        theta = model.fit(measurements, theta, total, round_iters)
        after = model.marginal(model.beliefs(theta, total), theta, chosen, total).ravel()
        moved = float(np.abs(after - before).sum())
        history.append({"round": t, "clique": list(chosen), "sigma": sigma, "selection_epsilon": selection_epsilon,
                        "candidates": len(keys), "moved_l1": round(moved, 3)})
        if private:
            event_rounds.append((selection_epsilon, sigma))
        if last:
            break
        if private and moved <= bias * answers[chosen].size:  # budget annealing
            sigma /= 2.0
            selection_epsilon *= 2.0
            history[-1]["annealed"] = True

    ledger = Ledger()
    if private:
        ledger.add("aim_one_way", SelfComposedEvent(GaussianEvent(one_way_sigma), d),
                   f"{d} one-way marginals, noise std {one_way_sigma:.4g} each (sensitivity 1)")
    if private and event_rounds:
        ledger.add("aim_selection", ComposedEvent(tuple(GaussianEvent(2.0 / e) for e, _ in event_rounds)),
                   f"{len(event_rounds)} exponential mechanisms (eps_t^2/8-zCDP each, recorded as the Gaussian with "
                   "the same RDP curve)")
        ledger.add("aim_measurement", ComposedEvent(tuple(GaussianEvent(s) for _, s in event_rounds)),
                   f"{len(event_rounds)} selected marginals, Gaussian noise std sigma_t (sensitivity 1)")
    warm = mbi.CliqueVector(domain, model.potentials,
                            {p: mbi.Factor(domain.project(p), np.asarray(theta[p])) for p in model.potentials})
    fitted = mbi.estimation.MirrorDescent().estimate(
        domain, [mbi.LinearMeasurement(y, c, stddev=s) for c, y, s in measurements], iters=int(estimation_iters),
        warm_start=warm)
    # Sampling from mbi's estimate, in numpy (seeded, and without recompiling JAX for this structure).
    final = {}
    for clique in fitted.potentials.cliques:
        factor = fitted.potentials.tables[clique]
        attrs = tuple(factor.domain.attributes)
        canonical = _canonical(attrs, index)
        final[canonical] = np.transpose(np.asarray(factor.values, np.float64), [attrs.index(a) for a in canonical])
    sampler = _NumpyPGM(domain, list(final))
    fitted_total = float(fitted.total)
    table = _release(fitted, schema, modelled, constant, rows_per_class, num_rows, oversample, rng,
                     draw=lambda rows: sampler.sample(final, fitted_total, rows, rng))
    spent = ledger.epsilon(delta) if private else math.inf
    return BaselineResult(table, ledger if private else None, spent, True,
                          {"noise_multiplier": noise_multiplier, "rho": rho if private else "inf",
                           "rho_used": rho_used if private else "inf", "initial_rounds": T,
                           "one_way_noise_std": one_way_sigma, "num_bins": int(num_bins),
                           "rounds": len(history), "annealed": sum(1 for h in history if h.get("annealed")),
                           "workload": "2-way" + (" + 3-way with the target" if target_triples and targets else ""),
                           "candidates": len(candidates), "cliques": [h["clique"] for h in history],
                           "history": history})
