"""Messy tables as data owners hand them over, through the DP schema (zodc.data.dp_schema).

Each case is small and seeded. The DP schema runs at a small noise multiplier (0.5) so that each test
is about how the case is handled, not about the noise; the CLI and Condenser runs use epsilon = 1 on
tables large enough for its schema (a column needs several hundred records in its bulk there).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from zodc.cli import main
from zodc.data import TableEncoder, validate_table
from zodc.data.dp_schema import estimate_schema_and_count
from zodc.data.io import apply_declared_kinds, read_table
from zodc.data.schema import CategoricalColumn, NumericColumn, Schema
from zodc.estimator import Condenser
from zodc.privacy.noise import secret_generator

NOISE = 0.5  # small: the tests are about the handling, not the noise
# Values outside the estimated (or public) bounds are clipped with a warning: expected here, not the subject.
pytestmark = pytest.mark.filterwarnings("ignore:.*outside the schema bounds:UserWarning")


def estimate(frame, seed=1, **roles):
    """(schema, warning messages, record count) of the DP schema at NOISE."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema, events, count = estimate_schema_and_count(secret_generator(seed, (1,)), frame, noise_multiplier=NOISE,
                                                          threshold_delta=1e-6, **roles)
    assert len(events) == 2  # the Gaussian mechanism and the levels' threshold: a private estimate
    return schema, [str(w.message) for w in caught], count


def csv_frame(tmp_path, text, **roles):
    """A CSV as the CLI reads it without a schema: every cell text, kinds set by declaration only."""
    path = tmp_path / "cohort.csv"
    path.write_text(text)
    return apply_declared_kinds(read_table(path, as_text=True), **roles)


def block(encoder, name):
    return next(b for b in encoder.feature_blocks if b.name == name)


def test_stray_case_and_whitespace_make_one_level(tmp_path):
    rng = np.random.default_rng(11)
    n = 400
    spellings = np.array(["Male", " male", "MALE ", "female", "Female ", " FEMALE"], dtype=object)
    frame = pd.DataFrame({"sex": spellings[rng.integers(0, 6, n)], "age": rng.normal(50, 10, n),
                          "y": rng.choice(["a", "b"], n)})
    for table in (frame, frame.astype({"sex": "string"})):  # object dtype (categorical) and CSV text (auto)
        schema, caught, _ = estimate(table, target="y")
        assert schema.column("sex").categories == ("female", "male"), caught
    clean = validate_table(frame, schema)
    expected = np.where(np.char.find(np.char.lower(frame["sex"].to_numpy(str)), "female") >= 0, "female", "male")
    assert clean["sex"].tolist() == expected.tolist()  # " male", "MALE " -> "male"; nothing left as no level
    encoded = TableEncoder(schema).encode(frame).X[:, block(TableEncoder(schema), "sex").slice]
    assert set(np.unique(encoded)) == {-1.0, 1.0}
    # The same from a CSV (leading spaces go with the reader's skipinitialspace, trailing ones here).
    lines = ["sex,age,y"] + [f"{frame['sex'][i]},{frame['age'][i]:.1f},{frame['y'][i]}" for i in range(n)]
    schema_csv, _, _ = estimate(csv_frame(tmp_path, "\n".join(lines) + "\n", target="y"), target="y")
    assert schema_csv.column("sex").categories == ("female", "male")


