"""Survival condensation: a bounded per-record survival loss, host survival models behind the
batched callback, and the native (device) Cox evaluator.

Layout of a learnable survival table: ``(m, d + 1)`` — ``d`` encoded features followed by ONE
encoded log-time column (the LAST column, see :class:`TimeScale`). Event indicators of the
synthetic rows are fixed, public design (``synthetic_events`` ``(m,)`` int 0/1), chosen from a
public or DP event rate. With soft events (:func:`expand_soft_events`) the table has one more
column after the log-time: a learned *own-status weight*, so each row is released as an event copy
and a censored copy with weights that sum to 1.

The loss is evaluated on a public time grid ``tau_1 < ... < tau_G`` (:func:`public_time_grid`)
with an implicit ``tau_0 = 0`` where ``S(tau_0 | x) = 1``. Bin ``k`` (1-based) is
``(tau_{k-1}, tau_k]``; a time beyond ``tau_G`` falls in the last bin ``G``.

Convention for a censored record (used by every loss here, kept consistent): a record censored at
``t`` in bin ``k`` is known to have survived to the *left edge* of its bin, so its likelihood is
``S(tau_{k-1} | x)`` (the grid has no finer resolution; ``S(tau_{k-1}) >= S(t)``, the discrete-time
convention of survival to the start of the censoring interval).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, clone

from zodc.data.transform import decode_log_time, encode_log_time
from zodc.errors import ConfigError, DataError
from zodc.models import soft_labels as soft

SURVIVAL_LOSSES = ("discrete_nll", "brier")
# Soft events: each copy's weight is kept in [floor, 1 - floor] (public). lifelines rejects a weight
# of 0, and a copy the optimiser drives to weight 0 then stays in the table with a negligible weight.
EVENT_WEIGHT_FLOOR = 1e-3

__all__ = [
    "SURVIVAL_LOSSES",
    "LifelinesCoxPH",
    "ScikitSurvivalModel",
    "SurvivalLoss",
    "TimeScale",
    "EVENT_WEIGHT_FLOOR",
    "accepts_sample_weight",
    "as_survival_model",
    "expand_soft_events",
    "fit_host_survival_model",
    "fit_score_survival",
    "host_survival_function",
    "host_survival_payload",
    "native_survival_data",
    "native_survival_evaluate_fn",
    "native_survival_evaluator",
    "public_time_grid",
    "scikit_survival_available",
]


# --------------------------------------------------------------------------- time grid and scale


def public_time_grid(lower: float, upper: float, num_bins: int, spacing: str = "log") -> np.ndarray:
    """A public time grid: ``num_bins`` right bin edges equally spaced in log time or in time.

    ``spacing="log"``: ``tau_k = exp(log lower + k / num_bins * (log upper - log lower))``;
    ``spacing="linear"``: ``tau_k = lower + k / num_bins * (upper - lower)`` (equal calendar
    widths, the usual discrete-time choice when bounds span years of follow-up). ``k = 1..num_bins``,
    so ``tau_G = upper`` and the first bin ``(0, tau_1]`` starts at the public lower bound.

    Could this leak? No: it uses only the public (schema) time bounds.

    Args:
      lower: public lower time bound, ``> 0``.
      upper: public upper time bound, ``> lower``.
      num_bins: ``G >= 1``.

    Returns:
      ``(G,)`` float64 strictly increasing grid.

    Raises:
      ConfigError: bounds not ``0 < lower < upper`` finite, or ``num_bins`` not a positive int.
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ConfigError(f"`num_bins` must be an integer >= 1. Got {num_bins!r}.")
    _check_bounds(lower, upper)
    if spacing not in ("log", "linear"):
        raise ConfigError(f"`time_grid` must be 'log' or 'linear'. Got {spacing!r}.")
    fractions = np.arange(1, int(num_bins) + 1, dtype=np.float64) / int(num_bins)
    if spacing == "linear":
        grid = lower + fractions * (upper - lower)
    else:
        grid = np.exp(math.log(lower) + fractions * (math.log(upper) - math.log(lower)))
    grid[-1] = float(upper)
    return grid


def _check_bounds(lower: float, upper: float) -> None:
    if not (isinstance(lower, (int, float, np.number)) and math.isfinite(lower) and lower > 0):
        raise ConfigError(f"`lower` (time bound) must be a finite number > 0. Got {lower!r}.")
    if not (isinstance(upper, (int, float, np.number)) and math.isfinite(upper) and upper > lower):
        raise ConfigError(f"`upper` (time bound) must be a finite number > lower = {lower}. Got {upper!r}.")



