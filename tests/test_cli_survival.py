"""``zodc condense`` on survival data: bundled cohorts, CSV with --time-col/--event-col, bad input."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from zodc.cli import main
from zodc.data.datasets import load_dataset
from zodc.estimator import synthetic_event_count

FAST = ["--steps", "4", "--num-directions", "4", "--rows", "20", "--time-bins", "6", "--quiet"]


def run_cli(*args):
    """``zodc`` with a fixed secret seed unless the test gives one: CI never draws fresh noise."""
    args = [str(a) for a in args]
    if args and args[0] == "condense" and "--seed" not in args:
        args += ["--seed", "7"]
    return main(args)


@pytest.fixture(scope="module")
def cohort_csv(tmp_path_factory):
    """gbsg2 as a user's CSV with their own column names."""
    frame = load_dataset("gbsg2").frame.rename(columns={"time": "days", "cens": "died"})
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    frame[["age", "tsize", "pnodes", "days", "died"]].to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_bundled_gbsg2_cox_native_writes_table_and_report(tmp_path, capsys):
    out = tmp_path / "synthetic.csv"
    assert run_cli("condense", "--dataset", "gbsg2", "--model", "cox", "--epsilon", "1", "--out", out,
                   "--seed", "3", "--json", *FAST) == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((tmp_path / "synthetic.report.json").read_text())
    owner = json.loads((tmp_path / "synthetic.owner.json").read_text())
    assert printed == {**report, "owner_only": owner}  # the owner's file is printed, never in the report
    assert "utility" not in report and "rows_condensed" not in json.dumps(report)
    report = printed
    assert report["data"]["task"] == "survival" and report["model"] == {"name": "cox", "backend": "native"}
    for reference in ("synthetic", "full_data", "random_subset"):
        assert 0.0 <= report["owner_only"]["utility"][reference]["c_index"] <= 1.0
    assert report["owner_only"]["utility"]["full_data"]["c_index"] > 0.6  # Cox on 480 real gbsg2 rows
    privacy = report["privacy"]
    assert privacy["epsilon"] <= 1.0
    assert [e["name"] for e in privacy["ledger"]["entries"] if e["name"] not in ("record_count", "noise_sampling", "adaptive_steps")] == ["event_rate", "initialisation", "zero_order_steps"]
    assert report["hyperparameters"]["rows"] == 20 and report["hyperparameters"]["loss"] == "discrete_nll"
    assert "rows_per_class" not in report["hyperparameters"]
    # The report says what ran: the survival defaults, not "auto" / None.
    assert report["hyperparameters"]["init"] == "dp_means" and report["hyperparameters"]["learning_rate"] == 0.02
    assert report["hyperparameters"]["init_scale"] == 0.2
    assert report["hyperparameters"]["soft_labels"] is False

    schema = load_dataset("gbsg2").schema
    table = pd.read_csv(out)
    assert list(table.columns) == list(schema.column_names) and len(table) == 20
    assert table["time"].between(schema.time.lower, schema.time.upper).all() and (table["time"] > 0).all()
    assert set(table["cens"]) <= {0, 1} and table["cens"].sum() == report["data"]["events_in_synthetic"]
    assert not (tmp_path / "synthetic.schema.json").exists()

    again = tmp_path / "again.csv"
    assert run_cli("condense", "--dataset", "gbsg2", "--out", again, "--seed", "3", *FAST) == 0  # cox: the default
    pd.testing.assert_frame_equal(table, pd.read_csv(again))


