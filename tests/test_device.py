"""The kernels' device path on an accelerator against the same computation on the CPU (issue 25, part 7).

Where JAX's default backend is an accelerator (a GPU), each kernel runs there and, in the same
process, on the CPU. On the accelerator the tree, forest and boosting kernels take
``jax.lax.platform_dependent``'s default branch (``grow_tree``'s dense search, XLA's sort, the JAX
routing); on the CPU they call the C++ builder. ``benchmarks/device_check.sh`` runs this file (with
``tests/kernels``) on a lent GPU machine.

Where the CPU is the only backend, as in CI, the CPU stands in for the accelerator: the stand-in
side is traced as a process without the C++ builder, so it runs the accelerator's portable path on
the CPU, and the same assertions hold. (The stand-in found pure nodes that ``grow_tree`` split and
the builder did not: ``tests/kernels/test_tree.py::test_a_pure_node_is_a_leaf_whatever_its_count``.)

What must agree, and why:

* **Routing** compares features with thresholds and nothing else: the same leaves, exactly.
* **Trees and forests on counts** (no weights, or bootstrap counts): every candidate's statistics
  are small integers, added exactly in any order. A score is a float32 expression with divisions;
  XLA's GPU backend may contract multiply-adds into FMAs, which the CPU build does not
  (``-ffp-contract=off``), so one candidate's score may differ by an ulp between the two. That
  cannot reorder candidates: two different count pairs ``(l0, l1)`` with at most 100 samples give
  scores at least ``1 / 100^2`` apart relative to scores below 100, hundreds of ulps, and equal
  count pairs give equal scores on each side. Thresholds are midpoints of two values (exact halves)
  and the leaf values are sums of counts. So the trees are equal bit for bit.
* **Boosting, logistic and Cox** add float32 residuals, gradients and Hessians in different orders
  and with FMAs: equal to a stated tolerance.
* **A whole condensation** (native tree): the directions' ``erfinv`` is XLA's polynomial on each
  backend, and the noise is the same grid draw; the budget spent must be the same, the tables close.
* **Privacy on the accelerator**: the neighbouring-dataset properties of ``tests/privacy``, computed
  there. The grid sum moves by at most the clip when one record is added (its float32 clipping keeps
  a margin for the rounding an FMA changes) and an unsampled record changes nothing; the native
  tree's losses of every other record are the same bit for bit when one record is added.
"""

from __future__ import annotations

import contextlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc.kernels import (CoxPH, DecisionTreeClassifier, GradientBoostingClassifier, LogisticRegression,
                          RandomForestClassifier)
from zodc.kernels import _native


def _devices():
    """``(accelerator, cpu)``; where JAX computes on the CPU only, the CPU stands in for both."""
    cpu = jax.devices("cpu")[0]
    return (cpu, cpu) if jax.default_backend() == "cpu" else (jax.devices()[0], cpu)


DEVICES = _devices()
STAND_IN = DEVICES[0] == DEVICES[1]


@contextlib.contextmanager
def portable_path(switch: bool):
    """With ``switch``, trace as a process whose C++ builder is unavailable (the stand-in's path)."""
    if not switch:
        yield
        return
    saved = dict(_native._state)
    _native._state.clear()
    _native._state.update(available=False, reason="the accelerator's stand-in")
    jax.clear_caches()  # jit keeps traces per function and static arguments, not per builder
    try:
        yield
    finally:
        _native._state.clear()
        _native._state.update(saved)
        jax.clear_caches()


def on(device, function, *args, accelerator=False):
    """``jit(function)(*args)`` computed on ``device``, as NumPy arrays."""
    with jax.default_device(device), portable_path(accelerator and STAND_IN):
        placed = jax.device_put(args, device)
        fresh = jax.jit(lambda *args: function(*args))  # its own trace: jit caches traces per function
        return jax.tree.map(np.asarray, fresh(*placed))


def both(function, *args):
    accelerator, cpu = DEVICES
    return on(accelerator, function, *args, accelerator=True), on(cpu, function, *args)


