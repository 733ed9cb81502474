"""The random-forest kernel against scikit-learn's RandomForestClassifier, in distribution."""

import jax
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier as SklearnForest

from zodc.kernels.forest import RandomForestClassifier

from tests.seeds import test_seed

SEED = test_seed(20261206, "test_forest")

N_TABLES, M, D, N_TREES, DEPTH = 20, 60, 9, 50, 4


def make_tables(rng):
    X = rng.normal(size=(N_TABLES, M, D)).astype(np.float32)
    beta = rng.normal(size=(N_TABLES, 1, D))
    y = ((X * beta).sum(-1) + rng.normal(size=(N_TABLES, M)) > 0).astype(np.int32)
    X_test = rng.normal(size=(N_TABLES, 300, D)).astype(np.float32)
    return X, y, X_test


def kernel_proba(model, X, y, X_test, seed):
    keys = jax.random.split(jax.random.key(seed), N_TABLES)
    params = jax.jit(jax.vmap(model.fit))(keys, X, y)
    return np.asarray(jax.jit(jax.vmap(model.predict_proba))(params, X_test))


def test_forest_is_distributed_as_sklearn():
    # Forests from different random streams cannot agree tree by tree; what must agree is the
    # distribution of the predicted probabilities. Distance from a scikit-learn forest is
    # compared with the distance between two scikit-learn forests of different seeds (the
    # noise floor): a correct kernel sits at the floor (measured ratios 0.97-1.05), a forest
    # without bootstrap at ~1.3 and one searching all features per node at ~1.5.
    rng = np.random.default_rng(SEED)
    X, y, X_test = make_tables(rng)

    def sklearn_proba(offset):
        return np.stack(
            [
                SklearnForest(n_estimators=N_TREES, max_depth=DEPTH, random_state=offset + t)
                .fit(X[t], y[t])
                .predict_proba(X_test[t])
                for t in range(N_TABLES)
            ]
        )

    reference, other_seed = sklearn_proba(0), sklearn_proba(10_000)
    floor = np.abs(reference - other_seed).mean()
    ours = kernel_proba(
        RandomForestClassifier(n_classes=2, n_estimators=N_TREES, max_depth=DEPTH), X, y, X_test, SEED
    )
    ratio = np.abs(ours - reference).mean() / floor
    assert ratio < 1.15, f"kernel/sklearn distance is {ratio:.3f} x the sklearn/sklearn floor"
    broken = kernel_proba(
        RandomForestClassifier(n_classes=2, n_estimators=N_TREES, max_depth=DEPTH, bootstrap=False),
        X,
        y,
        X_test,
        SEED,
    )
    broken_ratio = np.abs(broken - reference).mean() / floor
    assert broken_ratio > 1.15, f"the test cannot tell a forest without bootstrap ({broken_ratio:.3f})"
    # Accuracy: same mean over tables within noise.
    y_test_score = ours.argmax(-1), reference.argmax(-1)
    agreement = (y_test_score[0] == y_test_score[1]).mean()
    assert agreement > 0.85


def test_jit_equals_no_jit_and_key_matters():
    rng = np.random.default_rng(SEED + 1)
    X, y, _ = make_tables(rng)
    model = RandomForestClassifier(n_classes=2, n_estimators=3, max_depth=2)
    eager = model.fit(jax.random.key(3), X[0], y[0])
    jit_fit = jax.jit(model.fit)  # one wrapper: the second key reuses its compiled program
    jitted = jit_fit(jax.random.key(3), X[0], y[0])
    other = jit_fit(jax.random.key(4), X[0], y[0])
    np.testing.assert_array_equal(eager.threshold, jitted.threshold)
    np.testing.assert_array_equal(eager.value, jitted.value)
    assert eager.threshold.shape == (3, 7)
    assert not np.array_equal(eager.threshold, other.threshold)


@pytest.mark.parametrize("max_features, expected", [("sqrt", 3), ("log2", 3), (None, 9), (4, 4), (0.5, 4)])
def test_max_features_resolves_as_sklearn(max_features, expected):
    assert RandomForestClassifier(max_features=max_features).n_features_per_node(9) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_estimators": 0}, "`n_estimators` must be an int >= 1. Got 0."),
        ({"max_features": 0}, "`max_features` must be an int >= 1. Got 0."),
        ({"max_features": 1.5}, "`max_features` must be a float in"),
        ({"bootstrap": 1}, "`bootstrap` must be a bool. Got 1."),
    ],
)
def test_invalid_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RandomForestClassifier(**kwargs)