def test_bundled_gbsg2_cox_host_backend(tmp_path, capsys):
    out = tmp_path / "host.csv"
    assert run_cli("condense", "--dataset", "gbsg2", "--backend", "host", "--out", out, "--seed", "1",
                   "--steps", "2", "--num-directions", "2", "--rows", "20", "--quiet", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["backend"] == "host" and "c_index" in report["owner_only"]["utility"]["synthetic"]


@pytest.mark.filterwarnings("ignore:.* outside the schema bounds")  # DP bounds clip sparse tails
@pytest.mark.slow
def test_csv_without_schema_estimates_one_and_the_event_rate(tmp_path, capsys, cohort_csv):
    out = tmp_path / "out.csv"
    assert run_cli("condense", "--data", cohort_csv, "--time-col", "days", "--event-col", "died", "--model", "cox",
                   "--epsilon", "4", "--out", out, "--report", tmp_path / "report.json", "--json", *FAST) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["schema"] == "estimated with DP"
    assert [e["name"] for e in report["privacy"]["ledger"]["entries"]] == ["schema", "schema", "initialisation",
                                                                        "adaptive_steps", "zero_order_steps",
                                                                        "noise_sampling"]
    schema = json.loads((tmp_path / "out.schema.json").read_text())
    assert schema["time"]["name"] == "days" and schema["event"] == "died" and 0 < schema["event_rate"] < 1
    table = pd.read_csv(out)
    assert list(table.columns) == ["age", "tsize", "pnodes", "days", "died"]
    assert table["died"].sum() == synthetic_event_count(schema["event_rate"], 20)
    assert (table["days"] >= schema["time"]["lower"]).all() and (table["days"] <= schema["time"]["upper"]).all()


def _assert_refused(tmp_path, capsys, *args, message):
    before = set(os.listdir(tmp_path))
    assert run_cli("condense", *args, "--out", tmp_path / "out.csv", "--quiet") == 2
    assert message in capsys.readouterr().err
    assert set(os.listdir(tmp_path)) == before  # nothing written


def test_survival_records_without_a_usable_time_or_event_are_left_out_not_refused(tmp_path, capsys):
    # A refusal here would be decided by one record: each such record is left out, alone.
    data = load_dataset("gbsg2")
    data.schema.to_json(tmp_path / "schema.json")
    bad = tmp_path / "bad.csv"
    frame = data.frame.assign(cens=data.frame["cens"].where(data.frame.index != 2, 2),
                              time=data.frame["time"].astype(float).where(data.frame.index != 5, np.nan))
    frame.to_csv(bad, index=False)
    with pytest.warns(UserWarning, match="without a usable time or event"):
        assert run_cli("condense", "--data", bad, "--schema", tmp_path / "schema.json", "--holdout", "0",
                       "--out", tmp_path / "out.csv", *FAST) == 0
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["privacy"]["epsilon"] <= 1.0 and (tmp_path / "out.csv").exists()


def test_mismatched_flags_are_refused(tmp_path, capsys, cohort_csv):
    _assert_refused(tmp_path, capsys, "--dataset", "gbsg2", "--model", "tree",
                    message="'tree' is a classification model but the data are survival")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--model", "cox",
                    message="'cox' is a survival model but the data are classification")
    _assert_refused(tmp_path, capsys, "--dataset", "gbsg2", "--rows-per-class", "5", message="--rows-per-class is for classification")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--rows", "20", message="--rows is for survival")
    _assert_refused(tmp_path, capsys, "--dataset", "gbsg2", "--loss", "cross_entropy", message="classification loss")
    _assert_refused(tmp_path, capsys, "--data", cohort_csv, "--model", "cox", message="--time-col and --event-col are required")
    _assert_refused(tmp_path, capsys, "--data", cohort_csv, "--time-col", "days", "--event-col", "dead",
                    message="event column 'dead' not found")
    _assert_refused(tmp_path, capsys, "--data", cohort_csv, "--target", "died", "--time-col", "days",
                    message="not both")
    _assert_refused(tmp_path, capsys, "--dataset", "gbsg2", "--event-value", "2", message="--event-value goes with --data")
    _assert_refused(tmp_path, capsys, "--data", cohort_csv, "--target", "died", "--event-value", "2",
                    message="--event-value is for survival")


