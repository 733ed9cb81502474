import math

import jax
import numpy as np
import pandas as pd
import pytest

from zodc import Condenser
from zodc.data.datasets import load_dataset
from zodc.errors import ConfigError, PrivacyBudgetError
from zodc.privacy import RdpAccountant
from zodc.privacy.calibration import calibrate_noise_multiplier, filter_order
from zodc.privacy.events import ExponentialMechanismEvent, GaussianEvent
from zodc.tuning import PrivateSearch, classification_record_scores, report_noisy_max, survival_record_scores


@pytest.fixture(scope="module")
def cancer():
    data = load_dataset("breast_cancer")
    target = data.schema.target
    return data.frame.drop(columns=[target]), data.frame[target], data.schema


def small(schema, **overrides):
    params = dict(steps=6, num_directions=4, rows_per_class=3, backend="host", schema=schema)
    params.update(overrides)
    return Condenser("tree", **params)


# ------------------------------------------------------------------ per-record scores

def test_classification_scores_are_bounded_per_record_brier():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    scores = classification_record_scores(proba, y)
    np.testing.assert_allclose(scores, [1.0, 1.0, 0.0, 0.75])  # 1 - (p - y)^2 for two classes
    # Class weights rescale so the largest is 1: a record's score never exceeds 1 (sensitivity 1).
    weighted = classification_record_scores(proba, y, class_weights=[2.0, 4.0])
    np.testing.assert_allclose(weighted, [0.5, 1.0, 0.0, 0.375])
    three = classification_record_scores(np.array([[0.0, 0.0, 1.0]]), np.array([0]))
    np.testing.assert_allclose(three, [0.0])  # the worst multi-class Brier (2) scores 0
    with pytest.raises(ConfigError, match="class_weights"):
        classification_record_scores(proba, y, class_weights=[1.0, -1.0])


def test_survival_scores_use_known_status_at_the_horizon():
    time = np.array([5.0, 5.0, 20.0, 3.0])
    event = np.array([1, 0, 0, 1])
    survival = np.array([0.2, 0.9, 0.7, 1.0])
    scores = survival_record_scores(survival, time, event, times=10.0)
    # died before h (target 0): 1 - 0.04; censored before h: unknown, 0; alive after h (target 1):
    # 1 - 0.09; died before h predicted certain survival: 0.
    np.testing.assert_allclose(scores, [0.96, 0.0, 0.91, 0.0])
    # Over several public times: the mean, a time before which the record was censored counting 0.
    both = survival_record_scores(np.array([[0.9, 0.2], [0.9, 0.9], [0.8, 0.7], [1.0, 1.0]]), time, event,
                                  times=[4.0, 10.0])
    np.testing.assert_allclose(both, [(0.99 + 0.96) / 2, 0.99 / 2, (0.96 + 0.91) / 2, 0.0])


def test_report_noisy_max_follows_the_exponential_mechanism():
    assert report_noisy_max(jax.random.key(0), [0.1, 3.0, 2.0], math.inf) == 1
    # Monotone utilities: P(k) is proportional to exp(epsilon u_k / sensitivity).
    keys = jax.random.split(jax.random.key(1), 3000)
    picks = np.array([report_noisy_max(k, [0.0, 1.0], 1.0) for k in keys])
    assert abs(picks.mean() - math.e / (1.0 + math.e)) < 0.03
    # Non-monotone: half the exponent.
    picks = np.array([report_noisy_max(k, [0.0, 1.0], 1.0, monotone=False) for k in keys[:2000]])
    assert abs(picks.mean() - math.exp(0.5) / (1.0 + math.exp(0.5))) < 0.035
    with pytest.raises(ConfigError, match="utilities"):
        report_noisy_max(jax.random.key(0), [], 1.0)


# ------------------------------------------------------------------ the search

