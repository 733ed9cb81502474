"""How the DP schema's refinement trims a column's bounds (``zodc.data.dp_schema.REFINE_TRIM``).

Two measures, each paired (the same seeds, the same noise for every rule: the rules draw the same
number of noisy counts):

* ``--bounds``: the estimated schema alone, as a schema-less ``zodc condense`` estimates it (a
  bundled cohort's raw table written as a CSV and read back, 70 % of its rows, epsilon 1 at a
  10 % share, the default before ``auto``; :mod:`benchmarks.schema_min_n`'s synthetic cohorts too), once per rule and
  seed. Per numeric column and run: the share of its values outside the bounds (clipped) and
  ``log2`` of the bounds' width over the values' 0.5-99.5 % range (looseness).
* otherwise: ``zodc condense --data cohort.csv`` (no schema, epsilon 1, the default model, steps
  and holdout) once per rule and seed; the synthetic table's AUROC or C-index on the held-out real
  records, a refusal scored 0.5.

    python -m benchmarks.refine_trim --bounds --seeds 30
    python -m benchmarks.refine_trim --cohort kidney_transplant --seeds 30

Rules: ``before`` (each end bin tested alone, the records beyond the core in its end bins) and
``cumulative`` (the rule now, :func:`zodc.data.dp_schema._refine_window`). Seeds are fixed
(0..seeds-1). Results: ``docs/results.md``, "How the refinement trims a column's bounds".
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings

import numpy as np
import pandas as pd

from benchmarks.paired_rules import paired, paired_runs, roles_and_metric

RULES = ("before", "cumulative")
BOUNDS_COHORTS = ("breast_cancer", "diabetes_progression", "gbsg2_recurrence_3y", "gbsg2", "kidney_transplant",
                  "flchain", "nwtco", "covid_testing", "nafld1", "synthetic_1000", "synthetic_3000")


def _roles(schema) -> dict:
    return ({"target": schema.target} if schema.task == "classification"
            else {"time": schema.time.name, "event": schema.event})


def _csv_table(cohort: str, directory: str) -> tuple:
    """``(frame as zodc reads the CSV, roles)``: a bundled cohort's raw table, or ``synthetic_N``
    (:func:`benchmarks.schema_min_n.cohort`, N rows of 10 columns, a fixed seed)."""
    from zodc.data.datasets import load_raw, load_schema
    from zodc.data.io import read_table

    path = os.path.join(directory, f"{cohort}.csv")
    if cohort.startswith("synthetic_"):
        from benchmarks.schema_min_n import cohort as synthetic

        synthetic(int(cohort.split("_")[1]), 10, 5).to_csv(path, index=False)
        roles = {"target": "outcome"}
    else:
        load_raw(cohort).to_csv(path, index=False)
        roles = _roles(load_schema(cohort))
    return read_table(path), roles


def bounds(cohorts, seeds: int) -> dict:
    """The clipped share and looseness of the numeric bounds, per cohort and rule."""
    from zodc.budget import THRESHOLD_DELTA_SHARE
    from zodc.data import dp_schema
    from zodc.data.schema import NumericColumn

    noise = dp_schema.schema_noise_multiplier(1.0, 1e-5, THRESHOLD_DELTA_SHARE * 1e-5, 0.1)
    default, summary = dp_schema.REFINE_TRIM, {}
    try:
        with tempfile.TemporaryDirectory() as directory:
            for cohort in cohorts:
                frame, roles = _csv_table(cohort, directory)
                frame = frame.iloc[np.random.default_rng(0).permutation(len(frame))[:int(0.7 * len(frame))]]
                frame = frame.reset_index(drop=True)
                summary[cohort] = {}
                for rule in RULES:
                    dp_schema.REFINE_TRIM = rule
                    clipped, loose = [], []
                    for seed in range(seeds):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            try:
                                schema, _, _ = dp_schema.estimate_schema_and_count(
                                    np.random.default_rng(1000 + seed), frame, noise_multiplier=noise,
                                    threshold_delta=THRESHOLD_DELTA_SHARE * 1e-5, **roles)
                            except Exception:  # noqa: BLE001 - a refusal is an outcome here
                                continue
                        numeric = [c for c in schema.columns if isinstance(c, NumericColumn)]
                        for column in numeric + ([schema.time] if schema.time is not None else []):
                            values = pd.to_numeric(frame[column.name], errors="coerce").to_numpy(float)
                            values = values[np.isfinite(values)]
                            if not len(values):
                                continue
                            clipped.append(float(np.mean((values < column.lower) | (values > column.upper))))
                            low, high = np.quantile(values, [0.005, 0.995])
                            if high > low:
                                loose.append(float(np.log2((column.upper - column.lower) / (high - low))))
                    summary[cohort][rule] = {
                        "columns": len(clipped), "clipped_mean": round(float(np.mean(clipped or [0])), 4),
                        "clipped_over_10pc": round(float(np.mean(np.array(clipped) > 0.1)) if clipped else 0.0, 3),
                        "looseness_log2_mean": round(float(np.mean(loose or [0])), 3)}
                print(json.dumps({cohort: summary[cohort]}), flush=True)
    finally:
        dp_schema.REFINE_TRIM = default
    return {"seeds": seeds, "cohorts": summary}


def run(cohort: str, seeds: int, extra: tuple = ()) -> dict:
    """The paired condensations; ``extra``: more ``zodc condense`` arguments (the smoke test's short runs)."""
    from zodc.data import dp_schema
    from zodc.data.datasets import load_raw, load_schema

    roles, metric = roles_and_metric(load_schema(cohort))
    scores, _ = paired_runs(load_raw(cohort), roles, metric, seeds, dp_schema, "REFINE_TRIM",
                            {rule: rule for rule in RULES}, extra=extra)
    return {"cohort": cohort, "seeds": seeds, "metric": metric,
            "rules": {rule: paired(scores[rule], scores["before"], metric) for rule in RULES}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="kidney_transplant")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--bounds", action="store_true", help="the schema's bounds alone, on every cohort")
    args = parser.parse_args(argv)
    print(json.dumps(bounds(BOUNDS_COHORTS, args.seeds) if args.bounds else run(args.cohort, args.seeds), indent=1))


if __name__ == "__main__":
    main()
