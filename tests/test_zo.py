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


@pytest.mark.parametrize("scheme", ["central", "forward"])
def test_estimator_is_unbiased_on_a_quadratic(scheme):
    table = jnp.array([[0.5, -0.2], [0.1, 0.4], [-0.3, 0.2]])
    true_gradient = A * table + B
    num_directions = 40_000
    estimate = zo.estimate_gradient(jax.random.key(0), quadratic, table, num_directions, 0.1, scheme)
    # Per coordinate, (g.u) u_j has variance ||g||^2 + g_j^2 (+ O(mu^2) for forward): 6 standard errors.
    g = np.asarray(true_gradient)
    std_error = np.sqrt((np.sum(g**2) + g**2 + 0.05) / num_directions)
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
