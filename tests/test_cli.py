import json
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from zodc.cli import main
from zodc.data.datasets import load_dataset

FAST = ["--steps", "8", "--num-directions", "4", "--rows-per-class", "3", "--backend", "host", "--quiet"]


def run_cli(*args):
    """``zodc`` with a fixed secret seed unless the test gives one: CI never draws fresh noise."""
    args = [str(a) for a in args]
    if args and args[0] == "condense" and "--seed" not in args:
        args += ["--seed", "7"]
    return main(args)


def test_datasets_lists_the_bundled_default(capsys):
    assert run_cli("datasets") == 0
    out = capsys.readouterr().out
    assert "breast_cancer" in out and "gbsg2" in out


def test_version_prints_the_installed_version(capsys):
    import zodc

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"zodc {zodc.__version__}"


def test_models_lists_presets(capsys):
    assert run_cli("models") == 0
    assert "tree" in capsys.readouterr().out


def test_condense_bundled_dataset_writes_table_and_report(tmp_path, capsys):
    out = tmp_path / "synthetic.csv"
    assert run_cli("condense", "--dataset", "breast_cancer", "--model", "tree", "--epsilon", "1", "--out", out, "--seed", "3",
                   "--json", *FAST) == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((tmp_path / "synthetic.report.json").read_text())
    owner = json.loads((tmp_path / "synthetic.owner.json").read_text())
    assert printed == {**report, "owner_only": owner}  # the owner's file is printed, never in the report
    assert "utility" not in report and "rows_condensed" not in json.dumps(report)
    report = printed
    privacy = report["privacy"]
    for key in ("epsilon", "delta", "noise_multiplier", "sampling_probability", "steps"):
        assert key in privacy
    assert privacy["epsilon"] <= 1.0 and privacy["steps"] == 8 and privacy["delta"] == 1e-5
    for reference in ("synthetic", "full_data", "random_subset"):
        assert 0.0 <= report["owner_only"]["utility"][reference]["auroc"] <= 1.0
    assert report["owner_only"]["utility"]["full_data"]["auroc"] > 0.85  # a depth-4 tree on 398 real rows
    table = pd.read_csv(out)
    assert table.shape == (6, 31) and set(table["diagnosis"]) == {"malignant", "benign"}
    assert not (tmp_path / "synthetic.schema.json").exists()  # the bundled schema is public

    again = tmp_path / "again.csv"
    assert run_cli("condense", "--dataset", "breast_cancer", "--out", again, "--seed", "3", *FAST) == 0
    pd.testing.assert_frame_equal(table, pd.read_csv(again))
    # Without --json: a few lines a person reads (the full JSON is in the report file).
    summary = capsys.readouterr().out
    assert len(summary.splitlines()) <= 12 and not summary.lstrip().startswith("{")
    assert float(re.search(r"ε = ([0-9.]+)", summary).group(1)) == pytest.approx(privacy["epsilon"], abs=5e-4)
    assert "δ = 1e-05" in summary
    assert "Released: 6 synthetic rows x 31 columns" in summary and "owner only" in summary
    assert f"synthetic {report['owner_only']['utility']['synthetic']['auroc']:.3f}" in summary
    assert f"full real data {report['owner_only']['utility']['full_data']['auroc']:.3f}" in summary
    assert str(tmp_path / "again.report.json") in summary


@pytest.mark.slow
def test_init_options_reach_the_condenser_and_its_ledger(tmp_path, capsys):
    names = {}
    for init, kind, subspace in (("dp_means", "orthogonal", 12), ("noise", "rows", None)):
        out = tmp_path / f"{init}.csv"
        extra = [] if subspace is None else ["--subspace", subspace]
        assert run_cli("condense", "--dataset", "breast_cancer", "--init", init, "--init-share", "0.4",
                       "--directions", kind, *extra, "--out", out, "--json", *FAST) == 0
        report = json.loads(capsys.readouterr().out)
        names[init] = [e["name"] for e in report["privacy"]["ledger"]["entries"]
                       if e["name"] not in ("record_count", "noise_sampling", "adaptive_steps")]
        assert report["privacy"]["epsilon"] <= 1.0
        assert report["hyperparameters"]["directions"] == report["privacy"]["directions"] == kind
        assert report["hyperparameters"]["subspace"] == report["privacy"]["subspace"] == subspace
    assert names == {"dp_means": ["initialisation", "zero_order_steps"], "noise": ["zero_order_steps"]}
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--init-share", "1.5", message="init_share")
    out = tmp_path / "centred.csv"
    assert run_cli("condense", "--dataset", "breast_cancer", "--init-centre", "0.2", "--init-clip", "0.3",
                   "--out", out, "--json", *FAST) == 0
    report = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in report["privacy"]["ledger"]["entries"]] == [
        "record_count", "initialisation_centre", "initialisation", "adaptive_steps", "zero_order_steps",
        "noise_sampling"]
    assert report["hyperparameters"]["start"]["centre"] == 0.2 and report["privacy"]["epsilon"] <= 1.0
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--init-centre", "1", message="init_centre")


