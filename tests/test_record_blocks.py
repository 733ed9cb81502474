"""Chunked record scoring (``record_block``): the same release as scoring every record at once.

Issue 25, part 3: a million-row cohort is scored a block of the Poisson sample at a time, so memory
grows with the block and time with the batch. The mask, the clip and the integer grid sums are the
unblocked step's; these tests hold the blocked step to the unblocked one and to the neighbouring-
dataset bound.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc import zo
from zodc.condense import Asked, StepParams, adam, run, zero_order_condenser
from zodc.errors import ConfigError
from zodc.models.losses import ClassificationLoss
from zodc.models.native import native_classifier_data, native_classifier_evaluator
from zodc.models.presets import get_preset
from zodc.privacy.noise import GRID_BITS

N, D, M, Q = 700, 4, 6, 4


def _problem(n=N, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, D)).astype(np.float32)
    y = (X[:, 0] + 0.4 * rng.normal(size=n) > 0.3).astype(np.int32)
    return X, y


def _params(p=0.5, shares=None, n=N):
    return StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(1.0), noise_multiplier=jnp.float32(1.0),
                      sampling_probability=jnp.float32(p), expected_batch_size=jnp.float32(p * n),
                      clip_shares=shares)


@pytest.fixture(scope="module")
def tree():
    return native_classifier_evaluator(get_preset("tree").native_factory(2), ClassificationLoss("balanced_linear",
                                                                                               (0.7, 1.8)))


def _run(evaluate, data, block, params, noise, steps=12, n=N):
    condenser = zero_order_condenser(evaluate, adam(0.05), num_records=n, num_directions=Q, record_block=block)
    start = jnp.asarray(np.random.default_rng(4).uniform(-0.5, 0.5, (M, D)), jnp.float32)
    state, info = run(condenser, condenser.init(jax.random.key(2), start), params, steps, data=data, noise=noise,
                      chunk_size=6)
    return np.asarray(state.table), info


@pytest.mark.parametrize("block", [64, 333, 4096])
def test_blocked_steps_release_the_unblocked_table_bit_for_bit(tree, block):
    # p = 0.5 of 700 records: ~350 sampled, so 64 means ~6 blocks per step, 333 one or two (the last
    # padded), 4096 more than n (the unblocked path). The clip shares (class weights) are gathered too.
    X, y = _problem()
    data = native_classifier_data(X, y, np.repeat([0, 1], M // 2), jax.random.key(0))
    shares = jnp.asarray(np.where(y == 1, 1.0, 0.7 / 1.8), jnp.float32)
    noise = np.random.default_rng(1).integers(-3000, 3000, (12, Q)).astype(np.int32)
    plain, plain_info = _run(tree, data, None, _params(shares=shares), noise)
    blocked, blocked_info = _run(tree, data, block, _params(shares=shares), noise)
    np.testing.assert_array_equal(blocked, plain)
    for name in ("batch_size", "clipped_fraction"):
        np.testing.assert_array_equal(getattr(blocked_info, name), getattr(plain_info, name))
    np.testing.assert_allclose(blocked_info.loss, plain_info.loss, rtol=1e-5)
    assert not np.array_equal(plain, np.asarray(jnp.clip(jnp.asarray(np.random.default_rng(4).uniform(
        -0.5, 0.5, (M, D)), jnp.float32), -1, 1)))  # the table moved: the comparison is not of two starts


def test_blocked_steps_with_simulated_noise_match_within_float_rounding(tree):
    # The research path's float32 sums are added block by block, in another order than one sum.
    X, y = _problem()
    data = native_classifier_data(X, y, np.repeat([0, 1], M // 2), jax.random.key(0))
    plain, _ = _run(tree, data, None, _params(), None)
    blocked, _ = _run(tree, data, 64, _params(), None)
    np.testing.assert_allclose(blocked, plain, atol=1e-5)


def test_a_native_survival_model_blocks_the_same_way():
    from zodc.models.survival import SurvivalLoss, TimeScale, native_survival_data, native_survival_evaluate_fn

    rng = np.random.default_rng(3)
    X, _ = _problem(400)
    time = np.exp(rng.uniform(0, 5, 400)).astype(np.float32)
    event = (rng.uniform(size=400) < 0.6).astype(np.int32)
    grid = (2.0, 10.0, 40.0, 120.0)
    evaluate = native_survival_evaluate_fn(get_preset("cox", task="survival").native_factory(2),
                                           SurvivalLoss("discrete_nll", grid), TimeScale(1.0, 200.0))
    data = native_survival_data(X, time, event, np.array([1, 1, 0, 1, 0, 1]), jax.random.key(0))
    noise = rng.integers(-3000, 3000, (6, Q)).astype(np.int32)

    def table(block):
        condenser = zero_order_condenser(evaluate, adam(0.05), num_records=400, num_directions=Q, record_block=block)
        start = jnp.asarray(rng_start.uniform(-0.5, 0.5, (M, D + 1)), jnp.float32)
        state, _ = run(condenser, condenser.init(jax.random.key(2), start), _params(0.6, n=400), 6, data=data,
                       noise=noise, chunk_size=6)
        return np.asarray(state.table)

    rng_start = np.random.default_rng(9)
    plain = table(None)
    rng_start = np.random.default_rng(9)
    np.testing.assert_allclose(table(50), plain, atol=2e-6)


def test_one_record_moves_the_blocked_sum_by_its_own_grid_row_only(tree):
    # D' = D plus one record, every record sampled (p = 1): the blocked step's integer sum differs by
    # exactly the added record's grid row (L2 norm <= 2^GRID_BITS: sensitivity C), whichever block it is in.
    X, y = _problem(300)
    labels = np.repeat([0, 1], M // 2)
    table = jnp.asarray(np.random.default_rng(5).uniform(-1, 1, (M, D)), jnp.float32)
    units = zo.sample_directions(jax.random.key(3), Q, table.shape, table.dtype, "gaussian")
    tables = zo.perturb(table, units, 0.2, "central")
    sums = []
    for features, target in ((X, y), (np.vstack([X, np.full((1, D), 0.99, np.float32)]), np.append(y, 1))):
        n = len(target)
        condenser = zero_order_condenser(tree, adam(0.05), num_records=n, num_directions=Q, record_block=64)
        asked = Asked(tables=tables, mask=jnp.ones(n, bool), directions=units)
        data = native_classifier_data(features, target, labels, jax.random.key(0))
        sums.append(jax.jit(condenser._blocked_sums)(_params(1.0, n=n), asked, data))
        if n == 301:  # the added record's own row, scored alone
            alone = jax.jit(tree)(tables, jnp.ones(1, bool), native_classifier_data(features[-1:], target[-1:],
                                                                                     labels, jax.random.key(0)))
            own = condenser._batch_sums(_params(1.0, n=1), jnp.ones(1, bool), alone, None)
    base, more = sums
    moved = np.asarray(more.sums.units) - np.asarray(base.sums.units)
    np.testing.assert_array_equal(moved, np.asarray(own.sums.units))
    assert np.linalg.norm(moved) <= 2.0**GRID_BITS
    assert int(more.size) == int(base.size) + 1


def test_record_block_must_be_positive():
    with pytest.raises(ConfigError, match="record_block"):
        zero_order_condenser(None, adam(0.05), num_records=10, record_block=0)


def test_the_front_door_blocks_a_large_cohort_and_releases_the_same_table(monkeypatch):
    # A cohort larger than the block (batch 32: block 256; 1,200 rows): the front door scores it in
    # blocks (a decision on the DP count), and the released table is the unblocked one.
    import zodc.estimator as estimator
    from zodc import Condenser

    X, y = _problem(1200, seed=7)
    seen = []
    real = estimator.record_block
    monkeypatch.setattr(estimator, "record_block", lambda batch: seen.append(real(batch)) or seen[-1])
    kwargs = dict(steps=10, batch_size=32, random_state=11)
    blocked = Condenser(**kwargs).fit(X, y)
    assert seen == [256] and blocked.record_count_ > 256
    monkeypatch.setattr(estimator, "record_block", lambda batch: 10**9)  # never blocks
    plain = Condenser(**kwargs).fit(X, y)
    np.testing.assert_array_equal(blocked.table_, plain.table_)


def test_record_block_is_a_power_of_two_at_least_twice_the_batch():
    from zodc.estimator import record_block

    assert record_block(256) == 512 and record_block(257) == 1024 and record_block(3) == 256


def test_padding_the_records_to_a_shape_bucket_changes_no_release(monkeypatch):
    # The front door pads n to a power of two (never-sampled rows) so that runs of nearby sizes share a
    # compiled step; the Poisson mask of the real rows is the unpadded one, so the table is the same.
    import zodc.estimator as estimator
    from zodc import Condenser, load_dataset
    from zodc.privacy import mechanisms

    key = jax.random.wrap_key_data(np.arange(4, dtype=np.uint32).reshape(2, 2))
    np.testing.assert_array_equal(mechanisms.poisson_mask(key, 400, 0.3), mechanisms.poisson_mask(key, 512, 0.3)[:400])
    data = load_dataset("breast_cancer")
    X, y = data.frame.drop(columns="diagnosis"), data.frame["diagnosis"]
    assert estimator.padded_records(len(X)) == 1024
    padded = Condenser(random_state=3, schema=data.schema, steps=10).fit(X, y)
    monkeypatch.setattr(estimator, "padded_records", lambda n: n)
    plain = Condenser(random_state=3, schema=data.schema, steps=10).fit(X, y)
    np.testing.assert_array_equal(padded.table_, plain.table_)
    np.testing.assert_array_equal(padded.history_["batch_size"], plain.history_["batch_size"])


def test_padding_concrete_records_is_padding_them_in_jax_and_traced_ones_still_pad():
    # pad_records pads concrete arrays in numpy (eager jnp would compile programs for each n's shapes):
    # the same rows, dtypes and array types as jnp's padding, and inside jit (tracers) it keeps jnp.
    from zodc.condense import pad_records

    rng = np.random.default_rng(0)
    data = {"X": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), "y": np.arange(5, dtype=np.int32),
            "key": jax.random.PRNGKey(0), "scale": jnp.float32(2.0)}
    padded = pad_records(data, 5, 8)
    assert isinstance(padded["X"], jax.Array) and isinstance(padded["y"], np.ndarray)
    rows = np.asarray(data["X"])
    np.testing.assert_array_equal(np.asarray(padded["X"]), np.vstack([rows] + [rows[-1:]] * 3))
    np.testing.assert_array_equal(padded["y"], [0, 1, 2, 3, 4, 4, 4, 4])
    assert padded["X"].dtype == jnp.float32 and padded["y"].dtype == np.int32
    assert padded["key"] is data["key"] and padded["scale"] is data["scale"]  # not per record: untouched
    traced = jax.jit(lambda d: pad_records(d, 5, 8))({"X": data["X"]})
    np.testing.assert_array_equal(np.asarray(traced["X"]), np.asarray(padded["X"]))
