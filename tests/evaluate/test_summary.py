"""The lines ``zodc condense`` prints for a person (zodc.evaluate.summary): built from report dicts."""

import copy
import re

import pytest

from zodc.evaluate.summary import summary_lines


def _report(tmp_path, task="classification"):
    table = tmp_path / "synthetic.csv"
    table.write_text("a,b,outcome\n" + "".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(6)))
    hyper = {"epsilon": 1.0, "delta": 1e-5, "soft_labels": False}
    hyper.update({"rows_per_class": 3} if task == "classification" else {"rows": 6})
    report = {
        "data": {"name": "cohort", "task": task},
        "model": {"name": "logistic" if task == "classification" else "cox", "backend": "host"},
        "privacy": {"epsilon": 0.9123, "delta": 1e-5, "ledger": {"accountant": "PLD"}},
        "hyperparameters": hyper,
        "outputs": {"synthetic": str(table), "report": str(tmp_path / "synthetic.report.json"),
                    "owner_only": str(tmp_path / "synthetic.owner.json"), "schema": None},
    }
    if task == "classification":
        utility = {"metric": "auroc", "num_classes": 2, "test_rows": 120,
                   "synthetic": {"auroc": 0.81, "balanced_accuracy": 0.74, "fit_failed": False},
                   "random_subset": {"auroc": 0.77, "auroc_sd": 0.04, "balanced_accuracy": 0.7,
                                     "balanced_accuracy_sd": 0.05, "num_draws": 5, "num_failed": 0},
                   "full_data": {"auroc": 0.93, "balanced_accuracy": 0.86, "fit_failed": False},
                   "preprocessing": {"dropped_columns": [], "missing_values": {"missing_cells": {}}}, "failures": []}
    else:
        utility = {"metric": "c_index", "test_rows": 90,
                   "synthetic": {"c_index": 0.66, "integrated_brier": 0.12, "fit_failed": False},
                   "random_subset": {"c_index": 0.61, "c_index_sd": 0.03, "integrated_brier": 0.11,
                                     "integrated_brier_sd": 0.02, "num_draws": 5, "num_failed": 0},
                   "full_data": {"c_index": 0.71, "fit_failed": False},
                   "preprocessing": {"dropped_columns": [], "missing_values": {"missing_cells": {}}}, "failures": []}
    owner = {"rows_condensed": 280, "utility": utility}
    return report, owner


def _text(report, owner):
    lines = summary_lines(report, owner)
    assert 5 <= len(lines) <= 11 and all("\n" not in line for line in lines)
    return "\n".join(lines)


def test_the_summary_names_the_budget_the_release_the_three_utilities_and_the_files(tmp_path):
    report, owner = _report(tmp_path)
    text = _text(report, owner)
    assert "ε = 0.912" in text and "δ = 1e-05" in text and "PLD" in text
    assert "Released: 6 synthetic rows x 3 columns (3 rows per class)" in text
    assert re.search(r"AUROC: synthetic 0\.810 \| random real sample \(same size\) 0\.770 ± 0\.040 over 5 draws "
                     r"\| full real data 0\.930", text)
    assert "balanced accuracy: synthetic 0.740" in text
    assert "owner only" in text and "NOT covered by the privacy guarantee" in text
    assert str(tmp_path / "synthetic.csv") in text and str(tmp_path / "synthetic.owner.json") in text
    assert "WARNING" not in text
    # The combined dict condense_command returns carries the owner's file under "owner_only".
    assert summary_lines({**report, "owner_only": owner}) == summary_lines(report, owner)


@pytest.mark.parametrize("auroc, balanced_accuracy, warned", [(0.5, 0.55, True), (0.515, 0.6, True),
                                                                (0.8, 0.51, True), (0.8, 0.74, False)])
def test_a_synthetic_table_near_chance_is_warned_about(tmp_path, auroc, balanced_accuracy, warned):
    report, owner = _report(tmp_path)
    owner["utility"]["synthetic"].update(auroc=auroc, balanced_accuracy=balanced_accuracy)
    owner["utility"]["random_subset"].update(auroc=0.5, balanced_accuracy=0.5)     # keep the other warning out
    text = _text(report, owner)
    assert ("near chance" in text) is warned
    assert ("the majority-class rate is 0.500" in text) is (balanced_accuracy < 0.52)
    assert "below a random real sample" not in text


