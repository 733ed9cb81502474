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
import re
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from zodc.errors import ConfigError, DataError
from zodc.privacy.events import AdditiveDeltaEvent, GaussianEvent
from zodc.privacy.noise import as_generator, rounded_gaussian
from zodc.data.schema import OTHER_LEVEL, CategoricalColumn, NumericColumn, Schema
from zodc.data.validation import check_raw_table, column_kind, normalise_text

#: Log-scale bins: magnitudes 2**k for k in [MIN_EXPONENT, MAX_EXPONENT + 1].
MIN_EXPONENT = -10
MAX_EXPONENT = 30
#: Smallest class proportion / event rate an estimate is clipped to (then renormalised).
MIN_PROPORTION = 0.01
#: Probability that some empty bin of a column joins its window as an island (all bins together).
ISLAND_PROBABILITY = 1e-5


def _bin_edges() -> np.ndarray:
    """Public edges: -2^31, …, -2^-10, 0, 2^-10, …, 2^31 (length 2 * 42 + 1)."""
    magnitudes = 2.0 ** np.arange(MIN_EXPONENT, MAX_EXPONENT + 2)
    return np.concatenate([-magnitudes[::-1], [0.0], magnitudes])


BIN_EDGES = _bin_edges()
N_BINS = len(BIN_EDGES) - 1
#: The bin [0, 2^-10): exact zeros.
ZERO_BIN = int(np.searchsorted(BIN_EDGES, 0.0))


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


def schema_noise_multiplier(epsilon: float, delta: float, threshold_delta: float, share: float) -> float:
    """The noise multiplier ``sigma`` of :func:`estimate_schema_and_count` when it gets ``share`` of a
    release's ``(epsilon, delta)`` budget, split in ``rho`` like every Gaussian mechanism
    (:func:`zodc.privacy.calibration.share_noise_multiplier`; ``threshold_delta`` of ``delta`` is the
    levels' threshold). At epsilon 1, delta 1e-5 and a 10 % share: sigma 11.4 (the schema adds
    under 0.1 to the release's epsilon; on its own it would be an epsilon-0.3 mechanism). ``epsilon =
    inf``: 0 (the exact, non-private schema). Public inputs only.
    """
    from zodc.privacy.calibration import share_noise_multiplier

    return share_noise_multiplier(epsilon, delta, share, additive_delta=threshold_delta)


def _noisy_counts(rng: Optional[np.random.Generator], counts: np.ndarray, std: float) -> np.ndarray:
    """The one place the schema's counts meet noise: ``counts + round(N(0, std^2))`` (``std = 0``: exact,
    the non-private mode). Every histogram of :func:`estimate_schema_and_count` passes here, so a test
    can see each count vector a record contributes to."""
    return counts if std == 0 else counts + _noise(rng, len(counts), std)


def _proportions(noisy_counts: np.ndarray) -> np.ndarray:
    counts = np.maximum(noisy_counts, 0.0)
    total = counts.sum()
    p = counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
    p = np.maximum(p, MIN_PROPORTION)
    return p / p.sum()


def categorical_threshold(std: float, delta_per_column: float) -> float:
    """Threshold ``tau`` with ``P(1 + round(N(0, std^2)) > tau) <= delta_per_column``.

    A level held by one record (count 1) is released with probability at most
    ``delta_per_column``: the noise is rounded to whole counts, and ``round(Y) > t`` implies
    ``Y > t - 1/2``, hence the extra half count.
    """
    return 1.5 + std * float(norm.isf(delta_per_column))


#: Shares of the schema's budget, as shares of one Gaussian mechanism's rho = 1 / (2 sigma^2)
#: (Gaussian mechanisms compose exactly: noise multipliers sigma_i with sum 1/sigma_i^2 = 1/sigma^2
#: are, together, the Gaussian mechanism of noise multiplier sigma; Dong, Roth & Su 2019).
#: The target's classes or the event bins (the record count, proportions) get their own share; the
#: feature and time columns share the scan (public log bins and observed levels), the refinement
#: (bins chosen from the scan) and the whole-number counts evenly.
SHARE_ROLE, SHARE_SCAN, SHARE_REFINE, SHARE_WHOLE = 0.10, 0.75, 0.10, 0.05
#: A numeric column is released as whole numbers (``integer``) when the noisy count of its whole
#: values exceeds that of its fractional ones by this many stds of the difference (a column of
#: fractions that the scan sees, 7 scan stds of records or more, passes with probability about
#: 1e-5), and its bounds hold at least two whole numbers (rounding never makes it a constant).
WHOLE_Z = 3.0
#: Whether the whole-number counts decide ``integer`` (False: only a declared kind or dtype does, the
#: rule before; the counts are drawn either way, so paired runs share their noise;
#: ``benchmarks/whole_numbers.py``).
ESTIMATE_WHOLE = True
#: Penalty per bin of the bulk window, in noise stds: a bin is worth including when it holds more
#: records than twice the noise std (an empty bin beside the bulk joins with probability 2 %).
WINDOW_PENALTY = 2.0
#: A bulk window is detected when its penalised score exceeds this many stds. Pure noise over the 84
#: public log bins passes with probability below 1e-3 (simulated, 2*10^5 draws: the 99.9 % quantile
#: is 2.29). The refinement's finer bins hold fewer records each: its penalty is half a std per bin
#: and its threshold 7.5 stds (over 16 bins the pure-noise 99.9 % quantile is 6.92).
DETECT_Z, REFINE_DETECT_Z, REFINE_PENALTY = 3.0, 7.5, 0.5
#: The refinement trims an end bin while its noisy count is below this many stds (an empty bin stops
#: the trimming with probability 7 %: bounds a little loose rather than records clipped).
TRIM_Z = 1.5
#: After detection the window grows by up to EXTEND_BINS bins a side while the next bin's noisy
#: count exceeds EXTEND_Z stds (thin tails: a little looser bounds rather than clipped records).
EXTEND_Z, EXTEND_BINS = 1.0, 1
#: The bin of exact zeros joins the window when its count exceeds PRESENCE_Z stds (counts and 0/1
#: indicators hold many zeros, ten empty log bins away from the ones).
#: A bin away from the bulk window (a second mode) joins it when its noisy count exceeds this many
#: stds: some empty bin of a column's N_BINS passes with probability ISLAND_PROBABILITY (5.2 stds).
#: At 4 stds (3e-5 a bin, 3e-3 a column) 32 runs in 1,000 of a 9-column survey table
#: (statsmodels' anes96, 660 records) stretched some column's bounds by an empty bin far out: an
#: item on a 1-7 scale got the bounds [-4096, 8], and its synthetic values were in the hundreds. An
#: island far out costs the whole column its resolution; records beyond the bounds are clipped one
#: by one. The zeros' bin has its own rule (PRESENCE_Z): of the bundled cohorts, only covid_testing's
#: age had an island, its 260 zeros.
ISLAND_Z = float(norm.isf(ISLAND_PROBABILITY / N_BINS))
#: A neighbour of the zeros' bin counts as clearly occupied (:func:`_only_zeros`) above this many
#: stds (one bin tested alone: an empty one passes with probability 3e-5).
OCCUPIED_Z = 4.0
#: Bins of the refinement, uniform within the scan's core window (two more hold the records below
#: and above it), for columns whose core spans at most REFINE_OCTAVES octaves away from zero (a
#: year, a sodium level, a temperature: an offset much larger than the spread).
REFINE_BINS, REFINE_OCTAVES = 16, 2
#: A column is marked `missing`, or gets the "(other)" level, when that noisy count exceeds this many stds.
PRESENCE_Z = 2.0
#: A numeric column whose scan window spans at least this many octaves above zero is encoded on a log scale.
LOG_SCALE_OCTAVES = 5
#: A survival time column's weight in the scan and the refinement, against 1 for a feature (its noise
#: std is 1/sqrt(2) of a feature's). Without its time a survival task is refused. Raw gbsg2 as a CSV
#: at epsilon 1, 30 seeds paired (docs/results.md, "The time column's weight";
#: benchmarks/time_weight.py): refused 5 times at weight 1, never at 2; C-index +0.006 +- 0.012
#: (refusals scored 0.5), kidney_transplant +0.010 +- 0.010, nafld1 -0.002 +- 0.004. Weight 4 kept
#: too few features (gbsg2 -0.023 +- 0.015).
TIME_WEIGHT = 2.0
#: Without declared classes, a target with more distinct labels than this is refused (declare them).
MAX_IMPLICIT_CLASSES = 20
#: ``preprocessing_share="auto"`` without a schema: the DP schema's share of the budget is
#: AUTO_SHARE_PER_WEIGHT per unit of the scanned columns' weight ``W`` (:func:`_total_weight`: a
#: feature 1, a survival time :data:`TIME_WEIGHT`), within [AUTO_SHARE_MIN, AUTO_SHARE_MAX]. A
#: column's scan noise is ``sigma_1 * sqrt(W / (SHARE_SCAN * share))`` (``sigma_1``: the whole
#: budget's), so a share in proportion to ``W`` keeps the records a column needs to be seen the same
#: however many columns the table has, from 5 to 25 (at a fixed 10 %, a 30-column table's noise per
#: count was 2.4 times a 5-column table's). With a schema, "auto" is AUTO_SHARE_MIN (the DP record
#: count). Tuned on the bundled cohorts as CSVs, 30 seeds paired (docs/results.md, "The
#: schema's share of the budget"; benchmarks/preprocessing_share.py).
AUTO_SHARE_PER_WEIGHT, AUTO_SHARE_MIN, AUTO_SHARE_MAX = 0.02, 0.1, 0.5


