"""Random stopping in the private search (Papernot & Steinke 2022): accounted against dp_accounting's
RepeatAndSelectDpEvent, the number of runs secret, nothing structural moved by one record, and a cost
that does not grow with the number of candidates. Every draw here is seeded."""

import json
import math

import numpy as np
import pytest

from zodc import Condenser
from zodc.errors import ConfigError
from zodc.privacy.accounting import DEFAULT_ORDERS, additive_delta_of_event, rdp_of_event
from zodc.privacy.events import (AdditiveDeltaEvent, ComposedEvent, GaussianEvent, PoissonSampledEvent,
                                 SelfComposedEvent)
from zodc.privacy.keys import PATHS
from zodc.privacy.noise import GRID_BITS, secret_generator
from zodc import tuning
from zodc.tuning import PrivateSearch, draw_num_runs, random_stopping_epsilon, stopping_gamma

from tests import test_tuning as tuning_tests
from tests.test_tuning import cancer  # noqa: F401 - the shared fixture

dp_event = pytest.importorskip("dp_accounting.dp_event")
rdp_reference = pytest.importorskip("dp_accounting.rdp.rdp_privacy_accountant")

GRID = {"learning_rate": [0.02, 0.1]}
SEED = 2  # draws two runs at mean_repeats 2 (geometric): the choice between runs is exercised
STOPPING = dict(selection="random_stopping", mean_repeats=2.0, stopping_shape=1.0)


def to_dp(event):
    """The same mechanism as a dp_accounting event (an additive delta is subtracted from delta instead)."""
    if isinstance(event, GaussianEvent):
        return dp_event.GaussianDpEvent(event.noise_multiplier)
    if isinstance(event, PoissonSampledEvent):
        return dp_event.PoissonSampledDpEvent(event.sampling_probability, to_dp(event.event))
    if isinstance(event, SelfComposedEvent):
        return dp_event.SelfComposedDpEvent(to_dp(event.event), event.count)
    if isinstance(event, ComposedEvent):
        return dp_event.ComposedDpEvent([to_dp(inner) for inner in event.events])
    if isinstance(event, AdditiveDeltaEvent):
        return dp_event.NoOpDpEvent()
    raise TypeError(type(event).__name__)


def structure(event):
    """An event's shape without its numbers (which mechanisms, how many steps)."""
    if isinstance(event, ComposedEvent):
        return ("composed", tuple(structure(inner) for inner in event.events))
    if isinstance(event, SelfComposedEvent):
        return ("self_composed", event.count, structure(event.event))
    if isinstance(event, PoissonSampledEvent):
        return ("poisson_sampled", structure(event.event))
    return type(event).__name__


def small(schema, **overrides):
    return tuning_tests.small(schema, **{"steps": 2, "num_directions": 2, "rows_per_class": 2, **overrides})


@pytest.fixture(scope="module")
def searched(cancer):
    X, y, schema = cancer
    return PrivateSearch(small(schema), GRID, epsilon=1.0, delta=1e-5, random_state=SEED, **STOPPING).fit(X, y)


# ------------------------------------------------------------------ the accounting, against dp_accounting

@pytest.mark.parametrize("mean", [1.5, 10.0, 300.0])
@pytest.mark.parametrize("shape", [0.0, 0.5, 1.0, 3.0, math.inf])
def test_random_stopping_accounting_is_dp_accountings_repeat_and_select(mean, shape):
    orders = np.asarray(DEFAULT_ORDERS)
    for sigma in (0.9, 4.0, 30.0):
        base = ComposedEvent((SelfComposedEvent(PoissonSampledEvent(0.05, GaussianEvent(sigma)), 200),
                              GaussianEvent(3.0 * sigma)))
        prior = GaussianEvent(20.0)
        mine = random_stopping_epsilon(rdp_of_event(base, orders), mean, shape, 1e-5, prior_events=[prior])
        oracle = rdp_reference.RdpAccountant()
        oracle.compose(to_dp(prior))
        oracle.compose(dp_event.RepeatAndSelectDpEvent(to_dp(base), mean, shape))
        expected = oracle.get_epsilon(1e-5)
        # The same bound, never below the oracle's (gamma is taken a hair smaller: conservative).
        assert mine == pytest.approx(expected, rel=1e-6)
        assert mine >= expected - 1e-9


