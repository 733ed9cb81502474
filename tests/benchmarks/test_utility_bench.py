"""The utility benchmark's `ci` grid end to end (benchmarks/runner.py): output structure (not values), in
about a minute. Without mbi (the `bench` extra; CI installs `test` only) the MST baseline is left out
of the run and recorded under `not_run`, and these tests check the rest."""

import argparse
import gzip
import importlib.util
import json
import math
import os
import pathlib
import time

import numpy as np
import pandas as pd
import pytest

from benchmarks import runner
from zodc.data.datasets import load_dataset

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "benchmarks" / "configs" / "utility.json").read_text())


def test_grids_express_the_issue():
    full = runner.load_grid(CONFIG, "full")
    assert full["datasets"] == ["breast_cancer", "diabetes_progression", "gbsg2_recurrence_3y"]
    assert set(full["condense_models"]) == set(full["evaluate_models"]) == set(runner.CLASSIFICATION_MODELS)
    assert full["epsilons"] == [0.5, 1.0, 2.0, 5.0, 10.0, math.inf]
    assert full["rows_per_class"] == [5, 10, 50] and full["seeds"] >= 5
    assert set(full["survival_datasets"]) == {"gbsg2", "lung", "kidney_transplant", "larynx"}
    assert full["survival_models"] == ["cox", "survival_forest"] and full["survival_rows"] == [20, 50, 200]
    assert set(full["baselines"]) == {"full_data", "random_subset", "kmeans_centroids", "dp_gaussian", "mst"}
    assert len(runner.cells(full)) == 3 * 3 * 6 * 5
    assert full["survival_epsilons"] == full["epsilons"] and full["survival_seeds"] == full["seeds"]
    assert len(runner.survival_cells(full)) == 4 * 3 * 6 * 5
    survival_cpu = runner.load_grid(CONFIG, "survival_cpu")
    assert survival_cpu["survival_datasets"] == ["gbsg2", "lung", "kidney_transplant"]
    assert survival_cpu["survival_models"] == ["cox", "survival_forest"] and survival_cpu["survival_rows"] == [50] and survival_cpu["survival_epsilons"] == [1.0, math.inf]
    assert runner.cells(survival_cpu) == [] and len(runner.survival_cells(survival_cpu)) == 3 * 2 * 5


def test_survival_plan_records_what_cannot_run():
    spec = runner.load_grid(CONFIG, "full")
    spec["survival_datasets"] = ["larynx", "lung"]
    not_run = []
    planned, models, evaluate = runner._plan_survival(spec, not_run)
    # larynx: 90 rows, 63 in the 70 % split; lung: 168 -> 117. Sizes at or above them are skipped.
    assert runner.train_rows(90, 0.3) == 63 and runner.train_rows(168, 0.3) == 117
    assert {(c["dataset"], c["rows"]) for c in planned} == {("larynx", 20), ("larynx", 50), ("lung", 20), ("lung", 50)}
    skipped = [item for item in not_run if "rows" in item["what"] and "training rows" in item["reason"]]
    assert {item["what"] for item in skipped} == {"survival larynx at 200 rows", "survival lung at 200 rows"}
    assert "cox" in models
    if runner.survival_model_available("survival_forest") is not None:    # scikit-survival (GPL) absent
        assert "survival_forest" not in models and "survival_forest" not in evaluate
        assert any("survival_forest" in item["what"] and "scikit-survival" in item["reason"] for item in not_run)


def test_epsilon_plot_shows_the_size_recorded_at_the_most_epsilons():
    rows = [{"rows_per_class": k, "epsilon": e} for k in (5, 10) for e in (0.5, 1, "inf")]
    assert runner._epsilon_plot_size(rows) == 10                      # equals: the largest
    partial = rows + [{"rows_per_class": 50, "epsilon": 1}]          # a grid finished at 5 and 10, not at 50
    assert runner._epsilon_plot_size(partial) == 10
    assert runner._epsilon_plot_size(partial + [{"rows_per_class": 50, "epsilon": e} for e in (0.5, "inf")]) == 50


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("utility") / "utility_ci.json"
    started = time.perf_counter()
    result = runner.run_utility(runner.load_grid(CONFIG, "ci"), grid="ci", out=str(out))
    # What ran: the grid's baselines less those that cannot be built here (MST without mbi).
    spec = runner.drop_unavailable_baselines(runner.load_grid(CONFIG, "ci"), [])
    return result, out, time.perf_counter() - started, spec