def test_soft_events_write_weighted_copies_that_the_utility_report_uses(tmp_path, capsys):

    from zodc.data.transform import TableEncoder
    from zodc.evaluate.survival import concordance_index
    from zodc.models.survival import LifelinesCoxPH

    out = tmp_path / "soft.csv"
    assert run_cli("condense", "--dataset", "gbsg2", "--soft-labels", "--seed", "3", "--out", out, "--json", *FAST) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["hyperparameters"]["soft_labels"] is True
    table = pd.read_csv(out)
    assert len(table) == 40 and list(table.columns)[-1] == "sample_weight"
    np.testing.assert_allclose(table["sample_weight"].to_numpy().reshape(2, 20).sum(axis=0), 1.0, rtol=1e-9)
    assert report["data"]["event_weight_in_synthetic"] == pytest.approx(table["sample_weight"][20:].sum(), rel=1e-6)
    # The reported synthetic C-index is the weighted fit's (split and model as the CLI's), on the
    # encoded columns that vary in the table (a tgrade level absent from 20 rows is left out).
    data = load_dataset("gbsg2")
    from zodc.cli import holdout_key, holdout_mask

    test = data.frame.loc[holdout_mask(data.frame, 0.3, holdout_key(3))]
    encoder = TableEncoder(data.schema)
    synthetic, real = encoder.encode(table.drop(columns=["sample_weight"])), encoder.encode(test)
    varying = synthetic.X.max(axis=0) > synthetic.X.min(axis=0)
    assert report["owner_only"]["utility"]["dropped_constant_columns"] == (~varying).sum()
    assert report["owner_only"]["utility"]["synthetic"]["fit_failed"] is False
    model = LifelinesCoxPH(penalizer=0.1).fit(synthetic.X[:, varying], synthetic.time, synthetic.event,
                                             sample_weight=table["sample_weight"].to_numpy())
    expected = concordance_index(np.asarray(real.time, float), model.predict_risk(real.X[:, varying]),
                                 np.asarray(real.event))
    assert report["owner_only"]["utility"]["synthetic"]["c_index"] == pytest.approx(expected)


@pytest.mark.parametrize("censored, event, event_value", [
    (1, 2, "2"), ("alive", " Dead", "DEAD"),  # R's 1 = censored / 2 = dead, other words: --event-value
    ("Alive", " DEAD", None), ("lebend", "Verstorben", None), ("censored", "event", None),  # EVENT_WORDS
])
def test_events_coded_otherwise_give_the_0_1_run(tmp_path, capsys, censored, event, event_value):
    # With --event-value, or for a vital status in words (zodc.data.io.EVENT_WORDS, a fixed public
    # vocabulary read record by record) without it, the run is the 0 / 1 run of the same seed, table
    # for table, and no record is left out (before, every event was).
    data = load_dataset("gbsg2")
    data.schema.to_json(tmp_path / "schema.json")
    coded = tmp_path / "coded.csv"
    data.frame.assign(cens=data.frame["cens"].map({0: censored, 1: event})).to_csv(coded, index=False)
    plain = tmp_path / "plain.csv"
    data.frame.to_csv(plain, index=False)
    common = ["--schema", tmp_path / "schema.json", "--holdout", "0", *FAST]
    assert run_cli("condense", "--data", plain, "--out", tmp_path / "plain_out.csv", *common) == 0
    capsys.readouterr()
    declared = [] if event_value is None else ["--event-value", event_value]
    assert run_cli("condense", "--data", coded, *declared, "--out", tmp_path / "coded_out.csv", *common) == 0
    assert "left out" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "coded_out.csv"), pd.read_csv(tmp_path / "plain_out.csv"))


def test_logical_events_and_a_cohort_without_events(tmp_path, capsys):
    # R writes a logical status as TRUE / FALSE: read as 1 / 0 without --event-value, the same table
    # as the 0 / 1 run of the same seed. A held-out side without any event cannot be scored: the
    # release is written anyway (it must not depend on that), and the owner's file says why.
    data = load_dataset("gbsg2")
    data.schema.to_json(tmp_path / "schema.json")
    logical = tmp_path / "logical.csv"
    data.frame.assign(cens=data.frame["cens"].map({0: "FALSE", 1: "true"})).to_csv(logical, index=False)
    plain = tmp_path / "plain.csv"
    data.frame.to_csv(plain, index=False)
    common = ["--schema", tmp_path / "schema.json", *FAST]
    assert run_cli("condense", "--data", plain, "--out", tmp_path / "plain_out.csv", *common) == 0
    assert run_cli("condense", "--data", logical, "--out", tmp_path / "logical_out.csv", *common) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "logical_out.csv"), pd.read_csv(tmp_path / "plain_out.csv"))
    capsys.readouterr()
    none = tmp_path / "none.csv"
    data.frame.assign(cens=0).to_csv(none, index=False)
    assert run_cli("condense", "--data", none, "--out", tmp_path / "none_out.csv", *common) == 0
    printed = capsys.readouterr().out
    assert "Utility: not computed on the real records: event column 'cens' has no events" in printed
    owner = json.loads((tmp_path / "none_out.owner.json").read_text())
    assert owner["utility"] is None and "no events" in owner["utility_not_computed"]
    assert len(pd.read_csv(tmp_path / "none_out.csv")) > 0