def _total_weight(features: int, has_time: bool) -> float:
    """``W``, the columns' total weight in a share: a feature weighs 1, a time column :data:`TIME_WEIGHT`."""
    return features + (TIME_WEIGHT if has_time else 0.0) or 1.0


def auto_share(features: int, has_time: bool) -> float:
    """The DP schema's share of the budget for ``preprocessing_share="auto"``, from the number of
    feature columns it scans and whether a survival time is scanned too (:data:`AUTO_SHARE_PER_WEIGHT`).
    Public inputs only."""
    weight = _total_weight(features, has_time)
    return float(min(AUTO_SHARE_MAX, max(AUTO_SHARE_MIN, AUTO_SHARE_PER_WEIGHT * weight)))


def schema_share(share: Any, frame: pd.DataFrame, *, kinds: Optional[dict] = None, target=None, time=None,
                 event=None) -> float:
    """``share`` as a number: as given, or for ``"auto"`` :func:`auto_share` of the columns
    :func:`estimate_schema_and_count` will scan (the table's columns less the roles and those left out
    by their names). Could one record change this? No: column names, roles and dtypes only (public
    structure), never a value or the number of rows."""
    if share != "auto":
        return float(share)
    kind_of, _ = column_kinds(frame, kinds, target=target, time=time, event=event)
    features = sum(column not in (target, time, event) for column in kind_of)
    return auto_share(features, time is not None)


def count_share(share: Any) -> float:
    """``share`` as a number where a public schema is given (the DP record count, and the class
    proportions or event rate it lacks): as given, or :data:`AUTO_SHARE_MIN` for ``"auto"``."""
    return AUTO_SHARE_MIN if share == "auto" else float(share)


def noise_stds(sigma: float, features: int, has_time: bool) -> tuple:
    """The noise std of each count: ``(role, feature scan, time scan, feature refine, time refine)``;
    the whole-number counts' are :func:`whole_stds`.

    The scan's share (and the refinement's, and the whole-number counts') is split over the columns
    by weight: a feature weighs 1 and a survival time column :data:`TIME_WEIGHT`, so a column's std
    is ``sigma / sqrt(share * w / W)`` with ``W`` the total weight. Each record adds one count to
    each histogram, so the squared sensitivity in units of each count's noise adds up to
    ``SHARE_ROLE + SHARE_SCAN + SHARE_REFINE + SHARE_WHOLE = 1``: one Gaussian mechanism of noise
    multiplier ``sigma`` whatever the weights."""
    total = _total_weight(features, has_time)
    scan = sigma * math.sqrt(total / SHARE_SCAN)
    refine = sigma * math.sqrt(total / SHARE_REFINE)
    return (_role_std(sigma), scan, scan / math.sqrt(TIME_WEIGHT), refine, refine / math.sqrt(TIME_WEIGHT))


def _role_std(sigma: float) -> float:
    """The noise std of each role count (a class's, or an event value's): :data:`SHARE_ROLE` of ``rho``."""
    return sigma / math.sqrt(SHARE_ROLE)


def record_count_spread(sigma: float, schema: Schema) -> tuple:
    """The noise of the DP record count :func:`estimate_schema_and_count` returns, as
    :func:`zodc.privacy.calibration.count_half_width` takes it: ``(std per term, terms)``. ``n_hat``
    is the sum of the role counts, one per public class (classification) or one per event value
    (two, survival), each of std :func:`_role_std`. Public: the noise multiplier and the class set."""
    terms = len(schema.class_proportions) if schema.class_proportions is not None else 2
    return _role_std(sigma), terms


def whole_stds(sigma: float, features: int, has_time: bool) -> tuple:
    """The noise std of the whole-number counts: ``(feature, time)`` (see :func:`noise_stds`)."""
    whole = sigma * math.sqrt(_total_weight(features, has_time) / SHARE_WHOLE)
    return whole, whole / math.sqrt(TIME_WEIGHT)


def _is_whole(noisy: np.ndarray, std: float, lower: float, upper: float) -> bool:
    """Whether a numeric column is released as whole numbers, from its noisy counts of whole and
    fractional values (:data:`WHOLE_Z`) and its bounds (at least two whole numbers inside
    ``[lower, upper)``, :func:`_whole_inside`). Post-processing of noisy counts; ``std`` 0: exact
    mode (every value whole; ``upper`` is the largest value, inside)."""
    if std == 0:
        return bool(noisy[0] > 0 and noisy[1] == 0 and math.ceil(lower) < math.floor(upper))
    low, high = _whole_inside(lower, upper)
    return bool(high > low and noisy[0] - noisy[1] > WHOLE_Z * math.sqrt(2.0) * std)