def test_condense_csv_without_schema_writes_the_estimated_schema(tmp_path, capsys):
    data = load_dataset("breast_cancer").frame[["mean radius", "mean texture", "diagnosis"]]
    source = tmp_path / "cohort.csv"
    data.to_csv(source, index=False)
    out = tmp_path / "out.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = run_cli("condense", "--data", source, "--target", "diagnosis", "--epsilon", "8", "--out", out, "--json",
                       *FAST)
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["schema"] == "estimated with DP"
    assert [e["name"] for e in report["privacy"]["ledger"]["entries"]][-2:] == ["zero_order_steps", "noise_sampling"]
    schema = json.loads((tmp_path / "out.schema.json").read_text())
    assert {c["name"] for c in schema["columns"]} == {"mean radius", "mean texture", "diagnosis"}
    for column in schema["columns"]:  # the DP bounds hold the bulk: at most a thin tail clipped at each end
        if column["kind"] == "numeric":
            values = data[column["name"]]
            assert ((values < column["lower"]) | (values > column["upper"])).mean() < 0.05, column
            assert not column["integer"]  # two-decimal measurements: not whole numbers


def _assert_refused(tmp_path, capsys, *args, message):
    before = set(os.listdir(tmp_path))
    assert run_cli("condense", *args, "--out", tmp_path / "out.csv", *FAST) == 2
    assert message in capsys.readouterr().err
    assert set(os.listdir(tmp_path)) == before  # nothing written


def test_bad_inputs_write_nothing(tmp_path, capsys):
    cohort = load_dataset("breast_cancer").frame[["mean radius", "mean texture", "diagnosis"]]
    good = tmp_path / "good.csv"
    cohort.to_csv(good, index=False)
    _assert_refused(tmp_path, capsys, "--data", tmp_path / "missing.csv", "--target", "diagnosis", message="missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _assert_refused(tmp_path, capsys, "--data", empty, "--target", "diagnosis", message="empty")
    with_nan = cohort.copy()
    with_nan.loc[5, "mean texture"] = np.nan
    nan_file = tmp_path / "nan.csv"
    with_nan.to_csv(nan_file, index=False)
    _assert_refused(tmp_path, capsys, "--data", good, "--target", "outcome", message="'outcome' not found")
    _assert_refused(tmp_path, capsys, "--data", good, "--target", "diagnosis", "--model", "svm", message="`model` must be one of")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--epsilon", "0", message="`epsilon` must be > 0")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--delta", "1", message="`delta` must be in (0, 1)")
    _assert_refused(tmp_path, capsys, "--dataset", "no_such_data", message="no_such_data")
    single = cohort.assign(diagnosis="benign")
    single_file = tmp_path / "single.csv"
    single.to_csv(single_file, index=False)
    _assert_refused(tmp_path, capsys, "--data", single_file, "--target", "diagnosis", "--holdout", "0",
                    message="1 distinct labels")  # the class set is public: the task, not a record


def test_missing_output_directory_is_refused_before_any_work(tmp_path, capsys):
    code = run_cli("condense", "--dataset", "breast_cancer", "--out", tmp_path / "nope" / "out.csv", *FAST)
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_the_preprocessing_share_is_a_number_or_auto(capsys):
    from zodc.cli import build_parser

    parse = lambda *extra: build_parser().parse_args(["condense", "--dataset", "breast_cancer", *extra])
    assert parse().preprocessing_share == "auto" and parse("--preprocessing-share", "0.3").preprocessing_share == 0.3
    with pytest.raises(SystemExit) as exit_info:
        parse("--preprocessing-share", "lots")
    assert exit_info.value.code == 2 and "expected a number in (0, 1) or 'auto'. Got 'lots'" in capsys.readouterr().err


