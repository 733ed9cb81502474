"""The loop in the data's units and steps that know their noise (issue 24): per-column scale, the
trust region around the start, the noise-calibrated step size, and the DP spread behind them."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc.budget import Budget
from zodc.condense import (StepParams, adam, gradient_noise_std, noise_calibrated_rate, run, sgd,
                           zero_order_condenser)
from zodc.errors import ConfigError
from zodc.privacy.keys import RunKeys
from zodc.start import NORMAL_MAD, SPREAD_FLOOR, DPMeans

NUM_RECORDS = 64


def flat_losses(tables, mask, data=None):
    """Zero signal: every table gives every record the same loss."""
    del mask, data
    return jnp.zeros((tables.shape[0], NUM_RECORDS))


def params(scale=None, radius=None, smoothing=0.5, noise=4.0, p=0.5):
    return StepParams(smoothing=jnp.float32(smoothing), l2_norm_clip=jnp.float32(1.0),
                      noise_multiplier=jnp.float32(noise), sampling_probability=jnp.float32(p),
                      expected_batch_size=jnp.float32(p * NUM_RECORDS),
                      scale=None if scale is None else jnp.asarray(scale, jnp.float32),
                      radius=None if radius is None else jnp.asarray(radius, jnp.float32))


def test_with_zero_signal_the_table_stays_within_the_trust_region_of_its_start():
    """Pure noise under Adam random-walks every cell by about its learning rate per step; the trust
    region bounds the walk at ``radius`` (here a quarter of a spread) whatever the noise."""
    scale = np.array([0.05, 0.1, 0.2])
    start = jnp.zeros((6, 3))
    condenser = zero_order_condenser(flat_losses, adam(0.1), num_records=NUM_RECORDS, num_directions=4)
    state = condenser.init(jax.random.key(0), start)
    walked, _ = run(condenser, state, params(), 200, chunk_size=50)
    held, _ = run(condenser, state, params(scale=scale, radius=0.25 * scale), 200, chunk_size=50)
    assert float(jnp.max(jnp.abs(walked.table - start))) > 0.9  # without it, noise carries cells to the box edge
    assert np.all(np.abs(np.asarray(held.table - start)) <= 0.25 * scale[None, :] + 1e-6)
    assert np.all(np.abs(np.asarray(held.table - start)).max(axis=0) > 0.5 * 0.25 * scale)  # it did move


def test_with_zero_signal_noise_calibrated_sgd_walks_about_the_stated_distance():
    """The step size is chosen so that pure noise moves each cell by ``walk`` (std) over ``T``
    steps: the spread of the final cells is ``walk`` within sampling error, far below Adam's walk."""
    steps, walk, q = 400, 0.3, 4
    p = params(smoothing=0.5, noise=4.0)
    rate = noise_calibrated_rate(4.0, 1.0, 0.5 * NUM_RECORDS, 0.5, q, "central", steps, walk, ceiling=10.0)
    condenser = zero_order_condenser(flat_losses, sgd(rate), num_records=NUM_RECORDS, num_directions=q,
                                     lower=-math.inf, upper=math.inf)
    state = condenser.init(jax.random.key(1), jnp.zeros((20, 5)))
    final, _ = run(condenser, state, p, steps, chunk_size=100)
    spread = float(jnp.std(final.table))
    assert 0.8 * walk < spread < 1.2 * walk  # 100 cells: the sample std is within 20 % w.p. > 0.999


def test_the_gradient_noise_and_the_rate_follow_from_public_numbers():
    assert gradient_noise_std(2.0, 1.0, 100.0, 0.5, 16) == pytest.approx(2.0 / (100.0 * 1.0 * 4.0))
    assert gradient_noise_std(2.0, 1.0, 100.0, 0.5, 16, "forward") == pytest.approx(2.0 / (100.0 * 0.5 * 4.0))
    assert noise_calibrated_rate(0.0, 1.0, 100.0, 0.5, 16, "central", 300, 0.5, 0.1) == 0.1  # no noise: the ceiling
    rate = noise_calibrated_rate(2.0, 1.0, 100.0, 0.5, 16, "central", 400, 0.5, 100.0)
    assert rate == pytest.approx(0.5 / (0.005 * 20.0))


def quadratic(tables, mask, data=None):
    del mask, data
    target = jnp.array([0.3, -0.2])
    return jnp.broadcast_to(jnp.sum((tables - target) ** 2, axis=(1, 2))[:, None], (tables.shape[0], NUM_RECORDS))


def same_in_loop_units(tables, mask, data=None):
    """``(x0 - 0.3)^2 + 100 (x1 + 0.03)^2``: in units of ``z = x / [1, 0.1]``, ``(z0 - 0.3)^2 + (z1 + 0.3)^2``."""
    del mask, data
    values = (tables[..., 0] - 0.3) ** 2 + 100.0 * (tables[..., 1] + 0.03) ** 2
    return jnp.broadcast_to(jnp.sum(values, axis=1)[:, None], (tables.shape[0], NUM_RECORDS))


