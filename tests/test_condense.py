import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from zodc import zo
from zodc.condense import StepParams, run, zero_order_condenser
from zodc.errors import ConfigError

NUM_RECORDS = 40
CENTERS = jax.random.uniform(jax.random.key(7), (NUM_RECORDS, 4, 3), minval=-0.5, maxval=0.5)


def quadratic_evaluate(tables, mask, data=None):
    """Per-record loss ||S - c_i||^2 / 10: smooth, so the estimator has a known target."""
    del mask, data
    return jax.vmap(lambda table: jnp.sum((table[None] - CENTERS) ** 2, axis=(1, 2)) / 10.0)(tables)


def params(smoothing=0.1, clip=np.inf, noise=0.0, p=1.0):
    return StepParams(smoothing=jnp.float32(smoothing), l2_norm_clip=jnp.float32(clip),
                      noise_multiplier=jnp.float32(noise), sampling_probability=jnp.float32(p))


def test_infinite_clip_zero_noise_full_batch_recovers_non_private_estimate():
    condenser = zero_order_condenser(quadratic_evaluate, optax.sgd(1.0), num_records=NUM_RECORDS, num_directions=8)
    key = jax.random.key(3)
    table = 0.1 * jnp.ones((4, 3))
    state = condenser.init(key, table)
    new_state, info = jax.jit(condenser.step)(state, params())

    direction_key, _, _ = jax.random.split(jax.random.fold_in(key, 0), 3)
    directions = zo.sample_directions(direction_key, 8, table.shape, kind=condenser.directions)
    mean_loss = lambda s: jnp.mean(quadratic_evaluate(s[None], None)[0])
    values = jax.vmap(mean_loss)(zo.perturb(table, directions, 0.1))
    expected_gradient = zo.gradient_from_differences(values[:8] - values[8:], directions, 0.1)
    assert condenser.directions == "rademacher" and set(np.unique(np.asarray(directions))) == {-1.0, 1.0}
    np.testing.assert_allclose(new_state.table, jnp.clip(table - expected_gradient, -1, 1), rtol=1e-4, atol=1e-5)
    assert int(info.batch_size) == NUM_RECORDS and float(info.clipped_fraction) == 0.0


def test_clipping_and_noise_change_the_step():
    condenser = zero_order_condenser(quadratic_evaluate, optax.sgd(1.0), num_records=NUM_RECORDS, num_directions=8)
    state = condenser.init(jax.random.key(3), 0.1 * jnp.ones((4, 3)))
    step = jax.jit(condenser.step)
    exact, _ = step(state, params())
    clipped, info = step(state, params(clip=1e-4))
    noisy, _ = step(state, params(noise=1.0, clip=1.0))
    assert float(info.clipped_fraction) == 1.0
    assert not np.allclose(exact.table, clipped.table) and not np.allclose(exact.table, noisy.table)


def test_scan_equals_a_loop_of_jitted_steps():
    condenser = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=4)
    state = condenser.init(jax.random.key(0), jnp.zeros((4, 3)))
    p = params(clip=1.0, noise=0.5, p=0.5)
    scanned, infos = run(condenser, state, p, 6, chunk_size=6)
    step = jax.jit(condenser.step)
    looped = state
    for _ in range(6):
        looped, _ = step(looped, p)
    # Op-by-op (un-jitted) execution of a whole step costs ~13 s of per-primitive compilation here;
    # jit = no-jit is checked on the mechanisms and estimator pieces instead.
    np.testing.assert_allclose(scanned.table, looped.table, rtol=1e-5, atol=1e-6)
    assert infos.loss.shape == (6,) and int(scanned.step) == 6