def test_bench_is_not_a_zodc_command(capsys):
    # Benchmarks live outside the package (python -m benchmarks.runner; tests/benchmarks/).
    with pytest.raises(SystemExit) as exit_info:
        run_cli("bench", "utility")
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_soft_labels_write_a_weight_column_that_the_utility_report_uses(tmp_path, capsys):
    from sklearn.tree import DecisionTreeClassifier

    from zodc.data.datasets import load_dataset
    from zodc.evaluate.utility import auroc

    out = tmp_path / "soft.csv"
    assert run_cli("condense", "--dataset", "breast_cancer", "--soft-labels", "--soft-label-start", "0.7",
                   "--seed", "1", "--out", out, "--json", *FAST) == 0
    report = json.loads(capsys.readouterr().out)
    # Read back exactly (pandas' default float parser may miss the written value by an ulp, and an ulp
    # of a weight can break a tie between two splits of equal improvement).
    table = pd.read_csv(out, float_precision="round_trip")
    assert table.shape == (12, 32) and "sample_weight" in table.columns
    weights = table["sample_weight"].to_numpy().reshape(2, 6)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-9)
    assert report["privacy"]["epsilon"] <= 1.0
    # The reported synthetic AUROC is the weighted fit's (split and model as the CLI's).

    from zodc.data.transform import TableEncoder
    from zodc.models.presets import PRESETS

    data = load_dataset("breast_cancer")
    from zodc.cli import holdout_key, holdout_mask

    test = data.frame.loc[holdout_mask(data.frame, 0.3, holdout_key(1))]
    encoder = TableEncoder(data.schema)
    synthetic, real = encoder.encode(table.drop(columns=["sample_weight"])), encoder.encode(test)
    model = PRESETS["tree"].host_factory(2).fit(synthetic.X, synthetic.y, sample_weight=table["sample_weight"])
    assert isinstance(model, DecisionTreeClassifier)
    assert report["owner_only"]["utility"]["synthetic"]["auroc"] == pytest.approx(auroc(real.y, model.predict_proba(real.X)))


def test_soft_labels_flag_defaults_to_auto_and_can_be_turned_off():
    from zodc.cli import build_parser

    parse = lambda *extra: build_parser().parse_args(["condense", "--out", "x.csv", *extra]).soft_labels
    assert parse() is None                          # the Condenser's "auto": on for boosting only
    assert parse("--soft-labels") is True and parse("--no-soft-labels") is False


def test_search_chooses_a_candidate_and_reports_the_whole_budget(tmp_path, capsys):
    out = tmp_path / "searched.csv"
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"learning_rate": [0.02, 0.1]}))
    assert run_cli("condense", "--dataset", "breast_cancer", "--epsilon", "1", "--search", grid, "--search-share", "0.2",
                   "--out", out, *FAST) == 0
    report = json.loads((tmp_path / "searched.report.json").read_text())
    privacy = report["privacy"]
    search = privacy["search"]
    assert [c["params"] for c in search["candidates"]] == [{"learning_rate": 0.02}, {"learning_rate": 0.1}]
    assert search["candidate_epsilon"] == pytest.approx(0.8 / 2 ** 0.5) and search["selection_epsilon"] == pytest.approx(0.2)
    assert privacy["epsilon"] <= 1.0 and privacy["ledger"]["entries"][-1]["name"] == "selection"
    chosen = search["chosen_params"]
    assert report["hyperparameters"]["search"] == {"grid": {"learning_rate": [0.02, 0.1]}, "repeats": 1,
                                                   "chosen": chosen, "chosen_index": search["chosen"], "candidates": 2}
    assert report["hyperparameters"]["learning_rate"] == chosen["learning_rate"]
    assert len(pd.read_csv(out)) == 6


def test_bad_searches_write_nothing(tmp_path, capsys):
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--search", "{learning_rate: 1}", message="not valid JSON")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--search", "[1, 2]", message="JSON object of lists")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--search", '{"epsilon": [0.5, 1]}',
                    message="may not set 'epsilon'")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--search-share", "0.2", message="go with --search")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--search-repeats", "0", message="`repeats`")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--search", '{"learning_rate": [0.1, 0.2]}',
                    "--search-share", "1.5", message="selection_share")
    # Seeded: the refusal comes after the holdout's keyed split, which would otherwise draw fresh entropy.
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--seed", "1", "--search-mean-runs", "3",
                    message="--search-mean-runs goes with --search-selection random_stopping")
    _assert_refused(tmp_path, capsys, "--dataset", "breast_cancer", "--seed", "1", "--search-selection",
                    "random_stopping", "--search-mean-runs", "1", message="`mean_repeats`")


