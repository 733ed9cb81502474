"""`zodc schema draft` / `zodc schema check`: a schema the owner can review (draft -> review -> condense)."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from zodc.cli import main
from zodc.data.io import apply_declared_kinds, read_table
from zodc.data.schema import Schema
from zodc.data.validation import validate_table
from zodc.errors import SchemaError
from zodc.schema_tool import check_table

PRIVATE = "zz-private-7731"  # a level held by one record: never printed without --diagnostics


def run_cli(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    rng = np.random.default_rng(20240522)
    n = 3000
    frame = pd.DataFrame({
        "patient_id": np.arange(n),
        "age": rng.integers(20, 90, n),
        "bmi": np.round(rng.normal(27.0, 4.0, n), 1),
        "sex": rng.choice(["F", "M"], n),
        "site": rng.choice(["north", "south", "east"], n),
        "y": rng.choice(["no", "yes"], n, p=[0.7, 0.3]),
    })
    frame["bmi"] = frame["bmi"].astype(object)
    frame.loc[rng.choice(n, 150, replace=False), "bmi"] = np.nan
    frame.loc[5, "site"] = PRIVATE
    path = tmp_path_factory.mktemp("schema_tool") / "cohort.csv"
    frame.to_csv(path, index=False)
    return path


def test_dp_draft_is_a_loadable_schema_that_says_dp(cohort, tmp_path, capsys):
    out = tmp_path / "cohort.schema.json"
    assert run_cli("schema", "draft", "--data", cohort, "--target", "y", "--out", out, "--integer", "age",
                   "--seed", 11) == 0
    captured = capsys.readouterr()
    document = json.loads(out.read_text())
    schema = Schema.from_json(out)  # the origin notes are ignored
    assert schema.task == "classification" and schema.target == "y"
    assert "patient_id" not in schema.column_names  # an identifier, by its name
    source = document["source"]
    assert "DP draft" in source and "epsilon=0.1" in source and "delta=1e-05" in source
    origins = {entry["name"]: entry["origin"] for entry in document["columns"]}
    assert set(origins) == set(schema.column_names)
    assert origins["age"]["kind"] == "kind declared (--integer)" and schema.column("age").integer
    assert "bounds estimated with DP (epsilon=0.1, delta=1e-05" in origins["age"]["bounds"]
    assert "count it against the cohort's total" in origins["bmi"]["bounds"]
    assert origins["bmi"]["kind"].startswith("kind decided with DP")
    assert origins["site"]["categories"].startswith("levels estimated with DP (thresholded")
    assert "taken as public - check them" in origins["y"]["categories"]
    assert set(schema.column("site").categories) <= {"north", "south", "east", "(other)"}
    assert PRIVATE not in out.read_text() and PRIVATE not in captured.out + captured.err
    assert "ε = 0.1, δ = 1e-05" in captured.out and "review before use" in captured.out


def test_no_dp_draft_leaves_bounds_to_fill_in_and_is_refused_until_then(cohort, tmp_path, capsys):
    out = tmp_path / "form.schema.json"
    assert run_cli("schema", "draft", "--data", cohort, "--target", "y", "--out", out, "--no-dp") == 0
    printed = capsys.readouterr().out
    assert PRIVATE not in printed and "NOT PRIVATE until reviewed" in printed
    document = json.loads(out.read_text())
    columns = {entry["name"]: entry for entry in document["columns"]}
    assert set(columns) == {"age", "bmi", "sex", "site", "y"}
    for name in ("age", "bmi"):
        assert columns[name]["kind"] == "numeric" and columns[name]["lower"] is None and columns[name]["upper"] is None
        assert columns[name]["origin"]["bounds"].startswith("fill from your data dictionary")
    assert columns["age"]["integer"] and not columns["bmi"]["integer"] and columns["bmi"]["missing"]
    assert PRIVATE in columns["site"]["categories"]  # read from the data: the owner deletes it
    site_origin = columns["site"]["origin"]["categories"]
    assert "WITHOUT privacy" in site_origin and "'(other)'" in site_origin
    assert "WITHOUT privacy" in document["source"] and "NOT private until reviewed" in document["source"]

    with pytest.raises(SchemaError, match="not filled in"):
        Schema.from_json(out)
    assert run_cli("condense", "--data", cohort, "--schema", out, "--out", tmp_path / "synthetic.csv") == 2
    assert "not filled in" in capsys.readouterr().err
    assert run_cli("schema", "check", "--schema", out, "--data", cohort) == 2
    assert "not filled in" in capsys.readouterr().err and not (tmp_path / "synthetic.csv").exists()

    # The owner's review: bounds from the data dictionary, only public levels, "(other)" for the rest.
    columns["age"].update(lower=18, upper=100)
    columns["bmi"].update(lower=10, upper=70)
    columns["site"]["categories"] = ["north", "south", "east", "(other)"]
    document["source"] = "bounds from the study's data dictionary; sites from its protocol"
    out.write_text(json.dumps(document))
    schema = Schema.from_json(out)
    assert schema.column("age").lower == 18 and schema.column("bmi").missing
    assert run_cli("schema", "check", "--schema", out, "--data", cohort) == 1  # the private site goes to (other)
    printed = capsys.readouterr().out
    assert "mapped to '(other)'" in printed and PRIVATE not in printed
    assert "clipped up" not in printed and "clipped down" not in printed  # all within the filled-in bounds


def test_draft_refuses_to_overwrite_unless_forced(cohort, tmp_path, capsys):
    out = tmp_path / "existing.json"
    out.write_text("keep me")
    assert run_cli("schema", "draft", "--data", cohort, "--target", "y", "--out", out, "--no-dp") == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert run_cli("schema", "draft", "--data", cohort, "--target", "y", "--out", cohort, "--no-dp", "--force") == 2
    assert "is the --data file" in capsys.readouterr().err
    assert run_cli("schema", "draft", "--data", cohort, "--target", "y", "--out", out, "--no-dp", "--force") == 0
    assert json.loads(out.read_text())["target"] == "y"
    # Options that contradict each other are refused before anything is read or written.
    for extra in (["--no-dp", "--epsilon", "1"], ["--epsilon", "inf"], ["--delta", "2"]):
        assert run_cli("schema", "draft", "--data", cohort, "--target", "y", "--out", tmp_path / "x.json", *extra) == 2
    assert not (tmp_path / "x.json").exists()
    assert run_cli("schema", "draft", "--data", cohort, "--target", "nope", "--out", tmp_path / "x.json",
                   "--no-dp") == 2


def _schema(**changes):
    document = {
        "name": "cohort", "task": "classification", "target": "y", "source": "test schema",
        "columns": [
            {"kind": "numeric", "name": "age", "lower": 30, "upper": 80, "integer": True},
            {"kind": "numeric", "name": "bmi", "lower": 0, "upper": 100},
            {"kind": "categorical", "name": "sex", "categories": ["f", "m"]},
            {"kind": "categorical", "name": "site", "categories": ["north", "south", "east"]},
            {"kind": "categorical", "name": "y", "categories": ["no", "yes"]},
        ],
    }
    document.update(changes)
    return document


def test_check_reports_clipping_and_unknown_levels_without_values(cohort, tmp_path, capsys):
    path = tmp_path / "narrow.json"
    path.write_text(json.dumps(_schema()))
    assert run_cli("schema", "check", "--schema", path, "--data", cohort) == 1
    printed = capsys.readouterr().out
    assert "FOR THE DATA OWNER'S EYES ONLY" in printed
    assert "some rows: below the lower bound 30, clipped up to it" in printed
    assert "some rows: above the upper bound 80, clipped down to it" in printed
    assert "some rows: not among the levels, encoded as no level" in printed
    assert "some rows: missing while `missing: false`" in printed  # bmi's empty cells
    assert "sex" in printed and "ok (none clipped" in printed
    assert "columns of the table not in the schema (ignored): patient_id" in printed
    assert "records left out (class missing or unknown): none" in printed
    assert PRIVATE not in printed and "row(s)" not in printed and "lowest value" not in printed

    assert run_cli("schema", "check", "--schema", path, "--data", cohort, "--diagnostics") == 1
    shown = capsys.readouterr().out
    frame = pd.read_csv(cohort)
    below = int((frame["age"] < 30).sum())
    assert f"{below} row(s) ({100 * below / 3000:.3g} %): below the lower bound 30" in shown
    assert "150 row(s) (5 %): missing while `missing: false`" in shown
    assert f"1 row(s) ({100 / 3000:.3g} %): not among the levels" in shown and PRIVATE in shown
    assert "lowest value 20" in shown and "3000 row(s) in the table" in shown


def test_check_exit_zero_when_nothing_would_change(cohort, tmp_path, capsys):
    document = _schema()
    document["columns"][0].update(lower=0, upper=120)
    document["columns"][1]["missing"] = True
    document["columns"][3]["categories"] = ["north", "south", "east", "(other)"]
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(document))
    assert run_cli("schema", "check", "--schema", path, "--data", cohort) == 1  # the private site -> (other)
    capsys.readouterr()
    keep = pd.read_csv(cohort)
    keep = keep[keep["site"] != PRIVATE]
    clean = tmp_path / "clean.csv"
    keep.to_csv(clean, index=False)
    assert run_cli("schema", "check", "--schema", path, "--data", clean) == 0
    printed = capsys.readouterr().out
    assert "nothing would be clipped, mapped or left out (exit status 0)" in printed
    assert "some rows: missing, learned and released as missing" in printed  # allowed: not a change


def test_check_errors_exit_two(cohort, tmp_path, capsys):
    missing_column = _schema()
    missing_column["columns"].insert(0, {"kind": "numeric", "name": "weight", "lower": 30, "upper": 200})
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(missing_column))
    assert run_cli("schema", "check", "--schema", path, "--data", cohort) == 2
    assert "['weight']" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{not json")
    assert run_cli("schema", "check", "--schema", tmp_path / "broken.json", "--data", cohort) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_check_counts_the_records_validate_table_leaves_out(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame({"age": rng.integers(30, 80, n).astype(object), "days": rng.integers(1, 900, n).astype(object),
                          "died": rng.choice([0, 1], n).astype(object)})
    frame.loc[[3, 7], "died"] = ["x", 2]
    frame.loc[[4, 8, 11], "days"] = [None, "soon", -5]
    frame.loc[20, "age"] = "old"
    path = tmp_path / "surv.csv"
    frame.to_csv(path, index=False)
    schema = Schema.from_json({"name": "s", "task": "survival", "source": "test", "event": "died",
                               "time": {"name": "days", "lower": 1, "upper": 1000, "integer": True},
                               "columns": [{"kind": "numeric", "name": "age", "lower": 18, "upper": 100}]})
    table = read_table(path, as_text=True)
    result = check_table(table, schema)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        typed = apply_declared_kinds(table, schema=schema, time="days", event="died")
        kept = validate_table(typed, schema, require_variation=False)
    assert set(np.flatnonzero(result.left_out)) == set(range(n)) - set(kept.index) == {3, 4, 7, 8}
    found = {f.what.split(",")[0]: f.count for f in result.findings if f.applies}
    assert found["event missing or not 0/1"] == 2 and found["no usable time (missing or not a number)"] == 2
    assert found["below the lower bound 1"] == 1 and found["not a number"] == 1  # the time -5; the age "old"


def test_a_column_declared_with_two_kinds_is_refused_with_or_without_dp(tmp_path, capsys):
    cohort = tmp_path / "c.csv"
    pd.DataFrame({"a": [1, 2, 3, 4], "y": ["n", "y", "n", "y"]}).to_csv(cohort, index=False)
    for extra in (["--no-dp"], ["--seed", "3"]):
        assert run_cli("schema", "draft", "--data", cohort, "--target", "y", "--out", tmp_path / "d.json",
                       "--categorical", "a", "--integer", "a", *extra) == 2
        assert "declared with two kinds" in capsys.readouterr().err
        assert not (tmp_path / "d.json").exists()


def test_a_survival_draft_reads_events_coded_otherwise_with_event_value(tmp_path, capsys):
    rng = np.random.default_rng(11)
    n = 3000
    frame = pd.DataFrame({"age": rng.integers(20, 90, n), "days": rng.integers(1, 2000, n),
                          "status": np.where(rng.random(n) < 0.3, 2, 1)})  # R's coding: 1 censored, 2 dead
    cohort = tmp_path / "r_coded.csv"
    frame.to_csv(cohort, index=False)
    out = tmp_path / "draft.json"
    assert run_cli("schema", "draft", "--data", cohort, "--time-col", "days", "--event-col", "status",
                   "--event-value", "2", "--epsilon", "1", "--seed", 3, "--out", out) == 0
    assert abs(Schema.from_json(out).event_rate - 0.3) < 0.05
    assert run_cli("schema", "draft", "--data", cohort, "--target", "status", "--event-value", "2",
                   "--out", tmp_path / "x.json") == 2
    assert "--event-value is for survival" in capsys.readouterr().err


def test_the_owners_tools_name_r_coding_and_read_event_words_as_condense_does(tmp_path, capsys):
    # R's coding (1 = censored, 2 = event): `schema check` and `schema draft --no-dp` (which read the
    # data without noise, for the owner) say so and name --event-value 2; with it, nothing is left
    # out. Events in words ("dead" / "alive") are read as condense reads them, not as left out.
    rng = np.random.default_rng(12)
    n = 200
    frame = pd.DataFrame({"age": rng.integers(30, 80, n), "days": rng.integers(1, 900, n),
                          "status": np.where(rng.random(n) < 0.3, 2, 1)})
    r_coded, words = tmp_path / "r.csv", tmp_path / "words.csv"
    frame.to_csv(r_coded, index=False)
    frame.assign(status=frame["status"].map({2: "Dead", 1: "alive"})).to_csv(words, index=False)
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"name": "s", "task": "survival", "source": "test", "event": "status",
                                  "time": {"name": "days", "lower": 1, "upper": 1000, "integer": True},
                                  "columns": [{"kind": "numeric", "name": "age", "lower": 18, "upper": 100}]}))
    assert run_cli("schema", "check", "--schema", schema, "--data", r_coded) == 1
    assert "R's coding (1 = censored, 2 = event)" in capsys.readouterr().out
    assert run_cli("schema", "check", "--schema", schema, "--data", r_coded, "--event-value", "2") == 0
    assert run_cli("schema", "check", "--schema", schema, "--data", words) == 0
    out = capsys.readouterr().out
    assert "R's coding" not in out and "records left out (no usable time or event): none" in out
    assert run_cli("schema", "draft", "--data", r_coded, "--time-col", "days", "--event-col", "status", "--no-dp",
                   "--out", tmp_path / "d.json") == 0
    assert "give --event-value 2 (to this draft and to condense)" in capsys.readouterr().out
    assert run_cli("schema", "draft", "--data", r_coded, "--time-col", "days", "--event-col", "status", "--no-dp",
                   "--event-value", "2", "--out", tmp_path / "d2.json") == 0
    assert "R's coding" not in capsys.readouterr().out
