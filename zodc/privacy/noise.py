"""Noise the accountant can trust: an exact sampler of the rounded Gaussian, and the secret generator.

Why not ``jax.random.normal``: a float32 normal has 2^23 atoms and bounded support
([-5.42, 5.22]), so a record's shift can put the output where its neighbour's output cannot occur
at all (Mironov 2012, "On significance of the least significant bits for differential privacy").
The accountant assumes the real-valued Gaussian; the sampled one must be it, or a post-processing
of it.

What zodc does instead (snapping to a grid, after Mironov 2012):

* The private quantity is made an **integer** on a public grid: counts already are; a clipped sum
  is the sum of each record's clipped vector truncated toward zero onto the grid
  ``Lambda = C 2^-GRID_BITS`` (:func:`zodc.privacy.mechanisms.grid_noisy_sum`). Truncation toward
  zero never lengthens a vector, so one record still moves the integer sum by at most
  ``C / Lambda = 2^GRID_BITS`` in L2: the sensitivity is unchanged, in grid units.
* The noise is ``round(Y)``, ``Y ~ N(0, s^2)`` with ``s = sigma 2^GRID_BITS`` (``s = sigma *
  sensitivity`` for counts). For an integer ``a``, ``a + round(Y) = round(a + Y)``: the released
  value is **post-processing of the real-valued Gaussian mechanism** with exactly the noise
  multiplier the accountant was given. Nothing about the accounting changes.
* ``round(Y)`` is sampled by inverting its CDF at a **256-bit** uniform ``U``: the integer ``j``
  with ``Phi((j - 1/2) / s) < U <= Phi((j + 1/2) / s)``. Each comparison is first made in float64
  with a relative guard of 1e-12 (scipy's ``ndtr`` is accurate to a few ulp, and the
  float64 rounding of ``(j +- 1/2) / s`` moves ``Phi`` by at most ``x^2 2^-53`` relatively, below
  5e-14 for ``|x| <= 19``); the rare comparisons inside the guard are decided with mpmath at 400
  bits. Every outcome's probability then differs from the ideal one by at most ``2^-256`` (the
  granularity of ``U``) plus mpmath's error (``< 2^-380``), and only ``|j| <= 19 s + 1`` is
  reachable, so the total-variation distance of one draw from ``round(N(0, s^2))`` is at most
  :func:`sampling_tv_bound` ``= (19 s + 2) 2^-255``.
* That distance is *accounted*, not ignored: over ``D`` draws the implemented release is within TV
  ``D eta`` of the ideal one, so an ``(epsilon, delta)`` guarantee of the ideal holds for the
  implementation with ``delta + (1 + e^epsilon) D eta``. The ledger carries it as an
  ``AdditiveDeltaEvent`` (``"noise_sampling"``): below 1e-60 for a default run, negligible even at
  epsilon 100.

Randomness: every draw comes from :func:`secret_generator`, a numpy PCG64 (128-bit state) seeded
from 128 bits of OS entropy by default, or from a secret seed given for reproducible research.
"""

from __future__ import annotations

import math
import secrets
from typing import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from zodc.errors import ConfigError

__all__ = ["GRID_BITS", "rounded_gaussian", "sampling_tv_bound", "secret_generator", "fresh_seed",
           "noise_sampling_delta"]

#: Grid of a clipped sum: ``Lambda = C 2^-GRID_BITS``. 2^-10 of the clip is far below the noise
#: (``sigma C``) and keeps integer sums of up to 2^21 records inside int32.
GRID_BITS = 10
_GUARD = 1e-12
_MPMATH_PRECISION = 400
_REACH = 19.0  # Phi^-1(2^-257) = -18.9: no 256-bit uniform reaches further


def fresh_seed() -> int:
    """A 128-bit seed from the operating system's entropy (``secrets``)."""
    return secrets.randbits(128)


def secret_generator(seed: int, path: Sequence[int] = ()) -> np.random.Generator:
    """A PCG64 generator (128-bit state) for one mechanism: ``seed`` is the run's secret, ``path``
    names the mechanism (``zodc.privacy.keys``), so two mechanisms never share a stream."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"`seed` must be a non-negative integer. Got {type(seed).__name__}.")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=tuple(path))))


def _uniform256(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` uniforms ``U = (k + 1/2) / 2^256``, ``k`` 256 random bits, as ``(4, size)`` uint64 words
    (most significant first)."""
    return rng.integers(0, 2**64, size=(4, size), dtype=np.uint64, endpoint=False)


def _exact_cdf_below(j: int, scale: float, words, upper: bool) -> bool:
    """Exactly (to 2^-380): is ``V <= Phi((j + 1/2) / s)`` (``upper``) or ``V <= Phi((j - 1/2) / s)``,
    ``V = (k + 1/2) / 2^256`` with ``k`` the four 64-bit ``words``?"""
    import mpmath

    k = 0
    for word in words:
        k = (k << 64) | int(word)
    with mpmath.workprec(_MPMATH_PRECISION):
        v = (mpmath.mpf(k) + mpmath.mpf(0.5)) / mpmath.mpf(2) ** 256
        edge = (mpmath.mpf(2 * j + (1 if upper else -1))) / (2 * mpmath.mpf(float(scale)))
        return bool(v <= mpmath.ncdf(edge))


