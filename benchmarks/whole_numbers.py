"""Whether the DP schema finds whole-number columns (``zodc.data.dp_schema.ESTIMATE_WHOLE``).

A bundled cohort's raw table is written as a CSV and condensed as a data owner would run it
(``zodc condense --data cohort.csv``: no schema, epsilon 1, the default model, steps and holdout),
once per rule and seed, the same seed for both rules (the whole-number counts are drawn under both,
so the runs share their noise). Per run: released or refused, the number of columns the DP schema
marks ``integer`` (released rounded), and the synthetic table's AUROC (classification) or C-index
(survival) on the held-out real records; a refusal is scored 0.5. One line of JSON per seed, then
the paired summary.

    python -m benchmarks.whole_numbers --cohort gbsg2 --seeds 30

Rules: ``before`` (``integer`` only where declared, or by a typed frame's dtype) and ``counted``
(also where the noisy whole-number counts say so). Seeds are fixed (0..seeds-1). Results:
``docs/results.md``, "Whole numbers".
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.paired_rules import paired, paired_runs, roles_and_metric

RULES = {"before": False, "counted": True}


def run(cohort: str, seeds: int, extra: tuple = ()) -> dict:
    """The paired runs; ``extra``: more ``zodc condense`` arguments (the smoke test's short runs)."""
    from zodc.data import dp_schema
    from zodc.data.datasets import load_raw, load_schema

    roles, metric = roles_and_metric(load_schema(cohort))
    def integer_columns(out: str) -> int:
        with open(out.replace(".csv", ".schema.json")) as file:
            estimated = json.load(file)
        return sum(bool(c.get("integer")) for c in estimated["columns"] + [estimated.get("time") or {}])

    scores, marked = paired_runs(load_raw(cohort), roles, metric, seeds, dp_schema, "ESTIMATE_WHOLE", RULES,
                                 extra=extra, measure=integer_columns)
    summary = {"cohort": cohort, "seeds": seeds, "metric": metric, "rules": {}}
    for rule in RULES:
        done = [m for m in marked[rule] if m is not None]
        summary["rules"][rule] = {"columns_marked_integer_mean": round(float(np.mean(done or [0])), 2),
                                  **paired(scores[rule], scores["before"], metric)}
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="gbsg2")
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.cohort, args.seeds), indent=1))


if __name__ == "__main__":
    main()