def assert_trees_equal(first, second):
    for name in ("feature", "threshold", "is_leaf", "value"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)


def classification_tables(seed, n_tables=32, m=100, d=30):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_tables, m, d)).astype(np.float32)
    X[::4] = np.round(X[::4] * 2) / 2  # ties within and between features
    y = ((X[..., 0] + rng.normal(size=(n_tables, m))) > 0).astype(np.int32)
    X_test = rng.normal(size=(400, d)).astype(np.float32)
    return X, y, X_test


def test_routing_is_the_same_leaf_for_every_row():
    X, y, X_test = classification_tables(0)
    model = DecisionTreeClassifier(max_depth=4)
    trees = on(DEVICES[1], jax.vmap(lambda X, y: model.fit(None, X, y)), X, y)
    accelerator, cpu = both(jax.vmap(model.apply, (0, None)), trees, X_test)
    np.testing.assert_array_equal(accelerator, cpu)


@pytest.mark.parametrize("depth", [1, 4, 6])
def test_trees_on_counts_are_equal_bit_for_bit(depth):
    X, y, X_test = classification_tables(1)
    model = DecisionTreeClassifier(max_depth=depth)
    accelerator, cpu = both(jax.vmap(lambda X, y: model.fit(None, X, y)), X, y)
    assert_trees_equal(accelerator, cpu)
    assert (cpu.is_leaf[:, 0] == 0).all()  # every table grew a tree
    proba = both(jax.vmap(model.predict_proba, (0, None)), cpu, X_test)
    np.testing.assert_array_equal(*proba)


def test_forests_with_bootstrap_counts_are_equal_bit_for_bit():
    X, y, _ = classification_tables(2, n_tables=4)
    model = RandomForestClassifier(n_estimators=16, max_depth=4, max_features="sqrt")
    fit = jax.vmap(model.fit, (None, 0, 0))
    accelerator, cpu = both(fit, jax.random.key(3), X, y)
    assert_trees_equal(accelerator, cpu)


def test_boosting_agrees_to_a_stated_tolerance():
    X, y, X_test = classification_tables(3, n_tables=8)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3)

    def fit_predict(X, y, X_test):
        return jax.vmap(lambda X, y: model.predict_proba(model.fit(None, X, y), X_test))(X, y)

    accelerator, cpu = both(fit_predict, X, y, X_test)
    # Residual sums in float32 in another order: a stage's split flips where two candidates tie to
    # the last bits, and the rows it routes move (stand-in on the 2-core VM: mean 0.006, 99th
    # percentile 0.09).
    difference = np.abs(accelerator - cpu).max(-1)
    assert difference.mean() <= 0.02, difference.mean()
    assert (difference <= 0.05).mean() >= 0.9, (difference <= 0.05).mean()


def test_logistic_agrees_to_float32_rounding():
    X, y, _ = classification_tables(4, n_tables=16, d=10)
    model = LogisticRegression(C=1.0)
    accelerator, cpu = both(jax.vmap(lambda X, y: model.fit(None, X, y)), X, y)
    np.testing.assert_allclose(accelerator.coef, cpu.coef, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(accelerator.intercept, cpu.intercept, rtol=1e-3, atol=1e-4)


def test_cox_agrees_to_float32_rounding():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(16, 80, 6)).astype(np.float32)
    time = rng.exponential(size=(16, 80)).astype(np.float32) * np.exp(-X[..., 0])
    time = np.round(time * 20 + 1) / 20  # tied times: Efron's correction at work
    event = (rng.uniform(size=(16, 80)) < 0.7).astype(np.int32)
    model = CoxPH(penalizer=0.1)
    accelerator, cpu = both(jax.vmap(lambda X, t, e: model.fit(None, X, t, e)), X, time, event)
    np.testing.assert_allclose(accelerator.coef, cpu.coef, rtol=1e-3, atol=1e-4)
    assert accelerator.converged.all() and cpu.converged.all()


