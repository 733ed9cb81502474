import json

import pytest

from zodc.data import CategoricalColumn, NumericColumn, Schema, load_schema
from zodc.errors import DataError, SchemaError


def small_schema(**changes):
    fields = dict(
        name="toy",
        task="classification",
        columns=(
            NumericColumn("age", 18, 100, integer=True),
            CategoricalColumn("sex", ("male", "female")),
            NumericColumn("dose", 0.0, 2.5),
            CategoricalColumn("grade", (1, 2, 3)),
            CategoricalColumn("outcome", ("no", "yes")),
        ),
        target="outcome",
        class_proportions=(0.7, 0.3),
        source="made up for the tests",
    )
    fields.update(changes)
    return Schema(**fields)


def survival_schema(**changes):
    fields = dict(
        name="toy_survival",
        task="survival",
        columns=(NumericColumn("age", 18, 100, integer=True), CategoricalColumn("stage", ("I", "II", "III"))),
        time=NumericColumn("time", 1, 3650, integer=True),
        event="death",
        event_rate=0.4,
        source="made up for the tests",
    )
    fields.update(changes)
    return Schema(**fields)


@pytest.mark.parametrize("make", [small_schema, survival_schema])
def test_json_round_trip_file_and_dict(tmp_path, make):
    schema = make()
    path = tmp_path / "schema.json"
    schema.to_json(path)
    assert Schema.from_json(path) == schema
    assert Schema.from_json(json.loads(path.read_text())) == schema
    assert Schema.from_json(schema.to_dict()) == schema
    assert [p.name for p in tmp_path.iterdir()] == ["schema.json"]


def test_views():
    schema = small_schema()
    assert schema.feature_names == ("age", "sex", "dose", "grade")
    assert schema.column_names == ("age", "sex", "dose", "grade", "outcome")
    assert schema.n_classes == 2
    assert survival_schema().column_names == ("age", "stage", "time", "death")
    with pytest.raises(SchemaError, match="no column 'nope'"):
        schema.column("nope")


@pytest.mark.parametrize("name", ["breast_cancer", "gbsg2", "lung"])
def test_bundled_schema_round_trip(tmp_path, name):
    schema = load_schema(name)
    schema.to_json(tmp_path / "s.json")
    assert Schema.from_json(tmp_path / "s.json") == schema


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: NumericColumn("age", 10, 10), "column 'age'.*lower.*< `upper`"),
        (lambda: NumericColumn("age", float("nan"), 10), "column 'age'.*finite"),
        (lambda: NumericColumn("age", 0.2, 0.8, integer=True), "column 'age'.*no whole number"),
        (lambda: CategoricalColumn("sex", ()), "column 'sex'.*at least 1 category"),
        (lambda: CategoricalColumn("sex", ("m", "m")), "column 'sex'.*duplicate category 'm'"),
        (lambda: CategoricalColumn("sex", "mf"), "column 'sex'.*list of levels"),
        (lambda: small_schema(columns=small_schema().columns + (NumericColumn("age", 0, 1),)),
         r"duplicate column name\(s\) \['age'\]"),
        (lambda: small_schema(target="dose"), "target column 'dose' must be .* categorical"),
        (lambda: small_schema(target=None), "needs a `target`"),
        (lambda: small_schema(class_proportions=(0.5, 0.6)), "class_proportions"),
        (lambda: small_schema(class_proportions=(1.0,)), "one value per class"),
        (lambda: small_schema(task="regression"), "task"),
        (lambda: small_schema(source=""), "source"),
        (lambda: survival_schema(time=NumericColumn("time", 0, 10)), "time column 'time' needs lower > 0"),
        (lambda: survival_schema(event=None), "needs `time` and `event`"),
        (lambda: survival_schema(event_rate=1.5), "event_rate"),
    ],
)
def test_invalid_schema_raises_naming_the_problem(build, message):
    with pytest.raises(SchemaError, match=message):
        build()


def test_schema_error_is_a_data_error_and_value_error():
    with pytest.raises(DataError):
        NumericColumn("x", 1, 0)
    with pytest.raises(ValueError):
        NumericColumn("x", 1, 0)


def test_from_json_reports_bad_files(tmp_path):
    with pytest.raises(SchemaError, match="not found"):
        Schema.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        Schema.from_json(bad)
    data = small_schema().to_dict()
    data["columns"][0]["kind"] = "text"
    with pytest.raises(SchemaError, match="column 'age'.*kind"):
        Schema.from_json(data)
    data = small_schema().to_dict()
    del data["columns"][2]["upper"]
    with pytest.raises(SchemaError, match="column 'dose'.*missing field 'upper'"):
        Schema.from_json(data)
    data = small_schema().to_dict()
    data["colour"] = "red"
    with pytest.raises(SchemaError, match="unknown field"):
        Schema.from_json(data)
