import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc import zo
from zodc.errors import ConfigError

A = jnp.array([[1.0, 2.0], [0.5, 3.0], [2.0, 0.25]])
B = jnp.array([[0.3, -1.0], [0.2, 0.1], [-0.5, 0.7]])


def quadratic(table):
    return 0.5 * jnp.sum(A * table**2) + jnp.sum(B * table)


@pytest.mark.parametrize("scheme,kind", [("central", "gaussian"), ("forward", "gaussian"), ("central", "orthogonal"),
                                         ("central", "rademacher"), ("forward", "rademacher"),
                                         ("central", "rows"), ("central", "columns"), ("forward", "rows")])
def test_estimator_is_unbiased_on_a_quadratic(scheme, kind):
    table = jnp.array([[0.5, -0.2], [0.1, 0.4], [-0.3, 0.2]])
    true_gradient = A * table + B
    num_directions = 40_000
    estimate = zo.estimate_gradient(jax.random.key(0), quadratic, table, num_directions, 0.1, scheme, kind)
    # Per coordinate, c (g.u) u_j has variance at most c (||g||^2 + g_j^2) (+ O(mu^2) for forward),
    # c the kind's scale (1 for Gaussian, orthogonal and Rademacher, m or d for blocks): 6 standard errors.
    g = np.asarray(true_gradient)
    scale = zo.direction_scale(kind, table.shape)
    std_error = np.sqrt(scale * (np.sum(g**2) + g**2 + 0.05) / num_directions)
    np.testing.assert_array_less(np.abs(np.asarray(estimate) - g), 6 * std_error)
    # ...and a wrong gradient (sign flipped) is far outside that band: the check can fail.
    assert np.any(np.abs(np.asarray(estimate) + g) > 6 * std_error)


def test_central_difference_is_exact_directional_derivative_on_quadratic():
    table = jnp.ones((3, 2)) * 0.3
    directions = zo.sample_directions(jax.random.key(1), 5, table.shape)
    values = jax.vmap(quadratic)(zo.perturb(table, directions, 0.37, "central"))
    differences = zo.per_record_differences(values[:, None], 5, "central")[0] / (2 * 0.37)
    expected = jnp.einsum("kmd,md->k", directions, A * table + B)
    np.testing.assert_allclose(differences, expected, rtol=1e-4, atol=1e-5)


def test_perturb_shapes_and_layout():
    table = jnp.zeros((4, 3))
    directions = jnp.ones((2, 4, 3))
    central = zo.perturb(table, directions, 0.5, "central")
    forward = zo.perturb(table, directions, 0.5, "forward")
    assert central.shape == (4, 4, 3) and forward.shape == (3, 4, 3)
    np.testing.assert_allclose(central[:2], 0.5)
    np.testing.assert_allclose(central[2:], -0.5)
    np.testing.assert_allclose(forward[0], 0.0)
    assert zo.num_evaluations(2, "central") == 4 and zo.num_evaluations(2, "forward") == 3


def test_unknown_scheme_is_named():
    with pytest.raises(ConfigError, match="`scheme` must be one of"):
        zo.check_scheme("backward")


@pytest.mark.parametrize("num_directions", [5, 12, 14])
def test_orthogonal_directions_are_orthogonal_within_a_block(num_directions):
    shape = (3, 2)  # 6 cells: 12 directions are two full bases, 14 two bases and a part
    units = np.asarray(zo.sample_directions(jax.random.key(3), num_directions, shape, kind="orthogonal"))
    assert units.shape == (num_directions, *shape)
    flat = units.reshape(num_directions, -1)
    for start in range(0, num_directions, 6):
        block = flat[start:start + 6]
        gram = block @ block.T
        np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-4)
    assert np.all(np.linalg.norm(flat, axis=1) > 0)
    # Independent blocks differ: not one basis repeated.
    if num_directions >= 12:
        cross = flat[:6] @ flat[6:12].T
        assert np.abs(cross - np.diag(np.diag(cross))).max() > 1e-2


def test_orthogonal_directions_have_gaussian_marginals():
    shape = (4, 5)
    units = np.asarray(zo.sample_directions(jax.random.key(4), 20 * 400, shape, kind="orthogonal")).reshape(-1, 20)
    # Each direction is N(0, I_20): squared norm ~ chi^2_20 (mean 20, variance 40), coordinates ~ N(0, 1).
    squared = np.sum(units**2, axis=1)
    assert abs(squared.mean() - 20) < 6 * np.sqrt(40 / len(squared))
    assert abs(squared.var() - 40) < 0.15 * 40
    np.testing.assert_allclose(units.std(axis=0), 1.0, atol=0.05)


@pytest.mark.parametrize("kind,axis", [("rows", 0), ("columns", 1)])
def test_block_directions_touch_one_slice_each(kind, axis):
    shape = (5, 3)
    size = shape[axis]
    for num_directions in (size - 1, 2 * size):
        units = np.asarray(zo.sample_directions(jax.random.key(5), num_directions, shape, kind=kind))
        touched = np.abs(units).sum(axis=2 - axis) > 0  # (q, size): which slices each direction moves
        assert np.all(touched.sum(axis=1) == 1)
        hits = touched.sum(axis=0)
        # Dealt from a permutation: distinct slices while q <= size, every slice equally often after.
        assert hits.max() - hits.min() <= 1 and hits.sum() == num_directions
    assert zo.direction_scale(kind, shape) == size


def test_unknown_direction_kind_is_named():
    with pytest.raises(ConfigError, match="`directions` must be one of"):
        zo.check_directions("sparse")
    with pytest.raises(ConfigError, match="needs a 2-D table"):
        zo.sample_directions(jax.random.key(0), 2, (2, 3, 4), kind="rows")