@dataclasses.dataclass(frozen=True)
class TimeScale:
    """Encoded log-time ↔ time, by the public time bounds (same numbers as
    :meth:`zodc.data.transform.TableEncoder.encode_time` / ``decode_time``).

    ``encode(t) = clip(2 (log t - log lower) / (log upper - log lower) - 1, -1, 1)``; ``decode`` is
    its inverse on ``[-1, 1]`` (inputs clipped there first), so decoded times are always positive
    and within ``[lower, upper]``; an integer time column is rounded. Both work on numpy or jax
    arrays (the namespace follows the input), so the host callback and the device evaluator decode
    identically.

    Could this leak? No: only public bounds.

    Attributes:
      lower: public lower bound, ``> 0``.
      upper: public upper bound, ``> lower``.
      integer: whether times are whole numbers (decoded values are rounded).
    """

    lower: float
    upper: float
    integer: bool = False

    def __post_init__(self):
        _check_bounds(self.lower, self.upper)
        object.__setattr__(self, "lower", float(self.lower))
        object.__setattr__(self, "upper", float(self.upper))
        object.__setattr__(self, "integer", bool(self.integer))

    @classmethod
    def from_schema(cls, schema: Any) -> "TimeScale":
        """From a survival :class:`~zodc.data.schema.Schema` (its public time column)."""
        column = getattr(schema, "time", None)
        if column is None:
            raise DataError(f"schema {getattr(schema, 'name', '?')!r} has no time column; survival needs one.")
        return cls(column.lower, column.upper, bool(column.integer))

    def encode(self, time: Any) -> Any:
        """``(n,)`` times → ``(n,)`` encoded log-times in ``[-1, 1]``."""
        return encode_log_time(time, self.lower, self.upper)

    def decode(self, encoded_time: Any) -> Any:
        """``(n,)`` encoded log-times (any real values) → ``(n,)`` times in ``[lower, upper]``."""
        return decode_log_time(encoded_time, self.lower, self.upper, self.integer)

    def as_data(self) -> dict:
        """The float32 numbers :meth:`decode` uses, as arrays (:func:`decode_from_data`): a compiled
        step that reads them as arguments is shared by runs whose bounds differ (DP bounds)."""
        log_lower, log_upper = math.log(self.lower), math.log(self.upper)
        numbers = {"log_lower": log_lower, "span": log_upper - log_lower, "lower": self.lower, "upper": self.upper,
                   "integer_lower": math.ceil(self.lower), "integer_upper": math.floor(self.upper)}
        return {name: jnp.float32(value) for name, value in numbers.items()}


def decode_from_data(encoded_time: jax.Array, scale: dict, integer: bool) -> jax.Array:
    """:meth:`TimeScale.decode` with its numbers from :meth:`TimeScale.as_data`: the same float32
    operations in the same order (Python floats enter JAX's arithmetic as float32), so the same
    times bit for bit (``tests/test_survival.py``)."""
    unit = (jnp.clip(jnp.asarray(encoded_time), -1.0, 1.0) + 1.0) / 2.0
    time = jnp.clip(jnp.exp(scale["log_lower"] + unit * scale["span"]), scale["lower"], scale["upper"])
    if integer:
        time = jnp.clip(jnp.round(time), scale["integer_lower"], scale["integer_upper"])
    return time


# --------------------------------------------------------------------------- the loss


def _as_grid(time_grid: Any) -> tuple:
    grid = np.asarray(time_grid, dtype=np.float64).ravel()
    if grid.size < 1:
        raise ConfigError("`time_grid` must hold at least 1 time (see public_time_grid). Got an empty grid.")
    if not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ConfigError(f"`time_grid` must be finite times > 0. Got {grid.tolist()}.")
    if np.any(np.diff(grid) <= 0):
        raise ConfigError(f"`time_grid` must be strictly increasing. Got {grid.tolist()}.")
    return tuple(float(t) for t in grid)