# ------------------------------------------------------------------ the number of runs

@pytest.mark.parametrize("shape", [0.0, 0.5, 1.0, math.inf])
def test_draw_num_runs_follows_the_accounted_distribution(shape):
    mean = 4.0
    draws = np.array([draw_num_runs(secret_generator(seed, (99,)), mean, shape) for seed in range(2000)])
    assert draws.min() >= (0 if math.isinf(shape) else 1)
    assert abs(draws.mean() - mean) < 5.0 * draws.std() / math.sqrt(draws.size)
    if shape == 1.0:  # geometric: P[J = 1] = gamma = 1 / mean
        assert abs(np.mean(draws == 1) - stopping_gamma(mean, shape)) < 0.04
    # A draw is a function of its generator alone: the same secret stream, the same J.
    assert draw_num_runs(secret_generator(7, (99,)), mean, shape) == draws[7]


def test_the_number_of_runs_comes_from_the_searchs_secret_stream(cancer, monkeypatch):
    X, y, schema = cancer

    class Drawn(Exception):
        pass

    seen = {}

    def record(rng, mean, shape):
        state = rng.bit_generator.state
        seen[len(seen)] = (state, draw_num_runs(rng, mean, shape), mean, shape)
        raise Drawn  # stop before any data is read

    monkeypatch.setattr(tuning, "draw_num_runs", record)
    monkeypatch.setattr(Condenser, "_prepare", lambda *a, **k: pytest.fail("J is drawn before anything is condensed"))
    for seed in range(8):
        with pytest.raises(Drawn):
            PrivateSearch(small(schema), GRID, epsilon=1.0, random_state=seed, selection="random_stopping",
                          mean_repeats=4.0).fit(X, y)
    draws = [seen[seed][1] for seed in range(8)]
    assert len(set(draws)) > 1  # J differs across seeds
    for seed in range(8):
        state, _, mean, shape = seen[seed]
        # The search's own secret stream (PCG64, 128-bit state, from the secret seed), on its own path.
        expected = secret_generator(seed, (PATHS["search"], tuning.PATHS_SEARCH_STOPPING)).bit_generator.state
        assert state == expected and (mean, shape) == (4.0, 1.0)  # the default shape: geometric


def test_a_quiet_search_prints_nothing_that_counts_the_runs(cancer, capsys):
    X, y, schema = cancer
    PrivateSearch(small(schema, verbose=1), GRID, epsilon=1.0, random_state=4, selection="random_stopping",
                  mean_repeats=2.0).fit(X, y)
    assert capsys.readouterr().err == ""    # the runs' own progress bars are off unless the search is verbose


# ------------------------------------------------------------------ the search

