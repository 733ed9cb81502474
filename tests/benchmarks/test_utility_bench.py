"""The utility benchmark's `ci` grid end to end: output structure (not values), in under a minute."""

import argparse
import json
import math
import pathlib
import time

import pytest

from zodc import bench

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "benchmarks" / "configs" / "utility.json").read_text())


def test_grids_express_the_issue():
    full = bench.load_grid(CONFIG, "full")
    assert full["datasets"] == ["breast_cancer", "diabetes_progression", "gbsg2_recurrence_3y"]
    assert set(full["condense_models"]) == set(full["evaluate_models"]) == set(bench.CLASSIFICATION_MODELS)
    assert full["epsilons"] == [0.5, 1.0, 2.0, 5.0, 10.0, math.inf]
    assert full["rows_per_class"] == [5, 10, 50] and full["seeds"] >= 5
    assert set(full["survival_datasets"]) == {"gbsg2", "lung", "kidney_transplant", "larynx"}
    assert full["survival_models"] == ["cox", "survival_forest"] and full["survival_rows"] == [20, 50, 200]
    assert set(full["baselines"]) == {"full_data", "random_subset", "kmeans_centroids", "dp_gaussian", "mst"}
    assert len(bench.cells(full)) == 3 * 3 * 6 * 5


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("utility") / "utility_ci.json"
    spec = bench.load_grid(CONFIG, "ci")
    started = time.perf_counter()
    result = bench.run_utility(spec, grid="ci", out=str(out))
    return result, out, time.perf_counter() - started, spec


def test_ci_grid_runs_under_a_minute(ci_run):
    _, _, seconds, _ = ci_run
    assert seconds < 60, f"the ci grid took {seconds:.1f} s"


def test_ci_records_structure(ci_run):
    result, out, _, spec = ci_run
    on_disk = json.loads(out.read_text())
    assert on_disk["benchmark"] == "utility" and on_disk["settings"]["grid"] == "ci"
    assert {"machine", "protocol", "records", "summary", "timing", "not_run"} <= set(on_disk)
    assert len(on_disk["records"]) == len(bench.cells(spec)) == 1 * 1 * 2 * 2
    for record in on_disk["records"]:
        assert set(record["condensed"]) == set(spec["condense_models"])
        for value in record["condensed"].values():
            assert set(value["utility"]) == set(spec["evaluate_models"])         # cross-model transfer
            for scores in value["utility"].values():
                assert 0 <= scores["auroc"] <= 1 and 0 <= scores["balanced_accuracy"] <= 1
        assert set(record["baselines"]) == set(spec["baselines"])
        for name, value in record["baselines"].items():
            assert value["private"] == (name in ("dp_gaussian", "mst"))
            assert set(value["utility"]) == set(spec["evaluate_models"])
            if value["private"] and record["epsilon"] != "inf":
                assert value["epsilon_spent"] <= record["epsilon"] * (1 + 1e-9)       # each baseline's own ledger
            else:
                assert value["epsilon_spent"] == "inf"
        for value in record["condensed"].values():
            if record["epsilon"] != "inf":
                assert value["epsilon_spent"] <= record["epsilon"] * (1 + 1e-9)
    # Non-private references are shared across epsilon within a seed (built once).
    by_seed = {}
    for record in on_disk["records"]:
        by_seed.setdefault(record["seed"], []).append(record["baselines"]["random_subset"]["utility"])
    assert all(len({json.dumps(u, sort_keys=True) for u in group}) == 1 for group in by_seed.values())


def test_ci_summary_and_reports(ci_run, tmp_path):
    result, out, _, spec = ci_run
    summary = result["summary"]
    keys = {(r["model"], r["epsilon"]) for r in summary["utility"]}
    assert keys == {(m, e) for m in spec["evaluate_models"] for e in (1.0, "inf")}
    for row in summary["utility"]:
        for name in spec["baselines"]:
            assert set(row[name]) == {"mean", "sd", "n"} and row[name]["n"] == spec["seeds"]
    assert {c["verdict"] for c in summary["comparisons"]} <= {"win", "tie", "loss"}
    assert len(summary["comparisons"]) == len(spec["baselines"]) * 2          # per epsilon, model 'tree'
    assert len(summary["transfer"]) == 2
    text = bench.markdown(result)
    for heading in ("## breast_cancer", "paired over seeds", "Cross-model transfer", "## Runtime", "## Not run"):
        assert heading in text
    assert "| breast_cancer | tree | 5 | ∞ |" in bench.readme_table(result)
    # Survival is configured in the ci grid: recorded as not run (with the reason) unless it ran.
    assert any("survival" in item["what"] for item in result["not_run"])
    paths = bench.plots(result, str(tmp_path), "utility_ci")
    assert [pathlib.Path(p).name for p in paths] == ["utility_ci_breast_cancer_vs_epsilon.png"]
    assert all(pathlib.Path(p).stat().st_size > 1000 for p in paths)


def test_cli_hook_rerenders_from_json(ci_run, tmp_path):
    _, out, _, _ = ci_run
    parser = argparse.ArgumentParser(prog="zodc")
    sub = parser.add_subparsers(dest="command", required=True)
    bench.add_bench_parser(sub)
    markdown_path = tmp_path / "report.md"
    args = parser.parse_args(["bench", "utility", "--from-json", str(out), "--markdown", str(markdown_path),
                              "--plots", str(tmp_path)])
    assert args.handler(args) == 0
    assert markdown_path.read_text().startswith("# Utility benchmark")
    assert (tmp_path / "utility_ci_breast_cancer_vs_epsilon.png").exists()