def _whole_inside(lower: float, upper: float) -> tuple:
    """The first and last whole numbers of the bins ``[lower, upper)`` (a window of bins, whose upper
    edge holds no value): a 0/1 column's ``[0, 2)`` is ``[0, 1]``, and a count's ``[-2^-10, 8)``
    (a bin of tiny negatives joined on noise) is ``[0, 7]``, where rounding outward gave ``[0, 2]``
    and ``[-1, 8]``, values the column never holds."""
    return float(math.ceil(lower)), float(math.ceil(upper) - 1)


def _python_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def normalise_level(value: Any) -> Any:
    """A category value as zodc compares and releases it: text stripped of surrounding whitespace and
    lower-cased (``" Male"``, ``"MALE"`` and ``"male"`` are one level), booleans and numbers as
    Python values; missing (None, NaN, empty text) as None. Acts on one value alone."""
    value = _python_scalar(value)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return normalise_text(value) or None
    return value


def declared_spelling(classes: Sequence[Any]) -> list:
    """Declared classes as released: the owner's spelling, its words joined by one space (labels
    match them up to case and spaces, :func:`normalise_level`). Public: the task's definition."""
    return [" ".join(c.split()) if isinstance(c, str) else _python_scalar(c) for c in classes]


def _sorted_levels(levels: Sequence[Any]) -> list:
    try:
        return sorted(levels)
    except TypeError:
        return sorted(levels, key=lambda v: (type(v).__name__, str(v)))


def _split_values(series: pd.Series, kind: str) -> tuple:
    """``(numbers, levels)`` of one column, each record in exactly one of three places: a finite number
    (``numbers``, NaN elsewhere), a level (``levels``, None elsewhere), or missing (neither).
    ``kind``: numeric / integer (a value that is not a number is missing), categorical (every
    present value is a level), auto (numbers are numbers, other text is a level). Per record."""
    n = len(series)
    levels = np.full(n, None, dtype=object)
    if kind == "categorical":
        levels[:] = [normalise_level(v) for v in series.tolist()]
        return np.full(n, np.nan), levels
    if pd.api.types.is_bool_dtype(series):
        numbers = series.to_numpy(dtype=np.float64)
    elif pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numbers = pd.to_numeric(series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v),
                                errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = np.where(np.isfinite(numbers), numbers, np.nan)
    if kind == "auto":
        text = np.isnan(numbers) & series.notna().to_numpy()
        levels[text] = [normalise_level(v) for v in series[text].tolist()]
    return numbers, levels


def _bulk_window(noisy: np.ndarray, penalty: float) -> tuple:
    """The contiguous bins ``[a, b]`` maximising ``sum(noisy[a:b+1] - penalty)`` (Kadane), and that
    maximum. Post-processing of noisy counts."""
    best, best_a, best_b = -math.inf, 0, 0
    current, start = 0.0, 0
    for k, value in enumerate(np.asarray(noisy, np.float64) - penalty):
        if current <= 0:
            current, start = value, k
        else:
            current += value
        if current > best:
            best, best_a, best_b = current, start, k
    return best_a, best_b, best


def _grow(noisy: np.ndarray, a: int, b: int, std: float, extend_z: float = None) -> tuple:
    """The window widened by islands (clearly occupied bins elsewhere) and thin tails (a neighbour
    whose noisy count exceeds ``extend_z`` stds, default :data:`EXTEND_Z`)."""
    extend_z = EXTEND_Z if extend_z is None else extend_z
    islands = np.flatnonzero(noisy > ISLAND_Z * std)
    if len(islands):
        a, b = min(a, int(islands[0])), max(b, int(islands[-1]))
    for _ in range(EXTEND_BINS):
        if a > 0 and noisy[a - 1] > extend_z * std:
            a -= 1
        if b < len(noisy) - 1 and noisy[b + 1] > extend_z * std:
            b += 1
    return a, b


def _scan_window(noisy: np.ndarray, std: float, exact: bool) -> Optional[tuple]:
    """Bins ``(a, b)`` holding a numeric column's bulk, from its noisy log-bin counts, or None when
    nothing stands out from the noise (see :data:`DETECT_Z`, :data:`EXTEND_Z`, :data:`ISLAND_Z`; the
    zeros' bin joins at :data:`PRESENCE_Z`), and the window before it grew, ``(a, b, core_a, core_b)``.
    Exact mode (no noise): the occupied bins."""
    if exact:
        occupied = np.flatnonzero(noisy > 0)
        return (int(occupied[0]), int(occupied[-1])) * 2 if len(occupied) else None
    core_a, core_b, score = _bulk_window(noisy, WINDOW_PENALTY * std)
    if score < DETECT_Z * std:
        return None
    a, b = _grow(noisy, core_a, core_b, std)
    if noisy[ZERO_BIN] > PRESENCE_Z * std:
        a, b = min(a, ZERO_BIN), max(b, ZERO_BIN)
    return a, b, core_a, core_b


def _only_zeros(noisy: np.ndarray, window: tuple, std: float) -> bool:
    """Whether a window holds nothing but exact zeros: the zeros' bin, and at most its two neighbours
    (values of magnitude below 2^-9) where these are not clearly occupied (:data:`OCCUPIED_Z`).

    A neighbour joins the bulk on noise alone (above the window's penalty, or as a thin tail) a few
    times in a hundred; without this, a 0/1 column whose ones are too rare to see was kept as a
    constant with bounds [-2^-10, 2^-10]. Post-processing of noisy counts (exact mode: ``std`` 0, so
    any occupied neighbour counts)."""
    a, b = window[:2]
    if not (ZERO_BIN - 1 <= a <= ZERO_BIN <= b <= ZERO_BIN + 1):
        return False
    return all(noisy[k] <= OCCUPIED_Z * std for k in range(a, b + 1) if k != ZERO_BIN)


#: Whether a column's missing decision reads both noisy missing counts (the scan's and the
#: refinement's) or the refinement's alone (the rule before; kept for the paired benchmark).
COMBINE_MISSING = True


def _has_missing(scan_missing: float, std_scan: float, refine_missing: float, std_refine: float,
                 text_uncounted: bool = False) -> bool:
    """Whether a column is marked ``missing``: the scan's and the refinement's noisy counts of its
    missing records, combined by inverse variance (their noise is independent), exceed
    :data:`PRESENCE_Z` of the combined std (:func:`_combined_missing`). At a feature's shares (0.75
    and 0.10) the combined std is 0.42 of the refinement's alone at the share it had before (0.15),
    so a column needs 2.4 times fewer missing records to learn its missing indicator. The two count
    the same records, except in an undeclared column (``text_uncounted``): read as numbers, the
    refinement also counts its text cells (``<5``, ``neg``), which are encoded as missing, while
    the scan counted them as levels (the caller adds the released levels back); read as levels, it
    also counts its number cells. There the refinement's count alone also marks the column.
    Post-processing of noisy counts; ``std_scan`` 0: exact mode (any missing record counts)."""
    if std_scan == 0:
        return refine_missing > 0.5
    alone = refine_missing > PRESENCE_Z * std_refine
    if not COMBINE_MISSING:
        return alone
    estimate, std = _combined_missing(scan_missing, std_scan, refine_missing, std_refine)
    return estimate > PRESENCE_Z * std or (text_uncounted and alone)