def test_search_splits_the_budget_accounts_everything_and_is_reproducible(cancer):
    X, y, schema = cancer
    grid = {"learning_rate": [0.02, 0.1]}
    search = PrivateSearch(small(schema), grid, epsilon=1.0, delta=1e-5, selection_share=0.2, random_state=3).fit(X, y)
    assert search.candidates_ == [{"learning_rate": 0.02}, {"learning_rate": 0.1}]
    assert search.candidate_epsilon_ == pytest.approx(0.8 / math.sqrt(2)) and search.selection_epsilon_ == pytest.approx(0.2)
    for condenser in search.condensers_:
        assert condenser.epsilon == pytest.approx(0.8 / math.sqrt(2)) and condenser.delta == pytest.approx(5e-6)
    assert search.candidate_delta_ == pytest.approx(5e-6)
    # Independent seeds per candidate (shared noise would void the composition).
    assert len({c.random_state for c in search.condensers_}) == 2
    names = [entry.name for entry in search.ledger_.entries
             if entry.name.split(".")[-1] not in ("record_count", "noise_sampling", "adaptive_steps")]
    assert names == ["candidate_0.initialisation", "candidate_0.zero_order_steps", "candidate_1.initialisation",
                     "candidate_1.zero_order_steps", "selection"]
    assert search.ledger_.entries[-1].event == ExponentialMechanismEvent(0.2)
    # The oracle: every mechanism composed by a fresh accountant meets the target, and the joint
    # calibration uses it up (the last candidate's steps meet it exactly), at the one order fixed
    # before the data (a Rényi filter: a candidate's p comes from the DP count).
    assert search.rdp_order_ == filter_order(1.0, 1e-5) and search.report()["rdp_order"] == search.rdp_order_
    accountant = RdpAccountant((search.rdp_order_,))
    for condenser in search.condensers_:
        for entry in condenser.ledger_.entries:
            accountant.compose(entry.event)
    accountant.compose(ExponentialMechanismEvent(0.2))
    total = accountant.get_epsilon(1e-5)
    assert search.epsilon_ == pytest.approx(total) and 0.99 <= total <= 1.0
    # Alike candidates get alike noise, less than a basic split (each at epsilon 0.4) would give.
    first, second = (c.noise_multiplier_ for c in search.condensers_)
    assert first == pytest.approx(second, rel=1e-3)
    alone = small(schema, learning_rate=0.02, epsilon=0.4, delta=5e-6, random_state=0).fit(X, y)
    assert first < 0.9 * alone.noise_multiplier_
    # The standalone start is calibrated at the nominal share (half of it: init_share), as a plain
    # condenser's at that epsilon would be.
    nominal = calibrate_noise_multiplier(0.5 * search.candidate_epsilon_, 5e-6, GaussianEvent)
    start = next(entry for entry in search.condensers_[0].ledger_.entries if entry.name == "initialisation")
    assert start.event == GaussianEvent(nominal)
    # One DP record count, shared: the second candidate reuses the first's (post-processing).
    assert [entry.name for entry in search.ledger_.entries].count("candidate_0.record_count") == 1
    assert "candidate_1.record_count" not in [entry.name for entry in search.ledger_.entries]
    assert search.condensers_[0].record_count_ == search.condensers_[1].record_count_
    assert search.best_condenser_ is search.condensers_[search.best_index_]
    assert search.best_params_ == search.candidates_[search.best_index_]
    pd.testing.assert_frame_equal(search.synthetic_, search.best_condenser_.synthetic_)
    # The joint budget is the search's, passed to that fit only: a candidate keeps no budget of its own.
    assert not any(hasattr(c, "budget") or hasattr(c, "_joint_budget") for c in search.condensers_)
    assert search.private_scores_.shape == (2,) and np.all(search.private_scores_ > 0)
    assert np.all(search.private_scores_ <= len(X))  # a sum of per-record scores in [0, 1]

    again = PrivateSearch(small(schema), grid, epsilon=1.0, delta=1e-5, selection_share=0.2, random_state=3).fit(X, y)
    assert again.best_index_ == search.best_index_
    pd.testing.assert_frame_equal(again.synthetic_, search.synthetic_)