def test_labels_written_as_1_and_1_0_are_one_class(tmp_path):
    # A table merged from two exports: one wrote the outcome 0 / 1, the other 0.0 / 1.0. Each cell
    # is normalised alone ("1.0" is "1"; "01" stays "01"), so the classes are two, not four, and
    # every record keeps its class.
    rng = np.random.default_rng(13)
    n = 400
    outcome = rng.integers(0, 2, n)
    written = [f"{v}.0" if rng.random() < 0.5 else str(v) for v in outcome]
    lines = ["age,code,y"] + [f"{40 + i % 30},{'01' if i % 3 else '1.00'},{written[i]}" for i in range(n)]
    frame = csv_frame(tmp_path, "\n".join(lines) + "\n", target="y", categorical=["code"])
    schema, caught, _ = estimate(frame, target="y")
    assert schema.target_column.categories == ("0", "1"), caught
    assert schema.column("code").categories == ("01", "1")
    clean = validate_table(frame, schema)
    assert clean["y"].astype(int).tolist() == outcome.tolist()
    # Neighbours: D' = D plus one record written "0.00" / "1.000": the same class set and levels
    # under the same noise seed, and every record of D keeps its class.
    added = csv_frame(tmp_path, "\n".join(lines + ["55,1.000,0.00"]) + "\n", target="y", categorical=["code"])
    schema_prime, _, _ = estimate(added, target="y")
    assert schema_prime.target_column.categories == ("0", "1")
    assert schema_prime.column("code").categories == ("01", "1")
    clean_prime = validate_table(added, schema_prime)
    assert clean_prime["y"].astype(int).tolist() == outcome.tolist() + [0]


def test_boolean_columns_are_two_level_categoricals(tmp_path):
    rng = np.random.default_rng(12)
    n = 400
    frame = pd.DataFrame({"flag": rng.random(n) < 0.4, "y": rng.choice(["a", "b"], n)})
    schema, _, _ = estimate(frame, target="y")
    assert schema.column("flag") == CategoricalColumn("flag", (False, True))
    encoder = TableEncoder(schema)
    assert block(encoder, "flag").kind == "binary"
    x = encoder.encode(frame).X[:, block(encoder, "flag").start]
    np.testing.assert_array_equal(x, np.where(frame["flag"], 1.0, -1.0))
    # Text booleans in a CSV, in any case: two levels each.
    yes_no = np.array(["yes", "no", "Yes", " NO"])[rng.integers(0, 4, n)]
    true_false = np.array(["TRUE", "FALSE", "true", "False"])[rng.integers(0, 4, n)]
    lines = ["answered,positive,y"] + [f"{a},{b},{c}" for a, b, c in zip(yes_no, true_false, rng.choice(["a", "b"], n))]
    table = csv_frame(tmp_path, "\n".join(lines) + "\n", target="y")
    schema, caught, _ = estimate(table, target="y")
    assert schema.column("answered") == CategoricalColumn("answered", ("no", "yes")), caught
    assert schema.column("positive") == CategoricalColumn("positive", ("false", "true")), caught
    encoder = TableEncoder(schema)
    assert [b.kind for b in encoder.feature_blocks] == ["binary", "binary"]
    clean = validate_table(table, schema)
    assert clean["answered"].tolist() == [v.strip().lower() for v in yes_no]
    assert clean["positive"].tolist() == [v.lower() for v in true_false]


def test_integer_codes_are_numbers_unless_declared_categorical():
    rng = np.random.default_rng(13)
    n = 400
    frame = pd.DataFrame({"stage": rng.integers(1, 5, n), "y": rng.choice(["a", "b"], n)})
    schema, _, _ = estimate(frame, target="y")
    stage = schema.column("stage")
    assert isinstance(stage, NumericColumn) and stage.integer and stage.lower <= 1 and stage.upper >= 4
    schema, _, _ = estimate(frame, target="y", kinds={"stage": "categorical"})
    assert schema.column("stage") == CategoricalColumn("stage", (1, 2, 3, 4))
    encoder = TableEncoder(schema)
    stage = block(encoder, "stage")
    assert stage.kind == "onehot" and stage.stop - stage.start == 4
    decoded = encoder.decode(encoder.encode(frame).X)
    assert decoded["stage"].tolist() == frame["stage"].tolist()