def test_random_stopping_meets_the_target_by_dp_accountings_oracle(searched, cancer):
    X, _, _ = cancer
    search = searched
    assert search.selection_ == "random_stopping" and search.candidates_ == [{"learning_rate": 0.02},
                                                                            {"learning_rate": 0.1}]
    # Alike candidates (only the learning rate differs): one base mechanism, one noise.
    assert search.base_events_[0] == search.base_events_[1]
    assert search.run_noise_multipliers_[0] == search.run_noise_multipliers_[1]
    prerelease = [entry.event for entry in search.ledger_.entries]
    assert [entry.name for entry in search.ledger_.entries] == ["prerelease.record_count", "prerelease.noise_sampling"]
    oracle = rdp_reference.RdpAccountant()
    for event in prerelease:
        oracle.compose(to_dp(event))
    oracle.compose(dp_event.RepeatAndSelectDpEvent(to_dp(search.base_events_[0]), 2.0, 1.0))
    additive = sum(additive_delta_of_event(event) for event in prerelease)
    # Converted at the one order the search fixed before the pre-release (a run's curve depends on the
    # DP count, so the composition holds at a fixed order; dp-accounting's curve, read at that order).
    order = search.rdp_order_
    at = list(oracle._orders).index(order)
    total = rdp_reference.compute_epsilon(oracle._orders[at:at + 1], oracle._rdp[at:at + 1], 1e-5 - additive)[0]
    assert total <= 1.0 * (1 + 1e-9)
    assert search.epsilon_ == pytest.approx(total, rel=1e-6) and 0.99 <= search.epsilon_ <= 1.0
    assert search.report()["rdp_order"] == order
    # The order is the best one of the Gaussian plan, which depends on public settings and the
    # pre-release's events only: a branch's own best order would give it a smaller epsilon.
    assert oracle.get_epsilon(1e-5 - additive) <= total
    # The base mechanism: the released run's own ledger (its steps at least as noisy as planned), then
    # its noisy score.
    best = search.best_condenser_
    run = [entry.event for entry in best.ledger_.entries if entry.name != "noise_sampling"]
    planned = search.base_events_[search.best_index_].events
    assert run[:-1] == list(planned[:-2]) and structure(run[-1]) == structure(planned[-2])
    assert search.run_noise_multipliers_[0] <= best.noise_multiplier_ <= 1.001 * search.run_noise_multipliers_[0]
    assert planned[-1] == GaussianEvent(search.score_noise_multiplier_)
    assert best.epsilon == search.candidate_epsilon_ and best.record_count_ == search.record_count_
    # The released run is the best by noisy score; the exact scores are sums of per-record scores in [0, 1].
    assert search.num_runs_ == 2 == len(search.run_candidates_) == len(search.noisy_scores_)
    assert search.best_score_ == max(search.noisy_scores_)
    assert search.best_index_ == search.run_candidates_[int(np.argmax(search.noisy_scores_))]
    assert np.all(search.private_scores_ > 0) and np.all(search.private_scores_ <= len(X))
    assert np.all(np.round(search.noisy_scores_ * 2**GRID_BITS) == search.noisy_scores_ * 2**GRID_BITS)
    # The report is JSON and says nothing of the runs that were not released.
    report = search.report()
    text = json.dumps(report)
    assert report["epsilon"] == search.epsilon_ and report["search"]["distribution"] == "geometric"
    assert "num_runs" not in text and "run_candidates" not in text and "noisy_scores" not in text
    assert not hasattr(search, "condensers_")

    again = PrivateSearch(small(cancer[2]), GRID, epsilon=1.0, delta=1e-5, random_state=SEED, **STOPPING)
    again.fit(*cancer[:2])
    assert again.run_candidates_ == search.run_candidates_ and again.best_score_ == search.best_score_
    assert again.synthetic_.equals(search.synthetic_)


def test_one_record_changes_nothing_structural(searched, cancer):
    X, y, schema = cancer
    neighbour = PrivateSearch(small(schema), GRID, epsilon=1.0, delta=1e-5, random_state=SEED, **STOPPING)
    neighbour.fit(X.iloc[:-1], y.iloc[:-1])  # D' = D without its last record: no refusal
    search = searched
    # The same runs, in the same order: J and the candidates are drawn before any data is read.
    assert neighbour.num_runs_ == search.num_runs_ and neighbour.run_candidates_ == search.run_candidates_
    # The same mechanisms: the DP count moves by the record (the same noise), and only what depends
    # on it (the sampling probability, so the steps' calibrated noise) moves with it.
    assert search.record_count_ - neighbour.record_count_ == 1.0
    assert neighbour.rdp_order_ == search.rdp_order_  # fixed before the count: the same for both
    assert [e.name for e in neighbour.ledger_.entries] == [e.name for e in search.ledger_.entries]
    assert [structure(e) for e in neighbour.base_events_] == [structure(e) for e in search.base_events_]
    assert neighbour.candidate_epsilon_ == search.candidate_epsilon_
    assert neighbour.score_noise_multiplier_ == search.score_noise_multiplier_
    assert neighbour.run_noise_multipliers_ == pytest.approx(search.run_noise_multipliers_, rel=0.01)
    assert 0.99 <= neighbour.epsilon_ <= 1.0


def test_more_candidates_do_not_cost_more(searched, cancer):
    X, y, schema = cancer
    grid = {"learning_rate": [0.01 * (i + 1) for i in range(8)]}
    wide = PrivateSearch(small(schema), grid, epsilon=1.0, delta=1e-5, random_state=SEED, **STOPPING).fit(X, y)
    assert len(wide.candidates_) == 8 and wide.num_runs_ == searched.num_runs_
    # At equal mean_repeats the per-run noise is that of two candidates, to the last bit.
    assert set(wide.run_noise_multipliers_) == set(searched.run_noise_multipliers_)
    assert wide.base_events_[0] == searched.base_events_[0]
    assert wide.candidate_epsilon_ == searched.candidate_epsilon_ and wide.epsilon_ == searched.epsilon_