def test_a_unit_scale_changes_nothing_and_a_column_scale_sets_that_columns_units():
    condenser = zero_order_condenser(quadratic, adam(0.05), num_records=NUM_RECORDS, num_directions=8)
    state = condenser.init(jax.random.key(2), jnp.zeros((3, 2)))
    plain, _ = run(condenser, state, params(noise=0.0), 20, chunk_size=20)
    unit, _ = run(condenser, state, params(scale=[1.0, 1.0], noise=0.0), 20, chunk_size=20)
    # Bit for bit at the suite's XLA level 0. At levels 1-3 (3 is what users run) LLVM contracts
    # multiply-adds into FMAs, and the program with a scale has one more multiply (by 1) to contract
    # around, so a cell can differ in its last bit: 6e-8 after these 20 steps, measured at level 3.
    np.testing.assert_allclose(np.asarray(plain.table), np.asarray(unit.table), rtol=0, atol=1e-6)
    assert float(jnp.max(jnp.abs(plain.table))) > 0.1  # the table moved: the comparison is not vacuous
    # Adam moves each cell by about its learning rate per step, in the column's units: a column of
    # spread 0.1 moves a tenth as far as one of spread 1 over the same steps. (The loss is the same
    # in the loop's units for both columns, so each column's signal stands out of the other's
    # cross-talk in the estimate alike; with the plain quadratic the second column's signal is a
    # tenth of the first's there, and its walk depends on the draw.)
    condenser = zero_order_condenser(same_in_loop_units, adam(0.05), num_records=NUM_RECORDS, num_directions=8)
    for seed in range(5):
        state = condenser.init(jax.random.key(seed), jnp.zeros((3, 2)))
        scaled, _ = run(condenser, state, params(scale=[1.0, 0.1], noise=0.0, smoothing=0.05), 5, chunk_size=5)
        moved = np.abs(np.asarray(scaled.table - state.table)).mean(axis=0)
        assert moved[0] > 0.15 and moved[1] == pytest.approx(0.1 * moved[0], rel=0.3)


@pytest.fixture
def spread_share(monkeypatch):
    """The data's units are research (round 28): a module setting, not an option."""
    import zodc.start

    monkeypatch.setattr(zodc.start, "SPREAD_SHARE", 0.25)


def _spread(values, groups, epsilon, seed=0):
    budget = Budget(epsilon, 1e-5)
    start = DPMeans(share=0.5).table(
        RunKeys(seed), budget, values, groups, np.array([0, 0, 1, 1]), 2,
        lambda: np.array([float((groups == 0).sum()), float((groups == 1).sum())]), "per-class", 0.5)
    return start, budget


def test_the_dp_spread_is_the_within_group_spread_and_is_in_the_ledger(spread_share):
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1], 4000)
    values = np.clip(np.where(groups[:, None] == 0, -0.3, 0.3) + rng.normal(0.0, [0.05, 0.2], (8000, 2)), -1, 1)
    exact, _ = _spread(values, groups, math.inf)
    np.testing.assert_allclose(exact.spread, [0.05, 0.2], rtol=0.05)
    private, budget = _spread(values, groups, 1.0)
    np.testing.assert_allclose(private.spread, [0.05, 0.2], rtol=0.15)
    names = [entry.name for entry in budget.ledger.entries]
    assert names == ["initialisation", "initialisation_spread"]
    assert budget.spent() <= 0.5 + 1e-9  # the start's share: means and spread together, one mechanism's
    assert np.all(np.abs(np.asarray(private.table) - 0.0) <= 1.0)


def test_one_record_moves_the_spreads_sum_by_at_most_its_clip_and_the_floor_holds(spread_share):
    """Neighbouring data: the clipped sum of absolute deviations from the (released) DP means
    differs by at most the clip ``0.5 sqrt(d)`` in L2, whatever the extra record."""
    from zodc.privacy.moments import dp_group_means

    rng = np.random.default_rng(3)
    values = rng.uniform(-1, 1, (50, 4))
    means = np.zeros((1, 4))
    clip = 0.5 * math.sqrt(4)
    for extra in (np.ones(4), -np.ones(4), np.zeros(4)):
        neighbour = np.vstack([values, extra])
        sums = []
        for rows in (values, neighbour):
            deviations = np.abs(rows - means[0])
            mean, _ = dp_group_means(np.random.default_rng(0), deviations, np.zeros(len(rows), np.int64), 1, [1.0],
                                     clip, 0.0)
            sums.append(mean[0])
        assert np.linalg.norm(sums[1] - sums[0]) <= clip + 1e-6
    constant = np.zeros((100, 2))
    start, _ = _spread(constant, np.repeat([0, 1], 50), math.inf)
    assert np.all(start.spread == SPREAD_FLOOR) and NORMAL_MAD == pytest.approx(1.2533, rel=1e-4)


def test_the_start_refuses_shares_that_leave_nothing_for_the_means(spread_share):
    with pytest.raises(ConfigError, match="centre"):
        DPMeans(centre=0.8)
    assert DPMeans(centre=0.5).sigmas(Budget(1.0, 1e-5))[1] < math.inf


def test_without_the_research_share_the_start_spends_nothing_on_the_spread():
    values, groups = np.zeros((8, 2)), np.repeat([0, 1], 4)
    start, budget = _spread(values, groups, 1.0)
    assert start.spread is None and [entry.name for entry in budget.ledger.entries] == ["initialisation"]


def test_the_trust_radius_is_the_tasks_by_default_and_checked():
    from sklearn.datasets import make_classification

    from zodc import Condenser

    X, y = make_classification(n_samples=120, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    small = dict(steps=2, num_directions=2, rows_per_class=3, random_state=0, epsilon=math.inf)
    assert Condenser(**small).fit(X, y).config_.trust_radius == 0.5
    assert Condenser(trust_radius=None, **small).fit(X, y).config_.trust_radius is None
    assert Condenser(trust_radius=0.25, **small).fit(X, y).config_.to_dict()["trust_radius"] == 0.25
    with pytest.raises(ConfigError, match="trust_radius"):
        Condenser(trust_radius=-1.0, **small).fit(X, y)
