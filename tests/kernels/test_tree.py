"""The CART kernel against scikit-learn's DecisionTreeClassifier on random data.

Deterministic by default: the golden comparison runs on fixed seeds, checked to pass. Set
``ZODC_RANDOMISED_TESTS=1`` to also run it (and seed the other tests) with a fresh random seed;
that draw can legitimately fail now and then (see the comments on the golden test).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier as SklearnTree

from zodc.kernels._common import CLASSIFICATION_CRITERIA, grow_tree
from zodc.kernels.tree import DecisionTreeClassifier, TreeParams

from tests.seeds import RANDOMISED, test_seed

# Checked on CPU (jax float32): with each of these seeds, in all four golden cases, no compared
# table differs from scikit-learn and at least 10 of the 16 tables are tie-free, a margin on both
# assertions.
FIXED_SEEDS = (0, 1, 2, 5, 6, 8)
FRESH_SEED = test_seed(-1, "test_tree")  # -1 (never used) unless ZODC_RANDOMISED_TESTS=1
SEED = FRESH_SEED if RANDOMISED else FIXED_SEEDS[0]
GOLDEN_SEEDS = [
    *FIXED_SEEDS,
    pytest.param(FRESH_SEED, id="fresh", marks=pytest.mark.skipif(
        not RANDOMISED, reason="a fresh random seed, which can fail on float32 near-ties: opt in with "
        "ZODC_RANDOMISED_TESTS=1")),
]


def make_tables(rng, n_tables, m, d, n_classes, weighted):
    """Continuous features and noisy labels from a random linear score per class."""
    X = rng.normal(size=(n_tables, m, d)).astype(np.float32)
    scores = X[..., :n_classes] + rng.normal(size=(n_tables, m, n_classes))
    y = scores.argmax(-1).astype(np.int32)
    weight = rng.uniform(0.5, 1.5, size=(n_tables, m)).astype(np.float32) if weighted else None
    X_test = rng.normal(size=(n_tables, 200, d)).astype(np.float32)
    return X, y, weight, X_test


@functools.lru_cache(maxsize=None)
def _compiled(model, weighted):
    # One compilation per configuration, shared by every seed.
    fit = jax.jit(jax.vmap(model.fit, in_axes=(None, 0, 0, 0 if weighted else None)))
    return fit, jax.jit(jax.vmap(model.predict_proba))


def batched(model, X, y, weight, X_test):
    fit, predict_proba = _compiled(model, weight is not None)
    return np.asarray(predict_proba(fit(jax.random.key(0), X, y, weight), X_test))


# Ties matter: when two features give splits of exactly equal improvement (typically the same
# partition of a small node, or equal integer class counts without weights), scikit-learn keeps
# the first one in a *random* feature order while the kernel keeps the lowest feature index, so
# the trees differ legitimately. Continuous features, noisy labels, m = 200 and (in most cases)
# random sample weights make ties rare; the rest are detected exactly: refitting the kernel on the
# columns in reverse order flips every cross-feature tie to the other feature, so a table whose
# predictions change under the reversal has a tie and is not compared.
@pytest.mark.parametrize("seed", GOLDEN_SEEDS)
@pytest.mark.parametrize(
    "criterion, weighted, n_classes, max_depth, min_samples_leaf",
    [
        ("gini", True, 2, 3, 1),
        ("entropy", True, 3, 4, 5),
        ("gini", False, 3, 2, 1),
        ("entropy", False, 2, 3, 5),
    ],
)
def test_predict_proba_equals_sklearn(criterion, weighted, n_classes, max_depth, min_samples_leaf, seed):
    rng = np.random.default_rng([seed, max_depth, min_samples_leaf])
    n_tables, m, d = 16, 200, 5
    X, y, weight, X_test = make_tables(rng, n_tables, m, d, n_classes, weighted)
    model = DecisionTreeClassifier(n_classes, max_depth, min_samples_leaf, criterion)
    ours = batched(model, X, y, weight, X_test)
    reversed_columns = batched(model, X[..., ::-1], y, weight, X_test[..., ::-1])
    compared, mismatched = 0, []
    for table in range(n_tables):
        if not np.array_equal(ours[table], reversed_columns[table]):
            continue  # a tie between features: either tree is a correct CART tree
        reference = SklearnTree(
            criterion=criterion,
            max_depth=max_depth,
            min_samples_leaf=min_samples_leaf,
            random_state=table,
        ).fit(X[table], y[table], sample_weight=None if weight is None else weight[table])
        compared += 1
        if not np.allclose(ours[table], reference.predict_proba(X_test[table]), atol=1e-5):
            mismatched.append(table)
    assert compared >= n_tables // 2, f"only {compared} of {n_tables} tables were tie-free (seed {seed})"
    # The kernel scores splits in float32, scikit-learn in float64, and a table can differ in two
    # ways, both seen in small nodes (5-7 samples at depth 2, mostly the weighted gini case with
    # min_samples_leaf = 1), neither a wrong split rule:
    # * two splits whose float64 improvements differ by less than float32 resolution (~1e-8
    #   relative) are ordered differently;
    # * two features cut the node into the *same* two sample sets (often both perfect splits):
    #   an exact tie in scikit-learn, whose float64 sums of float32 weights are exact, hence
    #   broken by its random feature order; the kernel sums each feature's left side in that
    #   feature's sample order in float32, so the two sums differ in the last bit and one feature
    #   wins outright in both column orders: the reversal check above cannot see that tie.
    # One such table per batch is tolerated; a wrong rule breaks nearly all of them. With fresh
    # seeds, about 2 % of batches of the weighted gini case had two such tables (9 of 400 seeds)
    # and the unweighted entropy case can have fewer than half of its tables tie-free (seed 7:
    # 5 of 16): hence fixed seeds by default.
    assert len(mismatched) <= 1, f"tables {mismatched} differ from scikit-learn (seed {seed})"


def test_ties_go_to_the_lowest_feature():
    # Two identical columns: every split ties, the kernel must use column 0.
    rng = np.random.default_rng(SEED)
    column = rng.normal(size=(40, 1)).astype(np.float32)
    X = np.concatenate([column, column], axis=1)
    y = (column[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(np.int32)
    params = DecisionTreeClassifier(max_depth=2).fit(jax.random.key(0), X, y)
    used = np.asarray(params.feature)[~np.asarray(params.is_leaf)]
    assert used.size > 0 and np.all(used == 0)


def test_vmap_equals_loop_and_jit_equals_no_jit():
    rng = np.random.default_rng(SEED + 1)
    X, y, weight, X_test = make_tables(rng, 4, 50, 3, 3, weighted=True)
    model = DecisionTreeClassifier(n_classes=3, max_depth=3, min_samples_leaf=2)
    batch = jax.vmap(model.fit, in_axes=(None, 0, 0, 0))(jax.random.key(0), X, y, weight)
    jit_fit = jax.jit(model.fit)  # one wrapper: compiled once for the four equal-shaped tables
    for table in range(4):
        jitted = jit_fit(jax.random.key(0), X[table], y[table], weight[table])
        # Eager (op by op, seconds per fit) for the first table only: jit equals no jit there, and the
        # vmapped fits equal the jitted loop on every table.
        candidates = (jitted, model.fit(jax.random.key(0), X[table], y[table], weight[table])) if table == 0 else (jitted,)
        one = jax.tree.map(lambda leaf: leaf[table], batch)
        for candidate in candidates:
            for field in dataclasses.fields(TreeParams):
                np.testing.assert_array_equal(getattr(one, field.name), getattr(candidate, field.name))
        probability = model.predict_proba(jitted, X_test[table])
        np.testing.assert_allclose(probability.sum(-1), 1.0, rtol=1e-6)


def test_pure_table_is_one_leaf():
    X = jnp.asarray(np.random.default_rng(SEED).normal(size=(20, 2)), jnp.float32)
    params = DecisionTreeClassifier(max_depth=3).fit(None, X, jnp.ones(20, jnp.int32))
    assert bool(params.is_leaf[0])
    np.testing.assert_array_equal(params.value[0], [0.0, 1.0])


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize("count", [47, 97])  # n * (1 / n) != 1 in float32
def test_a_pure_node_is_a_leaf_whatever_its_count(criterion, count):
    # XLA rewrites x / broadcast(w) as x * broadcast(1 / w), and 47 * (1 / 47) is 0.99999994 in
    # float32: an impurity computed with that division left a pure node of 47 samples impure, and
    # grow_tree (the accelerator's path) split it, where scikit-learn and the C++ builder stop.
    # Two pure halves of `count` rows: the root separates them and both children are leaves.
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(2 * count, 3)).astype(np.float32)
    y = (np.arange(2 * count) % 2).astype(np.int32)
    X[:, 1] = y + X[:, 1] / 10  # feature 1 separates the classes
    stats = jax.nn.one_hot(y, 2, dtype=jnp.float32)
    grow = jax.jit(lambda X, stats: grow_tree(X, stats, CLASSIFICATION_CRITERIA[criterion], 3, 1)[0])
    portable = grow(jnp.asarray(X), stats)
    kernel = jax.jit(DecisionTreeClassifier(max_depth=3, criterion=criterion).fit)(None, X, y)
    for params in (portable, kernel):
        assert int(params.feature[0]) == 1 and not bool(params.is_leaf[0])
        assert bool(params.is_leaf[1]) and bool(params.is_leaf[2])
    assert bool(grow(jnp.asarray(X[y == 1]), stats[y == 1]).is_leaf[0])  # a pure table: one leaf


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_depth": 0}, "`max_depth` must be an int >= 1. Got 0."),
        ({"n_classes": 1}, "`n_classes` must be an int >= 2. Got 1."),
        ({"min_samples_leaf": 0}, "`min_samples_leaf` must be an int >= 1. Got 0."),
        ({"criterion": "log_loss"}, "`criterion` must be one of"),
        ({"max_depth": 2.0}, "`max_depth` must be an int >= 1. Got 2.0."),
    ],
)
def test_invalid_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        DecisionTreeClassifier(**kwargs)


def test_model_is_hashable_static_config():
    assert hash(DecisionTreeClassifier(max_depth=3)) == hash(DecisionTreeClassifier(max_depth=3))


@pytest.mark.parametrize("m, d, levels", [(20, 4, 3), (7, 2, 2), (64, 3, 4)])
def test_partition_equals_a_stable_sort_by_child(m, d, levels):
    # The per-level regrouping (kernels/_common.py) must give exactly what a stable sort of every
    # feature's grouped order by child id gives, with tied values and empty children included.
    from zodc.kernels._common import _partition, feature_order

    rng = np.random.default_rng([SEED, m, d])
    X = np.round(rng.normal(size=(m, d)), 1).astype(np.float32)  # ties on purpose
    order = np.asarray(feature_order(X))
    np.testing.assert_array_equal(order, np.argsort(X.T, axis=1, kind="stable"))
    node = np.zeros(m, np.int32)
    for level in range(levels):
        n_level = 2**level
        go_right = rng.random(m) < rng.choice([0.0, 0.5, 1.0], size=n_level)[node]
        segment = node[order[0]]
        count = np.bincount(node, minlength=n_level)
        ours = np.asarray(_partition(jnp.asarray(order), jnp.asarray(go_right), jnp.asarray(segment),
                                     jnp.asarray(count, jnp.int32)))
        child = 2 * node + go_right
        expected = np.take_along_axis(order, np.argsort(child[order], axis=1, kind="stable"), axis=1)
        np.testing.assert_array_equal(ours, expected)
        order, node = ours, child.astype(np.int32)


def test_no_child_of_zero_weight():
    # Half the samples weigh nothing (as out-of-bag samples in a forest) and the labels are noise.
    # The split search takes the right sums as the node total minus the left ones, and float32
    # rounding there can leave a positive residue where every remaining sample weighs 0: such a
    # split must still be refused (scikit-learn's proxies are NaN there). Fixed draws: with the
    # residue test instead of the exact positive-weight count, 5 children of zero weight appear
    # in these 1024 trees (about 16,000 splits).
    from zodc.kernels._common import GINI, grow_tree

    m, d, depth, n_tables = 120, 4, 6, 256
    grow = jax.jit(jax.vmap(lambda X, stats: grow_tree(X, stats, GINI, depth, 1)[0]))
    for draw in range(4):
        rng = np.random.default_rng(draw)
        X = rng.normal(size=(n_tables, m, d)).astype(np.float32)
        weight = rng.uniform(0.1, 3.0, size=(n_tables, m)).astype(np.float32)
        weight[rng.uniform(size=(n_tables, m)) < 0.5] = 0.0
        y = (rng.normal(size=(n_tables, m)) > 0).astype(np.int32)
        stats = weight[..., None] * np.eye(2, dtype=np.float32)[y]
        params = grow(jnp.asarray(X), jnp.asarray(stats))
        is_leaf, child_weight = np.asarray(params.is_leaf), np.asarray(params.value).sum(-1)
        internal = ~is_leaf
        internal[:, 2**depth - 1 :] = False  # the last level has no children
        tables, nodes = np.nonzero(internal)
        assert tables.size > n_tables * 8  # the trees do grow
        for child in (2 * nodes + 1, 2 * nodes + 2):
            assert np.all(child_weight[tables, child] > 0), f"a split made a child of zero weight (draw {draw})"


def test_the_cpu_sorting_network_is_the_stable_argsort_ties_included():
    from zodc.kernels._common import _bitonic_order, _xla_order

    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 20, 100, 130):
        X = jnp.asarray(np.round(rng.uniform(-1, 1, (m, 5)), 1), jnp.float32)  # many ties
        np.testing.assert_array_equal(jax.jit(_bitonic_order)(X), _xla_order(X))