def _combined_missing(scan_missing: float, std_scan: float, refine_missing: float, std_refine: float) -> tuple:
    """``(estimate, std)``: a column's two noisy missing counts (independent noise, the same records)
    combined by inverse variance. Post-processing of noisy counts."""
    w_scan, w_refine = 1.0 / std_scan ** 2, 1.0 / std_refine ** 2
    return (w_scan * scan_missing + w_refine * refine_missing) / (w_scan + w_refine), 1.0 / math.sqrt(w_scan + w_refine)


def _missing_rate(scan_missing: float, std_scan: float, refine_missing: float, std_refine: float,
                  record_count: float) -> float:
    """The share of a column's records that are missing, released with a column marked ``missing``
    (``NumericColumn.missing_rate``): the two noisy missing counts combined as in
    :func:`_has_missing`, less :data:`PRESENCE_Z` of their std (a column marked on noise alone, with
    no missing value, gets a share near 0 rather than the 2-3 stds that marked it), over the DP
    record count. Post-processing of noisy counts; ``std_scan`` 0: exact mode."""
    if std_scan == 0:
        return float(min(max(refine_missing / max(record_count, 1.0), 0.0), 1.0))
    estimate, std = _combined_missing(scan_missing, std_scan, refine_missing, std_refine)
    return float(min(max((estimate - PRESENCE_Z * std) / max(record_count, 1.0), 0.0), 1.0))


def _refine_edges(lower: float, upper: float) -> np.ndarray:
    """REFINE_BINS + 1 edges, uniform between two public (scan) edges."""
    return lower + np.linspace(0.0, 1.0, REFINE_BINS + 1) * (upper - lower)


#: How the refinement trims its ends (kept for the paired benchmark, ``benchmarks/refine_trim.py``):
#: ``"cumulative"`` (the rule of :func:`_refine_window`, with a bin below and a bin above the core
#: for what the window grew beyond it) or ``"before"`` (each bin alone, the records beyond the core
#: in its end bins, whose trimmed bounds never reached beyond it: a 0/1 column whose ones were the
#: core lost its zeros).
REFINE_TRIM = "cumulative"
#: An end bin of the refinement is trimmed only while it holds less than TRIM_PEAK of the fullest
#: bin's noisy count (a tail, not a shoulder of the bulk), and while the noisy sum of the bins
#: trimmed at that end stays below TRIM_CUMULATIVE_Z of its std plus TRIM_SHARE of the column's
#: noisy total (a few records of thin tail, never a share of the bulk). Nothing is trimmed unless
#: the fullest bin stands REFINE_PEAK_Z stds out of the noise (a bulk too flat for its noise keeps
#: the scan's bounds: loose rather than clipped). Chosen on the clipped share and the looseness of
#: the bounds over 30 keys (``benchmarks/refine_trim.py --bounds``, docs/results.md).
TRIM_PEAK, TRIM_CUMULATIVE_Z, TRIM_SHARE, REFINE_PEAK_Z = 0.15, 1.0, 0.02, 6.0


def _refine_window(noisy: np.ndarray, std: float) -> Optional[tuple]:
    """Refinement bins ``(a, b)``: the fine histogram trimmed from each end while its end looks
    empty, or None when the histogram as a whole does not stand out of the noise (keep the scan's
    bounds). Trimming stops at the first bin with records, so what it clips is at most the thin tail
    beyond it.

    "Looks empty": the bin's noisy count is below :data:`TRIM_Z` stds and below :data:`TRIM_PEAK`
    of the fullest bin's, and the noisy sum of the bins trimmed at that end so far is below
    :data:`TRIM_CUMULATIVE_Z` stds of that sum plus :data:`TRIM_SHARE` of the histogram's total.
    Nothing is trimmed (None) unless the fullest bin exceeds :data:`REFINE_PEAK_Z` stds.
    Each bin tested alone against the noise (the rule before) was not enough where the noise is
    large against the bins: colon's ages (1,300 records over nine bins of 6 years, 110 records of
    noise std a bin) lost their 18-56 and 68-85 year olds, 57 % of the records, bin by bin. A
    concentrated column (a year, whose bulk fills one or two bins) trims its empty bins as before.
    Post-processing of noisy counts."""
    _, _, score = _bulk_window(noisy, REFINE_PENALTY * std)
    if score < REFINE_DETECT_Z * std:
        return None
    noisy = np.asarray(noisy, np.float64)
    if REFINE_TRIM != "cumulative":
        a, b = 0, len(noisy) - 1
        while a < b and noisy[a] < TRIM_Z * std:
            a += 1
        while b > a and noisy[b] < TRIM_Z * std:
            b -= 1
        return a, b
    if noisy.max() < REFINE_PEAK_Z * std:
        return None
    allowed = TRIM_SHARE * float(np.clip(noisy, 0.0, None).sum())
    peak = TRIM_PEAK * float(noisy.max())

    def trimmed(order) -> int:
        total, count = 0.0, 0
        for k in order:
            total += noisy[k]
            if (noisy[k] >= TRIM_Z * std or noisy[k] >= peak
                    or total >= TRIM_CUMULATIVE_Z * std * math.sqrt(count + 1) + allowed):
                break
            count += 1
        return count

    a = trimmed(range(len(noisy)))
    b = len(noisy) - 1 - trimmed(range(len(noisy) - 1, -1, -1))
    return (a, b) if a <= b else None


def _round_bounds(lower: float, upper: float, integer: bool, positive: bool) -> tuple:
    if positive and lower <= 0:
        lower = 2.0 ** MIN_EXPONENT
    if integer:
        lower, upper = float(math.floor(lower)), float(math.ceil(upper))
        if positive and lower <= 0:
            lower = 1.0
    if upper <= lower:
        upper = lower + (1.0 if integer else max(abs(lower), 1.0) * 2.0 ** -10)
    return float(lower), float(upper)


