"""Zero-order (function-value-only) gradient estimates over a synthetic table.

The classical models zodc condenses for are not differentiable in their training data, so the
gradient of ``F(S) = mean_i loss(fit(S), z_i)`` is estimated from function values at randomly
perturbed tables (Nesterov & Spokoiny 2017, "Random gradient-free minimization of convex
functions"; Salimans et al. 2017, arXiv:1703.03864 for the antithetic form):

- central (antithetic): ``g = 1/q sum_k [F(S + mu u_k) - F(S - mu u_k)] / (2 mu) u_k``;
- forward: ``g = 1/q sum_k [F(S + mu u_k) - F(S)] / mu u_k`` (``q + 1`` evaluations).

Both are unbiased for the gradient of the Gaussian smoothing ``F_mu(S) = E F(S + mu u)``. For
piecewise-constant models (trees) ``mu`` is a smoothing radius in the table's [-1, 1] units,
not an infinitesimal.

The directions ``u_k`` here are i.i.d. Gaussian by default (the condensers' default is Rademacher,
below); :func:`sample_directions` also draws
orthogonal ones and one-row / one-column blocks, with a factor ``c`` (:func:`direction_scale`,
inside the sum) that keeps ``c E[u u^T] = I``, so the estimate stays unbiased for a smoothed
gradient. Rademacher directions (every cell moved by ``+mu`` or ``-mu``, signs i.i.d. fair: SPSA,
Spall 1992) also have ``E[u u^T] = I``: for a smooth ``F`` the central estimate is unbiased for
``grad F`` up to ``O(mu^2)``, with a little less variance than Gaussian directions (``E u_j^4`` is 1,
not 3), and for piecewise-constant models it estimates the finite differences of ``F`` averaged
over the other cells' signs. They cost one random bit a cell instead of a normal.

Privacy enters between :func:`per_record_differences` and :func:`gradient_from_differences`:
the per-record difference vectors are clipped and summed with noise (``zodc.privacy``), and the
gradient is post-processing of that noisy ``(q,)`` vector and the data-independent directions.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from zodc import _random
from zodc.errors import ConfigError

SCHEMES = ("central", "forward")
DIRECTIONS = ("gaussian", "orthogonal", "rademacher", "rows", "columns")


def check_scheme(scheme: str) -> str:
    """Returns ``scheme`` if it is a known finite-difference scheme, else raises ConfigError."""
    if scheme not in SCHEMES:
        raise ConfigError(f"`scheme` must be one of {list(SCHEMES)}. Got {scheme!r}.")
    return scheme


def num_evaluations(num_directions: int, scheme: str) -> int:
    """How many perturbed tables one estimate evaluates: ``2q`` (central) or ``q + 1`` (forward)."""
    return 2 * num_directions if check_scheme(scheme) == "central" else num_directions + 1


def check_directions(kind: str) -> str:
    """Returns ``kind`` if it is a known kind of direction, else raises ConfigError."""
    if not isinstance(kind, str) or kind not in DIRECTIONS:
        raise ConfigError(f"`directions` must be one of {list(DIRECTIONS)}. Got {kind!r}.")
    return kind


def direction_scale(kind: str, shape: tuple) -> float:
    """The factor ``c`` with ``c E[u u^T] = I`` for one direction ``u`` of ``kind``.

    The estimate ``c / q sum_k d_k u_k`` is then unbiased for the (smoothed) gradient whatever the
    kind: 1 for Gaussian and orthogonal directions, ``m`` for one-row blocks (a row is hit with
    probability ``1 / m``), ``d`` for one-column blocks.
    """
    kind = check_directions(kind)
    if kind == "rows":
        return float(shape[0])
    if kind == "columns":
        return float(shape[-1])
    return 1.0


def _orthogonal(key: jax.Array, num_directions: int, size: int, dtype) -> jax.Array:
    """``(q, size)`` directions, orthogonal within blocks of ``size``, each marginally N(0, I).

    Orthogonal evolution strategies (Choromanski et al. 2018, arXiv:1804.02395): the rows of a
    Gaussian matrix are orthogonalised by QR (signs fixed so the basis is Haar distributed) and
    rescaled to their own Gaussian lengths, which are independent of the basis; so each direction
    is exactly N(0, I) and the estimator stays unbiased, while the ``q`` directions never overlap.
    """
    blocks = -(-num_directions // size)
    gaussian = _random.normal(key, (blocks, min(num_directions, size), size), dtype=dtype)
    one_block = lambda g: orthonormal_rows(g) * jnp.linalg.norm(g, axis=1, keepdims=True)
    return jax.vmap(one_block)(gaussian).reshape(-1, size)[:num_directions]


def orthonormal_rows(gaussian: jax.Array) -> jax.Array:
    """Orthonormal rows spanning the rows of a ``(b, size)`` Gaussian matrix (``b <= size``).

    QR with the signs of ``R``'s diagonal fixed, so the basis is Haar distributed (uniform over
    orthonormal frames) and independent of the rows' lengths.
    """
    q, r = jnp.linalg.qr(gaussian.T)  # (size, b), (b, b)
    signs = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(gaussian.dtype)
    return (q * signs).T


def _blocks(key: jax.Array, num_directions: int, shape: tuple, axis: int, dtype) -> jax.Array:
    """Gaussian directions each confined to one slice along ``axis`` (a row or a column of S).

    The slices are dealt from a random permutation, so ``q`` directions hit ``min(q, size)``
    different slices and every slice equally often in expectation.
    """
    size = shape[axis]
    order_key, value_key = jax.random.split(key)
    order = jax.random.permutation(order_key, size)
    which = order[jnp.arange(num_directions) % size]
    mask = jax.nn.one_hot(which, size, dtype=dtype)  # (q, size)
    mask = mask[:, :, None] if axis == 0 else mask[:, None, :]
    return _random.normal(value_key, (num_directions, *shape), dtype=dtype) * mask


def sample_directions(key: jax.Array, num_directions: int, shape: tuple, dtype=jnp.float32,
                      kind: str = "gaussian") -> jax.Array:
    """Draws ``q`` random directions.

    Args:
      key: PRNG key.
      num_directions: ``q``.
      shape: shape of the learnable table, e.g. ``(m, d)``.
      kind: ``"gaussian"`` (i.i.d. N(0, I) over every cell, the default); ``"orthogonal"`` (the
        same marginals, mutually orthogonal — lower variance when ``q`` is not small against the
        table's size); ``"rademacher"`` (i.i.d. signs, +1 or -1, over every cell: one random bit
        a cell, :func:`zodc._random.signs`); ``"rows"`` / ``"columns"`` (each direction Gaussian
        on one synthetic row / one column and zero elsewhere: one row or one feature at a time). Use
        :func:`direction_scale` of the same kind when forming the gradient.

    Returns:
      ``(q, *shape)`` directions. They are data-independent randomness: releasing them costs no
      privacy, and their kind does not change the per-record sensitivity (the clip is on the
      ``(q,)`` vector of loss differences).
    """
    kind = check_directions(kind)
    if kind == "gaussian":
        return _random.normal(key, (num_directions, *shape), dtype=dtype)
    if kind == "rademacher":
        return _random.signs(key, (num_directions, *shape), dtype=dtype)
    if kind == "orthogonal":
        size = 1
        for n in shape:
            size *= int(n)
        return _orthogonal(key, num_directions, size, dtype).reshape(num_directions, *shape)
    if len(shape) != 2:
        raise ConfigError(f"`directions={kind!r}` needs a 2-D table (rows, columns). Got shape {tuple(shape)}.")
    return _blocks(key, num_directions, tuple(shape), 0 if kind == "rows" else 1, dtype)


def perturb(table: jax.Array, directions: jax.Array, smoothing, scheme: str = "central") -> jax.Array:
    """Stacks the tables a zero-order estimate evaluates.

    Args:
      table: ``(m, d)`` current synthetic table.
      directions: ``(q, m, d)``.
      smoothing: ``mu``, scalar.
      scheme: ``"central"`` → ``[S + mu u_1..q, S - mu u_1..q]`` (``(2q, m, d)``);
        ``"forward"`` → ``[S, S + mu u_1..q]`` (``(q + 1, m, d)``).
    """
    shifted = jax.vmap(lambda u: table + smoothing * u)(directions)
    if check_scheme(scheme) == "central":
        mirrored = jax.vmap(lambda u: table - smoothing * u)(directions)
        return jnp.concatenate([shifted, mirrored], axis=0)
    return jnp.concatenate([table[None], shifted], axis=0)


def per_record_differences(losses: jax.Array, num_directions: int, scheme: str = "central") -> jax.Array:
    """Per-record loss differences ``d_i`` from losses of the stacked tables.

    Args:
      losses: ``(num_evaluations, n)`` per-record losses, in the order of :func:`perturb`.

    Returns:
      ``(n, q)``: ``d_ik = loss(S + mu u_k, z_i) - loss(S - mu u_k, z_i)`` (central) or
      ``loss(S + mu u_k, z_i) - loss(S, z_i)`` (forward). Each record's row is the only thing of
      that record the estimate uses: it is what gets clipped.
    """
    if check_scheme(scheme) == "central":
        return (losses[:num_directions] - losses[num_directions:]).T
    return (losses[1:] - losses[:1]).T


def gradient_from_differences(mean_differences: jax.Array, directions: jax.Array, smoothing, scheme: str = "central",
                              scale: float = 1.0) -> jax.Array:
    """Forms the gradient estimate from the (noisy) mean difference per direction.

    Args:
      mean_differences: ``(q,)`` mean over records of the per-record differences (after
        clipping and noise in the private case).
      directions: ``(q, m, d)``.
      scale: :func:`direction_scale` of the directions' kind.

    Returns:
      ``(m, d)`` gradient estimate.
    """
    num_directions = directions.shape[0]
    step = 2.0 * smoothing if check_scheme(scheme) == "central" else smoothing
    # Full float32: JAX's default lets a recent NVIDIA GPU contract in TF32 (kernels/logistic.py: HIGHEST).
    product = jnp.tensordot(mean_differences, directions, axes=1, precision=jax.lax.Precision.HIGHEST)
    return scale * product / (num_directions * step)


def estimate_gradient(key: jax.Array, objective_fn: Callable[[jax.Array], jax.Array], table: jax.Array,
                      num_directions: int, smoothing, scheme: str = "central", kind: str = "gaussian") -> jax.Array:
    """Non-private zero-order gradient of a scalar ``objective_fn`` (testing and reference use).

    Args:
      key: PRNG key for the directions.
      objective_fn: maps ``(m, d)`` → scalar; vmapped over the perturbed tables.
      table: ``(m, d)``.
      kind: the directions' kind (:func:`sample_directions`).

    Returns:
      ``(m, d)`` estimate of the gradient of the smoothed objective.
    """
    directions = sample_directions(key, num_directions, table.shape, table.dtype, kind)
    values = jax.vmap(objective_fn)(perturb(table, directions, smoothing, scheme))
    differences = per_record_differences(values[:, None], num_directions, scheme)[0]
    return gradient_from_differences(differences, directions, smoothing, scheme, direction_scale(kind, table.shape))