def test_vmap_over_seeds_equals_loop():
    condenser = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=4)
    keys = jax.random.split(jax.random.key(1), 3)
    p = params(clip=1.0, noise=0.3, p=0.5)
    states = jax.vmap(lambda k: condenser.init(k, jnp.zeros((4, 3))))(keys)
    batched, _ = jax.jit(jax.vmap(condenser.step, in_axes=(0, None)))(states, p)
    for i, key in enumerate(keys):
        single, _ = jax.jit(condenser.step)(condenser.init(key, jnp.zeros((4, 3))), p)
        np.testing.assert_allclose(batched.table[i], single.table, rtol=1e-5, atol=1e-6)


def test_step_does_not_retrace():
    condenser = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=4)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, p):
        return condenser.step(state, p)

    state = condenser.init(jax.random.key(0), jnp.zeros((4, 3)))
    for noise in (0.0, 0.5, 1.0):  # new parameter values are data, not new programs
        state, _ = step(state, params(noise=noise, clip=1.0))


def test_non_private_run_descends_and_stays_in_the_box():
    condenser = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=8)
    state = condenser.init(jax.random.key(0), jnp.full((4, 3), 0.9))
    final, infos = run(condenser, state, params(), 80, chunk_size=80)
    assert float(infos.loss[-10:].mean()) < 0.5 * float(infos.loss[:10].mean())
    assert float(jnp.max(jnp.abs(final.table))) <= 1.0


def test_bad_configuration_is_named():
    with pytest.raises(ConfigError, match="`num_directions`"):
        zero_order_condenser(quadratic_evaluate, optax.adam(0.1), num_records=10, num_directions=0)
    with pytest.raises(ConfigError, match="`scheme`"):
        zero_order_condenser(quadratic_evaluate, optax.adam(0.1), num_records=10, scheme="sideways")
    with pytest.raises(ConfigError, match="`directions`"):
        zero_order_condenser(quadratic_evaluate, optax.adam(0.1), num_records=10, directions="sparse")


@pytest.mark.parametrize("kind, axis", [("rows", 0), ("columns", 1)])
def test_block_directions_move_only_the_slices_they_perturb(kind, axis):
    # Adam's first update is zero wherever the gradient is zero: a step along two one-row (one-column)
    # directions moves exactly two rows (columns), even under clipping and noise.
    condenser = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=2,
                                     directions=kind)
    state = condenser.init(jax.random.key(4), jnp.zeros((4, 3)))
    new_state, _ = jax.jit(condenser.step)(state, params(clip=1.0, noise=1.0))
    moved = np.abs(np.asarray(new_state.table)).sum(axis=1 - axis) > 0
    assert moved.sum() == 2
    gaussian = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=2)
    everywhere, _ = jax.jit(gaussian.step)(gaussian.init(jax.random.key(4), jnp.zeros((4, 3))), params(clip=1.0, noise=1.0))
    assert np.all(np.abs(np.asarray(everywhere.table)) > 0)


@pytest.mark.parametrize("kind", ["orthogonal", "rademacher", "rows", "columns"])
def test_every_direction_kind_descends(kind):
    condenser = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=8,
                                     directions=kind)
    state = condenser.init(jax.random.key(0), jnp.full((4, 3), 0.9))
    _, infos = run(condenser, state, params(), 80, chunk_size=80)
    assert float(infos.loss[-10:].mean()) < 0.5 * float(infos.loss[:10].mean())


def test_tail_average_is_the_mean_of_the_iterates():
    condenser = zero_order_condenser(quadratic_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=4,
                                     average_from=3)
    state = condenser.init(jax.random.key(2), jnp.zeros((4, 3)))
    step = jax.jit(condenser.step)
    iterates = []
    for _ in range(7):
        state, _ = step(state, params(noise=0.5, clip=1.0))
        iterates.append(state.table)
        if int(state.step) < 3:
            np.testing.assert_allclose(state.average, state.table)
    np.testing.assert_allclose(state.average, jnp.mean(jnp.stack(iterates[2:]), axis=0), rtol=1e-5, atol=1e-6)


