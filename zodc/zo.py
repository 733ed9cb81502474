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

Privacy enters between :func:`per_record_differences` and :func:`gradient_from_differences`:
the per-record difference vectors are clipped and summed with noise (``zodc.privacy``), and the
gradient is post-processing of that noisy ``(q,)`` vector and the data-independent directions.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from zodc.errors import ConfigError

SCHEMES = ("central", "forward")


def check_scheme(scheme: str) -> str:
    """Returns ``scheme`` if it is a known finite-difference scheme, else raises ConfigError."""
    if scheme not in SCHEMES:
        raise ConfigError(f"`scheme` must be one of {list(SCHEMES)}. Got {scheme!r}.")
    return scheme


def num_evaluations(num_directions: int, scheme: str) -> int:
    """How many perturbed tables one estimate evaluates: ``2q`` (central) or ``q + 1`` (forward)."""
    return 2 * num_directions if check_scheme(scheme) == "central" else num_directions + 1


def sample_directions(key: jax.Array, num_directions: int, shape: tuple, dtype=jnp.float32) -> jax.Array:
    """Draws ``q`` standard Gaussian directions.

    Args:
      key: PRNG key.
      num_directions: ``q``.
      shape: shape of the learnable table, e.g. ``(m, d)``.

    Returns:
      ``(q, *shape)`` directions. They are data-independent randomness: releasing them costs no
      privacy.
    """
    return jax.random.normal(key, (num_directions, *shape), dtype=dtype)


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


def gradient_from_differences(mean_differences: jax.Array, directions: jax.Array, smoothing, scheme: str = "central") -> jax.Array:
    """Forms the gradient estimate from the (noisy) mean difference per direction.

    Args:
      mean_differences: ``(q,)`` mean over records of the per-record differences (after
        clipping and noise in the private case).
      directions: ``(q, m, d)``.

    Returns:
      ``(m, d)`` gradient estimate.
    """
    num_directions = directions.shape[0]
    step = 2.0 * smoothing if check_scheme(scheme) == "central" else smoothing
    return jnp.tensordot(mean_differences, directions, axes=1) / (num_directions * step)


def estimate_gradient(key: jax.Array, objective_fn: Callable[[jax.Array], jax.Array], table: jax.Array,
                      num_directions: int, smoothing, scheme: str = "central") -> jax.Array:
    """Non-private zero-order gradient of a scalar ``objective_fn`` (testing and reference use).

    Args:
      key: PRNG key for the directions.
      objective_fn: maps ``(m, d)`` → scalar; vmapped over the perturbed tables.
      table: ``(m, d)``.

    Returns:
      ``(m, d)`` estimate of the gradient of the Gaussian-smoothed objective.
    """
    directions = sample_directions(key, num_directions, table.shape, table.dtype)
    values = jax.vmap(objective_fn)(perturb(table, directions, smoothing, scheme))
    differences = per_record_differences(values[:, None], num_directions, scheme)[0]
    return gradient_from_differences(differences, directions, smoothing, scheme)
