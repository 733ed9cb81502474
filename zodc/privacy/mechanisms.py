"""Device-side DP mechanisms: Poisson sampling, per-record clipping, the noisy clipped sum.

Pure, jit- and vmap-friendly JAX functions; the PRNG key is always the first argument. Together
they implement one Poisson-subsampled Gaussian mechanism with L2 sensitivity ``l2_norm_clip``
under add-or-remove-one neighbours (Abadi et al., 2016, arXiv:1607.00133), which the accountant
describes as ``PoissonSampledEvent(sampling_probability, GaussianEvent(noise_multiplier))``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from zodc import _random
from zodc.errors import ConfigError

__all__ = ["clip_rows", "grid_noisy_sum", "noisy_clipped_sum", "poisson_mask"]

#: Rows are clipped to ``C (1 - 2^-12)`` before they are truncated onto the grid: float32's error in
#: a row's norm and in the scaling (a few ulp per direction) stays far inside that margin, so the
#: truncated integer row never exceeds ``C / Lambda`` in L2.
_CLIP_MARGIN = 1.0 - 2.0**-12


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _check_nonnegative(name: str, value) -> None:
    # Traced values cannot be checked here; the host-side wrappers (condense / estimator) validate
    # hyperparameters before tracing, so only eager calls with bad constants reach this check.
    if _is_concrete(value) and jnp.ndim(value) == 0 and not float(value) >= 0.0:
        raise ConfigError(f"`{name}` must be >= 0. Got {float(value)}.")


def is_key_pair(key) -> bool:
    """Whether ``key`` is a ``(2,)`` array of typed PRNG keys (a legacy raw ``uint32[2]`` key is one key)."""
    return (jnp.ndim(key) == 1 and key.shape[0] == 2
            and jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key))


def poisson_mask(key: jax.Array, num_records: int, sampling_probability: float | jax.Array) -> jax.Array:
    """Poisson sampling: each of ``num_records`` records is kept independently with probability p.

    ``key`` may be one key or a ``(2,)`` array of keys: the mask's uniforms are then built from the
    XOR of both keys' random bits, so the mask is secret while either 64-bit key is (128 bits of
    entropy for the run's keys, see :mod:`zodc.privacy.keys`).

    A mask over all records keeps shapes static under ``jit``; the batch size is random, as the
    accounting of Poisson subsampling requires (a truncated or fixed-size batch would not be).

    Args:
        key: PRNG key.
        num_records: n (static).
        sampling_probability: p in [0, 1] (may be traced).

    Returns:
        bool array of shape (n,).

    Raises:
        ConfigError: for a concrete ``sampling_probability`` outside [0, 1] or negative ``num_records``.
    """
    if isinstance(num_records, bool) or not isinstance(num_records, int) or num_records < 0:
        raise ConfigError(f"`num_records` must be a non-negative integer. Got {num_records}.")
    if _is_concrete(sampling_probability) and not 0.0 <= float(sampling_probability) <= 1.0:
        raise ConfigError(f"`sampling_probability` must be in [0, 1]. Got {float(sampling_probability)}.")
    # uniform is in [0, 1): p = 1 keeps every record and p = 0 none, exactly.
    if is_key_pair(key):
        bits = _random.bits(key[0], (num_records,)) ^ _random.bits(key[1], (num_records,))
        uniform = (bits >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)  # exact, in [0, 1)
        return uniform < sampling_probability
    return _random.uniform(key, (num_records,)) < sampling_probability


def clip_rows(values: jax.Array, l2_norm_clip: float | jax.Array) -> jax.Array:
    """Scales each row to L2 norm at most ``l2_norm_clip``: ``x_i * min(1, C / ||x_i||)``.

    Rows already within the bound are returned unchanged (bit for bit), so ``C = inf`` is the
    identity, and zero rows stay zero without a 0/0.

    Args:
        values: (n, q) per-record vectors.
        l2_norm_clip: C >= 0, possibly ``inf`` (may be traced).

    Returns:
        (n, q) array of the same dtype.

    Raises:
        ConfigError: for a concrete negative ``l2_norm_clip`` or ``values`` that is not 2-D.
    """
    if jnp.ndim(values) != 2:
        raise ConfigError(f"`values` must have shape (n, q). Got shape {jnp.shape(values)}.")
    _check_nonnegative("l2_norm_clip", l2_norm_clip)
    values = jnp.asarray(values)
    clip = jnp.asarray(l2_norm_clip, dtype=values.dtype)
    # Norm via the row's max-abs scale: squaring entries above ~1e19 would overflow float32 to inf
    # and clip the row to zero instead of to norm C.
    scale = jnp.max(jnp.abs(values), axis=1, keepdims=True)
    safe_scale = jnp.where(scale > 0, scale, 1.0)
    norms = scale * jnp.sqrt(jnp.sum(jnp.square(values / safe_scale), axis=1, keepdims=True))
    too_long = norms > clip
    # Factor 1 outside the clipped rows keeps C = inf from producing inf * 0 = NaN there (and in gradients).
    factor = jnp.where(too_long, clip / jnp.where(too_long, norms, 1.0), 1.0)
    # Select rather than multiply by 1, so rows within the bound pass through untouched.
    return jnp.where(too_long, values * factor, values)


def noisy_clipped_sum(
    key: jax.Array,
    values: jax.Array,
    mask: jax.Array,
    l2_norm_clip: float | jax.Array,
    noise_multiplier: float | jax.Array,
) -> jax.Array:
    """Gaussian mechanism on the sum of clipped, sampled rows: ``sum_{i: mask_i} clip(x_i) + N(0, (sigma C)^2 I_q)``,
    with *simulated* float32 noise — for research and throughput runs, never for a release: a float32
    normal is not the accountant's Gaussian (finite atoms, bounded support; :mod:`zodc.privacy.noise`).
    Releases use :func:`grid_noisy_sum`.

    Adding or removing one record moves the clipped sum by at most C in L2, so with noise std
    ``sigma * C`` this is ``GaussianEvent(sigma)``; with a Poisson ``mask`` it is
    ``PoissonSampledEvent(p, GaussianEvent(sigma))``.

    Args:
        key: PRNG key for the noise.
        values: (n, q) per-record vectors.
        mask: (n,) bool (or 0/1) inclusion mask, e.g. from :func:`poisson_mask`.
        l2_norm_clip: C >= 0, possibly ``inf`` (then sigma must be 0 for a finite result).
        noise_multiplier: sigma >= 0; 0 gives the exact clipped sum.

    Returns:
        (q,) array in ``values``' dtype.

    Raises:
        ConfigError: for mismatched shapes or concrete negative ``l2_norm_clip`` / ``noise_multiplier``.
    """
    values = jnp.asarray(values)
    mask = jnp.asarray(mask)
    if jnp.ndim(values) != 2 or jnp.shape(mask) != jnp.shape(values)[:1]:
        raise ConfigError(
            f"`values` must have shape (n, q) and `mask` shape (n,). Got {jnp.shape(values)} and {jnp.shape(mask)}."
        )
    _check_nonnegative("noise_multiplier", noise_multiplier)
    clipped = clip_rows(values, l2_norm_clip)
    total = jnp.sum(jnp.where(mask.astype(bool)[:, None], clipped, 0.0), axis=0)
    return add_simulated_noise(key, total, l2_norm_clip, noise_multiplier)


def add_simulated_noise(key: jax.Array, total: jax.Array, l2_norm_clip, noise_multiplier) -> jax.Array:
    """``total + N(0, (sigma C)^2 I)`` in float32 (:func:`noisy_clipped_sum`'s noise: research runs only)."""
    sigma = jnp.asarray(noise_multiplier, dtype=total.dtype)
    clip = jnp.asarray(l2_norm_clip, dtype=total.dtype)
    # sigma = 0 must mean "no noise" even when C = inf (0 * inf would be NaN).
    noise_std = jnp.where(sigma == 0, 0.0, sigma * clip)
    noise = jax.random.normal(key, total.shape, dtype=total.dtype)
    return total + noise_std * noise


def grid_noisy_sum(values: jax.Array, mask: jax.Array, l2_norm_clip: float | jax.Array,
                   noise_units: jax.Array) -> jax.Array:
    """The Gaussian mechanism on the clipped sum, with noise the accountant can trust.

    Each sampled row is clipped to L2 norm ``C`` (less a 2^-12 margin for float32's rounding),
    truncated toward zero onto the grid ``Lambda = C 2^-GRID_BITS`` (so its integer norm stays
    ``<= 2^GRID_BITS``), and the integer rows are summed exactly in int32; the noise
    ``noise_units`` are integers, ``round(N(0, (sigma 2^GRID_BITS)^2))`` from
    :func:`zodc.privacy.noise.rounded_gaussian`. ``(sum + noise) Lambda`` is then post-processing of
    the real-valued Gaussian mechanism with sensitivity ``C`` and noise ``sigma C``:
    ``GaussianEvent(sigma)``, exactly (:mod:`zodc.privacy.noise`).

    Could one record change this? It adds (or removes) one integer row of L2 norm at most
    ``2^GRID_BITS``; nothing else depends on it. Rows outside ``mask`` are not read.

    ``C = inf`` (the non-private reference) returns the exact float sum, ignoring ``noise_units``.

    Args:
      values: ``(n, q)`` per-record vectors.
      mask: ``(n,)`` bool inclusion mask.
      l2_norm_clip: ``C > 0`` (may be traced), or ``inf``.
      noise_units: ``(q,)`` int32 noise in grid units.

    Returns:
      ``(q,)`` float32 noisy sum.
    """
    values = jnp.asarray(values)
    mask = jnp.asarray(mask).astype(bool)
    if jnp.ndim(values) != 2 or jnp.shape(mask) != jnp.shape(values)[:1]:
        raise ConfigError(
            f"`values` must have shape (n, q) and `mask` shape (n,). Got {jnp.shape(values)} and {jnp.shape(mask)}."
        )
    if jnp.shape(noise_units) != jnp.shape(values)[1:]:
        raise ConfigError(f"`noise_units` must have shape (q,) = {jnp.shape(values)[1:]}. Got {jnp.shape(noise_units)}.")
    _check_nonnegative("l2_norm_clip", l2_norm_clip)
    return _grid_noisy_sum(values, mask, jnp.asarray(l2_norm_clip, values.dtype), jnp.asarray(noise_units, jnp.int32))


@jax.jit
def _grid_noisy_sum(values, mask, l2_norm_clip, noise_units):
    # One compiled program (called eagerly it would be a dozen, each compiled for its own shapes).
    return release_grid_sum(clipped_sums(values, mask, l2_norm_clip), l2_norm_clip, noise_units)


class ClippedSums(NamedTuple):
    """The sums of one batch (or one block of it) before noise; blocks add up field by field.

    Attributes:
      units: ``(q,)`` int32 sum of the rows clipped (with the grid margin) and truncated onto the grid
        ``C 2^-GRID_BITS`` (:func:`grid_noisy_sum`): integers, so the sum is exact in any order —
        over record blocks or devices alike.
      clipped: ``(q,)`` float sum of the rows clipped to ``C`` (the simulated-noise path).
      exact: ``(q,)`` float sum of the unclipped rows (``C = inf``, the non-private reference).
    """

    units: jax.Array
    clipped: jax.Array
    exact: jax.Array


def clipped_sums(values: jax.Array, mask: jax.Array, l2_norm_clip) -> ClippedSums:
    """The :class:`ClippedSums` of the sampled rows of ``values`` (``(b, q)``, ``mask`` ``(b,)``).

    Could one record change this? Only its own row's terms: its clipped row (norm ``<= C``), its grid
    row (integer norm ``<= 2^GRID_BITS``) and, without a clip, its raw row."""
    from zodc.privacy.noise import GRID_BITS

    dtype = values.dtype
    mask = jnp.asarray(mask).astype(bool)[:, None]
    clip = jnp.asarray(l2_norm_clip, dtype)
    finite = jnp.isfinite(clip)
    safe_clip = jnp.where(finite, clip, 1.0)
    grid = safe_clip * (2.0**-GRID_BITS)
    units = jnp.trunc(clip_rows(values, safe_clip * _CLIP_MARGIN) / grid).astype(jnp.int32)
    return ClippedSums(units=jnp.sum(jnp.where(mask, units, 0), axis=0, dtype=jnp.int32),
                       clipped=jnp.sum(jnp.where(mask, clip_rows(values, l2_norm_clip), 0.0), axis=0),
                       exact=jnp.sum(jnp.where(mask, values, 0.0), axis=0))


def release_grid_sum(sums: ClippedSums, l2_norm_clip, noise_units: jax.Array) -> jax.Array:
    """``(units + noise) C 2^-GRID_BITS``: the grid Gaussian mechanism's release (:func:`grid_noisy_sum`);
    the exact float sum when ``C = inf``."""
    from zodc.privacy.noise import GRID_BITS

    dtype = sums.exact.dtype
    clip = jnp.asarray(l2_norm_clip, dtype)
    finite = jnp.isfinite(clip)
    grid = jnp.where(finite, clip, 1.0) * (2.0**-GRID_BITS)
    noisy = (sums.units + jnp.asarray(noise_units, jnp.int32)).astype(dtype) * grid
    return jnp.where(finite, noisy, sums.exact)
