"""The owner's plots (zodc.evaluate.plots): written as PNGs, atomically, for both tasks; a clear error
without matplotlib. Small seeded frames and schemas, no condensation."""

import os
import sys

import numpy as np
import pandas as pd
import pytest

from zodc.data.schema import Schema
from zodc.errors import ZodcError
from zodc.evaluate import plots
from zodc.evaluate.plots import check_plots, render_plots, write_plots, write_rendered

PNG = b"\x89PNG\r\n\x1a\n"

COLUMNS = [{"kind": "numeric", "name": "age", "lower": 18, "upper": 90},
           {"kind": "categorical", "name": "stage", "categories": ["I", "II", "III"]}]


def _classification():
    schema = Schema.from_json({"name": "toy", "task": "classification", "source": "test", "target": "outcome",
                               "columns": COLUMNS + [{"kind": "categorical", "name": "outcome",
                                                      "categories": ["no", "yes"]}]})
    rng = np.random.default_rng(21)
    real = pd.DataFrame({"age": rng.uniform(20, 85, 60), "stage": rng.choice(["I", "II", "III"], 60),
                         "outcome": rng.choice(["no", "yes"], 60)})
    real.loc[3, "age"] = np.nan                                    # a missing value: its share in the legend
    synthetic = real.iloc[:4].assign(sample_weight=[0.9, 0.1, 0.8, 0.2])   # weighted rows (soft labels)
    utility = {"num_classes": 2, "test_rows": 40,
               "synthetic": {"auroc": None, "balanced_accuracy": None, "fit_failed": True},
               "random_subset": {"auroc": 0.7, "auroc_sd": 0.05, "balanced_accuracy": 0.65},
               "full_data": {"auroc": 0.8, "balanced_accuracy": 0.75}}
    return schema, real, synthetic, utility


def _survival():
    schema = Schema.from_json({"name": "toy_survival", "task": "survival", "source": "test", "event": "died",
                               "time": {"kind": "numeric", "name": "days", "lower": 1, "upper": 3650},
                               "columns": COLUMNS})
    rng = np.random.default_rng(22)
    real = pd.DataFrame({"age": rng.uniform(20, 85, 50), "stage": rng.choice(["I", "II", "III"], 50),
                         "days": rng.uniform(10, 3000, 50), "died": rng.integers(0, 2, 50)})
    utility = {"test_rows": 30, "synthetic": {"c_index": 0.62, "integrated_brier": 0.2},
               "random_subset": {"c_index": 0.6, "c_index_sd": 0.02, "integrated_brier": 0.21},
               "full_data": {"c_index": 0.7, "integrated_brier": 0.15}}
    return schema, real, real.iloc[:8], utility


@pytest.mark.parametrize("case", [_classification, _survival])
def test_plots_are_written_as_pngs_beside_nothing_else(tmp_path, case):
    schema, real, synthetic, utility = case()
    directory = tmp_path / "plots"                                   # created on demand
    check_plots(directory)
    written = write_plots(directory, real=real, synthetic=synthetic, schema=schema, utility=utility)
    assert sorted(os.path.basename(p) for p in written) == ["owner_columns.png", "owner_utility.png"]
    for path in written:
        assert open(path, "rb").read(8) == PNG
    assert sorted(os.listdir(directory)) == ["owner_columns.png", "owner_utility.png"]   # no temporary left
    # Without a utility (no holdout) only the columns; `what` picks the figures.
    assert [os.path.basename(p) for p in render_plots(directory, real=real, synthetic=synthetic, schema=schema)] == [
        "owner_columns.png"]
    assert list(render_plots(directory, real=real, synthetic=synthetic, schema=schema, utility=utility,
                             what=["utility"])) == [str(directory / "owner_utility.png")]


def test_plots_are_written_all_or_nothing_through_a_temporary_file(tmp_path, monkeypatch):
    files = {str(tmp_path / "a.png"): PNG + b"a", str(tmp_path / "b.png"): PNG + b"b"}
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(plots.os, "replace", lambda src, dst: (replaced.append((src, dst)), real_replace(src, dst)))
    write_rendered(files)
    assert [dst for _, dst in replaced] == list(files)
    assert all(os.path.dirname(src) == str(tmp_path) and src != dst for src, dst in replaced)   # beside it
    assert (tmp_path / "b.png").read_bytes() == PNG + b"b"

    calls = []

    def failing_fsync(fd):  # the second file fails: neither is written, no temporary is left
        calls.append(fd)
        if len(calls) == 2:
            raise OSError("disk full")

    monkeypatch.setattr(plots.os, "fsync", failing_fsync)
    target = tmp_path / "again"
    with pytest.raises(OSError, match="disk full"):
        write_rendered({str(target / "a.png"): b"1", str(target / "b.png"): b"2"})
    assert os.listdir(target) == []


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    schema, real, synthetic, utility = _classification()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ZodcError, match="pip install matplotlib"):
        write_plots(tmp_path, real=real, synthetic=synthetic, schema=schema, utility=utility)
    with pytest.raises(ZodcError, match="pip install matplotlib"):
        check_plots(tmp_path)
    assert os.listdir(tmp_path) == []


def test_an_unwritable_plot_directory_is_refused_before_any_work(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ZodcError, match="not a directory"):
        check_plots(afile)
    with pytest.raises(ZodcError, match="cannot create"):
        check_plots(tmp_path / "missing" / "plots")


@pytest.mark.slow
def test_condense_writes_the_owner_plots_and_prints_a_short_summary(tmp_path, capsys):
    import json

    from zodc.cli import main

    out, directory = tmp_path / "s.csv", tmp_path / "plots"
    assert main(["condense", "--dataset", "gbsg2", "--backend", "host", "--steps", "2", "--num-directions", "2",
                 "--rows", "20", "--quiet", "--seed", "1", "--out", str(out), "--plots", str(directory)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("zodc condense: gbsg2 (survival)") and len(printed.splitlines()) <= 12
    assert "C-index: synthetic" in printed and f"owner-only plots, do not publish: {directory}" in printed
    owner = json.loads((tmp_path / "s.owner.json").read_text())
    assert owner["plots"] == [str(directory / "owner_columns.png"), str(directory / "owner_utility.png")]
    assert all(open(p, "rb").read(8) == PNG for p in owner["plots"])
    assert "plots" not in json.loads((tmp_path / "s.report.json").read_text())["outputs"]   # the report is public
    assert owner["utility"]["failures"] == [] and "preprocessing" in owner["utility"]
