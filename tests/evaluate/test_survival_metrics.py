import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index as lifelines_concordance_index

from zodc.data.datasets import load_dataset
from zodc.data.transform import TableEncoder
from zodc.errors import ConfigError, DataError
from zodc.evaluate.survival import (concordance_index, drop_constant_columns, integrated_brier_score, kaplan_meier,
                                    survival_utility)
from zodc.models.survival import LifelinesCoxPH, public_time_grid


@pytest.mark.parametrize("trial", range(6))
def test_concordance_index_equals_lifelines_with_ties_and_censoring(trial):
    rng = np.random.default_rng([101, trial])  # seeded: six fixed draws
    n = int(rng.integers(5, 300))
    time = rng.integers(1, 15, size=n).astype(float)          # many tied times
    risk = rng.integers(0, 6, size=n).astype(float)           # many tied risks
    risk[: n // 3] = rng.normal(size=n // 3)
    event = (rng.uniform(size=n) < 0.6).astype(int)
    event[0] = 1
    time[0] = 0.5                                             # at least one comparable pair
    expected = lifelines_concordance_index(time, -risk, event)
    assert concordance_index(time, risk, event) == pytest.approx(expected, abs=1e-12)


def test_concordance_index_sign_and_errors():
    rng = np.random.default_rng(102)
    time = rng.permutation(50).astype(float) + 1.0
    event = np.ones(50, dtype=int)
    assert concordance_index(time, -time, event) == 1.0         # higher risk, shorter survival
    assert concordance_index(time, time, event) == 0.0
    assert concordance_index(time, np.zeros(50), event) == 0.5
    with pytest.raises(DataError, match="comparable pair"):
        concordance_index(time, time, np.zeros(50))
    with pytest.raises(DataError, match="`risk`"):
        concordance_index(time, np.full(50, np.nan), event)
    with pytest.raises(DataError, match="same length"):
        concordance_index(time, time[:10], event)


def test_kaplan_meier_equals_lifelines():
    rng = np.random.default_rng(103)
    time = rng.integers(1, 30, size=120).astype(float)
    event = (rng.uniform(size=120) < 0.7).astype(int)
    knots, survival = kaplan_meier(time, event)
    reference = KaplanMeierFitter().fit(time, event).survival_function_at_times(knots).to_numpy()
    np.testing.assert_allclose(survival, reference, rtol=1e-12)
    weight = rng.uniform(0.1, 2.0, size=120)                      # case weights, as lifelines' `weights`
    # (a last time at which everyone left dies drops the estimate to 0 here; weighted lifelines departs
    # from 0 there, so the comparison censors every record at the last time)
    event = np.where(time == time.max(), 0, event)
    survival = kaplan_meier(time, event)[1]
    knots, weighted = kaplan_meier(time, event, weight)
    reference = KaplanMeierFitter().fit(time, event, weights=weight).survival_function_at_times(knots).to_numpy()
    np.testing.assert_allclose(weighted, reference, rtol=1e-10)
    assert np.max(np.abs(weighted - survival)) > 1e-3


def test_integrated_brier_score_perfect_uninformative_and_km():
    rng = np.random.default_rng(104)
    n = 300
    time = rng.exponential(100.0, size=n) + 1.0
    grid = np.quantile(time, np.linspace(0.05, 0.9, 12))
    no_censoring = np.ones(n, dtype=int)
    perfect = (time[:, None] > grid[None, :]).astype(float)
    assert integrated_brier_score(time, no_censoring, perfect, grid, time, no_censoring) == pytest.approx(0.0, abs=1e-12)
    half = np.full((n, grid.size), 0.5)
    assert integrated_brier_score(time, no_censoring, half, grid, time, no_censoring) == pytest.approx(0.25)
    # Under censoring (IPCW): the perfect model still beats the marginal Kaplan-Meier, which beats 0.5 and the reversed model.
    censor = rng.exponential(200.0, size=n) + 1.0
    observed, event = np.minimum(time, censor), (time <= censor).astype(int)
    knots, km = kaplan_meier(observed, event)
    marginal = np.tile(km[np.maximum(np.searchsorted(knots, grid, side="right") - 1, 0)], (n, 1))
    scores = [integrated_brier_score(observed, event, prediction, grid, observed, event)
              for prediction in (perfect, marginal, half, 1.0 - perfect)]
    assert scores[0] < scores[1] < scores[2] < scores[3]
    with pytest.raises(DataError, match="`survival`"):
        integrated_brier_score(observed, event, perfect[:, :3], grid, observed, event)


def test_integrated_brier_score_equals_scikit_survival():
    pytest.importorskip("sksurv")
    from sksurv.metrics import integrated_brier_score as sksurv_ibs
    from sksurv.util import Surv

    rng = np.random.default_rng(105)
    n = 200
    time = rng.exponential(100.0, size=n) + rng.uniform(size=n)
    event = (rng.uniform(size=n) < 0.7).astype(int)
    grid = np.quantile(time, np.linspace(0.1, 0.8, 10))
    survival = np.sort(rng.uniform(size=(n, grid.size)), axis=1)[:, ::-1]
    target = Surv.from_arrays(event=event > 0, time=time)
    expected = sksurv_ibs(target, target, survival, grid)
    assert integrated_brier_score(time, event, survival, grid, time, event) == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def gbsg2_split():
    dataset = load_dataset("gbsg2")
    encoded = TableEncoder(dataset.schema).encode(dataset.frame)
    rng = np.random.default_rng(0)
    order = rng.permutation(encoded.X.shape[0])
    train, test = order[:480], order[480:]
    pick = lambda rows: (encoded.X[rows], encoded.time[rows].astype(float), encoded.event[rows])  # noqa: E731
    return pick(train), pick(test), dataset.schema


def test_survival_utility_reports_every_reference(gbsg2_split):
    train, test, schema = gbsg2_split
    rng = np.random.default_rng(106)
    rows = rng.choice(train[0].shape[0], size=40, replace=False)
    synthetic = tuple(a[rows] for a in train)                 # stands in for a released table
    grid = public_time_grid(schema.time.lower, schema.time.upper, 10)[3:]
    report = survival_utility("cox", synthetic, train, test, num_rows=40, random_state=1, num_random_subsets=2,
                              time_grid=grid)
    assert set(report) == {"synthetic", "full_data", "random_subset", "test_rows", "note"}
    assert report["test_rows"] == test[0].shape[0]
    assert report["random_subset"]["num_draws"] == 2
    for key in ("synthetic", "full_data", "random_subset"):
        assert 0.0 <= report[key]["c_index"] <= 1.0 and 0.0 <= report[key]["integrated_brier"] <= 1.0
    assert report["full_data"]["c_index"] > 0.62 and not report["full_data"]["fit_failed"]
    # The same numbers as a direct lifelines fit on the full split.
    model = LifelinesCoxPH(penalizer=0.1).fit(*train)
    assert report["full_data"]["c_index"] == pytest.approx(
        lifelines_concordance_index(test[1], -model.predict_risk(test[0]), test[2]), abs=1e-12)


def test_survival_utility_failed_fit_scores_chance(gbsg2_split):
    train, test, _ = gbsg2_split
    synthetic = (train[0][:20], train[1][:20], np.zeros(20, dtype=int))   # no event: the Cox fit fails
    report = survival_utility(LifelinesCoxPH(), synthetic, train, test, num_rows=20, num_random_subsets=1)
    assert report["synthetic"] == {"c_index": 0.5, "fit_failed": True}
    assert "integrated_brier" not in report["full_data"]
    with pytest.raises(ConfigError, match="`num_rows`"):
        survival_utility("cox", synthetic, train, test, num_rows=0)
    with pytest.raises(ConfigError, match="survival"):
        survival_utility("tree", synthetic, train, test, num_rows=20)


def test_survival_utility_fits_a_weighted_synthetic_table(gbsg2_split):
    train, test, _ = gbsg2_split
    synthetic = tuple(a[:60] for a in train)
    plain = survival_utility("cox", synthetic, train, test, num_rows=60, num_random_subsets=1)
    ones = survival_utility("cox", synthetic + (np.ones(60),), train, test, num_rows=60, num_random_subsets=1)
    assert ones["synthetic"] == plain["synthetic"]
    weight = np.where(synthetic[2] == 1, 3.0, 0.5)                    # a weighting that changes the fit
    weighted = survival_utility("cox", synthetic + (weight,), train, test, num_rows=60, num_random_subsets=1)
    model = LifelinesCoxPH(penalizer=0.1).fit(*synthetic, sample_weight=weight)
    assert weighted["synthetic"]["c_index"] == pytest.approx(
        lifelines_concordance_index(test[1], -model.predict_risk(test[0]), test[2]), abs=1e-12)
    assert weighted["synthetic"]["c_index"] != plain["synthetic"]["c_index"]
    assert weighted["full_data"] == plain["full_data"]               # the references are never weighted


def test_drop_constant_columns_leaves_them_out_of_all_three(gbsg2_split):
    train, test, _ = gbsg2_split
    X = train[0][:30].copy()
    X[:, 2] = 0.25
    synthetic = (X, train[1][:30], train[2][:30], np.ones(30))
    got_synthetic, got_train, got_test, dropped = drop_constant_columns(synthetic, train, test)
    assert dropped == 1 and got_synthetic[0].shape[1] == X.shape[1] - 1
    np.testing.assert_array_equal(got_train[0], np.delete(train[0], 2, axis=1))
    np.testing.assert_array_equal(got_test[0], np.delete(test[0], 2, axis=1))
    assert got_synthetic[3] is synthetic[3] and got_train[1] is train[1]
    untouched = drop_constant_columns(tuple(a[:30] for a in train), train, test)
    assert untouched[3] == 0 and untouched[1] is train
