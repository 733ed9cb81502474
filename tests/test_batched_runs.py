"""Batched runs (issue 25, part 4): ``R`` independent condensations in one compiled program, each equal
to its own separate run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc.condense import StepParams, adam, init_batch, run, run_batch, stack_params, zero_order_condenser
from zodc.errors import ConfigError
from zodc.models.losses import ClassificationLoss
from zodc.models.native import native_classifier_data, native_classifier_evaluator
from zodc.models.presets import get_preset

N, D, M, Q, STEPS = 400, 4, 6, 4, 8


def _records(rng):
    X = rng.uniform(-1, 1, (N, D)).astype(np.float32)
    return X, (X[:, 0] + 0.4 * rng.normal(size=N) > 0).astype(np.int32)


def _setup(model):
    rng = np.random.default_rng(0)
    X, y = _records(rng)
    evaluate = native_classifier_evaluator(get_preset(model).native_factory(2),
                                           ClassificationLoss("balanced_linear", (1.0, 1.0)))
    data = native_classifier_data(X, y, np.repeat([0, 1], M // 2), jax.random.key(0))
    runs = [dict(seed=s, sigma=sg, smoothing=mu, p=p) for s, sg, mu, p in
            ((1, 1.0, 0.2, 0.5), (2, 3.0, 0.1, 0.5), (3, 0.5, 0.3, 0.8), (4, 1.0, 0.2, 0.25))]
    params = [StepParams(smoothing=jnp.float32(r["smoothing"]), l2_norm_clip=jnp.float32(1.0),
                         noise_multiplier=jnp.float32(r["sigma"]), sampling_probability=jnp.float32(r["p"]),
                         expected_batch_size=jnp.float32(r["p"] * N)) for r in runs]
    noise = np.stack([np.random.default_rng(10 + i).integers(-4000, 4000, (STEPS, Q)) for i in range(len(runs))]
                     ).astype(np.int32)
    starts = jnp.asarray(rng.uniform(-0.5, 0.5, (len(runs), M, D)), jnp.float32)
    keys = jnp.stack([jax.random.key(r["seed"]) for r in runs])
    return evaluate, data, params, noise, starts, keys


@pytest.mark.parametrize("model,block", [("tree", 64), ("logistic", None)])
def test_each_batched_run_equals_its_separate_run(model, block):
    evaluate, data, params, noise, starts, keys = _setup(model)
    condenser = zero_order_condenser(evaluate, adam(0.05), num_records=N, num_directions=Q, record_block=block)
    states, infos = run_batch(condenser, init_batch(condenser, keys, starts), stack_params(params), STEPS, data=data,
                              noise=noise, chunk_size=4)
    assert infos.loss.shape == (4, STEPS)
    for r in range(4):
        alone, alone_info = run(condenser, condenser.init(keys[r], starts[r]), params[r], STEPS, data=data,
                                noise=noise[r], chunk_size=4)
        # Within float32 rounding, not bit for bit: XLA compiles the batched program's gradient (a sum
        # over directions) and logistic's iterative fit for a batch, in another order. Measured after 8
        # steps: tree 6e-8 (one ulp), logistic 4e-6. The integer noisy sums and masks are the same.
        np.testing.assert_allclose(np.asarray(states.table[r]), np.asarray(alone.table), rtol=0,
                                   atol=1e-6 if model == "tree" else 1e-4)
        np.testing.assert_array_equal(np.asarray(infos.batch_size[r]), np.asarray(alone_info.batch_size))
    assert not np.allclose(np.asarray(states.table[0]), np.asarray(states.table[1]))  # the runs differ


def test_batched_noise_must_have_a_run_axis():
    evaluate, data, params, noise, starts, keys = _setup("tree")
    condenser = zero_order_condenser(evaluate, adam(0.05), num_records=N, num_directions=Q)
    with pytest.raises(ConfigError, match=r"\(runs, steps, q\)"):
        run_batch(condenser, init_batch(condenser, keys, starts), stack_params(params), STEPS, data=data,
                  noise=noise[0])


def test_a_step_size_carried_as_data_is_the_optimisers_own_bit_for_bit():
    # The front door builds adam(1.0) and passes the step size in StepParams.learning_rate, so runs of
    # other step sizes share one compiled step: the updates are adam(rate)'s exactly.
    # (Logistic: the optimiser is what is tested, and its step compiles in half the tree's time.)
    evaluate, data, params, noise, starts, keys = _setup("logistic")
    rate = 0.013
    own = zero_order_condenser(evaluate, adam(rate), num_records=N, num_directions=Q)
    unit = zero_order_condenser(evaluate, adam(1.0), num_records=N, num_directions=Q)
    a, _ = run(own, own.init(keys[0], starts[0]), params[0], STEPS, data=data, noise=noise[0])
    b, _ = run(unit, unit.init(keys[0], starts[0]), params[0].replace(learning_rate=jnp.float32(rate)), STEPS,
               data=data, noise=noise[0])
    np.testing.assert_array_equal(np.asarray(a.table), np.asarray(b.table))
    assert not np.array_equal(np.asarray(a.table), np.asarray(starts[0]))  # the steps moved the table


def _weights_as_data(model="tree"):
    """The evaluator as the front door builds it: the class weights travel in the data."""
    return native_classifier_evaluator(get_preset(model).native_factory(2), ClassificationLoss("balanced_linear", None))


def _own_data_setup(model="tree"):
    """``_setup(model)``'s runs, the class weights travelling in the data (as the front door does), and
    the records."""
    _, _, params, noise, starts, keys = _setup(model)
    return _weights_as_data(model), params, noise, starts, keys, _records(np.random.default_rng(0))


def test_runs_with_their_own_data_and_step_sizes_each_equal_their_separate_run():
    # A private search's candidates: each with its own class weights and model key (data_axis=0) and
    # its own step size (adam(1.0) and StepParams.learning_rate), in one program. (Logistic: it compiles
    # in half the tree's time; the search's test runs the tree this way.)
    evaluate, params, noise, starts, keys, (X, y) = _own_data_setup("logistic")
    parts = [native_classifier_data(X, y, np.repeat([0, 1], M // 2), jax.random.key(r), weights)
             for r, weights in enumerate([(1.0, 1.0), (0.6, 1.7), (1.2, 0.9), (1.0, 3.0)])]
    stacked = stack_params(parts)
    rates = [0.05, 0.1, 0.02, 0.2]
    params = [p.replace(learning_rate=jnp.float32(rate)) for p, rate in zip(params, rates)]
    condenser = zero_order_condenser(evaluate, adam(1.0), num_records=N, num_directions=Q)
    states, infos = run_batch(condenser, init_batch(condenser, keys, starts), stack_params(params), STEPS,
                              data=stacked, noise=noise, data_axis=0)
    for r in range(4):
        alone, alone_info = run(condenser, condenser.init(keys[r], starts[r]), params[r], STEPS, data=parts[r],
                                noise=noise[r])
        np.testing.assert_allclose(np.asarray(states.table[r]), np.asarray(alone.table), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(np.asarray(infos.batch_size[r]), np.asarray(alone_info.batch_size))
    shared, _ = run_batch(condenser, init_batch(condenser, keys, starts), stack_params(params), STEPS,
                          data=parts[0], noise=noise)  # data_axis=None: run 0's data for every run
    assert not np.allclose(np.asarray(shared.table[1]), np.asarray(states.table[1]))  # the data axis is used


def test_one_record_in_one_runs_data_changes_no_other_run():
    # Neighbouring datasets inside one batched program: run 0 on D' = D plus one record, runs 1..3 on D.
    # Runs 1..3 release exactly what they release beside run 0 on D (no coupling across runs), and run 0's
    # batch grows by at most that record at each step. The records are padded to one shape (n + 1 rows,
    # StepParams.record_count n for D: the padding row is never sampled).
    from zodc.condense import pad_records

    evaluate, params, noise, starts, keys, (X, y) = _own_data_setup()
    extra = (np.vstack([X, np.full((1, D), 0.99, np.float32)]), np.append(y, 1))
    condenser = zero_order_condenser(evaluate, adam(0.05), num_records=N + 1, num_directions=Q)
    weights = (1.0, 1.5)
    on_d = pad_records(native_classifier_data(X, y, np.repeat([0, 1], M // 2), jax.random.key(0), weights), N, N + 1)
    on_neighbour = native_classifier_data(*extra, np.repeat([0, 1], M // 2), jax.random.key(0), weights)
    counts = [N, N, N, N]
    results = []
    for first in (on_d, on_neighbour):
        stacked = stack_params([first, on_d, on_d, on_d])
        run_params = stack_params([p.replace(record_count=jnp.int32(c)) for p, c in
                                   zip(params, [N + (first is on_neighbour)] + counts[1:])])
        results.append(run_batch(condenser, init_batch(condenser, keys, starts), run_params, STEPS, data=stacked,
                                 noise=noise, data_axis=0))
    (base, base_info), (moved, moved_info) = results
    for r in (1, 2, 3):
        np.testing.assert_array_equal(np.asarray(moved.table[r]), np.asarray(base.table[r]))
        np.testing.assert_array_equal(np.asarray(moved_info.loss[r]), np.asarray(base_info.loss[r]))
    grown = np.asarray(moved_info.batch_size[0]) - np.asarray(base_info.batch_size[0])
    assert set(np.unique(grown)) <= {0, 1} and grown.sum() > 0  # p >= 0.25 over 8 steps: sampled at least once