def looks_like_identifier(name: str) -> bool:
    """Whether a column's *name* says it is a row identifier (``id``, ``patient_id``, ``rownames``,
    ``Unnamed: 0``, ``seqno``, ...): such a column is left out unless its kind is declared. Reads
    the name only (public structure), never the values."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name).strip())  # camelCase: PatientID -> Patient_ID
    text = re.sub(r"[-. #]", "_", words.casefold()).strip("_")
    text = text.replace("°", "o").replace("º", "o")  # French and Spanish numéro signs: N°, Nº
    # Who a row is (English, German, French, Spanish and Italian spellings, singular: "n_cases" and
    # "num_patients" are counts) and a number word, either way round: patient_no, Patienten-Nr,
    # Fallnummer, NoDossier, num_paciente; the French / Spanish order only with its own words.
    who = r"(patient|patienten|paciente|paziente|pat|case|fall|record|subject|study|row|sample|participant|dossier)"
    number = r"(no|nr|number|num|nummer|numero|nro)"
    who_after = r"(patient|paciente|paziente|dossier|fall|participant|sujet|caso)"
    return (text in {"id", "rownames", "row_names", "rowname", "index", "seqno", "seq_no", "row", "row_id", "mrn",
                     "record", "record_id", "patient", "patient_id", "subject", "subject_id", "case_id", "obs",
                     "pid", "ptid", "uid", "uuid", "guid", "no", "nr"}
            or text.endswith("_id") or text.startswith("id_") or text.startswith("unnamed:")
            or text.startswith("unnamed_")
            or re.fullmatch(who + r"_?" + number, text) is not None
            or re.fullmatch(number + r"_?(de_|du_|del_)?" + who_after, text) is not None)


def column_kinds(frame: pd.DataFrame, kinds: Optional[dict], *, target=None, time=None, event=None) -> tuple:
    """``(kinds, left_out)``: each column's kind (``integer``, ``numeric``, ``categorical``, ``auto``)
    from the declaration, else its dtype (:func:`~zodc.data.validation.column_kind`; pandas' ``string``
    dtype, as :func:`zodc.data.io.read_table` reads a CSV, is ``auto``: decided with DP), and the
    columns left out because their name says they are identifiers. Public structure only."""
    declared = dict(kinds or {})
    for column, kind in declared.items():
        if column not in frame.columns or kind not in ("integer", "numeric", "categorical", "auto"):
            raise ConfigError(f"`kinds` must map columns of the table to 'integer', 'numeric', 'categorical' or "
                              f"'auto'. Got {column!r}: {kind!r}.")
    out, left_out = {}, []
    for column in frame.columns:
        if column in (target, time, event):
            out[column] = {target: "categorical", time: "numeric", event: "event"}[column]
        elif column in declared:
            out[column] = declared[column]
        elif looks_like_identifier(column):
            left_out.append(column)
        else:
            out[column] = column_kind(frame[column])
    return out, left_out


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
    classes: Optional[Sequence[Any]] = None,
) -> tuple:
    """Estimate a schema (kinds, bounds, levels, missingness, class proportions / event rate) with DP.

    One Gaussian mechanism of noise multiplier ``sigma`` (``noise_multiplier``), spent in four
    parts whose shares of ``1 / (2 sigma^2)`` add up to one (see :data:`SHARE_ROLE`):

    1. **Role** (share 0.10): the count of each target class (classification) or of the event
       values 0, 1 and 2 (survival; the 2s tell R's 1 = censored / 2 = event coding apart, which is
       refused: :func:`_check_event_coding`). The class set is *public*: ``classes`` when given, else the target's
       distinct labels, taken as the task's definition (the report lists this assumption; a
       target with more than :data:`MAX_IMPLICIT_CLASSES` labels must declare them). Gives the
       record count ``n_hat``, the class proportions or the event rate.
    2. **Scan** (share 0.75, split over the ``c`` feature columns and the time, which weighs
       :data:`TIME_WEIGHT` features; :func:`noise_stds`): per column one
       histogram in which every record adds one count — a *missing* bin, the public signed
       log-scale bins (powers of two, as in Google's ApproxBounds) for values that are numbers,
       and one bin per observed level for values that are text. The column's bulk is the window
       of bins maximising the noisy count minus two noise stds per bin (Kadane), kept when it
       stands clearly out of the noise (:data:`DETECT_Z`); thin tails, the zeros' bin and bins
       with a clearly positive count elsewhere join it. Levels are released when their noisy count exceeds
       :func:`categorical_threshold` (a level seen in one neighbour only is released with
       probability at most ``threshold_delta``). An ``auto`` column (undeclared, e.g. read from a
       CSV) is categorical when its released levels hold more noisy records than its numeric bulk.
    3. **Refine** (share 0.10, split as the scan): for a numeric column, :data:`REFINE_BINS` bins
       uniform within the scan's core window, a bin for the records below it and one for those
       above it (where the window grew: the zeros, a thin tail, an island), and a missing bin;
       where the core spans at most :data:`REFINE_OCTAVES` octaves (an offset larger than the
       spread) the bounds shrink to the bulk (a year column's [1024, 2048] becomes [1984, 2048]),
       trimming only ends that look empty (:func:`_refine_window`); for a categorical column, its
       released levels, an "other" bin and a missing bin: rare values land in an
       :data:`~zodc.data.schema.OTHER_LEVEL` level when that bin is clearly non-empty. Either way
       the column is marked ``missing`` when its missing records stand out: the scan's and the
       refinement's missing counts, combined (:func:`_has_missing`); a numeric column so marked
       gets the share of its records that are missing (``missing_rate``, :func:`_missing_rate`).
    4. **Whole numbers** (share 0.05, split as the scan): per column, the count of its whole values
       and of its fractional ones. A numeric column is released as whole numbers (``integer``:
       rounded, as a declared ``integer`` column is) when the whole values outnumber the others by
       :data:`WHOLE_Z` stds of the difference and its bounds hold two whole numbers
       (:func:`_is_whole`). Only where the kind is decided with DP too (``auto``: text read from a
       CSV, undeclared): a declared kind or a typed frame's dtype says it (the time column's dtype
       is numeric; its counts are drawn all the same, so every column's histograms are alike).

    A numeric column whose scan window spans :data:`LOG_SCALE_OCTAVES` octaves or more above zero
    (right-skewed lab values) is encoded on a log scale. A column with no detectable bulk and no
    released level is left out with a warning naming it. Everything returned is post-processing
    of the noisy counts; the candidate levels (observed, not public) are covered by the threshold.

    Could one record change this? Each record adds one count to one bin of each histogram (add /
    remove: sensitivity 1 per histogram), the noise is the exact rounded Gaussian
    (:mod:`zodc.privacy.noise`), and no decision or refusal reads the records except through the
    noisy counts. Public structure: column names (a column named like an identifier is left out
    unless declared, a decision on the name), roles, declared kinds and dtypes, and the class set
    as above. ``noise_multiplier=0`` is the non-private mode (``epsilon=inf``): exact bounds
    (min and max), every level, no events.

    Args:
        key: the mechanism's generator (:func:`zodc.privacy.noise.secret_generator`) or a JAX key.
        frame: The private table, shape ``(n, d)``.
        target: Class column (classification).
        time: Survival time column.
        event: 0/1 event column (survival).
        noise_multiplier: ``sigma`` >= 0 of the whole mechanism (0: exact, non-private).
        threshold_delta: Total probability in (0, 1) of releasing a level held by one record.
        name: Name of the estimated schema.
        kinds: ``{column: "integer" | "numeric" | "categorical" | "auto"}`` declared by the data
            owner; other columns take their dtype's kind.
        classes: The public classes of the target, in order (default: its distinct labels).

    Returns:
        ``(schema, events, record_count)``: the estimated :class:`Schema`,
        ``[GaussianEvent(sigma), AdditiveDeltaEvent(threshold_delta)]`` (``[]`` when exact), and the
        DP count of the records (the noisy role counts' sum, >= 1).

    Raises:
        ConfigError: Bad ``noise_multiplier``, ``threshold_delta`` or ``kinds``.
        DataError: A structural problem :func:`check_raw_table` finds; a target with fewer than 2
            or more than :data:`MAX_IMPLICIT_CLASSES` labels and no declared classes; no feature
            column could be estimated (the message says how many records the budget needs).
    """
    exact = isinstance(noise_multiplier, (int, float)) and not isinstance(noise_multiplier, bool) \
        and noise_multiplier == 0
    sigma = 0.0 if exact else _check_noise(noise_multiplier)
    if isinstance(threshold_delta, bool) or not isinstance(threshold_delta, (int, float)) or not (
        0 < threshold_delta < 1
    ):
        raise ConfigError(f"`threshold_delta` must be in (0, 1). Got {threshold_delta!r}.")
    if target is None and time is None:
        raise DataError("give a `target` column (classification) or `time` and `event` columns (survival).")
    rng = None if exact else as_generator(key)
    check_raw_table(frame, target=target, time=time, event=event)
    if classes is None and target is not None and isinstance(frame[target].dtype, pd.CategoricalDtype):
        classes = list(frame[target].cat.categories)  # a categorical target's categories: declared classes
    kind_of, left_out = column_kinds(frame, kinds, target=target, time=time, event=event)
    for column in left_out:
        if str(column).startswith("Unnamed: "):  # pandas' name for an empty header cell
            warnings.warn(f"column '{column}' has no name in the header (row names, or an empty column a spreadsheet "
                          "wrote) and is left out; give it a name to keep it.", UserWarning, stacklevel=2)
            continue
        warnings.warn(f"column '{column}' looks like a row identifier (by its name) and is left out; declare its "
                      "kind to keep it.", UserWarning, stacklevel=2)
    features = [c for c in frame.columns if c in kind_of and c not in (target, time, event)]
    scanned = features + ([time] if time is not None else [])
    std_role, feature_scan, time_scan, feature_refine, time_refine = noise_stds(sigma, len(features),
                                                                                time is not None)
    feature_whole, time_whole = whole_stds(sigma, len(features), time is not None)
    text_columns = sum(kind_of[column] in ("categorical", "auto") for column in scanned)
    tau_level = 0.5 if exact else categorical_threshold(feature_scan, threshold_delta / max(text_columns, 1))

    def noisy(counts: np.ndarray, std: float) -> np.ndarray:
        return _noisy_counts(rng, np.asarray(counts, np.float64), 0.0 if exact else std)

    # 1. Role: the public classes or event bins -> n_hat, proportions / event rate.
    class_proportions = event_rate = None
    if target is not None:
        labels = [normalise_level(v) for v in frame[target].tolist()]
        if classes is not None:
            levels = [normalise_level(v) for v in classes]
            if len(set(levels)) != len(levels) or len(levels) < 2 or None in levels:
                raise ConfigError(f"`classes` must be at least 2 distinct, non-empty labels. Got {list(classes)!r}.")
        else:
            levels = _sorted_levels({v for v in labels if v is not None})
            if not 2 <= len(levels) <= MAX_IMPLICIT_CLASSES:
                one = " (one class)" if len(levels) == 1 else ""
                raise DataError(f"target column '{target}' has {len(levels)} distinct labels{one}; a target needs 2 to "
                                f"{MAX_IMPLICIT_CLASSES} unless its classes are declared (`classes=` / --classes). "
                                "The class set is part of the task and treated as public.")
        index = {level: k for k, level in enumerate(levels)}
        codes = np.array([index.get(v, -1) for v in labels], dtype=np.int64)
        counts = noisy(np.bincount(codes[codes >= 0], minlength=len(levels)), std_role)
        rare = [level for level, count in zip(levels, counts) if count <= PRESENCE_Z * std_role]
        # Post-processing of the noisy counts. When every class is rare the cohort is small for the
        # budget (the schema says so next), not a typo among common classes.
        if classes is None and rare and len(rare) < len(levels) and not exact:
            warnings.warn(f"the classes of target '{target}' were read from the data, not declared, and are released "
                          f"with the table as the task's definition: {', '.join(repr(str(v)) for v in levels)}. At "
                          f"this budget {', '.join(repr(str(v)) for v in rare)} {'is' if len(rare) == 1 else 'are'} "
                          "rare: if a label is a typo, or one a few records hold that should not be published, "
                          "declare the task's classes with --classes (records with other labels are left out).",
                          UserWarning, stacklevel=2)
        class_proportions = tuple(float(p) for p in _proportions(counts))
        record_count = float(max(counts.sum(), 1.0))
        # Declared classes keep the owner's spelling (matched to the labels up to case and spaces).
        target_column = CategoricalColumn(target, tuple(levels if classes is None else declared_spelling(classes)))
    else:
        values = frame[event]
        # Bins 0, 1 and 2: the 2s (R's events, or a competing event) are counted only to tell R's
        # coding apart (_check_event_coding); a record adds one count to one bin, or to none.
        usable = values.isin([0, 1, 2, True, False]).to_numpy() & values.notna().to_numpy()
        counts = noisy(np.bincount(values[usable].astype(np.int64).to_numpy(), minlength=3)[:3], std_role)
        _check_event_coding(event, counts, 0.0 if exact else std_role)
        counts = counts[:2]
        event_rate = float(np.clip(_proportions(counts)[1], MIN_PROPORTION, 1 - MIN_PROPORTION))
        record_count = float(max(counts.sum(), 1.0))

    # 2. Scan and 3. refine, column by column (each record adds one count to each histogram).
    columns, time_column, unseen = [], None, []
    for column in scanned:
        kind = kind_of[column]
        is_time = column == time
        std_scan, std_refine = (time_scan, time_refine) if is_time else (feature_scan, feature_refine)
        numbers, levels = _split_values(frame[column], kind)
        missing = np.isnan(numbers) & np.array([v is None for v in levels], dtype=bool)
        finite = numbers[np.isfinite(numbers)]
        uniques = pd.unique(np.array([v for v in levels if v is not None], dtype=object)) \
            if kind in ("categorical", "auto") else np.array([], dtype=object)
        level_codes = pd.Categorical(levels, categories=uniques).codes if len(uniques) else np.full(len(levels), -1)
        scan = noisy(np.concatenate([[missing.sum()],
                                     np.bincount(bin_index(finite), minlength=N_BINS) if kind != "categorical"
                                     else np.zeros(N_BINS),
                                     np.bincount(level_codes[level_codes >= 0], minlength=len(uniques))]), std_scan)
        # Whole and fractional values (each finite value adds one count to one of the two).
        whole_values = int(np.sum(finite == np.round(finite)))
        whole = noisy(np.array([whole_values, len(finite) - whole_values]),
                      0.0 if exact else (time_whole if is_time else feature_whole))
        numeric_noisy, level_noisy = scan[1:1 + N_BINS], scan[1 + N_BINS:]
        window = None if kind == "categorical" else _scan_window(
            numeric_noisy if not is_time else np.where(BIN_EDGES[:-1] >= 0, numeric_noisy, -np.inf), std_scan, exact)
        kept = np.flatnonzero(level_noisy > tau_level)
        if kind == "auto" and not is_time:
            numeric_mass = numeric_noisy[window[0]:window[1] + 1].sum() if window is not None else -math.inf
            kind = "categorical" if len(kept) and level_noisy[kept].sum() > numeric_mass else "numeric"
            if kind == "numeric" and len(kept):  # levels over the threshold: released with DP, so they may be named
                shown = ", ".join(repr(str(uniques[j])) for j in kept[:5]) + (", ..." if len(kept) > 5 else "")
                warnings.warn(f"column '{column}' holds numbers and text values frequent enough to release ({shown}): "
                              "it is read as numbers and the text as missing. If the column holds levels (a top code "
                              f"such as '3+', words), declare it categorical: --categorical {column} on the command "
                              "line, a 'category' or object dtype in Python.", UserWarning, stacklevel=2)
        if kind == "categorical" and not is_time:
            if not len(kept):
                warnings.warn(f"column '{column}': no value occurs often enough to be released at this budget (an "
                              "identifier, a date, free text, or levels too rare); it is left out. Merge rare levels, "
                              "convert dates to numbers, or give a public schema (zodc schema draft --no-dp).",
                              UserWarning, stacklevel=2)
                continue
            released = _sorted_levels([_python_scalar(uniques[j]) for j in kept])
            index = {level: k for k, level in enumerate(released)}
            codes = np.array([index.get(v, len(released) if v is not None else len(released) + 1) for v in levels])
            refine = noisy(np.bincount(codes, minlength=len(released) + 2), std_refine)
            has_other = refine[len(released)] > (0.5 if exact else PRESENCE_Z * std_refine)
            # In an undeclared column read as levels, the refinement's missing bin also holds its number
            # cells, which the scan counted in its numeric bins: the refinement's count alone marks it too.
            has_missing = _has_missing(scan[0], 0.0 if exact else std_scan, refine[len(released) + 1], std_refine,
                                       text_uncounted=kind_of[column] == "auto")
            if has_other and OTHER_LEVEL not in released:
                released.append(OTHER_LEVEL)
            if len(released) + int(has_missing) < 2:  # one slot: a constant, it carries nothing
                warnings.warn(f"column '{column}': only one level could be released at this budget, so it carries no "
                              "information and is left out (give a public schema with its levels to keep it).",
                              UserWarning, stacklevel=2)
                continue
            columns.append(CategoricalColumn(column, tuple(released), missing=bool(has_missing)))
            continue
        if window is None:
            if is_time:
                _warn_unseen(unseen, feature_scan)
                raise DataError(f"time column '{column}': its range could not be told apart from the noise "
                                f"({_needed_message(std_scan)}).")
            # The noisy missing count says whether it is mostly empty: post-processing.
            unseen.append((column, bool(scan[0] > DETECT_Z * std_scan), kind_of[column] == "auto"))
            continue
        if not is_time and _only_zeros(numeric_noisy, window, 0.0 if exact else std_scan):  # a constant: carries nothing
            warnings.warn(f"column '{column}': only the value 0 stands out of the noise at this budget (its other "
                          "values are too rare to see), so it carries no information and is left out (give a public "
                          "schema with its bounds to keep it).", UserWarning, stacklevel=2)
            continue
        lower, upper = float(BIN_EDGES[window[0]]), float(BIN_EDGES[window[1] + 1])
        if exact and len(finite):
            inside = finite[(finite >= lower) & (finite <= upper)]
            lower, upper = float(inside.min()), float(inside.max())
        # Whole numbers are decided with DP where the kind is (text read from a CSV, undeclared):
        # a declared kind, or a typed frame's dtype (the time column's is numeric), says it already.
        integer = kind == "integer" or (ESTIMATE_WHOLE and kind_of[column] == "auto" and _is_whole(
            whole, 0.0 if exact else (time_whole if is_time else feature_whole), lower, upper))
        positive_edge = max(lower, float(BIN_EDGES[max(window[0], np.searchsorted(BIN_EDGES, 0.0) + 1)]))
        scale = "log" if lower >= 0 and upper >= positive_edge * 2.0 ** LOG_SCALE_OCTAVES and not is_time else "linear"
        # Whole bounds come last (_whole_inside): until then they are bin edges, the upper one
        # holding no value. The exact mode's are the values themselves.
        lower, upper = _round_bounds(lower, upper, integer and exact, positive=is_time)
        core_lower, core_upper = float(BIN_EDGES[window[2]]), float(BIN_EDGES[window[3] + 1])
        core_edges = _refine_edges(core_lower, core_upper)
        if REFINE_TRIM == "before":  # the records beyond the core in its end bins (two unused bins
            # keep the noise stream of the later columns the same under both rules: paired runs)
            inner = np.clip(np.searchsorted(core_edges, finite, side="right") - 1, 0, REFINE_BINS - 1)
        else:  # a bin for the records below the core, the core's bins, a bin for those above it
            inner = np.clip(np.searchsorted(core_edges, finite, side="right"), 0, REFINE_BINS + 1)
        refine = noisy(np.concatenate([[np.isnan(numbers).sum()],  # missing, or text in a numeric column
                                       np.bincount(inner, minlength=REFINE_BINS + 2)]), std_refine)
        # The refinement's missing bin also holds the text cells of an undeclared column read as
        # numbers; the scan counted its released levels apart, so they are added to its missing count.
        auto = kind_of[column] == "auto"
        text_levels = kept if auto else kept[:0]
        missing_counts = (scan[0] + level_noisy[text_levels].sum(),
                          0.0 if exact else std_scan * math.sqrt(1 + len(text_levels)), refine[0], std_refine)
        has_missing = (not is_time) and _has_missing(*missing_counts, text_uncounted=auto)
        fine = refine[1:] if REFINE_TRIM != "before" else refine[1:1 + REFINE_BINS]
        if not exact and ((core_lower > 0 and core_upper <= core_lower * 2.0 ** REFINE_OCTAVES)
                          or (core_upper < 0 and core_lower >= core_upper * 2.0 ** REFINE_OCTAVES)):
            # An offset larger than the spread: the bulk within the core window, in linear bins.
            sub = _refine_window(fine, std_refine)
            if sub is not None and REFINE_TRIM == "before":
                lower, upper = _round_bounds(max(lower, float(core_edges[sub[0]])),
                                             min(upper, float(core_edges[sub[1] + 1])), False, positive=is_time)
            elif sub is not None:
                # The outer bins stand for what the window grew beyond the core (the zeros' bin, a
                # thin tail, an island): kept when their records are, trimmed like any end bin.
                lower = lower if sub[0] == 0 else max(lower, float(core_edges[sub[0] - 1]))
                upper = upper if sub[1] == REFINE_BINS + 1 else min(upper, float(core_edges[sub[1]]))
                lower, upper = _round_bounds(lower, upper, False, positive=is_time)
        if integer and not exact:
            lower, upper = _whole_inside(lower, upper)
            upper = max(upper, lower + 1.0)  # a declared integer column of one whole number: as before
        lower, upper = _outward(lower, upper, integer, is_time)
        numeric = NumericColumn(column, lower, upper, integer=integer, scale=scale, missing=bool(has_missing),
                                missing_rate=_missing_rate(*missing_counts, record_count) if has_missing else None)
        if is_time:
            time_column = numeric
        else:
            columns.append(numeric)
    if not columns:
        raise DataError(f"no feature column could be estimated from the noisy counts ({_needed_message(feature_scan)}). "
                        "The schema's share of the budget was spent (it is in the ledger); nothing was released.")
    _warn_unseen(unseen, feature_scan)
    if target is not None:
        position = list(frame.columns).index(target)
        before = sum(1 for c in frame.columns[:position] if c in {col.name for col in columns})
        columns.insert(before, target_column)
    source = (
        "estimated with differential privacy from the private table (noise_multiplier="
        f"{sigma!r}, threshold_delta={threshold_delta!r}; public log-scale bins as in Google's ApproxBounds, "
        "refined in linear bins where a column's offset exceeds its spread; whole numbers from noisy counts; "
        "thresholded levels); column names, roles, declared kinds and the target's classes treated as public "
        "structure" if not exact else
        "computed WITHOUT noise from the private table (epsilon = inf, non-private mode): exact bounds and levels"
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
    events = [] if exact else [GaussianEvent(sigma), AdditiveDeltaEvent(float(threshold_delta))]
    return schema, events, record_count


#: R's ``survival`` coding (1 = censored, 2 = event) is refused when the noisy count of the value 2
#: exceeds this many stds and the 0's count does not: on 0 / 1 data (no 2) the first has
#: probability 3e-5 (one-sided normal tail at 4 stds), and R-coded data (no 0) pass the second with
#: probability 1 - 3e-5. A table whose 0s are that few and its 2s many (competing risks, almost no
#: censoring) is refused too: the message names --event-value, which settles it either way.
R_CODING_Z = 4.0


def _check_event_coding(event: str, counts: np.ndarray, std: float) -> None:
    """Refuse R's 1 = censored / 2 = event coding, which zodc would read as 1 = event with every event
    left out; else warn when the noisy counts show no events or no censored records.

    ``counts``: the role histogram's noisy counts of the event values 0, 1 and 2 (a record adds one
    count to one of them, or to none: sensitivity 1, as with two bins). Could one record change
    this? Only through the noisy counts: the refusal and the warning are post-processing (exact
    counts, ``std`` 0, in the non-private mode)."""
    present = (lambda c, z: c > z * std) if std > 0 else (lambda c, z: c > 0.5)
    if present(counts[2], R_CODING_Z) and not present(counts[0], R_CODING_Z) and present(counts[1], PRESENCE_Z):
        raise DataError(f"the event column '{event}' shows the values 1 and 2 and no 0 in the noisy counts: R's "
                        "survival coding (1 = censored, 2 = event)? zodc reads 1 as the event and leaves out other "
                        "values, so the censored records would be taken for events. Say which value is the event: "
                        "--event-value 2 on the command line (or --event-value 1); in Python, map the column to "
                        "1 (event) / 0 (censored) before `fit`. The schema's share of the budget was spent (it is in "
                        "the ledger); nothing was released.")
    if std > 0 and min(counts[:2]) <= PRESENCE_Z * std:
        unseen = "no events (1 or true)" if counts[1] <= PRESENCE_Z * std else "no censored records (0 or false)"
        warnings.warn(f"the event column '{event}' shows {unseen} at this budget. zodc reads 1 (or true, dead) "
                      "as an event and 0 (or false, alive) as censored, and leaves out records with other values: "
                      "if the events are coded otherwise (R's 1 = censored / 2 = event, other words), say which value "
                      "is the event (--event-value). If they are coded so (or --event-value was given), they are "
                      "too few to tell apart from the noise at this budget.", UserWarning, stacklevel=3)


def _warn_unseen(unseen: list, std: float) -> None:
    """One warning for the feature columns left out because nothing of them stood out of the noise
    (``unseen``: ``(name, mostly empty, undeclared)`` each), naming them all: a small cohort loses many
    columns for one reason, and says so once. Post-processing of noisy counts."""
    if not unseen:
        return
    names = [name for name, _, _ in unseen]
    empty = [name for name, is_empty, _ in unseen if is_empty]
    if len(names) == 1:
        head = f"column '{names[0]}': its range could not be told apart from the noise at this budget, so it is left out"
    else:
        head = (f"{len(names)} columns ({', '.join(repr(str(n)) for n in names)}): their ranges could not be told "
                "apart from the noise at this budget, so they are left out")
    hint = ""
    if empty:
        hint += (" It is empty in many records." if len(names) == 1 else
                 f" Empty in many records: {', '.join(repr(str(n)) for n in empty)}.")
    if any(auto for _, _, auto in unseen):
        hint += (f" If {'it' if len(names) == 1 else 'a column'} holds text, dates or codes, no level was frequent "
                 "enough either: convert dates to numbers, merge rare levels, or declare its kind (`kinds=` / "
                 "--categorical, --numeric).")
    warnings.warn(f"{head} ({_needed_message(std)}).{hint}", UserWarning, stacklevel=3)


def _round_significant(value: float, up: bool) -> float:
    """``value`` rounded to 4 significant digits, up or down (bounds read like a person wrote them)."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 3)
    return float((math.ceil if up else math.floor)(value / step) * step)


def _outward(lower: float, upper: float, integer: bool, positive: bool) -> tuple:
    """Bounds written with 4 significant digits, rounded outward (never clipping more)."""
    if integer:
        return lower, upper
    low, high = _round_significant(lower, up=False), _round_significant(upper, up=True)
    if positive and low <= 0:
        low = lower
    return (low, high) if low < high else (lower, upper)


def _needed_message(std: float) -> str:
    """How small is too small, from public numbers only: a column's bulk is seen when it holds about
    DETECT_Z + 2 WINDOW_PENALTY noise stds of records (a window of two log bins)."""
    return (f"at this budget a column needs about {math.ceil((DETECT_Z + 2 * WINDOW_PENALTY) * std)} records in its "
            "bulk; use a larger cohort, fewer columns, a larger --preprocessing-share or --epsilon, or give a "
            "public schema: `zodc schema draft --no-dp` writes one for you to complete with bounds from your "
            "data dictionary, spending no budget")


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
