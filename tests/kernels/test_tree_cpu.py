"""The C++ CPU tree builder (``kernels/_tree_cpu.cc``) against the portable ``grow_tree``.

The builder must grow the *same* tree: same candidates, same float32 scores, same tie-breaks.
Where every statistic is a sum of multiples of a power of two (unweighted fits, weights in
quarters, rounded residuals) both add exactly, whatever their order, so the trees must be equal
bit for bit: features, thresholds, leaves and node statistics. The golden tests against
scikit-learn (``test_tree.py``, ``test_boosting.py``) run through the builder on CPU as well.
"""

import dataclasses
import os
import subprocess
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc.kernels import _build, _native
from zodc.kernels._common import FRIEDMAN_MSE, GINI, TreeParams, grow_tree
from zodc.kernels.tree import DecisionTreeClassifier

pytestmark = pytest.mark.skipif(
    not _native.native_tree_status()[0] and (os.environ.get(_native.DISABLE_ENV) == "0" or _build.compiler() is None),
    reason="the CPU tree builder is switched off or there is no C++ compiler",
)


def assert_same_tree(reference: TreeParams, built: TreeParams):
    for field in dataclasses.fields(TreeParams):
        np.testing.assert_array_equal(np.asarray(getattr(built, field.name)),
                                      np.asarray(getattr(reference, field.name)), err_msg=field.name)


def test_the_builder_is_available_where_a_compiler_is():
    # Where a compiler exists and nothing switched the builder off, it must build: a silent
    # fallback would leave every other test here skipped and the CPU kernels slow.
    available, reason = _native.native_tree_status()
    assert available, reason
    assert os.path.exists(reason)


# (m, d, classes, depth, min_samples_leaf): one compilation each, 32 tables each.
CONFIGS = [(60, 5, 3, 4, 2), (17, 3, 2, 5, 1), (120, 2, 4, 3, 6)]


def _tables(config, seed):
    """32 tables: ties, a constant feature, zero and fractional weights, labels outside the classes."""
    m, d, k, _, _ = config
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(32, m, d)).astype(np.float32)
    X[::3] = np.round(X[::3] * 2) / 2  # many equal values: ties within features and between them
    X[::5, :, -1] = 1.0  # a constant feature
    y = rng.integers(0, k + 1, size=(32, m))  # k: outside the classes, counts nowhere (weight 0)
    weight = rng.integers(0, 5, size=(32, m)).astype(np.float32) / 4  # quarters: exact sums
    weight[::2] = 1.0
    return rng, X, y, weight


@pytest.mark.parametrize("config", CONFIGS)
def test_gini_trees_equal_grow_tree_bit_for_bit(config):
    _, X, y, weight = _tables(config, 1)
    _, _, k, depth, leaf = config
    stats = jax.nn.one_hot(y, k) * weight[..., None]
    reference = jax.jit(jax.vmap(lambda X, s: grow_tree(X, s, GINI, depth, leaf)[0]))(X, stats)
    built = jax.jit(lambda X, s: _native.grow_tree_cpu(X, s, "gini", depth, leaf))(X, stats)
    assert_same_tree(reference, built)
    assert not np.asarray(built.is_leaf)[:, 0].all()  # the tables split: the comparison has content


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_friedman_trees_equal_grow_tree_bit_for_bit(config):
    rng, X, _, weight = _tables(config, 2)
    _, _, _, depth, leaf = config
    residual = np.round(rng.normal(size=weight.shape) * 4).astype(np.float32) / 4
    stats = np.stack([weight, weight * residual, weight * residual * residual], axis=-1)
    reference = jax.jit(jax.vmap(lambda X, s, r: grow_tree(X, s, FRIEDMAN_MSE, depth, leaf, pure=r)[0]))(
        X, stats, residual)
    built = jax.jit(lambda X, s, r: _native.grow_tree_cpu(X, s, "friedman_mse", depth, leaf, pure=r))(
        X, stats, residual)
    assert_same_tree(reference, built)
    assert not np.asarray(built.is_leaf)[:, 0].all()