def test_string_target_labels_are_normalised_and_declared_classes_fix_the_order():
    rng = np.random.default_rng(14)
    n = 400
    frame = pd.DataFrame({"age": rng.normal(50, 10, n),
                          "y": rng.choice(["Positive", "negative ", "POSITIVE", " Negative"], n).astype(object)})
    truth = frame["y"].str.strip().str.lower()
    schema, _, count = estimate(frame, target="y")
    assert schema.target_column.categories == ("negative", "positive")  # the distinct labels, normalised, sorted
    np.testing.assert_allclose(schema.class_proportions[1], (truth == "positive").mean(), atol=0.02)
    assert abs(count - n) < 10
    frame.loc[0, "y"] = "unclear"  # outside the declared classes
    schema, _, _ = estimate(frame, target="y", classes=["Positive", "negative"])
    assert schema.target_column.categories == ("Positive", "negative")  # declared order and spelling
    with pytest.warns(UserWarning, match="not among the schema's levels: their records are left out"):
        clean = validate_table(frame, schema)
    assert len(clean) == n - 1 and 0 not in clean.index
    assert set(clean["y"].str.lower()) == {"positive", "negative"}
    encoded = TableEncoder(schema).encode(frame.iloc[1:])
    np.testing.assert_array_equal(encoded.y, np.where(truth.iloc[1:] == "positive", 0, 1))


