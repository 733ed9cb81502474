"""Where the synthetic table starts: :class:`DPMeans` (the default) or :class:`NoiseStart`.

``Condenser(init=DPMeans(share=0.5))``: each synthetic row starts at its group's DP mean (its class;
survival: its event status) plus ``N(0, scale^2)``. Why the default: a noise start often sits where
no real record is (skewed columns crowd one end of their public bounds), so the fitted model sends
every record the same way and the zero-order loss is flat; over 30 paired seeds at epsilon 1 the
DP-means start raised tree AUROC by +0.06 on breast cancer and +0.03 on diabetes, logistic by +0.09
on diabetes, and (with the survival learning rate 0.02 and spread 0.2) Cox's C-index on gbsg2 by
+0.060 (``docs/ablation.md``, rounds 9-14).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from zodc._params import Interval, validate_params
from zodc.budget import Budget
from zodc.errors import ConfigError
from zodc.privacy.calibration import calibrate_noise_multiplier
from zodc.privacy.events import GaussianEvent
from zodc.privacy.keys import RunKeys
from zodc.privacy.moments import dp_group_means
from zodc.privacy.noise import GRID_BITS

CLIP_PER_SQRT_D = 0.5  # default L2 clip of each encoded row, per sqrt(width) (public)
SPREAD_CLIP_PER_SQRT_D = 0.5  # L2 clip of each row's absolute deviations from its DP group mean, per sqrt(width)
SPREAD_FLOOR = 0.02    # the smallest spread a column is given, in encoded units (1 % of its public range)
NORMAL_MAD = math.sqrt(math.pi / 2.0)  # standard deviation / mean absolute deviation of a normal


# Research (round 28, lost): the loop in the data's units. SPREAD_SHARE of the start's mechanism is spent
# on each column's DP spread within the groups (the pooled mean absolute deviation from the DP group
# means); the start's spread, the smoothing, the step size and a trust region are then multiples of
# it (zodc.estimator's SMOOTHING / TRUST_RADIUS, the tasks' *_data settings). 0: the public bounds' units.
SPREAD_SHARE = 0.0


class Start(NamedTuple):
    """What a start hands the loop: the ``(m, width)`` table, the key of its spread, and the
    ``(width,)`` per-column spread that sets the loop's units (``None``: the public bounds' units).
    Every field is public or DP (in the ledger) or data independent."""

    table: jax.Array
    key: jax.Array
    spread: np.ndarray | None


def _check(field: str, value, *allowed) -> None:
    """The start's setting ``field`` against ``allowed``; the error names it as ``init_<field>``
    (the flat name and CLI flag) and as the object's field."""
    try:
        validate_params({f"init_{field}": value}, {f"init_{field}": list(allowed)})
    except ConfigError as error:
        raise ConfigError(f"{error} (the start's `{field}`)") from None


@dataclasses.dataclass(frozen=True)
class NoiseStart:
    """``N(0, scale^2)`` per encoded cell, clamped to [-1, 1]: data independent, no privacy cost."""

    scale: float = 0.5

    def __post_init__(self):
        _check("scale", self.scale, Interval(float, 0, None, closed="neither"))

    def table(self, keys: RunKeys, budget: Budget, values, groups, row_groups, num_groups: int,
              group_sizes: Callable[[], np.ndarray], what: str, task_scale: float):
        key = keys.jax_keys("start_spread")[0]
        return Start(jnp.clip(self.scale * jax.random.normal(key, (len(row_groups), values.shape[1])), -1.0, 1.0),
                     key, None)