def test_a_baseline_that_cannot_run_here_is_recorded_not_dropped(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "mbi" else real(name, *rest))
    assert "bench" in runner.baseline_available("mst") and runner.baseline_available("dp_gaussian") is None
    spec = runner.load_grid(CONFIG, "ci")
    not_run = []
    kept = runner.drop_unavailable_baselines(spec, not_run)
    assert kept["baselines"] == [b for b in spec["baselines"] if b != "mst"] and "mst" in spec["baselines"]
    assert [item["what"] for item in not_run] == ["classification baseline mst (every classification cell)"]


def test_ci_records_structure(ci_run):
    result, out, _, spec = ci_run
    on_disk = json.loads(out.read_text())
    assert on_disk["benchmark"] == "utility" and on_disk["settings"]["grid"] == "ci"
    assert {"machine", "protocol", "records", "summary", "timing", "not_run"} <= set(on_disk)
    if "mst" not in spec["baselines"]:                                            # mbi not installed here
        assert any(item["what"].startswith("classification baseline mst") for item in on_disk["not_run"])
    classification = [r for r in on_disk["records"] if r["task"] == "classification"]
    survival = [r for r in on_disk["records"] if r["task"] == "survival"]
    assert len(classification) == len(runner.cells(spec)) == 1 * 1 * 2 * 2
    assert len(survival) == len(runner.survival_cells(spec)) == 1
    for record in classification:
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
    for record in classification:
        by_seed.setdefault(record["seed"], []).append(record["baselines"]["random_subset"]["utility"])
    assert all(len({json.dumps(u, sort_keys=True) for u in group}) == 1 for group in by_seed.values())


def test_ci_survival_cell(ci_run):
    result, out, _, spec = ci_run
    (record,) = [r for r in json.loads(out.read_text())["records"] if r["task"] == "survival"]
    assert (record["dataset"], record["rows"], record["epsilon"], record["seed"]) == ("gbsg2", 20, 1, 0)
    assert record["train_rows"] == runner.train_rows(686, 0.3)
    assert set(record["condensed"]) == {"cox"} and set(record["baselines"]) == set(spec["survival_baselines"])
    condensed = record["condensed"]["cox"]
    assert condensed["epsilon_spent"] <= 1 + 1e-9
    scores = condensed["utility"]["cox"]
    assert 0 <= scores["c_index"] <= 1 and {"full_data", "random_subset"} <= set(scores["reference"])
    for name, value in record["baselines"].items():
        assert value["private"] == (name in ("dp_gaussian", "mst"))
        assert 0 <= value["utility"]["cox"]["c_index"] <= 1
        if value["private"]:
            assert value["epsilon_spent"] <= 1 * (1 + 1e-9)                   # each baseline's own ledger
        if name != "full_data":
            assert value["rows"] == 20 and 0 < value["events"] < 20
    # The full-data baseline is survival_utility's full-data reference (same fit, same test split)
    # when the condensed table varies in every column; a column constant in it (a binary column whose
    # two event groups start on the same side of 0 under the DP-means start) is left out of that
    # table's evaluation, references included, so the reference is then a fit on fewer columns.
    dropped = scores["dropped_constant_columns"]
    assert 0 <= dropped < len(load_dataset("gbsg2").schema.feature_names)
    if dropped == 0:
        assert record["baselines"]["full_data"]["utility"]["cox"]["c_index"] == pytest.approx(
            scores["reference"]["full_data"]["c_index"])
    summary = result["summary"]["survival"]
    assert summary["metric"] == "c_index"
    assert len(summary["utility"]) == 1 and summary["utility"][0]["condensed"]["n"] == 1
    assert {c["baseline"] for c in summary["comparisons"]} == set(spec["survival_baselines"])
    assert all(c["verdict"] == "tie" for c in summary["comparisons"])          # one seed: no standard error


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
    text = runner.markdown(result)
    for heading in ("## breast_cancer", "paired over seeds", "Cross-model transfer", "## Runtime", "## Survival",
                    "| gbsg2 | cox | 20 | 1 |"):
        assert heading in text
    assert "| breast_cancer | tree | 5 | ∞ |" in runner.readme_table(result)
    paths = runner.plots(result, str(tmp_path), "utility_ci")
    assert [pathlib.Path(p).name for p in paths] == ["utility_ci_breast_cancer_vs_epsilon.png"]
    assert all(pathlib.Path(p).stat().st_size > 1000 for p in paths)