@dataclasses.dataclass(frozen=True)
class SurvivalLoss:
    """A bounded per-record survival loss on a public time grid.

    Attributes:
      name: ``"discrete_nll"`` (default), the discrete-time negative log-likelihood: an event in
        bin ``k`` costs ``-log(max(S(tau_{k-1}|x) - S(tau_k|x), floor))``, a record censored in bin
        ``k`` costs ``-log(max(S(tau_{k-1}|x), floor))`` (module docstring: survival to the left
        edge of the censoring bin), a time beyond ``tau_G`` is in bin ``G``. Or ``"brier"``: the
        per-record integrated Brier score of Graf et al. (1999),
        ``sum_k w_k [ e 1{t <= tau_k} S(tau_k|x)^2 / G(t) + 1{t > tau_k} (1 - S(tau_k|x))^2 / G(tau_k) ]``
        with ``w_k = (tau_k - tau_{k-1}) / tau_G`` (``tau_0 = 0``; right Riemann sum of
        ``(1 / tau_G) int_0^tau_G BS(u) du``) and ``G`` the censoring survival function, taken at
        the left edge of the event's bin for ``G(t)`` (the same grid convention). With
        ``censoring_survival=None`` the IPCW weights are all 1: the simple, IPCW-free Brier score,
        which is biased under censoring (censored records before ``tau_k`` simply drop out of
        ``tau_k``'s term) but needs nothing from the private data.
      time_grid: ``(G,)`` public, strictly increasing grid ``tau_1 < ... < tau_G``
        (:func:`public_time_grid`). Stored as a tuple (hashable, so the loss can be closed over
        under ``jit``).
      probability_floor: ``p_min``; the NLL is at most ``-log p_min``. Also floors the censoring
        survival of the Brier loss.
      censoring_survival: ``(G,)`` censoring survival ``G(tau_k)`` for the Brier loss, or ``None``.
        Could this leak? A Kaplan–Meier of the censoring times computed on the *private* table
        without noise would leak through the released table: pass a public or DP estimate only.

    Examples:
      >>> loss = SurvivalLoss("discrete_nll", public_time_grid(1, 3650, 10))
      >>> losses = loss(survival, time, event)        # (..., n, 10), (n,), (n,) -> (..., n)
    """

    name: str = "discrete_nll"
    time_grid: tuple = ()
    probability_floor: float = 1e-3
    censoring_survival: tuple | None = None

    def __post_init__(self):
        if self.name not in SURVIVAL_LOSSES:
            raise ConfigError(f"`loss` must be one of {list(SURVIVAL_LOSSES)} for survival. Got {self.name!r}.")
        if not (isinstance(self.probability_floor, (int, float)) and 0.0 < self.probability_floor < 1.0):
            raise ConfigError(f"`probability_floor` must be in (0, 1). Got {self.probability_floor!r}.")
        object.__setattr__(self, "time_grid", _as_grid(self.time_grid))
        if self.censoring_survival is not None:
            if self.name != "brier":
                raise ConfigError(f"`censoring_survival` is used by the 'brier' loss only; the loss is {self.name!r}.")
            values = np.asarray(self.censoring_survival, dtype=np.float64).ravel()
            if values.shape != (len(self.time_grid),):
                raise ConfigError(f"`censoring_survival` must have one value per grid time ({len(self.time_grid)}). "
                                  f"Got shape {values.shape}.")
            if not np.all(np.isfinite(values)) or np.any(values <= 0) or np.any(values > 1):
                raise ConfigError(f"`censoring_survival` must be in (0, 1]. Got {values.tolist()}.")
            object.__setattr__(self, "censoring_survival", tuple(float(v) for v in values))

    @property
    def num_bins(self) -> int:
        """``G``."""
        return len(self.time_grid)

    @property
    def _censoring_weight_max(self) -> float:
        if self.censoring_survival is None:
            return 1.0
        return 1.0 / max(min(self.censoring_survival), self.probability_floor)

    @property
    def upper_bound(self) -> float:
        """The largest value the loss can take: what a failed fit is charged per record
        (``-log probability_floor`` for the NLL; the largest IPCW weight, 1 without IPCW, for Brier)."""
        if self.name == "discrete_nll":
            return -math.log(self.probability_floor)
        return self._censoring_weight_max

    def __call__(self, survival: Any, time: Any, event: Any, xp: Any = np, grid: Any = None) -> Any:
        """Per-record losses.

        Args:
          survival: ``(..., n, G)`` predicted ``S(tau_k | x_i)`` at the grid.
          time: ``(n,)`` observed times (the schema's units).
          event: ``(n,)`` event indicators, 1 = event, 0 = censored.
          xp: the array namespace, ``numpy`` or ``jax.numpy`` (same numbers).
          grid: ``(G,)`` the grid as an array (the NLL only), in place of ``time_grid``: a compiled
            step that reads it as an argument serves every grid of ``G`` times.

        Returns:
          ``(..., n)`` losses in ``[0, upper_bound]`` (NaN in, NaN out: callers charge the bound
          for non-finite predictions).

        Could this leak? It is a per-record function of one record's ``time`` and ``event``: what
        leaves is each record's bounded loss, which the DP step clips and noises.
        Could one record change this? Only its own loss: every operation is row-wise (a NaN
        prediction row gives that record NaN and no one else).

        Raises:
          ConfigError: ``survival``'s last axis is not ``G``.
        """
        num_bins = self.num_bins
        if survival.shape[-1] != num_bins:
            raise ConfigError(f"`survival` must have the grid's {num_bins} values on its last axis. "
                              f"Got shape {tuple(survival.shape)}.")
        dtype = survival.dtype
        if grid is not None and self.name != "discrete_nll":
            raise ConfigError("a grid given as an array is for the 'discrete_nll' loss only (Brier's weights are "
                              "computed from `time_grid`).")
        grid = xp.asarray(np.asarray(self.time_grid) if grid is None else grid, dtype=dtype)
        time = xp.asarray(time).astype(dtype)
        is_event = xp.asarray(event) > 0
        # 0-based bin of each time: number of grid points strictly below t, capped at the last bin.
        bin_index = xp.minimum(xp.searchsorted(grid, time, side="left"), num_bins - 1)
        ones = xp.ones(survival.shape[:-1] + (1,), dtype=dtype)
        padded = xp.concatenate([ones, survival], axis=-1)                  # (..., n, G + 1): S(tau_0) = 1
        positions = xp.arange(num_bins + 1)[None, :]
        left = (positions == bin_index[:, None]).astype(dtype)              # picks S(tau_{k-1})
        right = (positions == bin_index[:, None] + 1).astype(dtype)         # picks S(tau_k)
        if self.name == "discrete_nll":
            s_left = xp.sum(padded * left, axis=-1)
            s_right = xp.sum(padded * right, axis=-1)
            mass = xp.where(is_event, s_left - s_right, s_left)
            per_record = -xp.log(xp.maximum(mass, self.probability_floor))
        else:
            s = xp.clip(survival, 0.0, 1.0)
            tau_prev = np.concatenate([[0.0], np.asarray(self.time_grid)[:-1]])
            widths = (np.asarray(self.time_grid) - tau_prev) / self.time_grid[-1]
            widths = xp.asarray(widths, dtype=dtype)
            if self.censoring_survival is None:
                g_grid = np.ones(num_bins)
            else:
                g_grid = np.maximum(np.asarray(self.censoring_survival), self.probability_floor)
            inverse_g_grid = xp.asarray(1.0 / g_grid, dtype=dtype)                       # (G,)
            g_left = np.concatenate([[1.0], g_grid])                                      # G(tau_{k-1})
            inverse_g_event = xp.sum(xp.asarray(1.0 / g_left, dtype=dtype)[None, :] * left, axis=-1)  # (n,)
            died_by = (is_event[:, None] & (time[:, None] <= grid[None, :])).astype(dtype)  # (n, G)
            alive_at = (time[:, None] > grid[None, :]).astype(dtype)
            terms = died_by * s**2 * inverse_g_event[:, None] + alive_at * (1.0 - s) ** 2 * inverse_g_grid[None, :]
            per_record = xp.sum(terms * widths, axis=-1)
        return xp.clip(per_record, 0.0, self.upper_bound)