def test_search_picks_the_better_candidate_without_noise(cancer):
    X, y, schema = cancer
    # One step from the exact class means against one step from noise: the means table scores far
    # higher on the real records, and the exact argmax (epsilon = inf) must take it.
    grid = [{"init": ["noise"]}, {"init": ["dp_means"]}]
    search = PrivateSearch(small(schema, steps=1), grid, epsilon=math.inf, random_state=0).fit(X, y)
    assert search.private_scores_[1] > search.private_scores_[0] + 0.05 * len(X)
    assert search.best_index_ == 1 and search.best_params_ == {"init": "dp_means"}
    assert math.isinf(search.epsilon_) and math.isinf(search.selection_epsilon_)
    assert "selection" not in [e.name for e in search.ledger_.entries]  # an exact argmax is no mechanism


def test_the_search_is_part_of_the_public_api():
    import zodc

    assert zodc.PrivateSearch is PrivateSearch and "PrivateSearch" in zodc.__all__


def test_repeats_run_each_grid_point_with_independent_seeds(cancer, monkeypatch):
    X, y, schema = cancer
    class Stop(Exception):
        pass

    seen = []

    def fit(self, *args, **kwargs):
        seen.append((self.learning_rate, kwargs["budget"].copies))
        raise Stop

    monkeypatch.setattr(Condenser, "_prepare", fit)
    with pytest.raises(Stop):
        PrivateSearch(small(schema), {"learning_rate": [0.02, 0.1]}, repeats=2, random_state=0).fit(X, y)
    assert seen == [(0.02, 4)]  # the first of four candidates reserves room for all four
    search = PrivateSearch(small(schema), repeats=3, random_state=0)
    assert search._candidates() == [{}, {}, {}]
    assert PrivateSearch(small(schema), {"learning_rate": [0.02, 0.1]}, repeats=2)._candidates() == [
        {"learning_rate": 0.02}, {"learning_rate": 0.02}, {"learning_rate": 0.1}, {"learning_rate": 0.1}]
    for repeats in (0, 1.5, True):
        with pytest.raises(ConfigError, match="repeats"):
            PrivateSearch(small(schema), repeats=repeats)._candidates()
    with pytest.raises(ConfigError, match="unless `repeats` > 1"):
        PrivateSearch(small(schema))._candidates()


def test_one_candidate_gets_the_whole_budget(cancer):
    X, y, schema = cancer
    search = PrivateSearch(small(schema), {"learning_rate": [0.05]}, epsilon=1.0, random_state=0).fit(X, y)
    assert search.candidate_epsilon_ == 1.0 and search.selection_epsilon_ == 0.0
    assert "selection" not in [e.name for e in search.ledger_.entries]
    assert search.epsilon_ == pytest.approx(search.best_condenser_.epsilon_)


@pytest.mark.parametrize("grid, kwargs, match", [
    (None, {}, "param_grid"),
    ({"epsilon": [1.0, 2.0]}, {}, "may not set 'epsilon'"),
    ({"random_state": [1, 2]}, {}, "may not set 'random_state'"),
    ({"learning_rate": []}, {}, "non-empty list"),
    ({"learning_rate": "0.1"}, {}, "non-empty list"),
    ({"no_such_parameter": [1, 2]}, {}, "candidate 0"),
    ({"learning_rate": [0.1, 0.2]}, {"selection_share": 0.0}, "selection_share"),
    ({"learning_rate": [0.1, 0.2]}, {"selection_share": 1.0}, "selection_share"),
    ({"learning_rate": [0.1, 0.2]}, {"epsilon": -1.0}, "epsilon"),
    ({"learning_rate": [0.1, 0.2]}, {"delta": 0.0}, "delta"),
    ({"model": ["tree", "logistic"]}, {}, "scoring_model"),
])
def test_bad_searches_fail_before_anything_is_condensed(cancer, grid, kwargs, match, monkeypatch):
    X, y, schema = cancer
    fits = []
    monkeypatch.setattr(Condenser, "_prepare", lambda self, *a, **k: fits.append(self) or self)
    with pytest.raises(ConfigError, match=match):
        PrivateSearch(small(schema), grid, random_state=0, **kwargs).fit(X, y)
    assert fits == []


def test_candidates_for_different_models_are_scored_by_one_model(cancer):
    X, y, schema = cancer
    search = PrivateSearch(small(schema), {"model": ["tree", "logistic"]}, scoring_model="logistic", epsilon=2.0,
                           random_state=0).fit(X, y)
    assert search.best_params_["model"] in ("tree", "logistic") and search.epsilon_ <= 2.0