def test_cli_messy_csv_declared_codes_and_classes(tmp_path, capsys):
    rng = np.random.default_rng(15)
    n = 2000
    frame = pd.DataFrame({"stage": rng.integers(1, 5, n),
                          "sex": rng.choice(["Male", " male", "MALE ", "female", "Female "], n),
                          "outcome": rng.choice(["Positive", "negative ", "POSITIVE", " Negative"], n)})
    frame.loc[7, "outcome"] = "maybe"  # outside --classes: its record is left out
    data, out = tmp_path / "cohort.csv", tmp_path / "synthetic.csv"
    frame.to_csv(data, index=False)
    with pytest.warns(UserWarning, match="target 'outcome' has missing values"):
        code = main(["condense", "--data", str(data), "--target", "outcome", "--categorical", "stage",
                     "--classes", "Positive,negative", "--epsilon", "1", "--steps", "2", "--num-directions", "4",
                     "--holdout", "0", "--seed", "5", "--backend", "host", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    schema = Schema.from_json(str(out.with_suffix(".schema.json")))
    # Declared categorical: the codes are levels (as the CSV's text); undeclared text with stray case: one level.
    assert schema.column("stage") == CategoricalColumn("stage", ("1", "2", "3", "4"))
    assert schema.column("sex") == CategoricalColumn("sex", ("female", "male"))
    assert set(schema.target_column.categories) == {"Positive", "negative"}
    released = pd.read_csv(out, dtype=str)
    assert set(released["outcome"]) == {"Positive", "negative"}  # both classes, spelled as declared
    assert set(released["sex"]) <= {"female", "male"} and set(released["stage"]) <= {"1", "2", "3", "4"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_condenser_keeps_the_declared_classes_of_a_categorical_target():
    rng = np.random.default_rng(16)
    n = 3000
    X = pd.DataFrame({"age": rng.normal(50, 10, n)})
    y = pd.Series(pd.Categorical(rng.choice(["positive", "negative"], n), categories=["positive", "negative"]),
                  name="y")
    condenser = Condenser("tree", epsilon=1.0, steps=2, num_directions=4, backend="host", random_state=16).fit(X, y)
    assert tuple(condenser.schema_.target_column.categories) == ("positive", "negative")


def test_identifier_columns_are_left_out_unless_declared():
    rng = np.random.default_rng(17)
    n = 400
    frame = pd.DataFrame({"rownames": np.arange(1, n + 1), "patient_id": [f"P{i:04d}" for i in range(n)],
                          "age": rng.normal(50, 10, n), "y": rng.choice(["a", "b"], n)})
    schema, caught, _ = estimate(frame, target="y")
    assert schema.column_names == ("age", "y")
    for name in ("rownames", "patient_id"):
        assert any(f"'{name}'" in message and "identifier" in message for message in caught), caught
    schema, caught, _ = estimate(frame, target="y", kinds={"rownames": "integer"})
    assert schema.column_names == ("rownames", "age", "y")
    assert isinstance(schema.column("rownames"), NumericColumn) and schema.column("rownames").integer
    assert not any("'rownames'" in message for message in caught)


def test_unnamed_columns_are_left_out_saying_they_have_no_name(tmp_path):
    # R's write.csv row names and the empty columns a spreadsheet leaves at the right edge.
    frame = csv_frame(tmp_path, "".join([",age,y,\n"] + [f"{i},{40 + i % 30},{'ab'[i % 2]},\n" for i in range(400)]),
                      target="y")
    assert [c for c in frame.columns if c.startswith("Unnamed")] == ["Unnamed: 0", "Unnamed: 3"]
    schema, caught, _ = estimate(frame, target="y")
    assert schema.column_names == ("age", "y")
    for name in ("Unnamed: 0", "Unnamed: 3"):
        assert any(f"'{name}' has no name in the header" in message for message in caught), caught


@pytest.mark.parametrize("name", ["PatientID", "caseId", "Study ID", "pid", "case_no", "CaseNumber", "No.", "ID#",
                                  "Patienten-Nr", "Fallnummer", "N° patient", "num_dossier", "id_paciente",
                                  "NoDossier", "Nº de paciente", "participant number"])
def test_identifier_names_as_people_write_them(name):
    from zodc.data.dp_schema import looks_like_identifier

    assert looks_like_identifier(name)


@pytest.mark.parametrize("name", ["age", "HbA1c", "BMI", "nodes", "number_of_nodes", "valid", "fluid", "grade",
                                  "study", "Patientenalter", "num_children", "no_smoker", "sample_size", "nrec",
                                  "n_cases", "num_cases", "n_patients", "patients_number", "no_record"])
def test_feature_names_are_not_identifiers(name):
    from zodc.data.dp_schema import looks_like_identifier

    assert not looks_like_identifier(name)


def test_a_date_column_is_left_out_with_a_warning_naming_it():
    rng = np.random.default_rng(18)
    n = 400
    days = pd.Timestamp("2010-01-01") + pd.to_timedelta(rng.choice(5000, n, replace=False), unit="D")
    frame = pd.DataFrame({"visit_date": days.strftime("%Y-%m-%d"), "age": rng.normal(50, 10, n),
                          "y": rng.choice(["a", "b"], n)})
    for table in (frame, frame.astype({"visit_date": "string"})):  # object (categorical) and CSV text (auto)
        schema, caught, _ = estimate(table, target="y")
        assert schema.column_names == ("age", "y")
        assert any("'visit_date'" in message and "left out" in message for message in caught), caught


def test_a_rare_class_among_thousands_is_kept_and_condensed():
    rng = np.random.default_rng(19)
    n_common, n_rare = 3000, 60
    y = pd.Series(["common"] * n_common + ["rare"] * n_rare, name="y")
    X = pd.DataFrame({"age": np.r_[rng.normal(50, 10, n_common), rng.normal(65, 10, n_rare)],
                      "sex": rng.choice(["female", "male"], n_common + n_rare)})
    schema, _, _ = estimate(pd.concat([X, y], axis=1), target="y")
    assert schema.target_column.categories == ("common", "rare")
    np.testing.assert_allclose(schema.class_proportions, [n_common / 3060, n_rare / 3060], atol=0.005)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # values clipped to the DP bounds
        condenser = Condenser("tree", epsilon=1.0, steps=2, num_directions=4, backend="host",
                              random_state=19).fit(X, y)
    proportions = condenser.schema_.class_proportions
    assert condenser.schema_.target_column.categories == ("common", "rare")
    # Estimated at epsilon 1: 60 records against a count noise of about a hundred, so the rare class may sit
    # at the floor (1 %, then renormalised: 1/101).
    assert proportions[0] > 0.9 and proportions[1] >= 0.01 / 1.01 - 1e-12
    released = condenser.synthetic_
    assert set(released["y"]) == {"common", "rare"}
    assert (released["y"] == "rare").sum() == (released["y"] == "common").sum()  # rows_per_class of each class
