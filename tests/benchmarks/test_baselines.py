"""Baselines of the utility benchmark (benchmarks/baselines.py): valid tables, the right sizes, calibrated and
accounted noise. The MST tests need mbi, which is in the `bench` extra, not `test`: they skip without it."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from benchmarks import baselines
from zodc.data.datasets import load_dataset
from zodc.data.transform import TableEncoder
from zodc.data.validation import validate_table
from zodc.errors import ConfigError
from zodc.privacy.accounting import DEFAULT_ORDERS, rdp_of_event
from zodc.privacy.calibration import gaussian_noise_for_epsilon
from zodc.privacy.events import GaussianEvent

DELTA = 1e-5


@pytest.fixture(scope="module")
def mbi():
    return pytest.importorskip("mbi", reason="the MST baseline runs on mbi (Private-PGM), installed with the `bench` "
                                              "extra (pip install -e '.[test,bench]'), not with `test` (CI)")


@pytest.fixture(scope="module")
def diabetes():
    return load_dataset("diabetes_progression")


@pytest.fixture(scope="module")
def gbsg():
    return load_dataset("gbsg2_recurrence_3y")


def _check_valid(table: pd.DataFrame, schema, rows_per_class=None):
    """In the schema's columns, bounds and levels; ``rows_per_class`` rows of each class."""
    assert list(table.columns) == list(schema.column_names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "clip" would warn on any out-of-bounds value
        validate_table(table, schema, on_out_of_bounds="raise", require_variation=False)
    for column in schema.columns:
        if hasattr(column, "categories"):
            assert set(table[column.name]) <= set(column.categories), column.name
        else:
            values = table[column.name].to_numpy(np.float64)
            assert np.all(values >= column.lower) and np.all(values <= column.upper), column.name
            if column.integer:
                assert np.all(values == np.round(values)), column.name
    if rows_per_class is not None:
        counts = table[schema.target].value_counts()
        assert all(counts.get(level, 0) == rows_per_class for level in schema.target_column.categories)


# ------------------------------------------------------------------ non-private references

def test_full_data_is_the_validated_table(diabetes):
    result = baselines.full_data(diabetes.frame, diabetes.schema)
    assert len(result.table) == len(diabetes.frame) and not result.private and result.ledger is None
    _check_valid(result.table, diabetes.schema)


def test_random_subset_draws_real_rows(diabetes):
    result = baselines.random_subset(diabetes.frame, diabetes.schema, 7, random_state=0)
    _check_valid(result.table, diabetes.schema, rows_per_class=7)
    merged = result.table.merge(diabetes.frame.drop_duplicates(), how="left", indicator=True)
    assert (merged["_merge"] == "both").all()                     # every row is a real record
    again = baselines.random_subset(diabetes.frame, diabetes.schema, 7, random_state=0)
    pd.testing.assert_frame_equal(result.table, again.table)      # seeded


@pytest.mark.parametrize("rows_per_class", [1, 5, 10])
def test_kmeans_centroids_counts(gbsg, rows_per_class):
    result = baselines.kmeans_centroids(gbsg.frame, gbsg.schema, rows_per_class, random_state=0)
    assert not result.private and math.isinf(result.epsilon)
    _check_valid(result.table, gbsg.schema, rows_per_class=rows_per_class)


def test_kmeans_small_class_contributes_its_records(diabetes):
    frame = diabetes.frame
    target = diabetes.schema.target
    small = pd.concat([frame[frame[target] == "yes"].head(3), frame[frame[target] == "no"]])
    result = baselines.kmeans_centroids(small, diabetes.schema, 5, random_state=0)
    counts = result.table[target].value_counts()
    assert counts["yes"] == 3 and counts["no"] == 5


def test_kmeans_centroid_is_class_mean_for_one_cluster(diabetes):
    schema = diabetes.schema
    encoder = TableEncoder(schema)
    result = baselines.kmeans_centroids(diabetes.frame, schema, 1, random_state=0)
    encoded = encoder.encode(diabetes.frame)
    for c in range(schema.n_classes):
        mean = encoded.X[encoded.y == c].mean(axis=0)
        row = result.table[result.table[schema.target] == schema.target_column.categories[c]]
        expected = encoder.decode(mean[None, :], y=np.array([c]))
        numeric = [col.name for col in schema.feature_columns if not hasattr(col, "categories")]
        np.testing.assert_allclose(row[numeric].to_numpy(np.float64), expected[numeric].to_numpy(np.float64),
                                   atol=1.0)  # integer columns are rounded


# ------------------------------------------------------------------ DP Gaussian

@pytest.mark.parametrize("epsilon", [0.5, 1.0, 5.0])
def test_dp_gaussian_calibration_round_trip(diabetes, epsilon):
    result = baselines.dp_gaussian(diabetes.frame, diabetes.schema, 10, epsilon=epsilon, delta=DELTA, random_state=0)
    # The ledger's epsilon meets the target, tightly (calibrated, not hand-picked).
    assert result.epsilon <= epsilon * (1 + 1e-9)
    assert result.epsilon == pytest.approx(epsilon, rel=2e-3)
    assert result.ledger.epsilon(DELTA) == pytest.approx(result.epsilon)
    # The three releases compose to one Gaussian of multiplier z: z is what a single Gaussian
    # release calibrated to the same target gets.
    z = result.details["noise_multiplier"]
    assert z == pytest.approx(gaussian_noise_for_epsilon(epsilon, DELTA), rel=2e-3)
    # The noise actually drawn has the std the ledger accounts for: std = multiplier x sensitivity.
    d = TableEncoder(diabetes.schema).n_encoded
    shares = result.details["shares"]
    sensitivities = (1.0, math.sqrt(d), math.sqrt(d))
    for entry, share, sensitivity, name in zip(result.ledger.entries, shares, sensitivities,
                                               ("class_counts", "class_sums", "class_second_moments")):
        assert entry.name == name
        assert entry.event.noise_multiplier == pytest.approx(z / math.sqrt(share))
        assert result.details["noise_std"][name] == pytest.approx(entry.event.noise_multiplier * sensitivity)


def test_dp_gaussian_noise_matches_recorded_std(diabetes):
    """Empirical check: the released class counts scatter around the exact ones with the recorded std."""
    schema = diabetes.schema
    exact = np.bincount(TableEncoder(schema).encode(diabetes.frame).y, minlength=schema.n_classes)
    errors, std = [], None
    for seed in range(400):
        result = baselines.dp_gaussian(diabetes.frame, schema, 1, epsilon=1.0, delta=DELTA, random_state=seed)
        errors.append(np.asarray(result.details["noisy_class_counts"]) - exact)
        std = result.details["noise_std"]["class_counts"]
    errors = np.concatenate(errors)
    assert abs(errors.mean()) < 4 * std / math.sqrt(errors.size)
    assert errors.std() == pytest.approx(std, rel=0.1)


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
@pytest.mark.parametrize("epsilon", [1.0, math.inf])
def test_dp_gaussian_output_valid(gbsg, covariance, epsilon):
    result = baselines.dp_gaussian(gbsg.frame, gbsg.schema, 6, epsilon=epsilon, covariance=covariance, random_state=1)
    _check_valid(result.table, gbsg.schema, rows_per_class=6)
    assert result.private
    if math.isinf(epsilon):
        assert result.ledger is None and math.isinf(result.epsilon)
    else:
        assert result.epsilon <= epsilon * (1 + 1e-9)


def test_dp_gaussian_rejects_bad_arguments(diabetes):
    with pytest.raises(ConfigError, match="epsilon"):
        baselines.dp_gaussian(diabetes.frame, diabetes.schema, 5, epsilon=-1)
    with pytest.raises(ConfigError, match="shares"):
        baselines.dp_gaussian(diabetes.frame, diabetes.schema, 5, epsilon=1, shares=(0.5, 0.5, 0.5))
    with pytest.raises(ConfigError, match="rows_per_class"):
        baselines.dp_gaussian(diabetes.frame, diabetes.schema, 0, epsilon=1)


# ------------------------------------------------------------------ MST

def test_exponential_mechanism_recorded_with_its_zcdp_curve():
    # eps-EM is eps^2/8-zCDP: RDP(a) = a eps^2 / 8, which GaussianEvent(2 / eps) has exactly.
    eps = 0.3
    orders = np.asarray(DEFAULT_ORDERS)
    np.testing.assert_allclose(rdp_of_event(GaussianEvent(2.0 / eps), orders), orders * eps**2 / 8, rtol=1e-9)


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_mst_valid_and_within_budget(mbi, diabetes, epsilon):
    schema = diabetes.schema
    result = baselines.mst(diabetes.frame, schema, 8, epsilon=epsilon, delta=DELTA, num_bins=6,
                           estimation_iters=200, random_state=0)
    _check_valid(result.table, schema, rows_per_class=8)
    assert result.private and result.epsilon <= epsilon * (1 + 1e-9)
    assert result.epsilon == pytest.approx(epsilon, rel=2e-3)
    assert [e.name for e in result.ledger.entries] == ["mst_one_way", "mst_selection", "mst_two_way"]
    # A spanning tree over all attributes: d - 1 edges, connected.
    names = list(schema.column_names)
    tree = result.details["tree"]
    assert len(tree) == len(names) - 1
    reached, frontier = {names[0]}, [names[0]]
    while frontier:
        node = frontier.pop()
        for a, b in tree:
            for u, v in ((a, b), (b, a)):
                if u == node and v not in reached:
                    reached.add(v)
                    frontier.append(v)
    assert reached == set(names)
    # Numeric values are bin midpoints of the public bounds.
    column = schema.column("bmi")
    edges = np.linspace(column.lower, column.upper, 7)
    assert set(np.round(result.table["bmi"], 6)) <= set(np.round((edges[:-1] + edges[1:]) / 2, 6))


def test_mst_is_reproducible_from_its_seed_and_leaves_numpy_global_state_alone(mbi, diabetes, larynx):
    # mbi samples with numpy's global random state and takes no seed: zodc seeds it from random_state.
    def table(seed, frame=diabetes.frame, schema=diabetes.schema, **size):
        size = size or {"rows_per_class": 8}
        return baselines.mst(frame, schema, epsilon=1.0, delta=DELTA, num_bins=6, estimation_iters=50,
                             random_state=seed, **size).table

    np.random.seed(123)
    before = np.random.get_state()
    first = table(0)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]  # untouched
    np.random.seed(99)                                           # ... and does not decide the table
    pd.testing.assert_frame_equal(table(0), first)
    assert not table(1).equals(first)
    survival = dict(frame=larynx.frame, schema=larynx.schema, num_rows=30)
    pd.testing.assert_frame_equal(table(0, **survival), table(0, **survival))