def test_the_tree_kernel_calls_the_builder_on_cpu_and_equals_the_portable_path():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(100, 30)).astype(np.float32)
    y = rng.integers(0, 2, size=100).astype(np.int32)
    model = DecisionTreeClassifier(max_depth=4)
    fit = jax.jit(model.fit)
    assert _native.TARGET in fit.lower(jax.random.key(0), X, y).as_text()
    stats = jax.nn.one_hot(y, 2)
    portable, _ = jax.jit(lambda X, s: grow_tree(X, s, GINI, 4, 1))(X, stats)
    params = fit(jax.random.key(0), X, y)
    np.testing.assert_array_equal(params.feature, portable.feature)
    np.testing.assert_array_equal(params.threshold, portable.threshold)
    np.testing.assert_array_equal(params.is_leaf, portable.is_leaf)


def test_batch_axes_nested_vmap_and_one_table_agree():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(2, 3, 40, 5)).astype(np.float32)
    stats = jax.nn.one_hot(rng.integers(0, 2, size=(2, 3, 40)), 2)
    grow = lambda X, s: _native.grow_tree_cpu(X, s, "gini", 3, 2)
    leading = jax.jit(grow)(X, stats)
    nested = jax.jit(jax.vmap(jax.vmap(grow)))(X, stats)
    shared_stats = jax.jit(jax.vmap(grow, in_axes=(0, None)))(X[0], stats[0, 0])
    for i in range(2):
        for j in range(3):
            one = jax.jit(grow)(X[i, j], stats[i, j])
            for batch in (leading, nested):
                assert_same_tree(one, jax.tree.map(lambda leaf: leaf[i, j], batch))
    for j in range(3):
        assert_same_tree(jax.jit(grow)(X[0, j], stats[0, 0]), jax.tree.map(lambda leaf: leaf[j], shared_stats))
    # Leading axes that broadcast in the call itself: three tables, one set of statistics.
    broadcast = jax.jit(grow)(X[0], stats[0, 0])
    assert broadcast.feature.shape == (3, 15)
    assert_same_tree(jax.tree.map(lambda leaf: leaf[1], broadcast), jax.jit(grow)(X[0, 1], stats[0, 0]))


def test_non_finite_values_give_a_tree_not_a_crash():
    # The tables zodc fits are finite; a NaN or an infinity must still give a well-formed tree.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    X[::7, 1] = np.nan
    X[::5, 2] = np.inf
    X[::9, 3] = -np.inf
    stats = jax.nn.one_hot(rng.integers(0, 2, size=50), 2)
    params = jax.jit(lambda X, s: _native.grow_tree_cpu(X, s, "gini", 4, 1))(X, stats)
    feature = np.asarray(params.feature)
    assert feature.min() >= 0 and feature.max() < 4
    np.testing.assert_allclose(np.asarray(params.value)[0].sum(), 50.0)


def test_larger_tables_use_the_comparison_sort_and_still_agree():
    # Above 256 samples the builder sorts keys with std::sort instead of counting ranks.
    rng = np.random.default_rng(5)
    X = np.round(rng.normal(size=(2, 300, 3)) * 4).astype(np.float32) / 4
    stats = jax.nn.one_hot(rng.integers(0, 3, size=(2, 300)), 3)
    reference = jax.jit(jax.vmap(lambda X, s: grow_tree(X, s, GINI, 4, 3)[0]))(X, stats)
    assert_same_tree(reference, jax.jit(lambda X, s: _native.grow_tree_cpu(X, s, "gini", 4, 3))(X, stats))