def test_random_stopping_search_releases_one_run_and_keeps_the_number_of_runs_secret(tmp_path, capsys):
    out = tmp_path / "stopped.csv"
    loud = [flag for flag in FAST if flag != "--quiet"]  # the terminal must not count the runs either
    assert run_cli("condense", "--dataset", "breast_cancer", "--epsilon", "1", "--seed", "3", "--search",
                   '{"learning_rate": [0.02, 0.1]}', "--search-selection", "random_stopping", "--search-mean-runs", "2",
                   "--out", out, *loud) == 0
    err = capsys.readouterr().err
    assert "[PrivateSearch] run" not in err and "step 1/8" not in err     # no line per run, no progress bars
    text = (tmp_path / "stopped.report.json").read_text()
    report = json.loads(text)
    search = report["privacy"]["search"]
    assert search["selection"].startswith("random stopping") and search["mean_repeats"] == 2.0
    assert report["privacy"]["epsilon"] <= 1.0
    assert report["hyperparameters"]["search"]["selection"] == "random_stopping"
    assert report["hyperparameters"]["search"]["mean_runs"] == 2.0
    assert report["hyperparameters"]["learning_rate"] == search["chosen_params"]["learning_rate"]
    for secret in ("num_runs", "run_candidates", "noisy_scores", "private_scores", "seconds"):
        assert secret not in text                                   # nothing that counts the runs is published
    assert len(pd.read_csv(out)) == 6


@pytest.mark.slow
def test_search_without_a_schema_accounts_its_one_dp_schema_and_writes_it(tmp_path, capsys):
    data = load_dataset("breast_cancer").frame[["mean radius", "mean texture", "diagnosis"]]
    source = tmp_path / "cohort.csv"
    data.to_csv(source, index=False)
    out = tmp_path / "out.csv"
    with pytest.warns(UserWarning):
        code = run_cli("condense", "--data", source, "--target", "diagnosis", "--epsilon", "8",
                       "--search", '{"learning_rate": [0.02, 0.1]}', "--out", out, "--json", *FAST)
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    names = [e["name"] for e in report["privacy"]["ledger"]["entries"]]
    # One DP schema, released before the candidates and used by both (none estimates its own).
    assert names[0] == "prerelease.schema" and names[-1] == "selection"
    assert not any(name.endswith(".schema") and name.startswith("candidate_") for name in names)
    assert report["privacy"]["epsilon"] <= 8.0
    schema = json.loads((tmp_path / "out.schema.json").read_text())
    assert {c["name"] for c in schema["columns"]} == {"mean radius", "mean texture", "diagnosis"}


def test_search_repeats_alone_is_best_of_k_of_the_given_settings(tmp_path, capsys):
    out = tmp_path / "best.csv"
    assert run_cli("condense", "--dataset", "breast_cancer", "--epsilon", "1", "--search-repeats", "2", "--out", out,
                   "--json", *FAST) == 0
    report = json.loads(capsys.readouterr().out)
    search = report["privacy"]["search"]
    assert [c["params"] for c in search["candidates"]] == [{}, {}]
    assert report["hyperparameters"]["search"]["repeats"] == 2 and report["privacy"]["epsilon"] <= 1.0


def test_warnings_read_as_messages_once_each_and_the_format_is_restored():
    # In a process of its own: pytest records warnings instead of printing them.
    import subprocess
    import sys

    script = """
import warnings
from zodc import cli

def command(argv):
    for _ in range(2):  # the same notice from two places of the code
        warnings.warn("column 'age' has missing values", UserWarning)
    warnings.warn("column 'age' has missing values", UserWarning, stacklevel=2)
    warnings.warn("an old option", FutureWarning)
    return 0

cli._main = command
before = warnings.formatwarning
code = cli.main([])
assert warnings.formatwarning is before
warnings.warn("after the command")
raise SystemExit(code)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[:2] == ["zodc: warning: column 'age' has missing values", "zodc: FutureWarning: an old option"]
    assert "UserWarning: after the command" in lines[2]  # Python's own format again after main


def test_replacing_a_release_warns_that_two_releases_add_up(tmp_path):
    out = tmp_path / "synthetic.csv"
    out.write_text("an earlier release\n")
    with pytest.warns(UserWarning, match="exists; a finished run replaces it.*sum of their epsilons"):
        assert run_cli("condense", "--dataset", "breast_cancer", "--out", out, *FAST) == 0
    assert out.read_text() != "an earlier release\n"