# --------------------------------------------------------------------------- host survival models


def _step_lookup(knots: np.ndarray, values: np.ndarray, times: np.ndarray, before: float) -> np.ndarray:
    """Right-continuous step function ``f(t) = values[..., last knot <= t]``, ``before`` earlier.

    ``values`` ``(..., K)`` at ``knots`` ``(K,)`` ascending; returns ``(..., len(times))``."""
    index = np.searchsorted(knots, times, side="right") - 1
    picked = values[..., np.maximum(index, 0)]
    return np.where(index >= 0, picked, before)


class LifelinesCoxPH(BaseEstimator):
    """lifelines' ``CoxPHFitter`` behind the uniform host survival interface.

    ``fit(X, time, event)``, ``predict_risk(X)`` (log partial hazard, higher = higher risk) and
    ``predict_survival(X, times) -> (n, len(times))``.

    Survival is ``exp(-H0(t) exp((x - mean) . beta))`` with lifelines' Breslow baseline ``H0``
    evaluated as a right-continuous *step* function (0 before the first time), as
    ``zodc.kernels.cox.CoxPH`` does. This departs from ``CoxPHFitter.predict_survival_function(X,
    times)``, which interpolates linearly between knots and extends the first knot's value to
    earlier times; both agree at the training times.

    Args:
      penalizer: lifelines' L2 ``penalizer`` (``>= 0``).
      l1_ratio: lifelines' ``l1_ratio``.

    Raises (from ``fit``):
      ValueError: the table has no event (the partial likelihood is flat: the model is not
        identified; lifelines would return a survival of 1 for everyone).
      lifelines.exceptions.ConvergenceError: lifelines failed (singular Hessian, NaN).
    """

    def __init__(self, penalizer: float = 0.1, l1_ratio: float = 0.0):
        self.penalizer = penalizer
        self.l1_ratio = l1_ratio

    def fit(self, X: np.ndarray, time: np.ndarray, event: np.ndarray,
            sample_weight: np.ndarray | None = None) -> "LifelinesCoxPH":
        """Fits lifelines' Cox model; ``sample_weight`` (``(m,)``, every weight ``> 0``) is its
        ``weights_col`` (case weights: a soft-event release's event and censored copies)."""
        import pandas as pd
        from lifelines import CoxPHFitter

        X = np.asarray(X, dtype=np.float64)
        event = np.asarray(event)
        if not np.any(event > 0):
            raise ValueError("`event` has no event (all censored): the Cox model is not identified.")
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        frame["_time"] = np.asarray(time, dtype=np.float64)
        frame["_event"] = (event > 0).astype(np.int64)
        weights = {}
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=np.float64)
            if weight.shape != (X.shape[0],) or not np.all(np.isfinite(weight)) or np.any(weight <= 0):
                raise ValueError(f"`sample_weight` must be ({X.shape[0]},) finite values > 0 (lifelines' weights_col).")
            frame["_weight"] = weight
            weights = {"weights_col": "_weight"}
        fitter = CoxPHFitter(penalizer=self.penalizer, l1_ratio=self.l1_ratio)
        with warnings.catch_warnings():
            # Tiny perturbed tables routinely trigger lifelines' low-variance / convergence
            # warnings (and non-integer weights its variance warning, irrelevant to predictions);
            # a fit that truly fails raises, and the caller charges the bound.
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                fitter.fit(frame, duration_col="_time", event_col="_event", **weights)
        coef = fitter.params_.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(coef)):
            raise FloatingPointError("lifelines returned non-finite coefficients")
        self.coef_ = coef
        self.mean_ = X.mean(axis=0)      # lifelines centres by the unweighted column means
        baseline = fitter.baseline_cumulative_hazard_
        self.times_ = baseline.index.to_numpy(dtype=np.float64)
        self.cumulative_hazard_ = baseline.to_numpy(dtype=np.float64)[:, 0]
        self.fitter_ = fitter
        return self

    def predict_risk(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` log partial hazard ``(x - mean) . beta``."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.coef_

    def predict_survival(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``(n, len(times))`` survival probabilities at ``times``."""
        h0 = _step_lookup(self.times_, self.cumulative_hazard_, np.asarray(times, dtype=np.float64), 0.0)
        with np.errstate(over="ignore"):
            return np.exp(-h0[None, :] * np.exp(self.predict_risk(X))[:, None])


def scikit_survival_available() -> bool:
    """Whether the optional (GPL-3) scikit-survival is importable."""
    try:
        import sksurv  # noqa: F401
    except ImportError:
        return False
    return True


class ScikitSurvivalModel(BaseEstimator):
    """A scikit-survival estimator (``RandomSurvivalForest``, ``CoxPHSurvivalAnalysis``, …) behind
    the uniform host survival interface. Used only when scikit-survival is installed.

    Args:
      estimator: an unfitted scikit-survival estimator; cloned on every ``fit``.

    ``predict_survival`` evaluates each record's step function (1 before its first knot, its last
    value after the last knot); ``predict_risk`` is the estimator's ``predict`` (higher = higher risk).
    """

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, X: np.ndarray, time: np.ndarray, event: np.ndarray,
            sample_weight: np.ndarray | None = None) -> "ScikitSurvivalModel":
        """Fits a clone; ``sample_weight`` is passed to the estimator's own ``fit`` (ConfigError if
        it takes none, e.g. ``CoxPHSurvivalAnalysis``)."""
        from sksurv.util import Surv

        if self.estimator is None:
            raise ConfigError("`estimator` must be a scikit-survival estimator. Got None.")
        weights = {}
        if sample_weight is not None:
            if not accepts_sample_weight(self):
                raise ConfigError(f"{type(self.estimator).__name__}.fit takes no `sample_weight`: it cannot fit a "
                                  "soft-event table.")
            weights = {"sample_weight": np.asarray(sample_weight, dtype=np.float64)}
        target = Surv.from_arrays(event=np.asarray(event) > 0, time=np.asarray(time, dtype=np.float64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.estimator_ = clone(self.estimator).fit(np.asarray(X, dtype=np.float64), target, **weights)
        return self

    def predict_risk(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` risk scores."""
        return np.asarray(self.estimator_.predict(np.asarray(X, dtype=np.float64)), dtype=np.float64)

    def predict_survival(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``(n, len(times))`` survival probabilities at ``times``."""
        times = np.asarray(times, dtype=np.float64)
        functions = self.estimator_.predict_survival_function(np.asarray(X, dtype=np.float64))
        rows = []
        for function in functions:
            values = function.a * np.asarray(function.y, dtype=np.float64) + function.b
            rows.append(_step_lookup(np.asarray(function.x, dtype=np.float64), values, times, 1.0))
        return np.stack(rows) if rows else np.zeros((0, times.size))


def accepts_sample_weight(model: Any) -> bool:
    """Whether a host survival model (:func:`as_survival_model`'s output) can fit case weights:
    its ``fit`` takes ``sample_weight`` (for :class:`ScikitSurvivalModel`, the wrapped estimator's)."""
    import inspect

    target = model.estimator if isinstance(model, ScikitSurvivalModel) else model
    if target is None or not hasattr(target, "fit"):
        return False
    try:
        return "sample_weight" in inspect.signature(target.fit).parameters
    except (TypeError, ValueError):
        return False


def expand_soft_events(table: Any, synthetic_events: Any, xp: Any = np) -> tuple[Any, Any, Any]:
    """The weighted table a survival model is fitted on, for a soft-event table.

    Each synthetic row ``i`` has a fixed nominal status ``e_i`` and a learned own-status weight
    ``w_i = (1 + z_i) / 2`` (:func:`zodc.models.soft_labels.own_class_weight`); it becomes two
    copies at the same features and time: an event copy weighted ``w_i`` if ``e_i = 1`` (else
    ``1 - w_i``) and a censored copy with the rest, each weight kept in ``[EVENT_WEIGHT_FLOOR, 1 -
    EVENT_WEIGHT_FLOOR]``. For Cox this is the partial likelihood with fractional event indicators
    (the censored copy keeps the row's full weight in every risk set up to its time).

    Args:
      table: ``(m, d + 2)``: ``d`` encoded features, the encoded log-time, then the learned ``z``.
      synthetic_events: ``(m,)`` nominal statuses 0/1.
      xp: ``numpy`` or ``jax.numpy`` (works under ``jit`` and ``vmap``).

    Returns:
      ``(rows (2 m, d + 1) features and log-time, events (2 m,) 0/1, weights (2 m,))``: the first
      ``m`` copies are censored, the last ``m`` events.
    """
    rows, events, weight = soft.expand(table, synthetic_events, 2, xp=xp)
    return rows, events, xp.clip(weight, EVENT_WEIGHT_FLOOR, 1.0 - EVENT_WEIGHT_FLOOR)


def as_survival_model(estimator: Any) -> Any:
    """A fresh, unfitted host survival model with the uniform interface.

    Accepts a :class:`LifelinesCoxPH` / :class:`ScikitSurvivalModel` (cloned), a lifelines
    ``CoxPHFitter`` (its ``penalizer`` and ``l1_ratio`` are kept), or a scikit-survival estimator
    (anything with ``predict_survival_function``; wrapped in :class:`ScikitSurvivalModel`). Any
    other object with ``fit(X, time, event)`` and ``predict_survival(X, times)`` is deep-copied.

    Raises:
      ConfigError: the object has none of these interfaces.
    """
    if isinstance(estimator, (LifelinesCoxPH, ScikitSurvivalModel)):
        return clone(estimator)
    if type(estimator).__name__ == "CoxPHFitter" and type(estimator).__module__.startswith("lifelines"):
        return LifelinesCoxPH(penalizer=estimator.penalizer, l1_ratio=estimator.l1_ratio)
    if hasattr(estimator, "predict_survival") and hasattr(estimator, "fit"):
        return copy.deepcopy(estimator)
    if hasattr(estimator, "predict_survival_function") and hasattr(estimator, "fit"):
        return ScikitSurvivalModel(estimator)
    raise ConfigError("a survival `model` must be a preset name ('cox', 'survival_forest'), a lifelines "
                      "CoxPHFitter, a scikit-survival estimator, or have fit(X, time, event) and "
                      f"predict_survival(X, times). Got {type(estimator).__name__}.")


def fit_host_survival_model(estimator: Any, X_train: np.ndarray, time: np.ndarray, event: np.ndarray,
                            sample_weight: np.ndarray | None = None) -> Any:
    """Fits a fresh copy of ``estimator`` (:func:`as_survival_model`) on ``(X_train, time, event)``
    (weighted by ``sample_weight`` if given: a soft-event table) and returns it.

    Could one record change this? Only a record among the training rows (synthetic ones in the
    optimisation loop and the search); it predicts nothing.

    Raises:
      Whatever the fit raises (a failed fit is the caller's to handle).
    """
    model = as_survival_model(estimator)
    return model.fit(X_train, time, event) if sample_weight is None else \
        model.fit(X_train, time, event, sample_weight=sample_weight)


def host_survival_function(estimator: Any, X_train: np.ndarray, time: np.ndarray, event: np.ndarray,
                           X_test: np.ndarray, grid: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Fits a fresh copy of ``estimator`` on ``(X_train, time, event)`` (weighted by
    ``sample_weight`` if given: a soft-event table) and predicts ``S`` at ``grid``.

    Could this leak? It computes nothing itself; whatever the training rows are (synthetic in the
    optimisation loop, real in the evaluation references) decides what the output reveals.
    Could one record change this? A test record that breaks the batch prediction makes this raise
    for all: code scoring real records privately must predict through
    :func:`zodc.models.host.predict_rows` instead (as :func:`fit_score_survival` does).

    Args:
      estimator: see :func:`as_survival_model`.
      X_train: ``(m, d)`` training features.
      time: ``(m,)`` training times, ``> 0``.
      event: ``(m,)`` training events, 0/1.
      X_test: ``(n, d)`` records to predict.
      grid: ``(G,)`` times.

    Returns:
      ``(n, G)`` float64 survival probabilities.

    Raises:
      Whatever the fit or the prediction raises (the caller's to handle).
    """
    model = fit_host_survival_model(estimator, X_train, time, event, sample_weight)
    return np.asarray(model.predict_survival(X_test, np.asarray(grid, dtype=np.float64)), dtype=np.float64)


# --------------------------------------------------------------------------- host evaluation


def host_survival_payload(estimator: Any, loss: SurvivalLoss, X: np.ndarray, time: np.ndarray,
                          event: np.ndarray, synthetic_events: np.ndarray, time_scale: TimeScale,
                          soft_events: bool = False) -> dict[str, Any]:
    """The payload :func:`fit_score_survival` expects, checked once.

    Could this leak? It holds the private records (``X``, ``time``, ``event``); they are sent to
    the worker processes once and only leave them as per-record losses, which the DP step clips
    and noises.

    Args:
      estimator: the host survival model (see :func:`as_survival_model`).
      loss: a :class:`SurvivalLoss`.
      X: ``(n, d)`` real encoded features.
      time: ``(n,)`` real times (units of the schema).
      event: ``(n,)`` real events, 0/1.
      synthetic_events: ``(m,)`` fixed events of the synthetic rows, 0/1, at least one 1.
      time_scale: the public :class:`TimeScale` decoding the table's log-time column.
      soft_events: the tables carry a learned own-status weight after the log-time
        (:func:`expand_soft_events`); the model must accept ``sample_weight``.

    Returns:
      dict with keys ``estimator, loss, X, time, event, synthetic_events, time_scale, soft_events``; give it
      to ``HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=n)``.

    Raises:
      ConfigError / DataError: wrong types or shapes, no synthetic event.
    """
    if not isinstance(loss, SurvivalLoss):
        raise ConfigError(f"`loss` must be a SurvivalLoss. Got {type(loss).__name__}.")
    if not isinstance(time_scale, TimeScale):
        raise ConfigError(f"`time_scale` must be a TimeScale. Got {type(time_scale).__name__}.")
    X, time, event = _check_real(X, time, event)
    model = as_survival_model(estimator)
    if soft_events and not accepts_sample_weight(model):
        raise ConfigError(f"soft events need a survival model whose fit takes `sample_weight`; "
                          f"{type(model).__name__} does not.")
    return {"estimator": model, "loss": loss, "X": X, "time": time, "event": event,
            "synthetic_events": _check_synthetic_events(synthetic_events), "time_scale": time_scale,
            "soft_events": bool(soft_events)}


def _check_real(X: Any, time: Any, event: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"`X` must have shape (n, d). Got {X.shape}.")
    n = X.shape[0]
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event)
    if time.shape != (n,) or event.shape != (n,):
        raise DataError(f"`time` and `event` must have shape ({n},). Got {time.shape} and {event.shape}.")
    if not np.all(np.isfinite(time)) or np.any(time <= 0):
        raise DataError("`time` must be finite and > 0.")
    if not np.all(np.isin(event, (0, 1))):
        raise DataError(f"`event` must be 0/1. Got values {np.unique(event)[:5].tolist()}.")
    return X, time, event.astype(np.int64)


def _check_synthetic_events(synthetic_events: Any) -> np.ndarray:
    events = np.asarray(synthetic_events)
    if events.ndim != 1 or not np.all(np.isin(events, (0, 1))):
        raise ConfigError(f"`synthetic_events` must be an (m,) array of 0/1. Got shape {events.shape}.")
    if not np.any(events == 1):
        raise ConfigError("`synthetic_events` must contain at least one event (1): with all rows censored "
                          "no survival model is identified. Got all 0.")
    return events.astype(np.int64)


def fit_score_survival(payload: dict[str, Any], table: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Fits the host survival model on one synthetic table and returns the real records' losses.

    Same contract as :func:`zodc.models.host.fit_score_classifier`: module level (picklable),
    raises only for a failed fit (``HostEvaluator`` charges every record ``upper_bound``: the fit
    sees the synthetic table only, so that is data independent); a record whose prediction fails or
    is non-finite comes back as NaN (``HostEvaluator`` charges that record alone the bound).

    Could this leak? It reads the real records ``indices``; the output is per-record losses of a
    model fitted on synthetic rows only — what the DP step clips and noises.
    Could one record change this? Only its own loss: predictions go through
    :func:`zodc.models.host.predict_rows` (record by record if the batch fails) and the loss is
    per record.

    Args:
      payload: from :func:`host_survival_payload`.
      table: ``(m, d + 1)`` synthetic rows: ``d`` encoded features, then the encoded log-time
        (with soft events ``(m, d + 2)``: then the learned own-status weight column).
      indices: ``(b,)`` real records to score.

    Returns:
      ``(b,)`` losses (NaN for a record that could not be predicted).
    """
    from zodc.models.host import predict_rows

    table = np.asarray(table, dtype=np.float64)
    events, weight = payload["synthetic_events"], None
    if payload.get("soft_events", False):
        table, events, weight = expand_soft_events(table, events)
    features, encoded_time = table[:, :-1], table[:, -1]
    synthetic_time = payload["time_scale"].decode(encoded_time)
    loss = payload["loss"]
    grid = np.asarray(loss.time_grid, dtype=np.float64)
    model = fit_host_survival_model(payload["estimator"], features, synthetic_time, events, sample_weight=weight)
    survival = predict_rows(lambda X: model.predict_survival(X, grid), payload["X"][indices], (grid.size,))
    return loss(survival, payload["time"][indices], payload["event"][indices], xp=np)


# --------------------------------------------------------------------------- native evaluation


def native_survival_data(X: np.ndarray, time: np.ndarray, event: np.ndarray, synthetic_events: np.ndarray,
                         key: jax.Array, loss: "SurvivalLoss | None" = None, time_scale: "TimeScale | None" = None
                         ) -> dict:
    """The device pytree :func:`native_survival_evaluate_fn` reads (checked once).

    Could this leak? It holds the private records; they stay on the device and leave only as
    per-record losses, which the DP step clips and noises.
    Could one record change this? The checks are on the whole table, but they raise (before
    anything runs) rather than change any record's value.

    Args:
      X: ``(n, d)`` real encoded features.
      time: ``(n,)`` real times (schema units), ``> 0``.
      event: ``(n,)`` real events 0/1.
      synthetic_events: ``(m,)`` fixed synthetic events, at least one 1.
      key: the model's randomness (common random numbers across tables and steps).
      loss, time_scale: with both, their public numbers travel as data too — ``"grid"`` ``(G,)``
        and ``"time_scale"`` (:meth:`TimeScale.as_data`) — for an evaluator built with
        ``bounds_as_data=True`` (:func:`native_survival_evaluate_fn`).

    Returns:
      ``{"X" (n, d) float32, "time" (n,) float32, "event" (n,) int32, "synthetic_events" (m,)
      float32, "key"}``, and ``"grid"``, ``"time_scale"`` when asked.

    Raises:
      ConfigError / DataError: wrong shapes or values, no synthetic event.
    """
    X, time, event = _check_real(X, time, event)
    events = _check_synthetic_events(synthetic_events)
    data = {"X": jnp.asarray(X, jnp.float32), "time": jnp.asarray(time, jnp.float32),
            "event": jnp.asarray(event, jnp.int32), "synthetic_events": jnp.asarray(events, jnp.float32),
            "key": key}
    if loss is not None and time_scale is not None:
        data["grid"] = jnp.asarray(np.asarray(loss.time_grid), jnp.float32)
        data["time_scale"] = time_scale.as_data()
    return data


@dataclasses.dataclass(frozen=True)
class NativeSurvivalEvaluator:
    """``evaluate_fn(tables (k, m, d + 1), mask (n,), data) -> losses (k, n)`` for a native model.

    With ``soft_events`` the tables are ``(k, m, d + 2)`` (a learned own-status weight after the
    log-time) and each is fitted as its weighted event and censored copies
    (:func:`expand_soft_events`, ``sample_weight``).

    The real records arrive as ``data`` (:func:`native_survival_data`), an argument rather than a
    constant, so the compiled step does not depend on their values (runs on different data of the
    same shapes share one compilation). Only public things are held: the model's
    hyperparameters, the loss and its public grid, the public time scale. A value (frozen, compared
    by those fields), so condensers built on equal evaluators share one compiled step.

    Each table is split into features ``(m, d)`` and the encoded log-time (last column), decoded
    by ``time_scale``; ``model.fit(key, features, time, synthetic_events)`` and
    ``model.predict_survival(params, X, grid)`` run vmapped over the ``k`` tables. A fit that did
    not converge (``params.converged`` False) charges every record ``loss.upper_bound`` (the fit
    sees the synthetic table and the public key only: data independent); a record whose predicted
    curve or loss is non-finite is charged ``loss.upper_bound`` alone (never NaN). Every record is
    predicted (static shapes), but the unsampled ones (mask False) are returned as 0 and checked
    by nothing.

    Could one record change this? Only its own losses: the fit does not see the real records, and
    the finiteness checks, the loss and the mask act per record.

    Raises:
      ConfigError: wrong types of ``loss`` / ``time_scale``.
      DataError (at trace time): tables of the wrong shape.
    """

    model: Any
    loss: SurvivalLoss
    time_scale: TimeScale
    soft_events: bool = False
    bounds_as_data: bool = False

    def __post_init__(self):
        if not isinstance(self.loss, SurvivalLoss):
            raise ConfigError(f"`loss` must be a SurvivalLoss. Got {type(self.loss).__name__}.")
        if not isinstance(self.time_scale, TimeScale):
            raise ConfigError(f"`time_scale` must be a TimeScale. Got {type(self.time_scale).__name__}.")

    def __call__(self, tables: jax.Array, mask: jax.Array, data: dict) -> jax.Array:
        model, loss, time_scale, soft_events = self.model, self.loss, self.time_scale, self.soft_events
        grid_values = np.asarray(loss.time_grid)
        if self.bounds_as_data and ("grid" not in data or "time_scale" not in data):
            raise ConfigError("this evaluator reads the grid and the time scale from `data`: build it with "
                              "native_survival_data(..., loss=, time_scale=).")
        bound = float(loss.upper_bound)
        X, synthetic = data["X"], data["synthetic_events"]
        sampled = (jnp.ones(X.shape[0], bool) if mask is None
                   else jnp.broadcast_to(jnp.asarray(mask, bool), (X.shape[0],)))
        tables = jnp.asarray(tables, jnp.float32)
        width = X.shape[1] + 1 + int(soft_events)
        if tables.ndim != 3 or tables.shape[-1] != width:
            what = "features + log-time" + (" + own-status weight" if soft_events else "")
            raise DataError(f"`tables` must have shape (k, m, {width}) ({what}). Got {tables.shape}.")
        if tables.shape[1] != synthetic.shape[0]:
            raise DataError(f"`tables` must have {synthetic.shape[0]} rows (one per synthetic event). "
                            f"Got {tables.shape[1]}.")
        grid = data["grid"] if self.bounds_as_data else jnp.asarray(grid_values, jnp.float32)
        decode = ((lambda encoded: decode_from_data(encoded, data["time_scale"], time_scale.integer))
                  if self.bounds_as_data else time_scale.decode)

        def one_table(table):
            events, weight = synthetic, None
            if soft_events:
                table, events, weight = expand_soft_events(table, synthetic, xp=jnp)
            features, encoded_time = table[:, :-1], table[:, -1]
            time = decode(encoded_time)
            params = (model.fit(data["key"], features, time, events) if weight is None else
                      model.fit(data["key"], features, time, events, sample_weight=weight))
            survival = model.predict_survival(params, X, grid)                    # (n, G)
            finite = jnp.isfinite(survival)
            losses = loss(jnp.where(finite, survival, 1.0), data["time"], data["event"], xp=jnp,
                          grid=grid if self.bounds_as_data else None)
            # Per record: its own curve and loss. Convergence is the table's alone (no real record).
            ok = jnp.all(finite, axis=-1) & jnp.isfinite(losses) & jnp.asarray(params.converged, bool)
            return jnp.where(sampled, jnp.where(ok, losses, jnp.float32(bound)), jnp.float32(0.0))

        return jax.vmap(one_table)(tables).astype(jnp.float32)


def native_survival_evaluate_fn(model: Any, loss: SurvivalLoss, time_scale: TimeScale,
                                soft_events: bool = False, bounds_as_data: bool = False) -> NativeSurvivalEvaluator:
    """A :class:`NativeSurvivalEvaluator` (the function name the core's docs use).

    ``bounds_as_data`` (the NLL loss): the grid and the time scale are read from ``data``
    (:func:`native_survival_data` with ``loss`` and ``time_scale``), and the evaluator keeps only
    what fixes the program — the grid's length, whether times are whole numbers — so runs whose
    DP schema gives other time bounds share one compiled step. The same losses bit for bit."""
    if bounds_as_data:
        if loss.name != "discrete_nll":
            raise ConfigError(f"`bounds_as_data` is for the 'discrete_nll' loss; the loss is {loss.name!r}.")
        loss = dataclasses.replace(loss, time_grid=tuple(float(k) for k in range(1, loss.num_bins + 1)))
        time_scale = TimeScale(1.0, 2.0, time_scale.integer)
    return NativeSurvivalEvaluator(model, loss, time_scale, soft_events, bounds_as_data)


def native_survival_evaluator(model: Any, loss: SurvivalLoss, X: np.ndarray, time: np.ndarray, event: np.ndarray,
                              synthetic_events: np.ndarray, time_scale: TimeScale,
                              key: jax.Array, soft_events: bool = False) -> Callable[..., jax.Array]:
    """Convenience: :func:`native_survival_evaluate_fn` with its data bound.

    Returns ``evaluate_fn(tables (k, m, d + 1), mask (n,), data=None) -> losses (k, n)``; with
    ``data=None`` the records given here are used (they are then constants of a compiled program:
    prefer :func:`native_survival_evaluate_fn` plus :func:`native_survival_data` in a long run, as
    :class:`zodc.Condenser` does).

    Raises:
      ConfigError / DataError: wrong types or shapes, no synthetic event.
    """
    bound_data = native_survival_data(X, time, event, synthetic_events, key)
    evaluate_fn = native_survival_evaluate_fn(model, loss, time_scale, soft_events)

    def evaluate(tables: jax.Array, mask: jax.Array, data: dict | None = None) -> jax.Array:
        return evaluate_fn(tables, mask, bound_data if data is None else data)

    return evaluate