def test_survival_search_scores_on_the_public_time_grid():
    data = load_dataset("gbsg2")
    schema = data.schema
    # Fixed events (12 rows would hold about 5 event rows, where "auto" may turn soft events on).
    base = Condenser("cox", rows=12, steps=4, num_directions=4, schema=schema, soft_labels=False)
    search = PrivateSearch(base, {"init_scale": [0.1, 0.3]}, epsilon=1.0, random_state=0)
    search.fit(data.frame, duration_col=schema.time.name, event_col=schema.event)
    np.testing.assert_allclose(search.score_times_, search.condensers_[0].time_grid_)
    assert search.epsilon_ <= 1.0 and search.best_index_ in (0, 1)
    assert search.synthetic_.shape[0] == 12
    assert np.all(search.private_scores_ > 0) and np.all(search.private_scores_ <= len(data.frame))
    # One given horizon: records censored before it score 0 for every candidate, so the scores are
    # below the number of records whose status at the horizon is known.
    one = PrivateSearch(base, {"init_scale": [0.1, 0.3]}, horizon=1000.0, epsilon=1.0, random_state=0)
    one.fit(data.frame, duration_col=schema.time.name, event_col=schema.event)
    time, event = data.frame[schema.time.name].to_numpy(), data.frame[schema.event].to_numpy()
    known = int(np.sum((time > 1000.0) | (event == 1)))
    assert np.all(one.private_scores_ <= known) and one.score_times_.tolist() == [1000.0]
    assert "1000" in " ".join(one.report()["public_assumptions"])


def test_survival_search_scores_a_soft_event_table_with_its_weights():
    from zodc.data.transform import TableEncoder
    from zodc.models.survival import LifelinesCoxPH, host_survival_function

    data = load_dataset("gbsg2")
    schema = data.schema
    base = Condenser("cox", rows=12, steps=4, num_directions=4, schema=schema)
    search = PrivateSearch(base, {"soft_labels": [False, True]}, epsilon=1.0, random_state=0)
    search.fit(data.frame, duration_col=schema.time.name, event_col=schema.event)
    soft = search.condensers_[1]
    assert soft.soft_labels_ and len(soft.synthetic_) == 24 and search.epsilon_ <= 1.0
    times = search.score_times_
    encoder = TableEncoder(schema)
    table = soft.synthetic_.drop(columns=["sample_weight"])
    synthetic, real = encoder.encode(table), encoder.encode(data.frame)
    time_real, time_synthetic = (f[schema.time.name].to_numpy(float) for f in (data.frame, table))
    varying = synthetic.X.max(axis=0) > synthetic.X.min(axis=0)   # a tgrade level absent from 12 rows is left out
    synthetic_X, real_X = synthetic.X[:, varying], real.X[:, varying]
    weighted = host_survival_function(LifelinesCoxPH(penalizer=0.1), synthetic_X, time_synthetic, synthetic.event,
                                      real_X, times, sample_weight=soft.sample_weight_)
    expected = survival_record_scores(weighted, time_real, real.event, times).sum()
    from zodc.tasks import get_task

    scorer = LifelinesCoxPH(penalizer=0.1)
    roles = {"time": schema.time.name, "event": schema.event}
    assert get_task("survival").score(scorer, soft, data.frame, roles, times) == pytest.approx(expected)
    unweighted = host_survival_function(LifelinesCoxPH(penalizer=0.1), synthetic_X, time_synthetic, synthetic.event,
                                        real_X, times)
    assert abs(survival_record_scores(unweighted, time_real, real.event, times).sum() - expected) > 1e-3


@pytest.mark.parametrize("horizon", [-1.0, "soon", 1e9])
def test_a_bad_horizon_fails_before_anything_is_condensed(horizon, monkeypatch):
    data = load_dataset("gbsg2")
    schema = data.schema
    fits = []
    monkeypatch.setattr(Condenser, "_prepare", lambda self, *a, **k: fits.append(self) or self)
    search = PrivateSearch(Condenser("cox", rows=12, schema=schema), {"init_scale": [0.1, 0.3]}, horizon=horizon)
    with pytest.raises(ConfigError, match="horizon"):
        search.fit(data.frame, duration_col=schema.time.name, event_col=schema.event)
    assert fits == []