def test_a_native_condensation_spends_the_same_budget_and_lands_close(tmp_path):
    from zodc import Condenser
    from zodc.data.datasets import load_dataset

    data = load_dataset("breast_cancer")
    X, y = data.frame.drop(columns=[data.schema.target]), data.frame[data.schema.target]

    def condense():
        return Condenser("tree", epsilon=1.0, steps=20, num_directions=8, rows_per_class=5, backend="native",
                         schema=data.schema, random_state=0).fit(X, y)

    accelerator_device, cpu_device = DEVICES
    with jax.default_device(accelerator_device), portable_path(STAND_IN):
        accelerator = condense()
    with jax.default_device(cpu_device):
        cpu = condense()
    assert accelerator.epsilon_ == cpu.epsilon_ and accelerator.noise_multiplier_ == cpu.noise_multiplier_
    features = [column.name for column in data.schema.feature_columns]
    a = accelerator.synthetic_[features].to_numpy(float)
    c = cpu.synthetic_[features].to_numpy(float)
    assert np.isfinite(a).all() and a.shape == c.shape
    spread = np.array([column.upper - column.lower for column in data.schema.feature_columns])
    # The same seed: the start, the noise and the directions' bits are equal; erfinv and the
    # scores' last bits may not be, and a split that flips moves that step's estimate.
    assert (np.abs(a - c) <= 1e-3 * spread).mean() >= 0.9


# Privacy on the accelerator: the same neighbouring-dataset properties as tests/privacy, computed there.


def test_the_grid_sum_on_the_accelerator_moves_by_at_most_the_clip_when_one_record_is_added():
    from zodc.privacy.mechanisms import grid_noisy_sum
    from zodc.privacy.noise import GRID_BITS

    rng = np.random.default_rng(6)
    q, clip = 16, 1.0
    noise = np.zeros(q, np.int32)
    release = jax.vmap(lambda values, mask: grid_noisy_sum(values, mask, clip, noise))
    values = rng.normal(0, 1, (20, 50, q)).astype(np.float32) * rng.uniform(0.01, 10, (20, 1, 1)).astype(np.float32)
    extra = rng.normal(0, 100, (20, 1, q)).astype(np.float32)
    more = np.concatenate([values, extra], axis=1)
    without = on(DEVICES[0], release, values, np.ones((20, 50), bool), accelerator=True)
    with_it = on(DEVICES[0], release, more, np.ones((20, 51), bool), accelerator=True)
    unsampled = on(DEVICES[0], release, more, np.repeat([[True] * 50 + [False]], 20, 0), accelerator=True)
    assert (np.linalg.norm(with_it - without, axis=-1) <= clip).all()  # the accountant's sensitivity
    units = without / (clip * 2.0**-GRID_BITS)
    np.testing.assert_array_equal(units, np.round(units))  # integer arithmetic: sums of grid units
    np.testing.assert_array_equal(unsampled, without)  # an unsampled record changes nothing


def test_native_losses_on_the_accelerator_of_other_records_do_not_depend_on_one_record():
    from tests.privacy.test_neighbours import native_tree_neighbours

    losses, tables, records, neighbour = native_tree_neighbours(seed=7)
    base = on(DEVICES[0], losses, tables, *records, accelerator=True)
    more = on(DEVICES[0], losses, tables, *neighbour, accelerator=True)
    np.testing.assert_array_equal(base, more[:, :base.shape[1]])  # every other record's losses, bit for bit