def test_a_synthetic_table_below_the_random_sample_is_warned_about(tmp_path):
    report, owner = _report(tmp_path)
    owner["utility"]["synthetic"]["auroc"] = 0.72  # below the sample's mean by more than its spread (0.04)
    text = _text(report, owner)
    assert "WARNING: the synthetic table scores below a random real sample of the same size (AUROC 0.720 < 0.770" in text
    assert "near chance" not in text
    owner["utility"]["synthetic"]["auroc"] = 0.75  # below the mean, within the spread: level, said without alarm
    text = _text(report, owner)
    assert "WARNING: the synthetic table scores below" not in text
    assert "Note: the synthetic table scores level with a random real sample" in text


def test_a_failed_fit_reads_fit_failed_never_a_number(tmp_path):
    report, owner = _report(tmp_path, task="survival")
    utility = owner["utility"]
    utility["synthetic"] = {"c_index": None, "fit_failed": True}
    utility["full_data"] = {"c_index": None, "fit_failed": True}
    utility["failures"] = [
        {"table": "synthetic", "stage": "fit", "error": "ValueError", "message": "`event` has no event"},
        {"table": "full_data", "stage": "fit", "error": "ConvergenceError", "message": "matrix is singular"}]
    text = _text(report, owner)
    line = next(line for line in text.splitlines() if line.strip().startswith("C-index"))
    assert line == ("  C-index: synthetic fit failed (ValueError) | random real sample (same size) 0.610 ± 0.030 over "
                    "5 draws | full real data fit failed (ConvergenceError)")
    assert "0.5" not in line
    assert "WARNING: the model could not be fitted or scored on the synthetic table (ValueError" in text
    # Some random draws failed: their count is said, the mean is over the others.
    utility["random_subset"].update(num_failed=2)
    assert "over 3 draws (2 failed)" in _text(report, owner)
    utility["random_subset"].update(c_index=None, c_index_sd=None, num_failed=5)
    assert "random real sample (same size) fit failed (all 5 draws)" in _text(report, owner)


def test_survival_names_the_c_index_and_dropped_columns_and_missing_values(tmp_path):
    report, owner = _report(tmp_path, task="survival")
    text = _text(report, owner)
    assert "C-index: synthetic 0.660" in text and "full real data 0.710" in text and "AUROC" not in text
    assert "WARNING" not in text
    owner = copy.deepcopy(owner)
    owner["utility"]["synthetic"]["c_index"] = 0.51
    owner["utility"]["preprocessing"] = {
        "dropped_columns": [{"column": "tgrade=I", "reason": "constant in synthetic"}],
        "missing_values": {"model_accepts_nan": False, "missing_cells": {"synthetic": 3, "full_data": 0, "test": 0}}}
    text = _text(report, owner)
    assert "near chance (C-index 0.510)" in text
    assert ("1 encoded column(s) left out of the fit of each table they are constant in (tgrade=I: constant in "
            "synthetic)") in text
    assert "median-imputed per training table" in text


def test_survival_curves_worse_than_the_random_sample_are_warned_about_apart_from_the_ranking(tmp_path):
    # Ecdat's UnempDur (no schema, epsilon 1): the C-index on a par with a random real sample of the
    # table's size, the integrated Brier score well above it. Within the sample's spread: no warning.
    report, owner = _report(tmp_path, task="survival")
    owner["utility"]["synthetic"].update(c_index=0.88, integrated_brier=0.19)
    owner["utility"]["random_subset"].update(c_index=0.89, c_index_sd=0.015, integrated_brier=0.112,
                                             integrated_brier_sd=0.018)
    text = _text(report, owner)
    assert ("WARNING: the synthetic table's survival curves are further from the real outcomes than a random real "
            "sample's (integrated Brier 0.190 > 0.112 ± 0.018") in text
    assert "scores below a random real sample" not in text  # the ranking is level (within the spread)
    owner["utility"]["synthetic"]["integrated_brier"] = 0.125
    assert "survival curves" not in _text(report, owner)
    owner["utility"]["synthetic"]["integrated_brier"] = None  # not measured: nothing said
    assert "survival curves" not in _text(report, owner)


def test_without_a_holdout_the_utility_is_said_to_be_unmeasured(tmp_path):
    report, owner = _report(tmp_path)
    owner["utility"] = None
    text = _text(report, owner)
    assert "not measured" in text and "AUROC" not in text
    report["privacy"]["epsilon"] = "inf"
    assert "NOT PRIVATE" in _text(report, owner)