def test_mst_non_private_recovers_strongest_dependencies(mbi, gbsg):
    result = baselines.mst(gbsg.frame, gbsg.schema, 10, epsilon=math.inf, num_bins=4, estimation_iters=200,
                           random_state=0)
    _check_valid(result.table, gbsg.schema, rows_per_class=10)
    assert result.ledger is None and math.isinf(result.epsilon)
    assert len(result.details["tree"]) == len(gbsg.schema.column_names) - 1


# ------------------------------------------------------------------ survival

@pytest.fixture(scope="module")
def gbsg2_survival():
    return load_dataset("gbsg2")


@pytest.fixture(scope="module")
def larynx():
    return load_dataset("larynx")


def _check_survival(table: pd.DataFrame, schema, num_rows: int):
    """Schema columns, features in bounds / levels, time positive within the public bounds, events 0/1."""
    _check_valid(table, schema)
    assert len(table) == num_rows
    times = table[schema.time.name].to_numpy(np.float64)
    assert np.all(times > 0) and np.all(times >= schema.time.lower) and np.all(times <= schema.time.upper)
    assert set(table[schema.event].unique()) <= {0, 1}


def test_event_split_keeps_both_statuses():
    assert baselines.event_split(50, 0.44) == 22
    assert baselines.event_split(20, 0.001) == 1 and baselines.event_split(20, 0.999) == 19