@pytest.mark.parametrize("model", ["tree", "forest", "boosting", "logistic", "cox"])
@pytest.mark.parametrize("portable", [False, True], ids=["native", "portable"])
def test_every_product_of_a_private_step_is_full_float32(model, portable):
    # JAX's default precision lets an NVIDIA GPU (Ampere or later) compute float32 matmuls in TF32,
    # 10-bit mantissas: the linear kernels' Newton steps would stop ~1e-3 away from scikit-learn's
    # and lifelines' optimum. Every dot of a step, on the accelerator's path too, asks for HIGHEST.
    import re

    import optax

    from zodc.condense import StepParams, zero_order_condenser
    from zodc.models.losses import ClassificationLoss
    from zodc.models.native import native_classifier_data, native_classifier_evaluator
    from zodc.models.presets import get_preset
    from zodc.models.survival import SurvivalLoss, TimeScale, native_survival_evaluator, public_time_grid

    rng = np.random.default_rng(8)
    n, m, d = 16, 6, 3
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    preset = get_preset(model)
    if model == "cox":
        time = rng.uniform(1, 100, n)
        evaluate = native_survival_evaluator(preset.native_factory(2), SurvivalLoss("discrete_nll",
                                             public_time_grid(1.0, 100.0, 4)), X, time, np.arange(n) % 2,
                                             np.arange(m) % 2, TimeScale(1.0, 100.0), jax.random.key(0))
        table, data = rng.uniform(-0.5, 0.5, (m, d + 1)).astype(np.float32), None
    else:
        evaluate = native_classifier_evaluator(preset.native_factory(2), ClassificationLoss("balanced_linear"))
        table = rng.uniform(-0.5, 0.5, (m, d)).astype(np.float32)
        data = native_classifier_data(X, np.arange(n) % 2, np.arange(m) % 2, jax.random.key(0))
    condenser = zero_order_condenser(evaluate, optax.adam(0.05), num_records=n, num_directions=2)
    params = StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(1.0),
                        noise_multiplier=jnp.float32(1.0), sampling_probability=jnp.float32(1.0))
    with portable_path(portable):
        state = condenser.init(jax.random.key(1), jnp.asarray(table))
        text = jax.jit(condenser.step).lower(state, params, data).as_text()
    precisions = re.findall(r"dot_general .*?precision = \[(\w+), (\w+)\]", text)
    assert precisions and set(precisions) == {("HIGHEST", "HIGHEST")}, precisions


def test_the_command_line_asks_xla_for_deterministic_gpu_kernels(monkeypatch, capsys):
    # Scatter-adds and some matrix products on a GPU add atomically by default, in the threads'
    # order: the same seed could release different tables. `zodc condense` asks for deterministic
    # kernels before JAX starts a backend, keeping a user's own flags and choice.
    from zodc import cli, runtime

    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/somewhere")
    monkeypatch.setenv(runtime.DISABLE_ENV, "1")  # keep the session's compilation cache
    assert cli.main(["datasets"]) == 0
    assert runtime.DETERMINISTIC_GPU_FLAG in os.environ["XLA_FLAGS"].split()
    assert "--xla_dump_to=/tmp/somewhere" in os.environ["XLA_FLAGS"].split()
    runtime.deterministic_gpu()  # idempotent
    assert os.environ["XLA_FLAGS"].count("xla_gpu_exclude_nondeterministic_ops") == 1
    monkeypatch.setenv("XLA_FLAGS", "--xla_gpu_exclude_nondeterministic_ops=false")
    runtime.deterministic_gpu()  # a user's explicit choice stays
    assert os.environ["XLA_FLAGS"] == "--xla_gpu_exclude_nondeterministic_ops=false"
    capsys.readouterr()


def test_a_seeded_native_condensation_repeats_bit_for_bit_on_the_accelerator():
    # With the deterministic kernels (tests/conftest.py sets the flag as `zodc condense` does).
    from zodc import Condenser
    from zodc.data.datasets import load_dataset

    data = load_dataset("breast_cancer")
    X, y = data.frame.drop(columns=[data.schema.target]), data.frame[data.schema.target]
    with jax.default_device(DEVICES[0]), portable_path(STAND_IN):
        tables = [Condenser("tree", epsilon=1.0, steps=10, num_directions=8, rows_per_class=5, backend="native",
                            schema=data.schema, random_state=3).fit(X, y).synthetic_ for _ in range(2)]
    assert tables[0].equals(tables[1])
