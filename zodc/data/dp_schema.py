"""Estimating a schema with differential privacy when the user has none.

What is treated as public here, and what is not:

* **Public structure**: the column *names*, which column is the target / time / event, and each
  column's pandas dtype *kind* (integer, float, or anything else = categorical). These describe the
  form the data holder chose for the table, not its records. (A column whose dtype kind depends on
  the data, e.g. an integer column that became float because a value is missing, is the data
  holder's concern: fix the dtypes before calling.)
* **Private**: everything about the values: bounds, which levels occur, how often.

The one mechanism is a *joint histogram*: every record adds exactly one count to one histogram per
used column (``c`` columns in all). Numeric columns use public log-scale bins (signed powers of two,
as in Google's differential-privacy library ``ApproxBounds``); categorical columns (and the target)
use one bin per *observed* level; the event column uses the public bins {0, 1}. Adding or removing
one record changes ``c`` counts by 1 each, so the L2 sensitivity of the joint count vector is
``sqrt(c)``. Gaussian noise of std ``noise_multiplier * sqrt(c)`` is added to every count: a
Gaussian mechanism with sensitivity ``C = sqrt(c)`` and noise ``sigma * C``, which is exactly
``GaussianEvent(noise_multiplier)`` (see :class:`zodc.privacy.events.GaussianEvent`).

Bounds, levels, class proportions and event rate are all post-processing of that one noisy
vector, except for one thing: the *candidate set* of categorical levels is the observed one, which
is not public. A level held by a single record exists in one neighbouring table and not the other;
it is released only if its noisy count passes a threshold ``tau``, chosen so that this happens with
probability at most ``threshold_delta / n_categorical`` per column, hence at most
``threshold_delta`` for the whole record. That failure probability is returned as an
``AdditiveDeltaEvent(threshold_delta)`` for the ledger.

All noise is the exact rounded Gaussian of :mod:`zodc.privacy.noise`, drawn from the caller's
generator (a JAX key is accepted too, for tests), one stream for the whole mechanism.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from zodc.errors import ConfigError, DataError
from zodc.privacy.events import AdditiveDeltaEvent, GaussianEvent
from zodc.privacy.noise import as_generator, rounded_gaussian
from zodc.data.schema import CategoricalColumn, NumericColumn, Schema
from zodc.data.validation import check_raw_table, column_kind

#: Log-scale bins: magnitudes 2**k for k in [MIN_EXPONENT, MAX_EXPONENT + 1].
MIN_EXPONENT = -10
MAX_EXPONENT = 30
#: Smallest class proportion / event rate an estimate is clipped to (then renormalised).
MIN_PROPORTION = 0.01
#: Probability that an empty numeric bin passes the threshold, per column (all bins together).
EMPTY_BIN_PROBABILITY = 1e-3


def _bin_edges() -> np.ndarray:
    """Public edges: -2^31, …, -2^-10, 0, 2^-10, …, 2^31 (length 2 * 42 + 1)."""
    magnitudes = 2.0 ** np.arange(MIN_EXPONENT, MAX_EXPONENT + 2)
    return np.concatenate([-magnitudes[::-1], [0.0], magnitudes])


BIN_EDGES = _bin_edges()
N_BINS = len(BIN_EDGES) - 1


def bin_index(values: np.ndarray) -> np.ndarray:
    """Public log-scale bin of each value: bin ``j`` is ``[BIN_EDGES[j], BIN_EDGES[j+1])``.

    Values below ``-2^31`` or at/above ``2^31`` go to the outermost bins (so the estimated bounds
    of such a column clip them).

    Returns:
        int64 ``(n,)`` in ``[0, N_BINS)``.
    """
    return np.clip(np.searchsorted(BIN_EDGES, np.asarray(values, dtype=np.float64), side="right") - 1, 0, N_BINS - 1)


def _check_noise(noise_multiplier: Any) -> float:
    if isinstance(noise_multiplier, bool) or not isinstance(noise_multiplier, (int, float)) or not (
        math.isfinite(noise_multiplier) and noise_multiplier > 0
    ):
        raise ConfigError(f"`noise_multiplier` must be a finite number > 0. Got {noise_multiplier!r}.")
    return float(noise_multiplier)


def _noise(rng: np.random.Generator, size: int, std: float) -> np.ndarray:
    """Integer noise ``round(N(0, std^2))`` for integer counts: ``count + round(Y) = round(count + Y)``
    is post-processing of the real-valued Gaussian mechanism (:mod:`zodc.privacy.noise`)."""
    return rounded_gaussian(rng, std, (size,)).astype(np.float64)


def _proportions(noisy_counts: np.ndarray) -> np.ndarray:
    counts = np.maximum(noisy_counts, 0.0)
    total = counts.sum()
    p = counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
    p = np.maximum(p, MIN_PROPORTION)
    return p / p.sum()


def categorical_threshold(std: float, delta_per_column: float) -> float:
    """Threshold ``tau`` with ``P(1 + N(0, std^2) > tau) = delta_per_column``.

    A level held by one record (count 1) is released with probability at most
    ``delta_per_column``.
    """
    return 1.0 + std * float(norm.isf(delta_per_column))


def _numeric_bounds(noisy: np.ndarray, threshold: float, name: str, integer: bool,
                    positive: bool) -> tuple:
    passed = np.flatnonzero(noisy > threshold)
    if len(passed) == 0:
        raise DataError(
            f"column '{name}': no histogram bin passed the DP threshold ({threshold:.1f}); the table is too "
            "small for this noise level. Give a public schema, or spend more budget (smaller noise_multiplier)."
        )
    lower, upper = float(BIN_EDGES[passed[0]]), float(BIN_EDGES[passed[-1] + 1])
    if positive and lower <= 0:
        lower = 2.0 ** MIN_EXPONENT
    if integer:
        lower, upper = float(math.floor(lower)), float(math.ceil(upper))
        if positive and lower <= 0:
            lower = 1.0
        if upper <= lower:
            upper = lower + 1.0
    return lower, upper


def _sorted_levels(levels: Sequence[Any]) -> list:
    try:
        return sorted(levels)
    except TypeError:
        return sorted(levels, key=lambda v: (type(v).__name__, str(v)))


def _python_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def estimate_schema(key: Any, frame: pd.DataFrame, **kwargs) -> tuple:
    """:func:`estimate_schema_and_count` without the count: ``(schema, events)``."""
    schema, events, _ = estimate_schema_and_count(key, frame, **kwargs)
    return schema, events


def estimate_schema_and_count(
    key: Any,
    frame: pd.DataFrame,
    *,
    target: Optional[str] = None,
    time: Optional[str] = None,
    event: Optional[str] = None,
    noise_multiplier: float,
    threshold_delta: float,
    name: str = "estimated",
    kinds: Optional[dict] = None,
) -> tuple:
    """Estimate a schema (bounds, levels, class proportions / event rate) with DP.

    Numeric columns: a count per public log-scale bin (signed powers of two, ``2^-10`` … ``2^31``,
    plus the bins ``(-2^-10, 0)`` and ``[0, 2^-10)``); the bounds are the lower edge of the lowest
    and the upper edge of the highest bin whose noisy count exceeds ``std * z`` (``z`` such that
    an empty bin passes with probability ``EMPTY_BIN_PROBABILITY`` per column), rounded outward to
    whole numbers for integer columns. The time column is the same with its lower bound forced > 0.
    Categorical columns and the target: a count per observed level, levels released when their
    noisy count exceeds :func:`categorical_threshold` (``threshold_delta / n_categorical`` per
    column). Class proportions and event rate: the same noisy counts, clipped to at least
    ``MIN_PROPORTION`` and renormalised.

    Could this leak? Only what the two returned events account for: the joint count vector (one
    Gaussian mechanism of sensitivity ``sqrt(c)``, std ``noise_multiplier * sqrt(c)``, i.e.
    ``GaussianEvent(noise_multiplier)``) and the release of a level seen in only one neighbour
    (probability ≤ ``threshold_delta``, ``AdditiveDeltaEvent(threshold_delta)``). Everything
    returned is post-processing of the noisy counts, the record count included. Column names and
    kinds are public structure: a column's kind is what ``kinds`` declares, else its dtype — the
    caller's declaration (the CLI reads CSV columns as declared, never guessing a kind from the
    values, so no record can change a kind). The input checks
    (:func:`~zodc.data.validation.check_raw_table`) refuse only malformed input (missing values,
    events other than 0/1); every refusal below is a decision on the noisy counts (accounted).
    A categorical feature none of whose levels passes the threshold is left out of the schema (a
    decision on noisy counts), not refused.

    Args:
        key: the mechanism's generator (:func:`zodc.privacy.noise.secret_generator`) or a JAX key.
        frame: The private table, shape ``(n, d)``; all columns are used.
        target: Class column (classification).
        time: Survival time column.
        event: 0/1 event column (survival).
        noise_multiplier: ``sigma`` > 0 of the Gaussian mechanism (std per count is
            ``sigma * sqrt(c)``).
        threshold_delta: Total probability in (0, 1) of releasing a level held by one record.
        name: Name of the estimated schema.
        kinds: ``{column: "integer" | "numeric" | "categorical"}`` declared by the data owner;
            columns not named take their dtype's kind (:func:`~zodc.data.validation.column_kind`).

    Returns:
        ``(schema, events, record_count)``: the estimated :class:`Schema`,
        ``[GaussianEvent(noise_multiplier), AdditiveDeltaEvent(threshold_delta)]``, and a DP count of
        the records (the noisy counts of the released classes, or of the two event bins; >= 1).

    Raises:
        ConfigError: Bad ``noise_multiplier`` or ``threshold_delta``.
        DataError: Any problem :func:`check_raw_table` finds; a column with no bin or level above
            the threshold; fewer than 2 target classes released.
    """
    sigma = _check_noise(noise_multiplier)
    if isinstance(threshold_delta, bool) or not isinstance(threshold_delta, (int, float)) or not (
        0 < threshold_delta < 1
    ):
        raise ConfigError(f"`threshold_delta` must be in (0, 1). Got {threshold_delta!r}.")
    if target is None and time is None:
        raise DataError("give a `target` column (classification) or `time` and `event` columns (survival).")
    rng = as_generator(key)
    check_raw_table(frame, target=target, time=time, event=event)
    declared = dict(kinds or {})
    for column, kind in declared.items():
        if column not in frame.columns or kind not in ("integer", "numeric", "categorical"):
            raise ConfigError(f"`kinds` must map columns of the table to 'integer', 'numeric' or 'categorical'. "
                              f"Got {column!r}: {kind!r}.")
    if time is not None and column_kind(frame[time]) == "categorical":
        raise DataError(f"time column '{time}' must be numeric. Got dtype {frame[time].dtype}.")

    names = list(frame.columns)
    kinds = {column: ("categorical" if column == target else declared.get(column) or column_kind(frame[column]))
             for column in names}
    if event is not None:
        kinds[event] = "event"
    n_columns = len(names)
    std = sigma * math.sqrt(n_columns)
    n_categorical = sum(kind == "categorical" for kind in kinds.values())
    tau_categorical = categorical_threshold(std, threshold_delta / max(n_categorical, 1))
    tau_numeric = std * float(norm.isf(EMPTY_BIN_PROBABILITY / N_BINS))

    columns = []
    time_column = None
    class_proportions = None
    event_rate = None
    for position, column in enumerate(names):
        kind = kinds[column]
        values = frame[column]
        if kind in ("integer", "numeric"):
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            # A missing or non-finite value adds no count (its record adds at most one per column).
            counts = np.bincount(bin_index(numbers[np.isfinite(numbers)]), minlength=N_BINS)
            noisy = counts + _noise(rng, N_BINS, std)
            lower, upper = _numeric_bounds(noisy, tau_numeric, column, kind == "integer", positive=column == time)
            numeric = NumericColumn(column, lower, upper, integer=kind == "integer")
            if column == time:
                time_column = numeric
            else:
                columns.append(numeric)
        elif kind == "event":
            usable = values.isin([0, 1, True, False]).to_numpy() & values.notna().to_numpy()
            counts = np.bincount(values[usable].astype(np.int64).to_numpy(), minlength=2)[:2]
            noisy = counts + _noise(rng, 2, std)
            event_rate = float(np.clip(_proportions(noisy)[1], MIN_PROPORTION, 1 - MIN_PROPORTION))
            record_count = float(max(noisy.sum(), 1.0))
        else:
            values = values.astype(object).where(values.notna(), None) if values.isna().any() else values
            uniques = pd.unique(values.dropna())
            codes = pd.Categorical(values, categories=uniques).codes
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))  # a missing category adds no count
            noisy = counts + _noise(rng, len(uniques), std)
            kept = np.flatnonzero(noisy > tau_categorical)
            if column == target and len(kept) < 2:
                raise DataError(
                    f"target column '{column}': {len(kept)} class(es) passed the DP threshold "
                    f"({tau_categorical:.1f}); need at least 2. Use more rows, a smaller noise_multiplier, "
                    "or give a schema with public classes."
                )
            if len(kept) == 0:  # a decision on noisy counts: the column is left out, not refused
                warnings.warn(f"column '{column}': no level passed the DP threshold ({tau_categorical:.1f}); it is "
                              "left out of the estimated schema (merge rare levels, or give a public schema).",
                              UserWarning, stacklevel=2)
                continue
            levels = [_python_scalar(uniques[j]) for j in kept]
            noisy_by_level = dict(zip(map(repr, levels), noisy[kept]))
            levels = _sorted_levels(levels)
            columns.append(CategoricalColumn(column, tuple(levels)))
            if column == target:
                class_proportions = tuple(
                    float(p) for p in _proportions(np.array([noisy_by_level[repr(v)] for v in levels]))
                )
                record_count = float(max(noisy[kept].sum(), 1.0))
    source = (
        f"estimated with differential privacy from the private table (log-scale bins as in Google's "
        f"ApproxBounds for bounds, thresholded noisy histogram for levels; noise_multiplier={sigma!r}, "
        f"threshold_delta={threshold_delta!r}, {n_columns} columns); column names and declared kinds "
        "treated as public structure"
    )
    schema = Schema(
        name=name,
        task="classification" if target is not None else "survival",
        columns=tuple(columns),
        target=target,
        class_proportions=class_proportions,
        time=time_column,
        event=event,
        event_rate=event_rate,
        source=source,
    )
    return schema, [GaussianEvent(sigma), AdditiveDeltaEvent(float(threshold_delta))], record_count


def estimate_class_proportions(key: Any, y: Any, n_classes: int, noise_multiplier: float) -> tuple:
    """DP class proportions over a public set of ``n_classes`` classes.

    Could this leak? Only through one Gaussian mechanism: the class histogram changes by 1 in one
    count when a record is added or removed (L2 sensitivity 1) and gets noise of std
    ``noise_multiplier`` per count, i.e. ``GaussianEvent(noise_multiplier)``. The class set is
    public (from the schema), so no threshold or delta is needed; the proportions are
    post-processing (negative counts set to 0, each proportion floored at ``MIN_PROPORTION``,
    renormalised).

    Args:
        key: the mechanism's generator, or a JAX key.
        y: ``(n,)`` class indices in ``[0, n_classes)``.
        n_classes: Number of public classes (≥ 2).
        noise_multiplier: Noise std per count (> 0).

    Returns:
        ``(proportions, event)``: float64 ``(n_classes,)`` summing to 1, and
        ``GaussianEvent(noise_multiplier)``.

    Raises:
        ConfigError: Bad ``noise_multiplier`` or ``n_classes``.
        DataError: ``y`` is not a vector of class indices in range.
    """
    sigma = _check_noise(noise_multiplier)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ConfigError(f"`n_classes` must be an integer >= 2. Got {n_classes!r}.")
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        raise DataError(f"`y` must be a vector of class indices in [0, {n_classes}). Got dtype {y.dtype}, shape {y.shape}.")
    counts = np.bincount(y, minlength=n_classes)
    noisy = counts + _noise(as_generator(key), int(n_classes), sigma)
    return _proportions(noisy), GaussianEvent(sigma)


def estimate_event_rate(key: Any, event: Any, noise_multiplier: float) -> tuple:
    """DP proportion of events among survival records.

    Could this leak? Only through one Gaussian mechanism on the two public counts (censored,
    event): a record changes one of them by 1 (L2 sensitivity 1), noise std ``noise_multiplier``
    per count, i.e. ``GaussianEvent(noise_multiplier)``. The rate is post-processing, clipped to
    ``[MIN_PROPORTION, 1 - MIN_PROPORTION]``.

    Args:
        key: the mechanism's generator, or a JAX key.
        event: ``(n,)`` 0/1 event indicators.
        noise_multiplier: Noise std per count (> 0).

    Returns:
        ``(rate, event)``: a float in ``(0, 1)`` and ``GaussianEvent(noise_multiplier)``.

    Raises:
        ConfigError: Bad ``noise_multiplier``.
        DataError: ``event`` holds values other than 0/1.
    """
    sigma = _check_noise(noise_multiplier)
    values = np.asarray(event, dtype=np.float64)
    if values.ndim != 1 or not np.isin(values, (0.0, 1.0)).all():
        raise DataError("`event` must be a vector of 0 (censored) / 1 (event) values.")
    counts = np.bincount(values.astype(np.int64), minlength=2)[:2]
    noisy = counts + _noise(as_generator(key), 2, sigma)
    rate = float(np.clip(_proportions(noisy)[1], MIN_PROPORTION, 1 - MIN_PROPORTION))
    return rate, GaussianEvent(sigma)


def estimate_record_count(key: Any, num_records: int, noise_multiplier: float) -> tuple:
    """A DP count of the records: ``n + round(N(0, sigma^2))``, at least 1.

    Could this leak? Only through one Gaussian mechanism: adding or removing a record changes ``n``
    by 1 (sensitivity 1), noise std ``noise_multiplier``: ``GaussianEvent(noise_multiplier)``. Under
    the add/remove relation ``n`` itself is private; everything zodc derives from the size of the
    table (the sampling probability, group sizes, decisions) uses this count instead.

    Returns:
        ``(count, event)``: a float >= 1 and ``GaussianEvent(noise_multiplier)``.
    """
    sigma = _check_noise(noise_multiplier)
    noisy = float(num_records) + float(_noise(as_generator(key), 1, sigma)[0])
    return max(noisy, 1.0), GaussianEvent(sigma)
