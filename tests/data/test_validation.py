import warnings

import numpy as np
import pandas as pd
import pytest

from zodc.data import TableEncoder, check_min_rows, check_raw_table, validate_table
from zodc.data.validation import diagnostics
from zodc.errors import DataError

from tests.data.test_schema import small_schema, survival_schema


def good_frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(20, 90, n),
        "sex": rng.choice(["male", "female"], n),
        "dose": rng.uniform(0, 2.5, n),
        "grade": rng.choice([1, 2, 3], n),
        "outcome": np.array(["no", "yes"])[np.arange(n) % 2],
    })


def good_survival_frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(20, 90, n),
        "stage": rng.choice(["I", "II", "III"], n),
        "time": rng.integers(1, 3000, n),
        "death": np.arange(n) % 2,
    })


def test_good_table_passes_and_is_canonical():
    frame = good_frame()[["outcome", "grade", "dose", "sex", "age"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = validate_table(frame, small_schema())
    assert list(clean.columns) == ["age", "sex", "dose", "grade", "outcome"]
    assert clean["age"].dtype == np.int64 and clean["dose"].dtype == np.float64
    assert clean["grade"].dtype == np.int64
    clean = validate_table(good_survival_frame(), survival_schema())
    assert clean["death"].dtype == np.int64


def test_empty_table():
    with pytest.raises(DataError, match="empty"):
        validate_table(good_frame().iloc[:0], small_schema())
    with pytest.raises(DataError, match="empty"):
        check_raw_table(pd.DataFrame({"a": []}), target="a")


def test_missing_target_names_it_and_lists_columns():
    frame = good_frame().drop(columns="outcome")
    with pytest.raises(DataError, match=r"target column 'outcome' not found; columns are: age, sex") as caught:
        validate_table(frame, small_schema())
    assert "Did you mean" not in str(caught.value)
    with pytest.raises(DataError, match="target column 'label' not found; columns are:"):
        check_raw_table(good_frame(), target="label")


@pytest.mark.parametrize("typed, near", [("Outcome", "outcome"), ("OUTCOME", "outcome"), ("outcom", "outcome"),
                                         ("Age", "age")])
def test_a_column_name_typed_with_another_case_or_a_typo_is_suggested(typed, near):
    with pytest.raises(DataError, match=f"Did you mean '{near}'\\?$"):
        check_raw_table(good_frame(), target=typed)


def test_missing_feature_column():
    with pytest.raises(DataError, match=r"\['dose'\].*not found"):
        validate_table(good_frame().drop(columns="dose"), small_schema())


def test_extra_column_warns_and_is_dropped():
    frame = good_frame().assign(patient_id=range(40))
    with pytest.warns(UserWarning, match="patient_id"):
        clean = validate_table(frame, small_schema())
    assert "patient_id" not in clean.columns


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_missing_or_infinite_number_is_missing_and_encoded_at_the_middle_record_by_record(bad):
    frame = good_frame()
    frame["dose"] = frame["dose"].astype(float)
    frame.loc[[3, 7, 9], "dose"] = bad
    check_raw_table(frame, target="outcome")  # no refusal: one record must not decide one
    with pytest.warns(UserWarning, match="column 'dose' has missing values") as caught:
        clean = validate_table(frame, small_schema())
    assert "3 row" not in str(caught[0].message) and "index" not in str(caught[0].message)  # private: withheld
    assert clean.loc[[3, 7, 9], "dose"].isna().all()  # kept missing; the schema says `missing: false`, so ...
    assert clean.drop(index=[3, 7, 9])["dose"].tolist() == frame.drop(index=[3, 7, 9])["dose"].tolist()
    encoder = TableEncoder(small_schema())
    block = next(b for b in encoder.feature_blocks if b.name == "dose")
    assert (encoder.encode(clean).X[[3, 7, 9], block.start] == 0).all()  # ... the encoding puts them at the middle
    with diagnostics(), pytest.warns(UserWarning, match=r"missing values \(3 row\(s\).*diagnostics: private"):
        validate_table(frame, small_schema())


def test_missing_category_is_no_level_and_a_missing_class_leaves_its_record_out():
    frame = good_frame()
    frame.loc[0, "sex"] = None
    clean = validate_table(frame, small_schema())  # no refusal: one record must not decide one
    assert clean.loc[0, "sex"] is None
    frame = good_frame()
    frame.loc[[1, 2], "outcome"] = np.nan
    with pytest.warns(UserWarning, match="target 'outcome' has missing values.*their records are left out"):
        clean = validate_table(frame, small_schema())
    assert list(clean.index) == [i for i in frame.index if i not in (1, 2)]


def test_free_text_is_not_refused_before_the_dp_schema():
    # Refusing free text would be a decision one record's value could tip: the DP schema's
    # threshold drops the levels instead (tests/data/test_dp_schema.py).
    check_raw_table(good_frame().assign(notes=[f"patient said {i}" for i in range(40)]), target="outcome")
    frame = good_frame().assign(sex=[f"text {i}" for i in range(40)])
    with pytest.warns(UserWarning, match="column 'sex' has values not among the schema's levels.*no level"):
        clean = validate_table(frame, small_schema())
    assert clean["sex"].isna().all()


def test_single_class_target():
    frame = good_frame().assign(outcome="no")
    with pytest.raises(DataError, match="target column 'outcome' has fewer than 2"):
        validate_table(frame, small_schema())
    check_raw_table(frame, target="outcome")  # no refusal on raw values: the DP schema decides
    validate_table(frame, small_schema(), require_variation=False)


def test_unknown_levels_are_no_level_and_unknown_classes_leave_their_record_out():
    frame = good_frame()
    frame.loc[[0, 5], "grade"] = 4
    with pytest.warns(UserWarning, match=r"column 'grade' has values not among the schema's levels") as caught:
        clean = validate_table(frame, small_schema())
    assert "4" not in str(caught[0].message)  # the private value is not quoted
    assert clean.loc[0, "grade"] is None and clean.loc[5, "grade"] is None and len(clean) == len(frame)
    encoded = TableEncoder(small_schema()).encode(clean)
    assert np.isfinite(encoded.X).all()
    frame = good_frame()
    frame.loc[0, "outcome"] = "maybe"
    with pytest.warns(UserWarning, match="target 'outcome' has values not among.*left out"):
        clean = validate_table(frame, small_schema())
    assert 0 not in clean.index and len(clean) == len(frame) - 1


def test_numeric_categories_match_by_value():
    frame = good_frame()
    frame["grade"] = frame["grade"].astype(float)
    clean = validate_table(frame, small_schema())
    assert clean["grade"].tolist() == good_frame()["grade"].tolist()


def test_out_of_bounds_clip_warns_or_raises():
    frame = good_frame()
    frame.loc[[0, 1], "dose"] = [-1.0, 9.0]
    with pytest.warns(UserWarning, match=r"column 'dose': some rows .*outside the schema bounds \[0.0, 2.5\]; clipped") as caught:
        clean = validate_table(frame, small_schema())
    assert "9.0" not in str(caught[0].message)  # no private min / max
    with diagnostics(), pytest.warns(UserWarning, match=r"2 row\(s\).*observed range \[-1.0, 9.0\]"):
        validate_table(frame, small_schema())
    assert clean["dose"].min() >= 0 and clean["dose"].max() <= 2.5
    assert clean.loc[1, "dose"] == 2.5
    with pytest.raises(DataError, match=r"column 'dose': some rows .*outside the schema bounds"):
        validate_table(frame, small_schema(), on_out_of_bounds="raise")
    with pytest.raises(DataError, match="on_out_of_bounds"):
        validate_table(frame, small_schema(), on_out_of_bounds="ignore")


def test_non_numeric_values_in_numeric_column():
    frame = good_frame().astype({"dose": object})
    frame.loc[4, "dose"] = "high"
    with pytest.warns(UserWarning, match="column 'dose' has values that are not numbers.*withheld") as caught:
        clean = validate_table(frame, small_schema())
    assert all("high" not in str(w.message) for w in caught)
    assert np.isnan(clean.loc[4, "dose"])  # that record's missing value


def test_fractional_value_in_integer_column_is_rounded_with_warning():
    frame = good_frame().astype({"age": float})
    frame.loc[0, "age"] = 40.4
    with pytest.warns(UserWarning, match="column 'age' is an integer column"):
        clean = validate_table(frame, small_schema())
    assert clean.loc[0, "age"] == 40


@pytest.mark.parametrize("change", [
    lambda f: f.assign(time=f["time"].astype(float).where(f.index != 0, np.nan)),
    lambda f: f.assign(death=f["death"].where(f.index != 0, 2)),
    lambda f: f.assign(death=f["death"].astype(float).where(f.index != 0, np.nan)),
])
def test_a_survival_record_without_a_usable_time_or_event_is_left_out(change):
    frame = change(good_survival_frame())
    check_raw_table(frame, time="time", event="death")  # no refusal: one record must not decide one
    with pytest.warns(UserWarning, match="without a usable time or event.*left out") as caught:
        clean = validate_table(frame, survival_schema())
    # The bad value is not quoted (the fixed hint after "left out" names R's codes, 1 and 2).
    assert "2" not in str(caught[0].message).split("'death'")[1].split(" are left out")[0]
    assert 0 not in clean.index and len(clean) == len(frame) - 1


def test_survival_times_at_or_below_zero_are_clipped_not_refused():
    frame = good_survival_frame().assign(time=lambda f: f["time"].where(f.index > 1, -5))
    check_raw_table(frame, time="time", event="death")
    with pytest.warns(UserWarning, match="outside the schema bounds"):
        clean = validate_table(frame, survival_schema())
    assert (clean["time"] >= survival_schema().time.lower).all()
    with pytest.raises(DataError, match="event column 'death' has no events"):
        validate_table(good_survival_frame().assign(death=0), survival_schema())
    check_raw_table(good_survival_frame().assign(death=0), time="time", event="death")


def test_survival_missing_columns_and_boolean_events():
    with pytest.raises(DataError, match="event column 'death' not found"):
        validate_table(good_survival_frame().drop(columns="death"), survival_schema())
    with pytest.raises(DataError, match="both a time and an event"):
        check_raw_table(good_survival_frame(), time="time")
    frame = good_survival_frame().assign(death=lambda f: f["death"].astype(bool))
    assert validate_table(frame, survival_schema())["death"].tolist() == good_survival_frame()["death"].tolist()


def test_raw_table_needs_string_column_names():
    with pytest.raises(DataError, match="column names must be non-empty strings"):
        check_raw_table(pd.DataFrame(np.ones((3, 2))), target=None)


def test_check_min_rows():
    check_min_rows(10, 10)
    with pytest.raises(DataError, match="needs at least 20 rows. Got 10"):
        check_min_rows(10, 20)


def test_not_a_dataframe():
    with pytest.raises(DataError, match="DataFrame"):
        validate_table(np.ones((3, 3)), small_schema())
