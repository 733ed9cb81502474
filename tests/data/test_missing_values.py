"""Missing values in and out: the DP schema marks a column `missing`, the encoder learns a value and an
indicator, decoding releases missing cells at the learned rate, and a record without a class, time or
event is left out (never a refusal). Every random number is seeded."""

import warnings

import numpy as np
import pandas as pd
import pytest

from zodc.data import TableEncoder, validate_table
from zodc.data.io import apply_declared_kinds, read_table
from zodc.data.schema import CategoricalColumn, NumericColumn, Schema
from zodc.estimator import Condenser

from tests.data.test_messy_tables import estimate  # one helper for both files
# Values outside the estimated (or public) bounds are clipped with a warning: expected here, not the subject.
pytestmark = pytest.mark.filterwarnings("ignore:.*outside the schema bounds:UserWarning")




def block(encoder, name):
    return next(b for b in encoder.feature_blocks if b.name == name)


def public_schema(*features, target="y", classes=("a", "b")):
    return Schema(name="public", task="classification", columns=(*features, CategoricalColumn(target, classes)),
                  target=target, source="public: written for this test")


def with_missing_numbers(n, seed, share=0.2):
    rng = np.random.default_rng(seed)
    chol = rng.normal(200.0, 30.0, n)
    missing = rng.random(n) < share
    chol[missing] = np.nan
    frame = pd.DataFrame({"age": rng.normal(55.0, 10.0, n), "chol": chol, "y": rng.choice(["a", "b"], n)})
    return frame, missing


def test_numeric_missing_values_get_a_value_and_an_indicator():
    frame, missing = with_missing_numbers(500, seed=21)
    schema, _, _ = estimate(frame, target="y")
    assert schema.column("chol").missing and not schema.column("age").missing
    encoder = TableEncoder(schema)
    chol = block(encoder, "chol")
    assert chol.kind == "numeric_missing" and chol.stop - chol.start == 2
    assert block(encoder, "age").kind == "numeric"
    X = encoder.encode(frame).X
    np.testing.assert_array_equal(X[:, chol.start + 1], np.where(missing, 1.0, -1.0))  # +1 exactly where missing
    np.testing.assert_array_equal(X[missing, chol.start], 0.0)  # the value sits at the middle
    assert np.all(np.abs(X[~missing, chol.start]) <= 1.0)
    back = encoder.decode(X, y=encoder.encode(frame).y)  # rng=None: missing where the indicator > 0
    np.testing.assert_array_equal(back["chol"].isna().to_numpy(), missing)


def test_empty_and_na_cells_of_a_csv_are_missing(tmp_path):
    rng = np.random.default_rng(22)
    n = 500
    cells = np.array([f"{v:.1f}" for v in rng.normal(200.0, 30.0, n)], dtype=object)
    kind = rng.random(n)
    cells[kind < 0.10] = ""
    cells[(kind >= 0.10) & (kind < 0.15)] = "NA"
    cells[(kind >= 0.15) & (kind < 0.20)] = "N/A"
    missing = kind < 0.20
    labels = rng.choice(["a", "b"], n)
    path = tmp_path / "cohort.csv"
    path.write_text("chol,y\n" + "".join(f"{c},{y}\n" for c, y in zip(cells, labels)))
    frame = apply_declared_kinds(read_table(path, as_text=True), target="y")
    np.testing.assert_array_equal(frame["chol"].isna().to_numpy(), missing)
    schema, caught, _ = estimate(frame, target="y")
    chol = schema.column("chol")
    assert isinstance(chol, NumericColumn) and chol.missing, caught
    encoder = TableEncoder(schema)
    X = encoder.encode(frame).X
    np.testing.assert_array_equal(X[:, block(encoder, "chol").start + 1], np.where(missing, 1.0, -1.0))


def test_decoding_releases_missing_cells_at_the_indicator_rate():
    schema = public_schema(NumericColumn("chol", 100.0, 300.0, missing=True),
                           NumericColumn("visits", 0.0, 10.0, integer=True, missing=True))
    encoder = TableEncoder(schema)
    assert [b.kind for b in encoder.feature_blocks] == ["numeric_missing", "numeric_missing"]
    indicator = np.array([-1.0, -0.5, 0.0, 1e-3, 0.3, 1.0])
    X = np.column_stack([np.zeros(6), indicator, np.full(6, 0.2), -indicator])
    exact = encoder.decode(X)  # no generator: missing where the indicator is positive
    np.testing.assert_array_equal(exact["chol"].isna().to_numpy(), indicator > 0)
    np.testing.assert_array_equal(exact["visits"].isna().to_numpy(), -indicator > 0)
    np.testing.assert_allclose(exact["chol"][indicator <= 0], 200.0)
    assert str(exact["visits"].dtype) == "Int64"  # whole numbers with gaps
    # With a generator: missing with probability (v + 1) / 2, here 20 %, over many rows.
    n = 20_000
    X = np.column_stack([np.zeros(n), np.full(n, -0.6), np.zeros(n), np.full(n, 0.2)])
    sampled = encoder.decode(X, rng=np.random.default_rng(23))
    for name, rate in (("chol", 0.2), ("visits", 0.6)):
        share = sampled[name].isna().mean()
        assert abs(share - rate) < 4.5 * np.sqrt(rate * (1 - rate) / n), (name, share)