def rounded_gaussian(rng: np.random.Generator, scale: float, shape) -> np.ndarray:
    """Samples ``round(Y)``, ``Y ~ N(0, scale^2)``, exactly up to :func:`sampling_tv_bound` per draw.

    Args:
      rng: a generator from :func:`secret_generator`.
      scale: the standard deviation ``s > 0`` in the integer grid's units (0 gives zeros).
      shape: output shape.

    Returns:
      int64 array of ``shape``.
    """
    scale = float(scale)
    if not (math.isfinite(scale) and scale >= 0):
        raise ConfigError(f"`scale` must be a finite number >= 0. Got {scale}.")
    shape = tuple(np.atleast_1d(shape)) if not isinstance(shape, tuple) else shape
    size = int(np.prod(shape, dtype=np.int64))
    if scale == 0.0 or size == 0:
        return np.zeros(shape, np.int64)
    words = _uniform256(rng, size)
    # Symmetry: sample from V = min(U, 1 - U) <= 1/2 (exactly: 1 - U = (k' + 1/2) / 2^256 with
    # k' = 2^256 - 1 - k, i.e. every word complemented) and negate for U > 1/2.
    upper_half = words[0] >= np.uint64(2**63)
    words = np.where(upper_half[None, :], ~words, words)
    high, low = words[0], words[1]
    v = (high.astype(np.float64) + (low.astype(np.float64) + 0.5) / 2.0**64) / 2.0**64  # relative error <= 2^-52
    j = np.minimum(np.rint(scale * ndtri(v)), 0.0)
    for _ in range(64):
        below = ndtr((j - 0.5) / scale)
        above = ndtr((j + 0.5) / scale)
        up = v * (1 - _GUARD) > above * (1 + _GUARD)       # surely V > Phi((j + 1/2)/s): j too small
        down = v * (1 + _GUARD) <= below * (1 - _GUARD)    # surely V <= Phi((j - 1/2)/s): j too large
        if not (up.any() or down.any()):
            break
        j = j + up - down
    below = ndtr((j - 0.5) / scale)
    above = ndtr((j + 0.5) / scale)
    sure = (v * (1 + _GUARD) <= above * (1 - _GUARD)) & (v * (1 - _GUARD) > below * (1 + _GUARD))
    for index in np.flatnonzero(~sure):  # inside the guard: decide exactly
        candidate = int(j[index])
        while True:  # Phi is monotone: each move is toward the one j that brackets V
            if not _exact_cdf_below(candidate, scale, words[:, index], upper=True):
                candidate += 1
            elif _exact_cdf_below(candidate, scale, words[:, index], upper=False):
                candidate -= 1
            else:
                break
        j[index] = candidate
    result = np.where(upper_half, -j, j).astype(np.int64)
    return result.reshape(shape)


def sampling_tv_bound(scale: float) -> float:
    """Total-variation distance of one :func:`rounded_gaussian` draw from ``round(N(0, scale^2))``:
    at most ``2^-256`` per reachable outcome (``|j| <= 19 scale + 1``) plus the unreachable tail
    (``2 Phi(-18.9) < 2^-256``), halved."""
    return (_REACH * float(scale) + 2.0) * 2.0**-255


def noise_sampling_delta(epsilon: float, draws: Sequence[tuple[float, int]]) -> float:
    """The delta the sampler's inexactness adds to an ``(epsilon, delta)`` guarantee:
    ``(1 + e^epsilon) sum_i count_i sampling_tv_bound(scale_i)`` over ``(scale, count)`` pairs.

    If every output distribution of the implementation is within TV ``eta`` of the ideal
    mechanism's, then ``P[M'(D) in S] <= P[M(D) in S] + eta <= e^eps P[M(D') in S] + delta + eta
    <= e^eps P[M'(D') in S] + delta + (1 + e^eps) eta``."""
    eta = sum(count * sampling_tv_bound(scale) for scale, count in draws)
    if not math.isfinite(epsilon):
        return 0.0 if eta == 0 else min(1.0, eta)
    return min(1.0, (1.0 + math.exp(min(epsilon, 700.0))) * eta)


def as_generator(source) -> np.random.Generator:
    """A mechanism's generator from ``source``: a numpy ``Generator`` (returned as is) or a JAX key
    (its key data seed a PCG64: reproducible, for tests and research code that hold JAX keys)."""
    if isinstance(source, np.random.Generator):
        return source
    try:
        import jax

        data = np.asarray(jax.random.key_data(source), np.uint64).ravel()
    except Exception:  # noqa: BLE001 - anything that is not a key
        raise ConfigError(f"expected a numpy Generator or a JAX key. Got {type(source).__name__}.") from None
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(word) for word in data])))