def test_candidates_with_different_ledgers_are_bounded_by_the_largest(cancer):
    X, y, schema = cancer
    # Different steps, and a start with no mechanism of its own: three base mechanisms. A run is a
    # mixture of them, bounded at every order by the largest: each alone, randomly stopped, must meet
    # the target by the oracle, and the accounted total of their pointwise maximum does too.
    grid = [{"steps": [2, 4]}, {"init": ["noise"]}]
    search = PrivateSearch(small(schema), grid, epsilon=2.0, delta=1e-5, random_state=0, selection="random_stopping",
                           mean_repeats=3.0, stopping_shape=math.inf).fit(X, y)
    assert len({structure(event) for event in search.base_events_}) == 3
    prerelease = [entry.event for entry in search.ledger_.entries]
    additive = sum(additive_delta_of_event(event) for event in prerelease)
    alone = []
    for event in search.base_events_:
        oracle = rdp_reference.RdpAccountant()
        for pre in prerelease:
            oracle.compose(to_dp(pre))
        oracle.compose(dp_event.RepeatAndSelectDpEvent(to_dp(event), 3.0, math.inf))
        alone.append(oracle.get_epsilon(1e-5 - additive))
    assert max(alone) <= search.epsilon_ <= 2.0
    assert search.epsilon_ >= 1.98  # the calibration uses the budget


@pytest.mark.parametrize("kwargs, match", [
    (dict(selection="best"), "`selection`"),
    (dict(selection="random_stopping", mean_repeats=1.0), "`mean_repeats`"),
    (dict(selection="random_stopping", mean_repeats="ten"), "`mean_repeats`"),
    (dict(selection="random_stopping", mean_repeats=math.nan), "`mean_repeats`"),
    (dict(selection="random_stopping", mean_repeats=True), "`mean_repeats`"),
    (dict(selection="random_stopping", mean_repeats=2.0**21), "`mean_repeats`"),
    (dict(selection="random_stopping", stopping_shape=-1.0), "`stopping_shape`"),
    (dict(selection="random_stopping", stopping_shape="geometric"), "`stopping_shape`"),
    (dict(mean_repeats=5.0), "`mean_repeats`"),            # random-stopping options with the exponential mechanism
    (dict(stopping_shape=0.0), "`stopping_shape`"),
    (dict(selection="random_stopping", repeats=2), "`repeats`"),
    (dict(selection="random_stopping", param_grid={"schema": [None]}), "`param_grid`"),
    (dict(selection="random_stopping", selection_share=1.5), "`selection_share`"),
])
def test_bad_random_stopping_options_name_the_parameter(cancer, kwargs, match, monkeypatch):
    X, y, schema = cancer
    monkeypatch.setattr(Condenser, "_prepare", lambda *a, **k: pytest.fail("nothing may be condensed"))
    kwargs = dict(kwargs)
    grid = kwargs.pop("param_grid", GRID)
    with pytest.raises(ConfigError, match=match):
        PrivateSearch(small(schema), grid, epsilon=1.0, random_state=0, **kwargs).fit(X, y)


def test_the_noisy_score_is_on_the_grid_and_exact_without_noise():
    scale = 2.0**GRID_BITS
    assert tuning._noisy_score(3.14159, 0.0, secret_generator(0, (1,))) == math.floor(3.14159 * scale) / scale
    first = tuning._noisy_score(100.0, 2.0, secret_generator(5, (1,)))
    assert first == tuning._noisy_score(100.0, 2.0, secret_generator(5, (1,)))  # its own secret stream
    assert first * scale == round(first * scale) and first != 100.0
    # Adding a record moves the score by at most 1: the grid value by at most 2^GRID_BITS + 2 units,
    # the sensitivity its noise is scaled by.
    for score in (0.3, 17.0, 1234.5678):
        moved = math.floor((score + 1.0) * scale) - math.floor(score * scale)
        assert moved <= scale + 2