def test_survival_baselines_refuse_a_classification_schema(gbsg):
    with pytest.raises(Exception, match="survival schema"):
        baselines.random_subset_survival(gbsg.frame, gbsg.schema, 10)
    with pytest.raises(Exception, match="survival schema"):
        baselines.dp_gaussian_survival(gbsg.frame, gbsg.schema, 10, epsilon=1.0)


def test_random_subset_survival_draws_real_rows(gbsg2_survival):
    frame, schema = gbsg2_survival.frame, gbsg2_survival.schema
    result = baselines.random_subset_survival(frame, schema, 30, random_state=0)
    _check_survival(result.table, schema, 30)
    assert not result.private and result.ledger is None
    real = {tuple(row) for row in frame[list(schema.column_names)].astype(str).itertuples(index=False)}
    assert all(tuple(row) in real for row in result.table.astype(str).itertuples(index=False))


def test_kmeans_survival_splits_by_event_rate_and_uses_cluster_median_times(gbsg2_survival):
    frame, schema = gbsg2_survival.frame, gbsg2_survival.schema
    result = baselines.kmeans_survival(frame, schema, 40, random_state=0)
    _check_survival(result.table, schema, 40)
    assert int(result.table[schema.event].sum()) == baselines.event_split(40, frame[schema.event].mean())
    # Times are cluster medians of real times (integers or half-integers, rounded to the integer column).
    assert result.table[schema.time.name].min() >= frame[schema.time.name].min()
    assert result.table[schema.time.name].max() <= frame[schema.time.name].max()


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_dp_gaussian_survival_valid_and_calibrated(gbsg2_survival, larynx, epsilon):
    for data in (gbsg2_survival, larynx):
        result = baselines.dp_gaussian_survival(data.frame, data.schema, 25, epsilon=epsilon, delta=DELTA, random_state=1)
        _check_survival(result.table, data.schema, 25)
        assert result.private and result.epsilon <= epsilon * (1 + 1e-9)
        assert result.epsilon == pytest.approx(epsilon, rel=2e-3)          # calibrated, not hand-picked
        assert [e.name for e in result.ledger.entries] == ["event_counts", "event_sums", "event_second_moments"]
        z = result.details["noise_multiplier"]
        assert z == pytest.approx(gaussian_noise_for_epsilon(epsilon, DELTA), rel=1e-3)
        assert 0 < int(result.table[data.schema.event].sum()) < 25


