"""The boosting kernel against scikit-learn's GradientBoostingClassifier on random data of a fixed seed (fresh
only in the opt-in ZODC_RANDOMISED_TESTS=1 run, tests/seeds.py)."""

import jax
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier as SklearnBoosting

from zodc.kernels.boosting import GradientBoostingClassifier

from tests.seeds import test_seed

SEED = test_seed(20261206, "test_boosting")


def test_predict_proba_close_to_sklearn():
    # Random sample weights and continuous features keep split improvements tie-free (see
    # test_tree.py for why ties matter). Few stages: the float32 residuals drift from sklearn's
    # float64 ones, and after many stages a near-tie can pick another split.
    rng = np.random.default_rng(SEED)
    n_tables, m, d = 20, 150, 4
    X = rng.normal(size=(n_tables, m, d)).astype(np.float32)
    y = (X[..., :2].sum(-1) + rng.normal(size=(n_tables, m)) > 0).astype(np.int32)
    weight = rng.uniform(0.5, 1.5, size=(n_tables, m)).astype(np.float32)
    X_test = rng.normal(size=(n_tables, 200, d)).astype(np.float32)
    model = GradientBoostingClassifier(n_estimators=10, learning_rate=0.3, max_depth=2, min_samples_leaf=5)
    params = jax.jit(jax.vmap(model.fit, in_axes=(None, 0, 0, 0)))(jax.random.key(0), X, y, weight)
    ours = np.asarray(jax.jit(jax.vmap(model.predict_proba))(params, X_test))
    close = 0
    for t in range(n_tables):
        reference = SklearnBoosting(
            n_estimators=10, learning_rate=0.3, max_depth=2, min_samples_leaf=5, random_state=t
        ).fit(X[t], y[t], sample_weight=weight[t])
        close += np.allclose(ours[t], reference.predict_proba(X_test[t]), atol=1e-4)
    assert close >= n_tables - 1, f"only {close}/{n_tables} tables match (seed {SEED})"

    # jit equals no-jit, vmap equals one table.
    eager = model.fit(jax.random.key(0), X[0], y[0], weight[0])
    np.testing.assert_allclose(eager.trees.threshold, params.trees.threshold[0], rtol=1e-6)
    np.testing.assert_allclose(
        model.predict_proba(eager, X_test[0]), ours[0], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rate": 0.0}, "`learning_rate` must be > 0. Got 0.0."),
        ({"n_estimators": 0}, "`n_estimators` must be an int >= 1. Got 0."),
        ({"max_depth": 0}, "`max_depth` must be an int >= 1. Got 0."),
    ],
)
def test_invalid_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GradientBoostingClassifier(**kwargs)
