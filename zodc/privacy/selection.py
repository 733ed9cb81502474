"""Private feature selection: learn only the columns that matter.

The zero-order estimate's information per step is fixed by the noise, and its cost grows with the
number of learnable coordinates ``m * d``; a depth-4 tree uses a handful of features. Selecting
``k`` features privately and learning only those (the others stay at the public midpoint of their
bounds) divides the dimension by ``d / k``.

Selection is the exponential mechanism on a per-feature score (McSherry & Talwar 2007), run as
``k`` exponential-mechanism selections in sequence without replacement (what one-shot Gumbel top-k
equals in distribution, Durfee & Rogers 2019, arXiv:1905.04273). Each draw inverts the float64 CDF
of the mechanism's probabilities at a 128-bit uniform from the run's secret generator, not float32
Gumbel noise: its total-variation distance from the ideal draw is below ``2^-48`` per candidate
(float64 rounding of the probabilities and their running sum), which the front door adds to the
ledger's delta (``noise_sampling``). Its cost does not grow with ``d`` — only the scores' sensitivity
matters — and it is accounted as ``k`` :class:`ExponentialMechanismEvent`s.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zodc.errors import ConfigError, PrivacyBudgetError
from zodc.privacy.accounting import DEFAULT_ORDERS, RdpAccountant
from zodc.privacy.events import Event, ExponentialMechanismEvent, SelfComposedEvent

__all__ = ["class_separation_scores", "exponential_mechanism", "exponential_top_k", "calibrate_selection_epsilon", "select_features"]


def class_separation_scores(X: np.ndarray, y: np.ndarray, class_proportions: Sequence[float],
                            num_records: int) -> tuple[np.ndarray, float]:
    """Per-feature class separation and its sensitivity.

    ``score_j = max_c |mu_cj - mu_j|`` with ``mu_cj = sum_{i in c} x_ij / (n pi_c)`` and
    ``mu_j = sum_i x_ij / n``: how far some class's mean sits from the overall mean.

    Could this leak? The scores are computed from private records and are never released; only
    the exponential mechanism's choice is. Their sensitivity under adding or removing one record
    (values in [-1, 1]; ``n`` and ``pi`` public or DP, not recomputed from the data) is at most
    ``1 / (n min_c pi_c) + 1 / n``.

    Args:
      X: ``(n, d)`` encoded records in [-1, 1].
      y: ``(n,)`` class indices.
      class_proportions: ``(K,)`` public or DP proportions.
      num_records: the divisor ``n``: public, or a DP count ``n_hat`` (the front door's; the scores
        are sums divided by it, so the sensitivity above holds with ``n_hat`` as well).

    Returns:
      ``(scores (d,), sensitivity)``.
    """
    X = np.clip(np.asarray(X, np.float64), -1.0, 1.0)
    y = np.asarray(y)
    proportions = np.asarray(class_proportions, np.float64)
    n = float(num_records)
    overall = X.sum(axis=0) / n
    per_class = np.stack([X[y == c].sum(axis=0) / (n * proportions[c]) for c in range(proportions.size)])
    scores = np.max(np.abs(per_class - overall[None, :]), axis=0)
    sensitivity = 1.0 / (n * proportions.min()) + 1.0 / n
    return scores, sensitivity


def exponential_mechanism(rng: np.random.Generator, utilities, epsilon: float, sensitivity: float,
                          monotone: bool = False) -> int:
    """One draw of the exponential mechanism: index ``i`` with probability ``∝ exp(eps u_i / (2 Δ))``
    (``eps u_i / Δ`` when ``monotone``), by inverting the float64 CDF at a 128-bit uniform.

    ``epsilon = inf`` returns the argmax. Could one record change this? Only through the utilities,
    each of sensitivity ``Δ``; the draw itself reads nothing else.
    """
    utilities = np.asarray(utilities, np.float64)
    if math.isinf(epsilon):
        return int(np.argmax(utilities))
    scale = epsilon / (sensitivity if monotone else 2.0 * sensitivity)
    logits = utilities * scale
    weights = np.exp(logits - logits.max())
    cumulative = np.cumsum(weights / weights.sum())
    high, low = rng.integers(0, 2**64, size=2, dtype=np.uint64)
    uniform = (float(high) + (float(low) + 0.5) / 2.0**64) / 2.0**64
    return int(min(np.searchsorted(cumulative, uniform * cumulative[-1], side="left"), len(utilities) - 1))


def exponential_top_k(key, scores, num_selected: int, epsilon_per_selection: float,
                      sensitivity: float) -> jax.Array:
    """Selects ``k`` indices by ``k`` exponential-mechanism draws without replacement.

    Args:
      key: the mechanism's generator (or a JAX key, for tests).
      scores: ``(d,)`` utility of each candidate.
      num_selected: ``k``.
      epsilon_per_selection: ``epsilon`` of each of the ``k`` selections (``inf``: exact top-k).
      sensitivity: of each score under adding or removing one record.

    Returns:
      ``(k,)`` int32 indices, sorted ascending.
    """
    from zodc.privacy.noise import as_generator

    scores = np.asarray(scores, np.float64)
    if math.isinf(epsilon_per_selection):
        return jnp.sort(jax.lax.top_k(jnp.asarray(scores), num_selected)[1]).astype(jnp.int32)
    rng = as_generator(key)
    remaining = list(range(len(scores)))
    chosen = []
    for _ in range(num_selected):
        pick = exponential_mechanism(rng, scores[remaining], epsilon_per_selection, sensitivity)
        chosen.append(remaining.pop(pick))
    return jnp.asarray(sorted(chosen), jnp.int32)


def calibrate_selection_epsilon(target_epsilon: float, target_delta: float, num_selected: int,
                                base_events: Sequence[Event] = (), orders=DEFAULT_ORDERS,
                                tolerance: float = 1e-4) -> float:
    """Largest per-selection epsilon such that ``k`` selections (plus ``base_events``) meet the target.

    Bisection (the composition's epsilon grows with the per-selection epsilon); rounded down so the
    target is never exceeded.
    """
    if math.isinf(target_epsilon):
        return math.inf
    base = RdpAccountant(orders)
    for event in base_events:
        base.compose(event)

    def spent(per_selection: float) -> float:
        return base.copy().compose(SelfComposedEvent(ExponentialMechanismEvent(per_selection), num_selected)).get_epsilon(target_delta)

    if spent(0.0) >= target_epsilon:
        raise PrivacyBudgetError(f"the mechanisms before feature selection already spend epsilon {spent(0.0):.4g} "
                                 f">= {target_epsilon}.")
    low, high = 0.0, 1.0
    while spent(high) < target_epsilon:
        low, high = high, high * 2.0
        if high > 1e6:
            return low
    while high - low > tolerance * max(low, 1e-12):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if spent(middle) <= target_epsilon else (low, middle)
    return low


def select_features(key: jax.Array, X: np.ndarray, y: np.ndarray, num_selected: int, class_proportions: Sequence[float],
                    num_records: int, epsilon_per_selection: float) -> tuple[np.ndarray, Event]:
    """Privately selects ``k`` encoded feature columns by class separation.

    Returns:
      ``(indices (k,) sorted, event)``: the event to put in the ledger
      (``k`` exponential-mechanism selections at ``epsilon_per_selection``).

    Raises:
      ConfigError: ``num_selected`` not in ``[1, d]``.
    """
    d = np.asarray(X).shape[1]
    if isinstance(num_selected, bool) or not isinstance(num_selected, (int, np.integer)) or not 1 <= num_selected <= d:
        raise ConfigError(f"`select_features` must be an integer in [1, {d}] (the encoded columns). Got {num_selected!r}.")
    scores, sensitivity = class_separation_scores(X, y, class_proportions, num_records)
    indices = np.asarray(exponential_top_k(key, scores, int(num_selected), epsilon_per_selection, sensitivity))
    event = SelfComposedEvent(ExponentialMechanismEvent(0.0 if math.isinf(epsilon_per_selection) else epsilon_per_selection),
                              int(num_selected))
    return indices, event
