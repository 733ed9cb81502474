"""DP group means: the cheap private statistic a synthetic table can start from.

A synthetic table initialised from noise sits wherever the noise puts it, often far from the real
records (a skewed column's records crowd one end of its public bounds), where every split of a tree
fitted on it sends every real record the same way and the zero-order loss is flat. The means of
the real records per class (per event status for survival) put the start inside the data, for a
small share of the budget.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from zodc.errors import ConfigError, DataError
from zodc.privacy.events import GaussianEvent
from zodc.privacy.mechanisms import grid_noisy_sum
from zodc.privacy.noise import GRID_BITS, as_generator, rounded_gaussian
from zodc.runtime import shape_bucket

__all__ = ["dp_group_means"]


def dp_group_means(rng: np.random.Generator, values, groups, num_groups: int, group_sizes, l2_norm_clip: float,
                   noise_multiplier: float, centre=None) -> tuple[np.ndarray, GaussianEvent | None]:
    """Per-group means of the rows of ``values``, released with one Gaussian mechanism.

    Each row's offset from ``centre`` (default: the origin, the public centre of the encoded
    [-1, 1] space) is clipped to L2 norm ``l2_norm_clip``, the clipped offsets are summed per group,
    Gaussian noise of std ``noise_multiplier * l2_norm_clip`` is added to every entry of the
    ``(num_groups, d)`` sums — :func:`~zodc.privacy.mechanisms.grid_noisy_sum` once per group, with
    the exact rounded-Gaussian noise of :mod:`zodc.privacy.noise` —
    and the means are ``centre + sums / group_sizes``. A centre inside the data (a DP mean of all
    rows, :class:`~zodc.Condenser`'s ``init_centre``) lets a smaller clip — less noise — leave the
    rows nearly unclipped; an error in the centre moves only which rows are clipped, not the
    means (an unclipped row's offset adds back to the row). Computed in JAX's default float
    precision (float32 unless x64 is enabled).

    Could this leak? Only through this one Gaussian mechanism. Adding or removing one record
    changes exactly one group's sum, by at most ``l2_norm_clip`` in L2 (the groups are disjoint),
    so the whole matrix of sums has L2 sensitivity ``l2_norm_clip``: ``GaussianEvent(sigma)``. The
    ``centre`` must be public or DP (already in the ledger): it is subtracted from every row before
    clipping and added back after, so the sensitivity is unchanged. The
    divisors ``group_sizes`` must themselves be public or DP (e.g. public ``n`` times the DP class
    proportions already in the ledger); the group labels' *set* is public (the schema's classes, or
    event / censored). Dividing and clamping to [-1, 1] are post-processing.

    Args:
        rng: the mechanism's secret generator (:func:`zodc.privacy.noise.secret_generator`), or a JAX key.
        values: ``(n, d)`` encoded rows.
        groups: ``(n,)`` group indices in ``[0, num_groups)``.
        num_groups: number of public groups (>= 1).
        group_sizes: ``(num_groups,)`` public or DP sizes (> 0) to divide the noisy sums by.
        l2_norm_clip: per-row clip ``R`` > 0 (``inf`` only with ``noise_multiplier == 0``).
        noise_multiplier: ``sigma`` >= 0; 0 releases the exact (clipped) means — not private, for
            the non-private reference run only.
        centre: ``(d,)`` public or DP point to clip around; ``None``: the origin.

    Returns:
        ``(means, event)``: float64 numpy ``(num_groups, d)`` in [-1, 1], and the mechanism's
        ``GaussianEvent`` (``None`` when ``noise_multiplier == 0``).

    Raises:
        ConfigError: a bad clip, noise multiplier or size.
        DataError: ``values`` / ``groups`` of the wrong shape or groups out of range.
    """
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    if values.ndim != 2 or groups.shape != values.shape[:1]:
        raise DataError(f"`values` must be (n, d) and `groups` (n,). Got {values.shape} and {groups.shape}.")
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
        raise ConfigError(f"`num_groups` must be an integer >= 1. Got {num_groups!r}.")
    if groups.size and (not np.issubdtype(groups.dtype, np.integer) or groups.min() < 0 or groups.max() >= num_groups):
        raise DataError(f"`groups` must be integer indices in [0, {num_groups}).")
    sizes = np.asarray(group_sizes, dtype=np.float64)
    if sizes.shape != (num_groups,) or not np.all(np.isfinite(sizes)) or not np.all(sizes > 0):
        raise ConfigError(f"`group_sizes` must be {num_groups} positive finite numbers. Got {sizes}.")
    sigma = float(noise_multiplier)
    clip = float(l2_norm_clip)
    if not sigma >= 0 or not np.isfinite(sigma):
        raise ConfigError(f"`noise_multiplier` must be finite and >= 0. Got {noise_multiplier}.")
    if not clip > 0 or (sigma > 0 and not np.isfinite(clip)):
        raise ConfigError(f"`l2_norm_clip` must be > 0 (and finite when noise is added). Got {l2_norm_clip}.")
    if centre is None:
        centre = np.zeros(values.shape[1])
    centre = np.asarray(centre, dtype=np.float64)
    if centre.shape != values.shape[1:] or not np.all(np.isfinite(centre)):
        raise ConfigError(f"`centre` must be {values.shape[1]} finite numbers. Got shape {centre.shape}.")
    # Each group's sum is the project's Gaussian sum mechanism with the group as its mask; the
    # groups are disjoint, so together they are one GaussianEvent(sigma) (docstring above).
    # The rows are padded to a shape bucket (zero rows in no group, never read: grid_noisy_sum's mask),
    # so one compiled sum serves every group and every run over a cohort of nearby size.
    padded = shape_bucket(len(values))
    rows = np.zeros((padded, values.shape[1]), jax.dtypes.canonicalize_dtype(np.float64))
    rows[:len(values)] = values - centre
    padded_groups = np.full(padded, -1, np.int64)
    padded_groups[:len(groups)] = groups
    noise = rounded_gaussian(as_generator(rng), sigma * 2.0**GRID_BITS, (num_groups, values.shape[1])).astype(np.int32)
    rows = jnp.asarray(rows)
    sums = np.stack([np.asarray(grid_noisy_sum(rows, padded_groups == g, clip, noise[g]), dtype=np.float64)
                     for g in range(num_groups)])
    means = np.clip(centre + sums / sizes[:, None], -1.0, 1.0)
    return means, (GaussianEvent(sigma) if sigma > 0 else None)