def test_a_candidate_the_budget_cannot_carry_stops_the_search_with_nothing_released(cancer, monkeypatch):
    X, y, schema = cancer
    real_fit = Condenser._prepare
    calls = []

    def fit(self, *args, **kwargs):
        calls.append(kwargs["budget"].copies)  # the copies each candidate reserves: K - i
        if len(calls) == 2:
            raise PrivacyBudgetError("The base events alone spend epsilon = 1.2.")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(Condenser, "_prepare", fit)
    search = PrivateSearch(small(schema), {"learning_rate": [0.02, 0.1]}, epsilon=1.0, random_state=0)
    with pytest.raises(PrivacyBudgetError, match=r"candidate 1 \{'learning_rate': 0.1\}.*Nothing is released"):
        search.fit(X, y)
    assert calls == [2, 1] and not hasattr(search, "synthetic_")


# ------------------------------------------------------------------ batched candidates (issue 25, part 4)

def _batch_spy(monkeypatch):
    """Counts the runs of each batched program the search starts."""
    import zodc.estimator as estimator

    sizes, real = [], estimator.run_batch
    monkeypatch.setattr(estimator, "run_batch",
                        lambda *args, **kwargs: sizes.append(jax.tree.leaves(args[1])[0].shape[0]) or real(*args, **kwargs))
    return sizes