def test_a_column_with_a_missing_rate_releases_that_share_in_the_rows_of_highest_indicator():
    schema = public_schema(NumericColumn("chol", 100.0, 300.0, missing=True, missing_rate=0.25),
                           NumericColumn("visits", 0.0, 10.0, integer=True, missing=True))
    encoder = TableEncoder(schema)
    rng = np.random.default_rng(24)
    indicator = rng.uniform(-1.0, 1.0, 40)
    X = np.column_stack([np.zeros(40), indicator, np.zeros(40), np.full(40, -1.0)])
    released = encoder.decode(X, rng=np.random.default_rng(3))
    gaps = released["chol"].isna().to_numpy()
    assert gaps.sum() == 10  # 25 % of 40 rows, whatever the indicators' own rate (about 50 % here)
    assert indicator[gaps].min() > indicator[~gaps].max()  # the rows the model learned as most likely missing
    assert not released["visits"].isna().any()  # no rate: drawn from its indicators (all -1: none)
    assert encoder.decode(X)["chol"].isna().sum() == (indicator > 0).sum()  # the round trip keeps v > 0
    ties = encoder.decode(np.column_stack([np.zeros(40), np.zeros(40), np.zeros(40), np.full(40, -1.0)]),
                          rng=np.random.default_rng(4))
    assert ties["chol"].isna().sum() == 10  # equal indicators: which rows is the generator's draw
    with pytest.raises(Exception, match="missing_rate"):
        NumericColumn("chol", 100.0, 300.0, missing_rate=0.1)  # needs missing: true
    with pytest.raises(Exception, match="missing_rate"):
        NumericColumn("chol", 100.0, 300.0, missing=True, missing_rate=1.5)
    again = Schema.from_json(schema.to_dict())
    assert again.column("chol").missing_rate == 0.25 and again.column("visits").missing_rate is None


def test_the_dp_schema_estimates_a_missing_rate_and_a_complete_column_releases_almost_no_gaps():
    # 3,000 records: chol 20 % missing, age and bmi complete. The DP rate of chol is its noisy
    # count less two stds, over the DP record count; a complete column that the noise marks
    # missing (2 % of columns) gets a rate near 0, not the 2-3 stds that marked it.
    from zodc.data import dp_schema

    frame, missing = with_missing_numbers(3000, seed=26)
    frame["bmi"] = np.random.default_rng(27).normal(27.0, 4.0, 3000)
    sigma = dp_schema.schema_noise_multiplier(1.0, 1e-5, 1e-6, 0.1)  # the CLI's budget: epsilon 1, 10 %
    rates = []
    for seed in range(10):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema, _, _ = dp_schema.estimate_schema_and_count(np.random.default_rng(seed), frame, target="y",
                                                               noise_multiplier=sigma, threshold_delta=1e-6)
        rates.append(schema.column("chol").missing_rate)
        for name in ("age", "bmi"):
            column = schema.column(name)
            assert (column.missing_rate is None) == (not column.missing)
            assert column.missing_rate is None or column.missing_rate < 0.03, (seed, column)
    assert all(0.12 <= rate <= 0.21 for rate in rates), rates
    std = 10.0
    assert dp_schema._missing_rate(0.0, std, 0.0, std, 1000.0) == 0.0
    combined = std / np.sqrt(2.0)
    assert dp_schema._missing_rate(500.0, std, 500.0, std, 1000.0) == pytest.approx(
        (500.0 - dp_schema.PRESENCE_Z * combined) / 1000.0)
    assert dp_schema._missing_rate(7.0, 0.0, 7.0, 0.0, 100.0) == 0.07  # exact mode


def test_categorical_missing_values_get_a_slot_that_decodes_to_an_empty_cell():
    rng = np.random.default_rng(24)
    n = 500
    smoker = rng.choice(["no", "yes"], n).astype(object)
    missing = rng.random(n) < 0.2
    smoker[missing] = None
    smoker[np.flatnonzero(missing)[::3]] = ""  # empty text is missing too
    single = np.where(missing, None, "present").astype(object)  # one level and missing: a binary block
    frame = pd.DataFrame({"smoker": smoker, "single": single, "y": rng.choice(["a", "b"], n)})
    schema, caught, _ = estimate(frame, target="y")
    assert schema.column("smoker") == CategoricalColumn("smoker", ("no", "yes"), missing=True), caught
    assert schema.column("single") == CategoricalColumn("single", ("present",), missing=True), caught
    encoder = TableEncoder(schema)
    block_smoker, block_single = block(encoder, "smoker"), block(encoder, "single")
    assert block_smoker.kind == "onehot" and block_smoker.stop - block_smoker.start == 3  # no, yes, (missing)
    assert block_single.kind == "binary"
    encoded = encoder.encode(frame)
    np.testing.assert_array_equal(encoded.X[:, block_smoker.start + 2], np.where(missing, 1.0, -1.0))
    np.testing.assert_array_equal(encoded.X[:, block_single.start], np.where(missing, 1.0, -1.0))
    back = encoder.decode(encoded.X, y=encoded.y)
    assert back["smoker"][missing].isna().all() and back["single"][missing].isna().all()
    assert back["smoker"][~missing].tolist() == frame["smoker"][~missing].tolist()
    assert (back["single"][~missing] == "present").all()


