import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from zodc import Condenser
from zodc.data.datasets import load_dataset
from zodc.errors import ConfigError, DataError
from zodc.models import soft_labels as soft
from zodc.models.native import native_classifier_evaluator
from zodc.models.losses import ClassificationLoss


@pytest.fixture(scope="module")
def cancer():
    data = load_dataset("breast_cancer")
    target = data.schema.target
    return data.frame.drop(columns=[target]), data.frame[target], data.schema


@pytest.mark.parametrize("xp", [np, jnp])
def test_expand_gives_each_row_its_class_distribution(xp):
    features = np.arange(8, dtype=np.float32).reshape(4, 2)
    z = np.array([1.0, 0.5, -1.0, 3.0], np.float32)  # w = 1, 0.75, 0, clipped to 1
    table = xp.asarray(np.concatenate([features, z[:, None]], axis=1))
    labels = xp.asarray(np.array([0, 1, 2, 1], np.int32))
    X, y, weight = (np.asarray(a) for a in soft.expand(table, labels, 3, xp))
    assert X.shape == (12, 2) and y.shape == (12,) and weight.shape == (12,)
    np.testing.assert_array_equal(X, np.tile(features, (3, 1)))
    np.testing.assert_array_equal(y, np.repeat([0, 1, 2], 4))
    per_row = weight.reshape(3, 4)  # [class, row]
    np.testing.assert_allclose(per_row.sum(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(per_row[[0, 1, 2, 1], [0, 1, 2, 3]], [1.0, 0.75, 0.0, 1.0])
    np.testing.assert_allclose(per_row[0, 1], 0.125)  # (1 - 0.75) / (3 - 1)


def test_soft_labels_grade_the_leaves_of_a_native_tree():
    from zodc.kernels import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X_real = rng.uniform(-1, 1, (40, 2)).astype(np.float32)
    y_real = (X_real[:, 0] > 0).astype(np.int32)
    labels = np.array([0, 0, 1, 1], np.int32)
    rows = np.array([[-0.5, 0.0], [-0.6, 0.1], [0.5, 0.0], [0.6, 0.1]], np.float32)

    model = DecisionTreeClassifier(n_classes=2, max_depth=2)
    fit, predict_proba = jax.jit(model.fit), jax.jit(model.predict_proba)  # compiled once, not op by op

    def probabilities(own):
        table = np.concatenate([rows, np.full((4, 1), soft.weight_column(own), np.float32)], axis=1)
        params = fit(jax.random.key(0), *soft.expand(jnp.asarray(table), jnp.asarray(labels), 2, jnp))
        return np.asarray(predict_proba(params, jnp.asarray(X_real)))

    np.testing.assert_allclose(np.sort(np.unique(probabilities(1.0)[:, 1].round(6))), [0.0, 1.0])
    graded = probabilities(0.8)[:, 1]
    np.testing.assert_allclose(np.sort(np.unique(graded.round(6))), [0.2, 0.8], atol=1e-6)
    # The evaluator the condenser uses fits on the same weighted copies.
    evaluate = jax.jit(native_classifier_evaluator(DecisionTreeClassifier(n_classes=2, max_depth=2),
                                                   ClassificationLoss("brier"), soft_labels=True, num_classes=2))
    table = np.concatenate([rows, np.full((4, 1), soft.weight_column(0.8), np.float32)], axis=1)
    losses = evaluate(jnp.asarray(table)[None], jnp.ones(40, bool),
                      {"X": jnp.asarray(X_real), "y": jnp.asarray(y_real), "labels": jnp.asarray(labels),
                       "key": jax.random.key(0)})
    expected = ClassificationLoss("brier")(np.stack([1 - graded, graded], axis=1), y_real, xp=np)
    np.testing.assert_allclose(np.asarray(losses[0]), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["host", "native"])
def test_soft_label_release_carries_weights_and_costs_no_privacy(cancer, backend):
    X, y, schema = cancer
    params = dict(epsilon=1.0, steps=10, num_directions=4, rows_per_class=3, schema=schema, backend=backend,
                  random_state=0)
    hard = Condenser("tree", **params).fit(X, y)
    fitted = Condenser("tree", soft_labels=True, soft_label_start=0.8, **params).fit(X, y)
    released = fitted.synthetic_
    assert released.shape == (12, 32) and soft.SAMPLE_WEIGHT_COLUMN in released.columns
    np.testing.assert_array_equal(released[soft.SAMPLE_WEIGHT_COLUMN].to_numpy(), fitted.sample_weight_)
    weights = fitted.sample_weight_.reshape(2, 6)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-9)
    assert not np.allclose(weights, np.where(np.repeat([0, 1], 3)[None] == np.arange(2)[:, None], 0.8, 0.2))  # learned
    # Both blocks hold the same rows; the label column says which class each copy stands for.
    features = released.drop(columns=[schema.target, soft.SAMPLE_WEIGHT_COLUMN])
    pd.testing.assert_frame_equal(features.iloc[:6].reset_index(drop=True), features.iloc[6:].reset_index(drop=True))
    assert released[schema.target].tolist() == [schema.target_column.categories[0]] * 6 + \
        [schema.target_column.categories[1]] * 6
    assert fitted.table_.shape == (12, 30) and fitted.labels_.tolist() == [0] * 6 + [1] * 6
    # Same mechanisms, same budget: the weights are post-processing of the private iterates.
    assert [e.name for e in fitted.ledger_.entries] == [e.name for e in hard.ledger_.entries]
    assert fitted.epsilon_ == pytest.approx(hard.epsilon_) and fitted.noise_multiplier_ == hard.noise_multiplier_
    assert hard.sample_weight_ is None and soft.SAMPLE_WEIGHT_COLUMN not in hard.synthetic_.columns


def test_soft_labels_with_feature_selection(cancer):
    X, y, schema = cancer
    fitted = Condenser("logistic", epsilon=2.0, steps=5, num_directions=4, rows_per_class=3, schema=schema,
                       select_features=4, soft_labels=True, random_state=0).fit(X, y)
    assert fitted.synthetic_.shape == (12, 32) and len(fitted.selected_features_) == 4
    unselected = np.setdiff1d(np.arange(30), fitted.selected_features_)
    np.testing.assert_allclose(fitted.table_[:, unselected], 0.0, atol=1e-6)


def test_soft_label_parameters_are_checked(cancer):
    from sklearn.neighbors import KNeighborsClassifier

    X, y, schema = cancer
    with pytest.raises(ConfigError, match="`soft_label_start` must be in"):
        Condenser("tree", soft_labels=True, soft_label_start=0.0, schema=schema).fit(X, y)
    with pytest.raises(ConfigError, match="`soft_labels` must be True, False or 'auto'"):
        Condenser("tree", soft_labels="yes", schema=schema).fit(X, y)
    with pytest.raises(ConfigError, match="sample_weight"):
        Condenser(KNeighborsClassifier(), soft_labels=True, schema=schema).fit(X, y)
    # On survival data soft_labels means soft events (tests/test_survival_condense.py).


def test_auto_soft_labels_are_on_for_the_boosting_preset_only(cancer):
    X, y, schema = cancer
    params = dict(epsilon=1.0, steps=1, num_directions=1, rows_per_class=3, schema=schema, backend="host",
                  random_state=0)
    boosted = Condenser("boosting", **params).fit(X, y)                      # soft_labels="auto", the default
    assert boosted.soft_labels_ and soft.SAMPLE_WEIGHT_COLUMN in boosted.synthetic_.columns
    assert boosted.synthetic_.shape == (12, 32) and boosted.sample_weight_.shape == (12,)
    hard = Condenser("boosting", soft_labels=False, **params).fit(X, y)
    assert not hard.soft_labels_ and hard.sample_weight_ is None and hard.synthetic_.shape == (6, 31)
    tree = Condenser("tree", **params).fit(X, y)
    assert not tree.soft_labels_ and soft.SAMPLE_WEIGHT_COLUMN not in tree.synthetic_.columns
    gbsg2 = load_dataset("gbsg2")  # survival: "auto" is soft events where the start is noisy or the table would
    # hold fewer than 5 rows of either event status; not here (20 rows of 44 % events: about 9 and 11)
    cox = Condenser("cox", rows=20, steps=1, num_directions=1, schema=gbsg2.schema, random_state=0)
    assert not cox.fit(gbsg2.frame, duration_col="time", event_col="cens").soft_labels_


def test_a_feature_named_like_the_weight_column_is_refused_before_any_work(cancer):
    X, y, schema = cancer
    clash = X.rename(columns={"mean radius": "sample_weight"})
    with pytest.raises(DataError, match="column named 'sample_weight'"):
        Condenser("tree", soft_labels=True, epsilon=1.0, steps=2, num_directions=2, rows_per_class=3,
                  random_state=0).fit(clash, y)


def test_soft_label_steps_freeze_the_weights_after_a_warm_up(cancer):
    X, y, schema = cancer
    # On the host: the freeze is the optimiser's, the same for both backends; the native tree would compile a
    # step program for each of the six configurations below (one native run, at the end, checks it there too).
    params = dict(epsilon=float("inf"), num_directions=4, rows_per_class=3, schema=schema, soft_labels=True,
                  backend="host", random_state=0)
    # 3 rows of each class; the release is block 0 (every row as class 0), then block 1
    own = lambda fitted: fitted.sample_weight_[[0, 1, 2, 9, 10, 11]]  # noqa: E731  (each row's own class)
    learned = Condenser("tree", steps=6, **params).fit(X, y)
    fixed = Condenser("tree", steps=6, soft_label_steps=0, **params).fit(X, y)
    np.testing.assert_allclose(own(fixed), 0.9, rtol=1e-6)                                    # never moved
    assert np.max(np.abs(own(learned) - 0.9)) > 1e-3                                          # these did
    assert not np.allclose(fixed.table_, Condenser("tree", steps=1, **params).fit(X, y).table_)  # features move on
    # Learned for 3 steps, then frozen: the weights of a 3-step run (same randomness for those steps).
    warm = Condenser("tree", steps=6, soft_label_steps=3, **params).fit(X, y)
    short = Condenser("tree", steps=3, **params).fit(X, y)
    np.testing.assert_allclose(warm.sample_weight_, short.sample_weight_, rtol=1e-6)
    assert not np.allclose(warm.table_, short.table_)
    # soft_label_steps >= steps is the same as learning throughout
    np.testing.assert_array_equal(Condenser("tree", steps=6, soft_label_steps=6, **params).fit(X, y).table_,
                                  learned.table_)
    native = Condenser("tree", steps=6, soft_label_steps=0, **{**params, "backend": "native"}).fit(X, y)
    assert native.backend_ == "native"
    np.testing.assert_allclose(own(native), 0.9, rtol=1e-6)                                   # frozen there too
    with pytest.raises(ConfigError, match="`soft_label_steps` must be an integer >= 0"):
        Condenser("tree", soft_label_steps=-1, schema=schema).fit(X, y)
    with pytest.raises(ConfigError, match="`soft_label_steps` cannot be combined with `subspace`"):
        Condenser("tree", soft_label_steps=2, subspace=4, schema=schema).fit(X, y)
