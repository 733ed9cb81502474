"""What ``zodc condense`` prints: a few lines a person reads, before (or instead of) the full JSON.

:func:`summary_lines` condenses the report (the privacy spent, the release) and the owner's file
(the utility) into about ten lines: epsilon and delta spent and the accountant, the rows and
columns released, the utility of the synthetic table next to a random real sample of its size and
the full real data (AUROC and balanced accuracy, or the C-index and the integrated Brier score),
where the files are, and a plain warning when the synthetic table scores near chance or below the
random real sample (for survival also when its curves' integrated Brier score is worse than the
sample's: the C-index reads the ranking only). A reference
whose fit failed reads "fit failed", never a number.

Could this leak? The utility lines are computed on real records without noise: like the owner's
file they are for the data owner only and NOT covered by the privacy guarantee (the lines say so).
Everything else restates the report, which the guarantee covers.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

#: A score this close to 0.5 (AUROC, C-index), or below it, is "near chance".
CHANCE_MARGIN = 0.02

#: Each task's utility scores, ``(key, label)``, the first the headline (also the plots' panels).
METRICS = {
    "classification": (("auroc", "AUROC"), ("balanced_accuracy", "balanced accuracy")),
    "survival": (("c_index", "C-index"), ("integrated_brier", "integrated Brier (lower is better)")),
}


def chance_score(key: str, utility: dict[str, Any]) -> float | None:
    """What guessing scores on ``key``: 0.5 for AUROC and the C-index, the majority-class rate
    (one class predicted) for balanced accuracy, ``None`` for the integrated Brier score."""
    if key == "balanced_accuracy":
        return 1.0 / (utility.get("num_classes") or 2)
    return 0.5 if key in ("auroc", "c_index") else None


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _score(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _table_shape(report: dict[str, Any]) -> tuple[int, int] | None:
    """(rows, columns) of the released CSV, read from its file (None if it cannot be read)."""
    path = (report.get("outputs") or {}).get("synthetic")
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows = sum(1 for row in reader if row)
    except (OSError, StopIteration, csv.Error, UnicodeDecodeError):
        return None
    return rows, len(header)


def _failure_of(utility: dict[str, Any], table: str) -> dict[str, Any] | None:
    for failure in utility.get("failures") or ():
        if failure.get("table") == table:
            return failure
    return None


def _reference(utility: dict[str, Any], table: str, key: str) -> str:
    scores = utility.get(table) or {}
    value = scores.get(key)
    if table == "random_subset":
        draws, failed = scores.get("num_draws"), scores.get("num_failed") or 0
        if value is None:
            return "fit failed" + (f" (all {draws} draws)" if draws else "")
        text = _score(value)
        spread = scores.get(f"{key}_sd")
        if spread is not None:
            text += f" ± {spread:.3f}"
        if draws and draws > 1:
            text += f" over {draws - failed} draws" + (f" ({failed} failed)" if failed else "")
        return text
    if value is None:
        failure = _failure_of(utility, table)
        if scores.get("fit_failed") or failure is not None:
            stage = "fit failed" if failure is None or failure.get("stage") == "fit" else "prediction failed"
            return stage + (f" ({failure['error']})" if failure else "")
        return "n/a"
    return _score(value)


def _utility_lines(task: str, utility: dict[str, Any], owner_path: str | None) -> list[str]:
    where = f"; also in {owner_path}" if owner_path else ""
    lines = [f"Utility on {utility.get('test_rows', '?')} held-out real records (computed on real records without "
             f"noise: for the data owner only, NOT covered by the privacy guarantee, never publish{where}):"]
    for key, label in METRICS[task]:
        if key not in (utility.get("synthetic") or {}) and key not in (utility.get("full_data") or {}):
            continue
        lines.append(f"  {label}: synthetic {_reference(utility, 'synthetic', key)} | random real sample (same size) "
                     f"{_reference(utility, 'random_subset', key)} | full real data {_reference(utility, 'full_data', key)}")
    done = []
    dropped = (utility.get("preprocessing") or {}).get("dropped_columns") or []
    if dropped:
        # Each is left out of the fits of the tables it is constant in only (report_references).
        names = "; ".join(f"{d['column']}: {d['reason']}" for d in dropped[:2])
        names += f"; {len(dropped) - 2} more in the owner's file" if len(dropped) > 2 else ""
        done.append(f"{len(dropped)} encoded column(s) left out of the fit of each table they are constant in "
                    f"({names})")
    missing = (utility.get("preprocessing") or {}).get("missing_values") or {}
    if any((missing.get("missing_cells") or {}).values()):
        done.append("missing values " + ("passed as they are (the model accepts NaN)" if missing.get("model_accepts_nan")
                                          else "median-imputed per training table"))
    if done:
        lines.append("  Handled by one rule for all three: " + "; ".join(done) + ".")
    return lines


def _warnings(task: str, utility: dict[str, Any]) -> list[str]:
    synthetic = utility.get("synthetic") or {}
    random_subset = utility.get("random_subset") or {}
    key, label = METRICS[task][0]
    out = []
    value = synthetic.get(key)
    if value is None:
        failure = _failure_of(utility, "synthetic")
        reason = f" ({failure['error']}: {failure['message']})" if failure else ""
        out.append(f"WARNING: the model could not be fitted or scored on the synthetic table{reason}: "
                   "there is no utility to report.")
        return out
    near = [f"{label} {value:.3f}"] if value <= chance_score(key, utility) + CHANCE_MARGIN else []
    if task == "classification":
        accuracy = synthetic.get("balanced_accuracy")
        majority = chance_score("balanced_accuracy", utility)
        if accuracy is not None and accuracy <= majority + CHANCE_MARGIN:
            near.append(f"balanced accuracy {accuracy:.3f}, the majority-class rate is {majority:.3f}")
    if near:
        out.append(f"WARNING: the synthetic table scores near chance ({'; '.join(near)}): a model trained on it "
                   "predicts no better than guessing.")
    reference = random_subset.get(key)
    spread = random_subset.get(f"{key}_sd") or 0.0
    if reference is not None and value < reference - spread:
        out.append(f"WARNING: the synthetic table scores below a random real sample of the same size ({label} "
                   f"{value:.3f} < {reference:.3f} ± {spread:.3f}): sharing a random sample of real rows would "
                   "serve a model better (and is not private).")
    elif reference is not None and value < reference:
        out.append(f"Note: the synthetic table scores level with a random real sample of the same size ({label} "
                   f"{value:.3f}, the sample {reference:.3f} ± {spread:.3f} over its draws).")
    if task == "survival":  # the curves' calibration, apart from the ranking the C-index reads
        brier, sample = synthetic.get("integrated_brier"), random_subset.get("integrated_brier")
        sample_spread = random_subset.get("integrated_brier_sd") or 0.0
        if brier is not None and sample is not None and brier > sample + sample_spread:
            out.append(f"WARNING: the synthetic table's survival curves are further from the real outcomes than a "
                       f"random real sample's (integrated Brier {brier:.3f} > {sample:.3f} ± {sample_spread:.3f}; "
                       "lower is better): its risk ranking may serve, its predicted survival probabilities less so.")
    return out


def summary_lines(report: dict[str, Any], owner: dict[str, Any] | None = None, *,
                  table_shape: tuple[int, int] | None = None) -> list[str]:
    """A few lines for a person: privacy spent, rows released, utility against the references,
    warnings, and where the files are.

    Args:
      report: the report of ``zodc condense`` (what ``condense_command`` returns, or the report file).
      owner: the owner's file (utility, rows); default ``report["owner_only"]`` if present.
      table_shape: ``(rows, columns)`` of the released CSV; default: read from ``outputs.synthetic``.

    Returns:
      Lines without newlines (about ten).
    """
    if owner is None:
        owner = report.get("owner_only")
    data = report.get("data") or {}
    task = data.get("task", "classification")
    model = report.get("model") or {}
    privacy = report.get("privacy") or {}
    hyper = report.get("hyperparameters") or {}
    outputs = report.get("outputs") or {}
    lines = [f"zodc condense: {data.get('name', '?')} ({task}), model {model.get('name', '?')}"
             + (f" ({model['backend']} backend)" if model.get("backend") else "")]

    epsilon, delta = privacy.get("epsilon"), privacy.get("delta")
    accountant = (privacy.get("ledger") or {}).get("accountant") or privacy.get("accountant") or "?"
    spent = f"Privacy: ε = {_number(epsilon)}, δ = {_number(delta)} spent (accountant: {accountant})"
    if hyper.get("epsilon") is not None:
        spent += f"; target ε = {_number(hyper['epsilon'])}, δ = {_number(hyper.get('delta'))}"
    if (isinstance(epsilon, (int, float)) and math.isinf(epsilon)) or epsilon in ("inf", "Infinity"):
        spent += ". NOT PRIVATE: ε is infinite"
    lines.append(spent + ".")

    shape = table_shape or _table_shape(report)
    if task == "survival":
        size = f"{hyper.get('rows', data.get('synthetic_rows', '?'))} rows"
        if data.get("events_in_synthetic") is not None:
            size += f", {data['events_in_synthetic']} with an event"
    else:
        size = f"{hyper.get('rows_per_class', '?')} rows per class"
    released = (f"Released: {shape[0]} synthetic rows x {shape[1]} columns ({size})" if shape
                else f"Released: a synthetic table of {size}")
    if hyper.get("soft_labels"):
        released += "; soft labels: weighted copies of each row, pass the sample_weight column to the fit"
    lines.append(released + ".")

    utility = (owner or {}).get("utility")
    if utility:
        lines += _utility_lines(task, utility, outputs.get("owner_only"))
        lines += _warnings(task, utility)
    elif (owner or {}).get("utility_not_computed"):
        lines.append(f"Utility: not computed on the real records: {owner['utility_not_computed'].rstrip('.')}. The "
                     "release does not depend on it.")
    elif owner is not None:
        lines.append("Utility: not measured (--holdout 0: every record was condensed, none held out).")

    files = [f"table {outputs.get('synthetic')}", f"report {outputs.get('report')}"]
    if outputs.get("schema"):
        exact = str((report.get("data") or {}).get("schema", "")).startswith("computed exactly")
        files.append(f"{'exact (non-private) schema' if exact else 'DP schema'} {outputs['schema']}")
    if outputs.get("owner_only"):
        files.append(f"owner only, do not publish: {outputs['owner_only']}")
    if (owner or {}).get("plots"):
        files.append(f"owner-only plots, do not publish: {os.path.dirname(owner['plots'][0]) or '.'}")
    lines.append("Files: " + "; ".join(files) + ".")
    lines.append("The full report is in the report file (print it with --json).")
    return lines