def test_condensation_releases_missing_cells_at_about_the_real_rate():
    frame, missing = with_missing_numbers(3000, seed=25)
    frame.loc[:4, "y"] = None  # records without a class: left out, with a warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        condenser = Condenser("tree", epsilon=1.0, steps=3, num_directions=4, rows_per_class=50, backend="host",
                              random_state=25).fit(frame.drop(columns="y"), frame["y"])
    assert any("target 'y' has missing values" in str(w.message) for w in caught)
    schema = condenser.schema_
    assert schema.column("chol").missing and not schema.column("age").missing
    released = condenser.synthetic_
    assert len(released) == 100
    share = released["chol"].isna().mean()
    # The release has the DP schema's missing rate of chol (its noisy count less two stds, over the DP
    # record count: about 0.18 of the real 0.20), in the rows whose learned indicator is highest.
    assert share == round(schema.column("chol").missing_rate * 100) / 100, share
    assert 0.14 <= share <= 0.21, share
    assert not released[["age", "y"]].isna().any().any()


def test_missing_values_in_a_column_the_schema_says_is_complete_sit_at_the_middle():
    frame, missing = with_missing_numbers(1000, seed=26)
    schema = public_schema(NumericColumn("age", 20.0, 90.0), NumericColumn("chol", 100.0, 300.0, missing=False))
    with pytest.warns(UserWarning, match="`missing: false`"):
        clean = validate_table(frame, schema, on_out_of_bounds="clip")
    assert clean["chol"].isna().sum() == missing.sum()  # still missing in the clean table ...
    encoder = TableEncoder(schema)
    assert block(encoder, "chol").kind == "numeric"
    with pytest.warns(UserWarning, match="`missing: false`"):
        X = encoder.encode(frame).X
    np.testing.assert_array_equal(X[missing, block(encoder, "chol").start], 0.0)  # ... encoded at the middle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        condenser = Condenser("tree", schema=schema, epsilon=1.0, steps=2, num_directions=4, backend="host",
                              random_state=26).fit(frame.drop(columns="y"), frame["y"])
    assert not condenser.synthetic_.isna().any().any()  # the release has no missing cells


def test_a_record_without_a_class_time_or_event_is_left_out_never_refused():
    rng = np.random.default_rng(27)
    n = 400
    frame = pd.DataFrame({"age": rng.normal(55.0, 10.0, n), "y": rng.choice(["a", "b"], n).astype(object)})
    frame.loc[[0, 1], "y"], frame.loc[2, "y"] = None, np.nan
    schema, caught, count = estimate(frame, target="y")
    assert schema.target_column.categories == ("a", "b") and abs(count - (n - 3)) < 10
    with pytest.warns(UserWarning, match="target 'y' has missing values"):
        clean = validate_table(frame, schema)
    assert list(clean.index[:2]) == [3, 4] and len(clean) == n - 3

    survival = pd.DataFrame({"age": rng.normal(60.0, 10.0, n), "time": rng.exponential(500.0, n) + 1.0,
                             "event": (rng.random(n) < 0.4).astype(float)})
    survival.loc[[0, 1], "time"] = np.nan
    survival.loc[[2, 3], "event"] = np.nan
    survival.loc[4, "event"] = 2.0  # not 0/1: unusable like a missing event
    schema, caught, count = estimate(survival, time="time", event="event")
    # The count is the event bins': records with an unusable event are not in it.
    assert schema.task == "survival" and schema.time.lower > 0 and abs(count - (n - 3)) < 10
    with pytest.warns(UserWarning, match="survival records without a usable time or event"):
        clean = validate_table(survival, schema)
    assert len(clean) == n - 5 and not set(clean.index) & {0, 1, 2, 3, 4}
    assert set(clean["event"]) <= {0, 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        condenser = Condenser("cox", schema=schema, epsilon=1.0, steps=2, num_directions=4, rows=20, backend="host",
                              random_state=27).fit(survival, duration_col="time", event_col="event")
    assert len(condenser.synthetic_) >= 20 and not condenser.synthetic_[["time", "event"]].isna().any().any()
