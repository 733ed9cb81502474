"""A private search without a schema, as a data owner runs it from a CSV: ``zodc condense --data
raw.csv --target T --search '{"learning_rate": [0.02, 0.1]}'`` at epsilon 1 over seeds, recording
the chosen table's owner-only AUROC, a random real sample's, and how many columns the released DP
schema kept. Run it under two versions of zodc (``PYTHONPATH=<checkout>``, from that checkout) and
pair the outputs by seed to compare them (the thirteenth session: one DP schema released before the
candidates against one per candidate).

    python -m benchmarks.search_schema --cohort nwtco --seeds 30 --out /tmp/new.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile


def main() -> None:
    from benchmarks.unseen_cohorts import one_run
    from zodc.data.datasets import load_raw, load_schema

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohort", default="nwtco")
    parser.add_argument("--grid", default='{"learning_rate": [0.02, 0.1]}')
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    target = load_schema(args.cohort).target
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.csv")
        load_raw(args.cohort).to_csv(raw, index=False)
        for seed in range(1, args.seeds + 1):
            run = one_run(["--data", raw, "--target", target, "--search", args.grid, "--seed", str(seed), "--quiet"],
                          os.path.join(tmp, f"out{seed}.csv"))
            row = {"seed": seed, "exit": run["exit"]}
            if run["exit"] == 0:
                row.update(auroc=run["synthetic.auroc"], random=run["random_subset.auroc"],
                           columns=run["schema_columns"])
            print(json.dumps(row), flush=True)
            rows.append(row)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"cohort": args.cohort, "grid": args.grid, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