def test_merge_keeps_survival_and_classification_records_apart(ci_run):
    result, _, _, _ = ci_run
    merged = runner.merge_results([result, json.loads(json.dumps(result))])
    assert len(merged["records"]) == len(result["records"])
    assert merged["settings"]["survival_datasets"] == ["gbsg2"]
    assert merged["summary"]["survival"]["utility"] == json.loads(json.dumps(result["summary"]["survival"]["utility"]))


def test_merge_replaces_a_rerun_models_condensed_tables_and_keeps_the_rest(ci_run, tmp_path):
    # A preset rerun after its default changed (--models tree, same grid) merged after the old run.
    result, _, _, _ = ci_run
    classification = [r for r in result["records"] if r.get("task", "classification") == "classification"]
    rerun = json.loads(json.dumps(result))
    rerun["records"] = [r for r in rerun["records"] if r.get("task", "classification") == "classification"]
    for record in rerun["records"]:
        record["baselines"]["random_subset"]["utility"]["tree"]["auroc"] = -1.0     # must not be taken
        entry = record["condensed"]["tree"]
        entry["soft_labels"] = True
        entry["utility"]["tree"]["auroc"] = 0.25
    # Without replace_models a cell present twice keeps the first run's record, condensed tables too.
    assert runner.merge_results([result, rerun])["records"] == json.loads(json.dumps(result["records"]))
    merged = runner.merge_results([result, rerun], replace_models=["tree"])
    assert len(merged["records"]) == len(result["records"])
    assert merged["settings"]["condensed_replaced"] == {"tree": len(classification)}
    merged_classification = [r for r in merged["records"] if r.get("task", "classification") == "classification"]
    assert all(r["condensed"]["tree"]["utility"]["tree"]["auroc"] == 0.25 for r in merged_classification)
    assert all(r["baselines"]["random_subset"]["utility"]["tree"]["auroc"] >= 0 for r in merged_classification)
    assert {row["condensed"]["mean"] for row in merged["summary"]["utility"]
            if row["model"] == "tree" and "condensed" in row} == {0.25}
    # The inputs are left as they were, and the report says which tables have soft labels.
    assert all("soft_labels" not in r["condensed"]["tree"] or r["condensed"]["tree"]["soft_labels"] is False
               for r in classification)
    assert f"- `tree` tables have soft labels (all {len(classification)} cells)." in runner.markdown(merged)
    half = json.loads(json.dumps(rerun))
    half["records"] = [r for r in half["records"] if r["seed"] == 0]
    text = runner.markdown(runner.merge_results([result, half], replace_models=("tree",)))
    assert f"soft labels in {len(half['records'])} of {len(classification)} cells" in text
    assert "soft labels" not in runner.markdown(result)
    # The CLI flag: merge OLD,NEW with --replace-models; refused without --from-json.
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old_path.write_text(json.dumps(result))
    new_path.write_text(json.dumps(rerun))
    parser = runner.build_parser()
    out = tmp_path / "merged.json"
    args = parser.parse_args(["--from-json", f"{old_path},{new_path}", "--replace-models", "tree",
                              "--out", str(out), "--plots", "none"])
    assert runner.run_command(args) == 0
    assert json.loads(out.read_text())["settings"]["condensed_replaced"] == {"tree": len(classification)}
    assert "soft labels (all" in (tmp_path / "merged.md").read_text()
    args = parser.parse_args(["--grid", "ci", "--replace-models", "tree"])
    assert runner.run_command(args) == 2


def test_markdown_marks_cells_with_fewer_seeds_than_the_grid(ci_run):
    # A grid finished over several runs: until every run is in, some cells hold fewer seeds.
    result, _, _, spec = ci_run
    partial = json.loads(json.dumps(result))
    partial["records"] = [r for r in partial["records"] if not (r.get("task", "classification") == "classification"
                                                                 and r["epsilon"] == "inf" and r["seed"] == 1)]
    partial["summary"] = runner.summarise(partial["records"])
    partial["summary"]["survival"] = runner.summarise_survival(partial["records"])
    lines = runner.markdown(partial).splitlines()
    short = [line for line in lines if line.startswith("| tree | 5 | ")]
    assert len(short) == 2 and spec["seeds"] == 2
    assert "(n = 1)" in next(line for line in short if "| ∞ |" in line)
    assert "(n = " not in next(line for line in short if "| 1 |" in line)