def test_run_with_reuse_traces_once_across_runs():
    traces = []

    def counting_evaluate(tables, mask, data):
        traces.append(1)  # runs at trace time only
        return quadratic_evaluate(tables, mask) + 0.0 * jnp.sum(data)

    condenser = zero_order_condenser(counting_evaluate, optax.adam(0.05), num_records=NUM_RECORDS, num_directions=4)
    p = params(clip=1.0, noise=0.5)
    finals = []
    for seed in (0, 1):  # another seed and other data of the same shapes: the same program
        state = condenser.init(jax.random.key(seed), jnp.zeros((4, 3)))
        finals.append(run(condenser, state, p, 6, data=jnp.full((3,), seed, jnp.float32), chunk_size=3,
                          reuse=True)[0])
    assert len(traces) == 1
    # Without reuse every run traces again, and the results are the same either way.
    fresh = run(condenser, condenser.init(jax.random.key(1), jnp.zeros((4, 3))), p, 6,
                data=jnp.ones((3,), jnp.float32), chunk_size=3)[0]
    assert len(traces) == 2
    np.testing.assert_array_equal(fresh.table, finals[1].table)


def test_ask_then_tell_is_the_step():
    from zodc.condense import adam

    condenser = zero_order_condenser(quadratic_evaluate, adam(0.05), num_records=NUM_RECORDS, num_directions=4)
    state = condenser.init(jax.random.key(4), jnp.zeros((4, 3)))
    p = params(clip=1.0, noise=0.5, p=0.5)
    noise = jnp.asarray(np.random.default_rng(0).integers(-999, 999, size=(4,)), jnp.int32)
    stepped, step_info = jax.jit(condenser.step)(state, p, None, noise)
    asked = jax.jit(condenser.ask)(state, p)
    assert asked.tables.shape == (8, 4, 3) and asked.mask.shape == (NUM_RECORDS,) and asked.directions.shape == (4, 4, 3)
    told, tell_info = jax.jit(condenser.tell)(state, p, asked, quadratic_evaluate(asked.tables, asked.mask), noise)
    np.testing.assert_array_equal(told.table, stepped.table)
    np.testing.assert_array_equal(tell_info.loss, step_info.loss)


def test_run_ask_tell_outside_jit_equals_run():
    from zodc.condense import adam, run_ask_tell

    condenser = zero_order_condenser(quadratic_evaluate, adam(0.05), num_records=NUM_RECORDS, num_directions=4)
    state = condenser.init(jax.random.key(5), jnp.zeros((4, 3)))
    p = params(clip=1.0, noise=0.5, p=0.5)
    noise = np.random.default_rng(1).integers(-999, 999, size=(6, 4)).astype(np.int32)
    host_calls = []

    def on_host(tables, mask):  # a plain numpy function, as a host evaluator is
        host_calls.append(type(tables))
        return np.asarray(quadratic_evaluate(jnp.asarray(tables), mask))

    expected, infos = run(condenser, state, p, 6, noise=noise, chunk_size=1)
    got, got_infos = run_ask_tell(condenser, state, p, 6, on_host, noise=noise)
    assert host_calls == [np.ndarray] * 6
    np.testing.assert_allclose(got.table, expected.table, rtol=1e-6, atol=1e-7)
    assert got_infos.loss.shape == (6,)
    np.testing.assert_allclose(got_infos.loss, infos.loss, rtol=1e-6)


def test_equal_configurations_are_equal_condensers_and_share_a_compiled_chunk():
    from zodc import condense
    from zodc.condense import adam

    make = lambda q: zero_order_condenser(quadratic_evaluate, adam(0.05), num_records=NUM_RECORDS, num_directions=q)
    assert make(4) == make(4) and hash(make(4)) == hash(make(4)) and make(4) != make(5)
    state = make(4).init(jax.random.key(0), jnp.zeros((4, 3)))
    run(make(4), state, params(), 3, chunk_size=3, reuse=True)
    size = condense._cached_chunk._cache_size()
    run(make(4), state, params(noise=1.0, clip=1.0), 3, chunk_size=3, reuse=True)  # a new, equal condenser
    assert condense._cached_chunk._cache_size() == size