def test_dp_gaussian_survival_without_noise_matches_moments(larynx):
    frame, schema = larynx.frame, larynx.schema
    result = baselines.dp_gaussian_survival(frame, schema, 400, epsilon=math.inf, random_state=0)
    _check_survival(result.table, schema, 400)
    assert result.ledger is None and math.isinf(result.epsilon)
    assert result.details["noisy_event_counts"] == [float((frame[schema.event] == 0).sum()),
                                                    float((frame[schema.event] == 1).sum())]
    # Events-only log-time mean of the samples is near the real one (clipping aside).
    real = np.log(frame.loc[frame[schema.event] == 1, schema.time.name]).mean()
    synthetic = np.log(result.table.loc[result.table[schema.event] == 1, schema.time.name]).mean()
    assert abs(real - synthetic) < 0.35


def test_mst_survival_valid_and_within_budget(mbi, larynx):
    schema = larynx.schema
    result = baselines.mst(larynx.frame, schema, None, num_rows=30, epsilon=1.0, delta=DELTA, num_bins=4,
                           estimation_iters=100, random_state=0)
    _check_survival(result.table, schema, 30)
    assert result.private and result.epsilon <= 1.0 * (1 + 1e-9)
    assert result.epsilon == pytest.approx(1.0, rel=2e-3)
    # Times decode to geometric midpoints of the public log-time bins.
    edges = np.exp(np.linspace(math.log(schema.time.lower), math.log(schema.time.upper), 5))
    assert set(np.round(result.table[schema.time.name], 6)) <= set(np.round(np.sqrt(edges[:-1] * edges[1:]), 6))