@pytest.mark.parametrize("selection", ["exponential", "random_stopping"])
def test_native_candidates_run_as_one_program_and_release_their_separate_tables(cancer, monkeypatch, selection):
    # The candidates' steps (other step sizes and smoothings, their own seeds, DP class weights and noise)
    # run as one batched program; each releases what it releases alone (estimator.BATCH = 1), within
    # float32 rounding, with the same ledger, masks and choice. Random stopping runs its runs the same
    # way (fit_prepared); there the program is checked, not compared again.
    import zodc.estimator as estimator

    X, y, schema = cancer
    grid = {"learning_rate": [0.02, 0.1], "smoothing": [0.05, 0.1]}
    stopping = dict(selection="random_stopping", mean_repeats=3.0) if selection == "random_stopping" else {}
    make = lambda: PrivateSearch(small(schema, backend="native", class_weight="balanced"), grid,  # noqa: E731
                                 random_state=5, **stopping)
    sizes = _batch_spy(monkeypatch)
    batched = make().fit(X, y)
    if selection == "random_stopping":  # every run in one program, each checked against its plan first
        assert batched.num_runs_ >= 2 and sizes == [batched.num_runs_] and batched.epsilon_ <= 1.0
        assert len(batched.noisy_scores_) == batched.num_runs_
        return
    monkeypatch.setattr(estimator, "BATCH", 1)
    alone = make().fit(X, y)
    assert sizes == [4]  # one program for the four candidates; none with BATCH = 1
    pairs = list(zip(batched.condensers_, alone.condensers_))
    for one, other in pairs:
        np.testing.assert_allclose(one.table_, other.table_, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(one.history_["batch_size"], other.history_["batch_size"])
        assert [(e.name, e.event) for e in one.ledger_.entries] == [(e.name, e.event) for e in other.ledger_.entries]
    assert batched.best_index_ == alone.best_index_ and batched.epsilon_ == alone.epsilon_ <= 1.0
    assert len({float(c.learning_rate_) for c, _ in pairs}) == 2


def test_one_record_changes_neither_the_batches_nor_the_ledgers_structure(cancer, monkeypatch):
    # D and D' (one record fewer): the same programs (how many candidates run together), the same
    # mechanisms, no refusal. The grouping depends on public settings and DP outputs only.
    X, y, schema = cancer
    runs = []
    for features, target in ((X, y), (X.iloc[1:], y.iloc[1:])):
        sizes = _batch_spy(monkeypatch)
        search = PrivateSearch(small(schema, backend="native"), {"learning_rate": [0.02, 0.1]},
                               random_state=5).fit(features, target)
        runs.append((list(sizes), search))
    (sizes, search), (neighbour_sizes, neighbour) = runs
    assert sizes == neighbour_sizes == [2]
    assert [e.name for e in search.ledger_.entries] == [e.name for e in neighbour.ledger_.entries]
    assert [type(e.event) for e in search.ledger_.entries] == [type(e.event) for e in neighbour.ledger_.entries]
    assert search.epsilon_ <= 1.0 and neighbour.epsilon_ <= 1.0
    # Held at one order fixed before the data (the counts differ, so p and each candidate's noise do).
    assert search.rdp_order_ == neighbour.rdp_order_ == filter_order(1.0, 1e-5)
    assert search.condensers_[0].record_count_ - neighbour.condensers_[0].record_count_ == 1.0


def test_without_a_schema_one_dp_schema_is_released_before_the_candidates_for_all_of_them():
    # A CSV-like table and no schema: the search estimates one DP schema (its histograms give the
    # record count) before the candidates, at the condenser's preprocessing share, and every
    # candidate condenses with it as post-processing; no candidate estimates its own. D and D' (one
    # record fewer): the same ledger structure, the same order, counts one apart, no refusal; the
    # whole ledger meets the target at the order fixed before the data (dp-accounting-free oracle:
    # zodc's RDP accountant at that order alone, as the search states it).
    rng = np.random.default_rng(12)
    n = 3000
    frame = pd.DataFrame({"x": rng.normal(0, 1, n).round(2), "z": rng.normal(0, 1, n).round(2)})
    target = pd.Series(np.where(frame["x"] + rng.normal(0, 1, n) > 0, "yes", "no"), name="y")
    searches = []
    for features, labels in ((frame, target), (frame.iloc[1:], target.iloc[1:])):
        searches.append(PrivateSearch(small(None), {"learning_rate": [0.02, 0.1]}, epsilon=1.0,
                                      random_state=4).fit(features, labels))
    search, neighbour = searches
    names = [e.name for e in search.ledger_.entries]
    assert names[:2] == ["prerelease.schema", "prerelease.schema"] and "prerelease.noise_sampling" in names
    assert not any(name.startswith("candidate_") and name.endswith(".schema") for name in names)
    assert names == [e.name for e in neighbour.ledger_.entries]
    assert [type(e.event) for e in search.ledger_.entries] == [type(e.event) for e in neighbour.ledger_.entries]
    for s in searches:
        assert all(c.schema_ is s.prerelease_schema_ for c in s.condensers_)
        assert s.prerelease_schema_.column_names == ("x", "z", "y")
        held = RdpAccountant((s.rdp_order_,))
        for entry in s.ledger_.entries:
            held.compose(entry.event)
        assert held.get_epsilon(1e-5) == pytest.approx(s.epsilon_) and s.epsilon_ <= 1.0
        report = s.report()
        assert "one DP schema, released once before them" in report["neighbouring_relation"]
        assert not any("given as public" in a for a in report["public_assumptions"])
    assert search.rdp_order_ == neighbour.rdp_order_ == filter_order(1.0, 1e-5)
    assert search.condensers_[0].record_count_ - neighbour.condensers_[0].record_count_ == 1.0


def test_a_grid_that_sets_the_schemas_share_keeps_each_candidates_own_estimate():
    # Varying preprocessing_share is varying the schema: no pre-release, each candidate its own.
    rng = np.random.default_rng(13)
    n = 3000
    frame = pd.DataFrame({"x": rng.normal(0, 1, n).round(2)})
    target = pd.Series(np.where(frame["x"] + rng.normal(0, 1, n) > 0, "yes", "no"), name="y")
    search = PrivateSearch(small(None), {"preprocessing_share": [0.2, 0.3]}, epsilon=1.0, random_state=4)
    search.fit(frame, target)
    names = [e.name for e in search.ledger_.entries]
    assert not any(name.startswith("prerelease.") for name in names) and search.prerelease_schema_ is None
    assert "candidate_0.schema" in names and "candidate_1.schema" in names and search.epsilon_ <= 1.0