def test_markdown_and_plots_of_runs_with_different_baselines(ci_run, tmp_path):
    # Runs merged with --from-json may have built different baselines (an epsilon = inf run without the
    # private ones): a comparison that is missing for one cell is shown as "–", and the plots go to a
    # directory that does not exist yet.
    result, _, _, _ = ci_run
    partial = json.loads(json.dumps(result))
    classification = [r for r in partial["records"] if r.get("task", "classification") == "classification"]
    # Not the first record's cell: the columns come from the runs' baselines, the gap from a later run.
    cell = {key: classification[-1][key] for key in ("dataset", "rows_per_class", "epsilon")}
    assert any(any(r[key] != value for key, value in cell.items()) for r in classification)
    dropped = next(name for name in classification[-1]["baselines"] if name not in ("full_data", "random_subset"))
    for record in classification:
        if all(record[key] == value for key, value in cell.items()):
            del record["baselines"][dropped]
    partial["summary"] = runner.summarise(partial["records"])
    partial["summary"]["survival"] = runner.summarise_survival(partial["records"])
    lines = runner.markdown(partial).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("## Condensed vs each baseline"))
    rows = [line for line in lines[header:] if line.startswith(f"| {cell['dataset']} |")]
    assert any("| – |" in line or line.endswith("| – |") for line in rows), (dropped, cell, rows)
    directory = tmp_path / "new" / "plots"
    out = tmp_path / "partial.json"
    out.write_text(json.dumps(partial))
    args = runner.build_parser().parse_args(["--from-json", str(out), "--out", str(tmp_path / "merged.json"),
                                             "--plots", str(directory)])
    assert runner.run_command(args) == 0
    assert any(directory.glob("*.png"))


def test_command_line_rerenders_from_json(ci_run, tmp_path):
    _, out, _, _ = ci_run
    markdown_path = tmp_path / "report.md"
    args = runner.build_parser().parse_args(["--from-json", str(out), "--markdown", str(markdown_path),
                                             "--plots", str(tmp_path)])
    assert runner.run_command(args) == 0
    assert markdown_path.read_text().startswith("# Utility benchmark")
    assert (tmp_path / "utility_ci_breast_cancer_vs_epsilon.png").exists()


def test_compressed_results_are_read_and_written(ci_run, tmp_path):
    # Recorded raw results are stored as .json.gz: --from-json and --skip-recorded read them (also when
    # named without .gz), an --out ending in .gz is written compressed, and the .md drops both suffixes.
    result, out, _, _ = ci_run
    packed = tmp_path / "utility_ci.json.gz"
    packed.write_bytes(gzip.compress(out.read_bytes()))
    merged = tmp_path / "merged.json.gz"
    args = runner.build_parser().parse_args(["--from-json", str(tmp_path / "utility_ci.json"), "--out", str(merged),
                                             "--plots", "none"])
    assert runner.run_command(args) == 0
    assert json.loads(gzip.decompress(merged.read_bytes()))["records"] == json.loads(out.read_text())["records"]
    assert (tmp_path / "merged.md").read_text().startswith("# Utility benchmark")
    assert {runner._record_key(r) for r in runner._read_json(str(packed))["records"]} == \
        {runner._record_key(r) for r in result["records"]}


def test_skip_recorded_runs_only_the_cells_missing_elsewhere(ci_run, tmp_path):
    result, out, _, spec = ci_run
    recorded = {runner._record_key(record) for record in result["records"]}
    assert {runner._record_key(cell) for cell in runner.cells(spec) + runner.survival_cells(spec)} <= recorded
    # Everything recorded: a rerun runs nothing and says how many cells it left to the other run.
    rerun = runner.run_utility(spec, grid="ci", skip=recorded)
    assert rerun["records"] == [] and rerun["settings"]["skipped_recorded"] == len(result["records"])
    # The flag reads the keys from the JSON; a cell missing there (a new seed) is the only one run.
    more = tmp_path / "more.json"
    args = runner.build_parser().parse_args(["--grid", "ci", "--seeds", "3", "--epsilons", "inf",
                                             "--survival-datasets", "", "--skip-recorded", str(out), "--out", str(more),
                                             "--plots", "none", "--quiet"])
    assert runner.run_command(args) == 0
    ran = json.loads(more.read_text())
    assert [(r["epsilon"], r["seed"]) for r in ran["records"]] == [("inf", 2)]
    assert ran["settings"]["skipped_recorded"] == 2


