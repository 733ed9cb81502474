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
from typing import Callable

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
        return jnp.clip(self.scale * jax.random.normal(key, (len(row_groups), values.shape[1])), -1.0, 1.0), key


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

    def sigmas(self, budget: Budget) -> tuple[float, float]:
        """Noise multipliers ``(centre, group means)``: one Gaussian mechanism's ``sigma`` at
        ``share`` of epsilon, split as ``sigma / sqrt(c)`` and ``sigma / sqrt(1 - c)`` (their RDP
        curves add up to the one mechanism's; ``(inf, sigma)`` without a centre). Public inputs."""
        sigma = calibrate_noise_multiplier(budget.epsilon * self.share, budget.delta, GaussianEvent)
        if self.centre == 0.0:
            return math.inf, sigma
        return sigma / math.sqrt(self.centre), sigma / math.sqrt(1.0 - self.centre)

    def difference_noise(self, budget: Budget, width: int, record_count: float, event_rate: float) -> float:
        """Std per encoded coordinate of the DP noise on the difference of the two group means
        (event and censored): ``sigma * clip * sqrt(d) * sqrt(1/n_1^2 + 1/n_0^2)``, 0 without noise.
        Post-processing of public or already-DP inputs (``n_hat``, the event rate)."""
        if not budget.private:
            return 0.0
        events = max(record_count * event_rate, 1.0)
        censored = max(record_count * (1.0 - event_rate), 1.0)
        return self.sigmas(budget)[1] * self.clip * math.sqrt(width) * math.sqrt(1.0 / events**2 + 1.0 / censored**2)

    def table(self, keys: RunKeys, budget: Budget, values, groups, row_groups, num_groups: int,
              group_sizes: Callable[[], np.ndarray], what: str, task_scale: float):
        """The start ``(m, width)`` and the key of its spread.

        Could this leak? Only through one Gaussian mechanism (:func:`~zodc.privacy.moments.dp_group_means`,
        rows clipped to L2 norm ``clip sqrt(width)``) calibrated to ``share`` of epsilon and put in
        the ledger; the group sizes it divides by (``group_sizes()``, called only for a private
        start) are the DP ``n_hat`` times public or DP proportions, already in the ledger. Without
        privacy: the exact means over the exact group sizes (the non-private reference)."""
        num_rows, width = len(row_groups), values.shape[1]
        scale = task_scale if self.scale is None else float(self.scale)
        key = keys.jax_keys("start_spread")[0]  # post-processing noise, data independent
        groups = np.asarray(groups, np.int64)
        centre = None
        if budget.private:
            centre_sigma, sigma = self.sigmas(budget)
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
            sigma, row_clip = 0.0, math.inf
            sizes = np.maximum(np.bincount(groups, minlength=num_groups), 1).astype(np.float64)
        means, event = dp_group_means(keys.generator("start_means"), values, groups, num_groups, sizes, row_clip,
                                      sigma, centre=centre)
        budget.draw(sigma * 2.0**GRID_BITS, num_groups * width)
        budget.add("initialisation", event, f"DP {what} means of the encoded rows (clipped to L2 norm "
                   f"{row_clip:.3g} around {'the DP centre' if centre is not None else 'the origin'}), the "
                   "synthetic table's starting point")
        start = jnp.asarray(means[np.asarray(row_groups)], jnp.float32)
        return jnp.clip(start + scale * jax.random.normal(key, (num_rows, width)), -1.0, 1.0), key
