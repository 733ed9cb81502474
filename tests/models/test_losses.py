import jax.numpy as jnp
import numpy as np
import pytest

from zodc.errors import ConfigError
from zodc.models.losses import ClassificationLoss, balanced_class_weights


def test_balanced_weights_equalise_class_totals():
    weights = balanced_class_weights([0.25, 0.75])
    np.testing.assert_allclose(weights, [2.0, 2.0 / 3.0])
    np.testing.assert_allclose(np.dot(weights, [0.25, 0.75]), 1.0)


@pytest.mark.parametrize("bad", [[1.0], [0.5, 0.0], [0.5, np.nan]])
def test_bad_proportions_raise(bad):
    with pytest.raises(ConfigError):
        balanced_class_weights(bad)


def test_losses_hand_computed_and_bounded():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [1.0, 0.0]])
    y = np.array([0, 0, 1])
    linear = ClassificationLoss("balanced_linear")
    np.testing.assert_allclose(linear(proba, y), [0.1, 0.8, 1.0])
    ce = ClassificationLoss("cross_entropy", probability_floor=0.01)
    np.testing.assert_allclose(ce(proba, y), [-np.log(0.9), -np.log(0.2), -np.log(0.01)])
    assert ce.upper_bound == pytest.approx(-np.log(0.01))
    brier = ClassificationLoss("brier")
    np.testing.assert_allclose(brier(proba, y), [0.02, 1.28, 2.0])
    weighted = ClassificationLoss("balanced_linear", class_weights=(2.0, 0.5))
    np.testing.assert_allclose(weighted(proba, y), [0.2, 1.6, 0.5])
    assert weighted.upper_bound == 2.0


def test_numpy_and_jax_agree():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=(4, 7))
    y = rng.integers(0, 3, size=7)
    for name in ("balanced_linear", "cross_entropy", "brier"):
        loss = ClassificationLoss(name, class_weights=(1.0, 2.0, 0.5))
        np.testing.assert_allclose(loss(proba, y), np.asarray(loss(jnp.asarray(proba), jnp.asarray(y), xp=jnp)), rtol=1e-5)


def test_unknown_loss_is_named():
    with pytest.raises(ConfigError, match="`loss` must be one of"):
        ClassificationLoss("hinge")


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax"])
def test_linear_and_cross_entropy_read_the_true_class_alone(xp):
    # The probability of the record's own class is gathered, not summed against a one-hot row: a
    # non-finite probability of another class leaves the loss finite, and a label outside the
    # classes reads probability 0 (the largest loss), as the one-hot row had it.
    proba = np.array([[[0.25, np.nan, 0.75], [0.5, 0.5, 0.0], [0.1, 0.2, 0.7]]] * 2, np.float32)
    y = np.array([2, 3, -1])
    linear = ClassificationLoss("balanced_linear")
    np.testing.assert_array_equal(np.asarray(linear(xp.asarray(proba), xp.asarray(y), xp=xp)),
                                  np.array([[0.25, 1.0, 1.0]] * 2, np.float32))
    ce = ClassificationLoss("cross_entropy", probability_floor=0.01)
    np.testing.assert_allclose(np.asarray(ce(xp.asarray(proba[0]), xp.asarray(y), xp=xp)),
                               [-np.log(0.75), -np.log(0.01), -np.log(0.01)], rtol=1e-6)
