"""How many cells of the release are empty (``zodc.data.transform.USE_MISSING_RATE``).

A bundled cohort's raw table (with ``--holes`` of the records blanked in its first three feature
columns, completely at random, as :mod:`benchmarks.missing_count` does; 0: as it is) is written as a
CSV and condensed as a data owner would run it (``zodc condense --data cohort.csv``: no schema,
epsilon 1, the default model, steps and holdout), once per rule and seed, the same seed for both
rules (the runs differ only at the release). Per run: for each numeric column the DP schema marks
``missing``, the share of empty cells in the released table against the share in the real table
(the mean absolute gap over those columns), and the synthetic table's AUROC or C-index on the
held-out real records; a refusal is scored 0.5. One line of JSON per seed, then the paired summary.

    python -m benchmarks.missing_rate --cohort flchain --seeds 30
    python -m benchmarks.missing_rate --cohort kidney_transplant --holes 0.1 --seeds 30

Rules: ``indicator`` (each cell drawn from its learned indicator, the rule before) and ``rate``
(the DP schema's ``missing_rate`` of the column, in the rows of highest indicator). Seeds are fixed
(0..seeds-1). Results: ``docs/results.md``, "How many cells are empty".
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from benchmarks.paired_rules import paired, paired_runs, roles_and_metric

RULES = {"indicator": False, "rate": True}


def run(cohort: str, seeds: int, holes: float = 0.0, extra: tuple = ()) -> dict:
    """The paired runs; ``extra``: more ``zodc condense`` arguments (the smoke test's short runs)."""
    from benchmarks.missing_count import holed
    from zodc.data import transform
    from zodc.data.datasets import load_raw, load_schema

    schema, raw = holed(cohort, holes) if holes > 0 else (load_schema(cohort), load_raw(cohort))
    roles, metric = roles_and_metric(schema)
    def empty_share_gap(out: str):
        """The mean absolute gap between the released and the real share of empty cells over the
        numeric columns marked missing (None when there is none)."""
        with open(out.replace(".csv", ".schema.json")) as file:
            marked = [c["name"] for c in json.load(file)["columns"] if c.get("missing") and c["kind"] == "numeric"]
        released = pd.read_csv(out)
        return float(np.mean([abs(released[c].isna().mean() - raw[c].isna().mean()) for c in marked])) \
            if marked else None

    scores, gaps = paired_runs(raw, roles, metric, seeds, transform, "USE_MISSING_RATE", RULES, extra=extra,
                               measure=empty_share_gap)
    summary = {"cohort": cohort, "seeds": seeds, "holes": holes, "metric": metric, "rules": {}}
    for rule in RULES:
        done = [g for g in gaps[rule] if g is not None]
        summary["rules"][rule] = {"runs_with_a_marked_column": len(done),
                                  "empty_share_gap_mean": round(float(np.mean(done)), 4) if done else None,
                                  **paired(scores[rule], scores["indicator"], metric)}
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="flchain")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--holes", type=float, default=0.0, help="share of records blanked in three columns")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.cohort, args.seeds, args.holes), indent=1))


if __name__ == "__main__":
    main()