def test_skipped_survival_models_are_recorded_and_no_datasets_means_survival_only():
    spec = runner.load_grid(CONFIG, "full")
    spec["survival_datasets"], spec["survival_models"] = ["larynx"], ["cox"]
    spec["skipped_survival_models"] = ["survival_forest"]
    not_run = []
    planned, models, _ = runner._plan_survival(spec, not_run)
    assert models == ["cox"] and planned
    assert any(item["what"].startswith("survival model survival_forest as the condensing model")
               and "--survival-models" in item["reason"] for item in not_run)
    parser = argparse.ArgumentParser()
    runner.add_utility_arguments(parser)
    assert parser.parse_args(["--datasets", ""]).datasets == ""  # '' is kept apart from "not given"


def test_tstr_fits_a_soft_label_release_with_its_weights():
    import numpy as np
    import pandas as pd

    from zodc.data.datasets import load_dataset
    from zodc.evaluate.utility import auroc
    from zodc.models.presets import PRESETS

    data = load_dataset("breast_cancer")
    schema, frame = data.schema, data.frame
    rows = pd.concat([frame.iloc[:8], frame.iloc[:8]], ignore_index=True)
    classes = schema.target_column.categories
    rows[schema.target] = [classes[0]] * 8 + [classes[1]] * 8
    weights = np.r_[np.linspace(0.55, 0.95, 8), 1 - np.linspace(0.55, 0.95, 8)]
    released = rows.assign(sample_weight=weights)
    test = frame.iloc[100:300]
    scores = runner.tstr(released, test, schema, ["logistic"])["logistic"]
    train, real = runner._encode(rows, schema), runner._encode(test, schema)
    model = PRESETS["logistic"].host_factory(2).fit(train.X, train.y, sample_weight=weights)
    assert scores["auroc"] == pytest.approx(auroc(real.y, model.predict_proba(real.X)))
    unweighted = PRESETS["logistic"].host_factory(2).fit(train.X, train.y)
    assert scores["auroc"] != pytest.approx(auroc(real.y, unweighted.predict_proba(real.X)))


def test_survival_tstr_fits_a_soft_event_release_with_its_weights():
    from zodc.evaluate.survival import concordance_index
    from zodc.models.survival import LifelinesCoxPH

    data = load_dataset("gbsg2")
    schema, frame = data.schema, data.frame
    train, test = frame.iloc[:480], frame.iloc[480:]
    rows = train.iloc[:30]
    release = pd.concat([rows.assign(cens=0), rows.assign(cens=1)], ignore_index=True)   # censored copies, events
    weight = np.concatenate([np.full(30, 0.3), np.full(30, 0.7)])
    triple = lambda f: runner._survival_triple(f, schema)  # noqa: E731
    soft = runner.survival_tstr(release.assign(sample_weight=weight), triple(train), triple(test), schema, ["cox"],
                               num_rows=30, seed=0)["cox"]
    plain = runner.survival_tstr(release, triple(train), triple(test), schema, ["cox"], num_rows=30, seed=0)["cox"]
    X, time, event = triple(release)
    varying = np.ptp(X, axis=0) > 1e-9
    model = LifelinesCoxPH(penalizer=0.1).fit(X[:, varying], time, event, sample_weight=weight)
    X_test, time_test, event_test = triple(test)
    assert soft["c_index"] == pytest.approx(concordance_index(time_test, model.predict_risk(X_test[:, varying]),
                                                              event_test))
    assert soft["dropped_constant_columns"] == int((~varying).sum()) and not soft["fit_failed"]
    assert soft["c_index"] != plain["c_index"]


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="memory maps are counted on Linux only")
def test_compiled_programs_are_released_past_the_threshold():
    # A long benchmark process keeps every shape's compiled programs (and their memory maps) until it
    # dies at vm.max_map_count; past the threshold the runner drops them between cells.
    import jax
    import jax.numpy as jnp

    maps = lambda: sum(1 for _ in open("/proc/self/maps", "rb"))
    for size in range(3, 9):  # a few new shapes, each compiled once
        jax.jit(lambda x: jnp.sin(x) * 2.0 + x.sum())(jnp.ones(size)).block_until_ready()
    assert runner.release_compiled_programs(threshold=1e9) is False
    before = maps()
    assert runner.release_compiled_programs(threshold=0.0) is True
    assert maps() < before