@dataclasses.dataclass(frozen=True)
class DPMeans:
    """Each row at its group's DP mean of the encoded real rows, plus ``N(0, scale^2)``.

    Attributes:
      share: share of ``epsilon`` for the one Gaussian mechanism of the means (the steps are
        calibrated to what is left, so the release still meets ``epsilon``); 0.5 beat 0.1, 0.3,
        0.7 and 0.9 (round 9).
      scale: spread of the rows around their mean in encoded units (``None``: the task's — 0.1
        classification, 0.2 survival: Cox on 50 rows piled at two means is ill-determined, rounds
        11-13).
      clip: each encoded row is clipped to L2 norm ``clip * sqrt(d)`` before summing (1 never clips).
      centre: deprecated ablation (lost: rounds 24-26; removed in the next release): a share of
        the start's budget spent first on a DP mean of all rows, around which rows are clipped.
    """

    share: float = 0.5
    scale: float | None = None
    clip: float = CLIP_PER_SQRT_D
    centre: float = 0.0

    def __post_init__(self):
        _check("share", self.share, Interval(float, 0, 1, closed="neither"))
        _check("scale", self.scale, None, Interval(float, 0, None, closed="neither"))
        _check("clip", self.clip, Interval(float, 0, None, closed="neither"))
        _check("centre", self.centre, Interval(float, 0, 1, closed="left"))
        if self.centre + SPREAD_SHARE >= 1.0:
            raise ConfigError(f"The start's `centre` share must leave a share for the means (< 1). "
                              f"Got {self.centre} (and {SPREAD_SHARE} for the spread).")

    def sigmas(self, budget: Budget) -> tuple[float, float, float]:
        """Noise multipliers ``(centre, spread, group means)``: one Gaussian mechanism's ``sigma`` at
        ``share`` of epsilon, split as ``sigma / sqrt(c)``, ``sigma / sqrt(v)`` and ``sigma / sqrt(1 -
        c - v)`` (their RDP curves add up to the one mechanism's; ``inf`` for a part with no share).
        Public inputs."""
        sigma = calibrate_noise_multiplier(budget.epsilon * self.share, budget.delta, GaussianEvent)
        part = lambda share: sigma / math.sqrt(share) if share > 0 else math.inf
        return part(self.centre), part(SPREAD_SHARE), part(1.0 - self.centre - SPREAD_SHARE)

    def difference_noise(self, budget: Budget, width: int, record_count: float, event_rate: float) -> float:
        """Std per encoded coordinate of the DP noise on the difference of the two group means
        (event and censored): ``sigma * clip * sqrt(d) * sqrt(1/n_1^2 + 1/n_0^2)``, 0 without noise.
        Post-processing of public or already-DP inputs (``n_hat``, the event rate)."""
        if not budget.private:
            return 0.0
        events = max(record_count * event_rate, 1.0)
        censored = max(record_count * (1.0 - event_rate), 1.0)
        return self.sigmas(budget)[2] * self.clip * math.sqrt(width) * math.sqrt(1.0 / events**2 + 1.0 / censored**2)

    def table(self, keys: RunKeys, budget: Budget, values, groups, row_groups, num_groups: int,
              group_sizes: Callable[[], np.ndarray], what: str, task_scale: float) -> Start:
        """The start: the ``(m, width)`` table, the key of its spread and the per-column spread.

        Could this leak? Only through Gaussian mechanisms (:func:`~zodc.privacy.moments.dp_group_means`)
        whose noise multipliers split one mechanism at ``share`` of epsilon (:meth:`sigmas`), each in
        the ledger: the group means (rows clipped to L2 norm ``clip sqrt(width)``) and, with ``SPREAD_SHARE
        > 0``, the pooled absolute deviations of the rows from their group's *DP* mean (each row's
        ``(width,)`` vector of deviations clipped to L2 norm ``0.5 sqrt(width)``: one record moves the
        one sum by at most that). The group sizes they divide by (``group_sizes()``, called only for
        a private start) are the DP ``n_hat`` times public or DP proportions, already in the ledger.
        Without privacy: the exact means and spreads over the exact group sizes (the non-private
        reference)."""
        width = values.shape[1]
        scale = task_scale if self.scale is None else float(self.scale)
        key = keys.jax_keys("start_spread")[0]  # post-processing noise, data independent
        groups = np.asarray(groups, np.int64)
        centre = None
        if budget.private:
            centre_sigma, spread_sigma, sigma = self.sigmas(budget)
            row_clip = self.clip * math.sqrt(width)
            sizes = group_sizes()
            if math.isfinite(centre_sigma):
                centre_clip = CLIP_PER_SQRT_D * math.sqrt(width)
                centre, centre_event = dp_group_means(
                    keys.generator("start_centre"), values, np.zeros(len(groups), np.int64), 1,
                    [float(group_sizes().sum())], centre_clip, centre_sigma)
                budget.draw(centre_sigma * 2.0**GRID_BITS, width)
                centre = centre[0]
                budget.add("initialisation_centre", centre_event, f"DP mean of all encoded rows (clipped to L2 "
                           f"norm {centre_clip:.3g}), the centre the start's {what} means clip around")
        else:
            spread_sigma, sigma, row_clip = 0.0, 0.0, math.inf
            sizes = np.maximum(np.bincount(groups, minlength=num_groups), 1).astype(np.float64)
        means, event = dp_group_means(keys.generator("start_means"), values, groups, num_groups, sizes, row_clip,
                                      sigma, centre=centre)
        budget.draw(sigma * 2.0**GRID_BITS, num_groups * width)
        budget.add("initialisation", event, f"DP {what} means of the encoded rows (clipped to L2 norm "
                   f"{row_clip:.3g} around {'the DP centre' if centre is not None else 'the origin'}), the "
                   "synthetic table's starting point")
        spread = None
        if SPREAD_SHARE > 0:
            spread = self._spread(keys, budget, values, groups, means, sizes, spread_sigma, what)
        deviation = np.float32(scale) * (np.float32(1.0) if spread is None else np.asarray(spread, np.float32))
        table = _spread_around(means[np.asarray(row_groups)].astype(np.float32), deviation, key)
        return Start(table, key, spread)

    @staticmethod
    def _spread(keys: RunKeys, budget: Budget, values, groups, means, sizes, sigma: float, what: str) -> np.ndarray:
        """``(width,)`` DP spread of each column within the groups: ``sqrt(pi / 2)`` times the pooled
        mean absolute deviation from the (already released) DP group means, floored at
        ``SPREAD_FLOOR`` and capped at 1. One Gaussian mechanism (:meth:`table`'s docstring);
        dividing by ``sum(sizes)`` (DP) and the floor are post-processing."""
        width = values.shape[1]
        deviations = np.abs(np.asarray(values, np.float64) - means[groups])
        clip = SPREAD_CLIP_PER_SQRT_D * math.sqrt(width) if budget.private else math.inf
        mad, event = dp_group_means(keys.generator("start_deviation"), deviations, np.zeros(len(groups), np.int64),
                                    1, [float(np.sum(sizes))], clip, sigma)
        budget.draw(sigma * 2.0**GRID_BITS, width)
        budget.add("initialisation_spread", event, f"DP mean absolute deviation of the encoded rows from their {what} "
                   f"DP means (each row's deviations clipped to L2 norm {clip:.3g}), the loop's units")
        return np.clip(NORMAL_MAD * mad[0], SPREAD_FLOOR, 1.0)


@jax.jit
def _spread_around(start, deviation, key):
    """``clip(start + deviation N(0, 1), -1, 1)``: the start's rows spread around their means, as one
    compiled program (post-processing of DP means with data-independent noise)."""
    return jnp.clip(start + deviation * jax.random.normal(key, start.shape), -1.0, 1.0)