def test_without_a_compiler_the_kernels_warn_and_fall_back_to_the_same_trees(tmp_path):
    # A fresh process with no compiler and an empty cache: a warning names the reason, the tree
    # kernel takes the portable path (no custom call) and grows the same tree.
    script = (
        "import warnings, jax, numpy as np\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from zodc.kernels import _native\n"
        "    from zodc.kernels.tree import DecisionTreeClassifier\n"
        "    rng = np.random.default_rng(7)\n"
        "    X = rng.normal(size=(100, 30)).astype(np.float32)\n"
        "    y = rng.integers(0, 2, size=100).astype(np.int32)\n"
        "    fit = jax.jit(DecisionTreeClassifier(max_depth=4).fit)\n"
        "    text = fit.lower(jax.random.key(0), X, y).as_text()\n"
        "    params = fit(jax.random.key(0), X, y)\n"
        "print(_native.native_tree_status()[1])\n"
        "print(any('no C++ compiler' in str(w.message) for w in caught), _native.TARGET in text)\n"
        "print(np.asarray(params.feature).tolist(), np.asarray(params.threshold).tolist())\n"
    )
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), ZODC_NATIVE_DIR=str(tmp_path / "cache"),
               JAX_PLATFORMS="cpu")
    env.pop(_native.DISABLE_ENV, None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    reason, flags, tree = result.stdout.strip().splitlines()
    assert "no C++ compiler" in reason
    assert flags == "True False"
    rng = np.random.default_rng(7)
    X = rng.normal(size=(100, 30)).astype(np.float32)
    y = rng.integers(0, 2, size=100).astype(np.int32)
    params = jax.jit(DecisionTreeClassifier(max_depth=4).fit)(jax.random.key(0), X, y)
    assert tree == f"{np.asarray(params.feature).tolist()} {np.asarray(params.threshold).tolist()}"
    assert not (tmp_path / "cache").exists()


def test_a_build_is_cached_and_written_atomically(tmp_path, monkeypatch):
    compiler = _build.compiler()
    monkeypatch.setenv(_build.DIR_ENV, str(tmp_path))
    path = _build.build(compiler)
    assert os.path.dirname(path) == str(tmp_path) and os.path.exists(path)
    stamp = os.stat(path).st_mtime_ns
    assert _build.build(compiler) == path and os.stat(path).st_mtime_ns == stamp  # found, not rebuilt
    assert [name for name in os.listdir(tmp_path)] == [os.path.basename(path)]  # no partial files left


def test_a_failed_build_names_the_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(_build.DIR_ENV, str(tmp_path))
    monkeypatch.setattr(_build, "FLAGS", _build.FLAGS + ("-DZODC_NO_SUCH_FLAG", "--no-such-option"))
    with pytest.raises(RuntimeError, match="no-such-option"):
        _build.build(_build.compiler())
    assert os.listdir(tmp_path) == []


def test_shapes_are_checked_in_the_call():
    with pytest.raises(Exception, match="zodc_tree_fit"):
        X = jnp.zeros((5, 3))
        stats = jnp.zeros((4, 2))  # 4 samples of statistics for 5 rows
        jax.block_until_ready(_native.grow_tree_cpu(X, stats, "gini", 2, 1))


def _fitted_trees(rng, n_trees=6, m=80, d=5, depth=4):
    X = rng.normal(size=(n_trees, m, d)).astype(np.float32)
    stats = jax.nn.one_hot(rng.integers(0, 2, size=(n_trees, m)), 2)
    return jax.jit(lambda X, s: _native.grow_tree_cpu(X, s, "gini", depth, 1))(X, stats)


def test_leaves_equal_the_portable_routing_for_every_batch_layout():
    from zodc.kernels._common import _leaf_index

    rng = np.random.default_rng(13)
    trees = _fitted_trees(rng)
    X = rng.normal(size=(300, 5)).astype(np.float32)  # more rows than one block of 256
    X[::11, 2] = np.nan  # NaN compares False: goes left, as in jnp
    portable = jax.jit(jax.vmap(lambda tree: _leaf_index(tree, X, 4)))(trees)
    # Trees batched, rows shared (vmap: a size-1 axis, not a copy of X per tree).
    shared = jax.jit(jax.vmap(lambda tree: _native.leaf_index_cpu(tree, X, 4)))(trees)
    np.testing.assert_array_equal(shared, portable)
    # Rows batched, one tree; both batched; nested vmaps.
    X_batch = rng.normal(size=(6, 300, 5)).astype(np.float32)
    one_tree = jax.tree.map(lambda leaf: leaf[2], trees)
    np.testing.assert_array_equal(
        jax.jit(jax.vmap(lambda rows: _native.leaf_index_cpu(one_tree, rows, 4)))(X_batch),
        jax.vmap(lambda rows: _leaf_index(one_tree, rows, 4))(X_batch))
    both = jax.jit(jax.vmap(lambda tree, rows: _native.leaf_index_cpu(tree, rows, 4)))(trees, X_batch)
    np.testing.assert_array_equal(both, jax.vmap(lambda tree, rows: _leaf_index(tree, rows, 4))(trees, X_batch))
    grid = jax.jit(jax.vmap(jax.vmap(lambda tree, rows: _native.leaf_index_cpu(tree, rows, 4), (None, 0)), (0, None)))(
        trees, X_batch[:3])
    assert grid.shape == (6, 3, 300)
    np.testing.assert_array_equal(grid[4, 1], _leaf_index(jax.tree.map(lambda leaf: leaf[4], trees), X_batch[1], 4))
    assert len(np.unique(portable)) > 4  # the rows reach many leaves: the comparison has content
    assert (np.asarray(portable) < 15).any()  # and some stop above the last level (a leaf kept, not passed)


def test_one_record_changes_only_its_own_leaf():
    # The routing reads real records: a neighbouring data set (one record replaced by an extreme
    # one) changes that record's leaves and no other's.
    rng = np.random.default_rng(17)
    trees = _fitted_trees(rng)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    X_neighbour = X.copy()
    X_neighbour[57] = [1e30, -1e30, np.nan, np.inf, -np.inf]
    route = jax.jit(jax.vmap(lambda tree, rows: _native.leaf_index_cpu(tree, rows, 4), (0, None)))
    leaves, neighbour = np.asarray(route(trees, X)), np.asarray(route(trees, X_neighbour))
    others = np.arange(200) != 57
    np.testing.assert_array_equal(leaves[:, others], neighbour[:, others])
    assert not np.array_equal(leaves[:, 57], neighbour[:, 57])


def test_an_unwritable_cache_directory_builds_in_a_private_temporary_one(tmp_path, monkeypatch):
    # A regular file where the cache's parent should be: no user (root included) can create it.
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(_build.DIR_ENV, str(tmp_path / "a-file" / "native"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(_build.tempfile, "tempdir", str(tmp_path / "tmp"))
    path = _build.build(_build.compiler())
    assert path.startswith(str(tmp_path / "tmp")) and os.path.exists(path)


@pytest.mark.parametrize("max_features", [1, 3])
def test_random_feature_trees_equal_grow_tree_bit_for_bit(max_features):
    # A forest's trees: per-node feature draws from the same bits, bootstrap counts as weights (whole
    # numbers: exact sums), the table shared by the trees (vmap passes it once, not per tree).
    rng = np.random.default_rng(19 + max_features)
    X = rng.normal(size=(2, 60, 7)).astype(np.float32)
    X[1] = np.round(X[1] * 2) / 2  # ties
    X[1, :, 2] = 0.5  # a constant feature: the fallback draw matters
    y = rng.integers(0, 2, size=(2, 60))
    counts = rng.multinomial(60, np.full(60, 1 / 60), size=(2, 16)).astype(np.float32)  # (tables, trees, m)
    keys = jax.random.split(jax.random.key(3), 16)

    def forest(grow):
        def one_table(X, y, counts):
            stats = jax.nn.one_hot(y, 2)[None] * counts[..., None]  # (trees, m, 2)
            return jax.vmap(lambda s, k: grow(X, s, k))(stats, keys)
        return jax.jit(jax.vmap(one_table))(X, y, counts)

    reference = forest(lambda X, s, k: grow_tree(X, s, GINI, 4, 1, feature_key=k, max_features=max_features)[0])
    built = forest(lambda X, s, k: _native.grow_tree_cpu(X, s, "gini", 4, 1, feature_key=k, max_features=max_features))
    assert_same_tree(reference, built)
    assert len(np.unique(np.asarray(built.feature)[..., 0])) > 1  # the roots' features differ: draws at work


def test_the_forest_kernel_grows_through_the_builder():
    from zodc.kernels import RandomForestClassifier

    rng = np.random.default_rng(23)
    X = rng.normal(size=(50, 9)).astype(np.float32)
    y = rng.integers(0, 2, size=50).astype(np.int32)
    model = RandomForestClassifier(n_estimators=4, max_depth=3)
    text = jax.jit(model.fit).lower(jax.random.key(0), X, y).as_text()
    assert _native.TARGET in text and _native.APPLY_TARGET not in text
    probability = jax.jit(model.predict_proba)(jax.jit(model.fit)(jax.random.key(0), X, y), X)
    np.testing.assert_allclose(np.asarray(probability).sum(-1), 1.0, rtol=1e-6)


def test_a_cpu_only_process_traces_the_cpu_branch_alone():
    # platform_dependent traces every branch (grow_tree's costs about a second per shape); where the
    # CPU is the only backend, on_platform traces the CPU branch alone, since nothing lowers elsewhere.
    assert jax.default_backend() == "cpu"

    def never(x):
        raise AssertionError("the default branch was traced")

    jaxpr = jax.make_jaxpr(lambda x: _native.on_platform(x, cpu=lambda x: x + 1.0, default=never))(jnp.ones(3))
    assert "platform_index" not in str(jaxpr)
    model = DecisionTreeClassifier(max_depth=3)
    text = str(jax.make_jaxpr(model.fit)(jax.random.key(0), jnp.ones((16, 3)), jnp.zeros(16, jnp.int32)))
    assert "platform_index" not in text and "sort" not in text  # neither grow_tree nor its sort traced


def test_the_background_build_settles_the_status_once(monkeypatch):
    # The command line starts the build on a thread; the status it reaches (here: no compiler) is
    # the one every later call returns, and its warning is given once.
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setattr(_build, "compiler", lambda: None)
    monkeypatch.setattr(_build, "_background", {})
    monkeypatch.delenv(_native.DISABLE_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread = _build.build_in_background()
        thread.join(timeout=60)
        assert not thread.is_alive() and thread.name == "zodc-native-build"
        assert _native.native_tree_status() == (False, "no C++ compiler ($CXX or c++) on PATH")
    assert sum("not available" in str(w.message) for w in caught) == 1


def test_the_foreground_takes_the_background_build_and_reports_its_failure(tmp_path, monkeypatch):
    # The thread only compiles; the first status call waits for it and takes its library (no second
    # build), or reports its error, with the warning given once.
    calls = []
    monkeypatch.setattr(_build, "_background", {})
    monkeypatch.setattr(_build, "build", lambda compiler: calls.append(compiler) or str(tmp_path / "lib.so"))
    _build.build_in_background().join(timeout=60)
    assert _build.built("c++") == str(tmp_path / "lib.so") and len(calls) == 1
    monkeypatch.undo()
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setattr(_build, "_background", {})
    monkeypatch.setenv(_build.DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(_build, "FLAGS", _build.FLAGS + ("--no-such-option",))
    monkeypatch.delenv(_native.DISABLE_ENV, raising=False)
    _build.build_in_background().join(timeout=120)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available, reason = _native.native_tree_status()
        assert _native.native_tree_status() == (available, reason)
    assert not available and "no-such-option" in reason
    assert sum("not available" in str(w.message) for w in caught) == 1


def test_the_command_line_starts_the_build_before_jax_loads():
    # zodc, zodc.cli and zodc.kernels._build import no JAX: `zodc condense` starts compiling about a
    # second and a half (JAX's imports) sooner.
    script = ("import sys\nimport zodc, zodc.cli\nfrom zodc.kernels._build import build_in_background\n"
              "print(sorted(m for m in ('jax', 'jaxlib.xla_client', 'sklearn', 'pandas') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def test_half_written_builds_of_exited_processes_are_removed(tmp_path):
    stale, fresh = tmp_path / "zodc_tree_cpu_a.so.partial", tmp_path / "zodc_tree_cpu_b.so.partial"
    other = tmp_path / "zodc_tree_cpu_0123.so"
    for path in (stale, fresh, other):
        path.write_bytes(b"")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    _build._remove_stale_partials(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, fresh.name]  # another build may be writing b


def test_a_build_still_running_at_exit_is_stopped_and_leaves_nothing(tmp_path):
    # A command that ends while its background build runs (an error in the data, say) stops the
    # compiler and removes the half-written library: nothing outlives the process.
    compiler = tmp_path / "slow-c++"
    pid_file = tmp_path / "compiler.pid"
    compiler.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && echo slow 1.0 && exit 0\necho $$ > {pid_file}\nexec sleep 60\n")
    compiler.chmod(0o755)
    script = ("import time\nfrom zodc.kernels import _build\n_build.build_in_background()\n"
              f"while not __import__('os').path.exists({str(pid_file)!r}): time.sleep(0.05)\n")
    env = dict(os.environ, CXX=str(compiler), ZODC_NATIVE_DIR=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    env.pop(_native.DISABLE_ENV, None)
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert list((tmp_path / "cache").iterdir()) == []
