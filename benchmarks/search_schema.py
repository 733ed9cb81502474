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
import contextlib
import io
import json
import os
import tempfile
import warnings


def main() -> None:
    from zodc.cli import main as zodc_main
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
            out = os.path.join(tmp, f"out{seed}.csv")
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                code = zodc_main(["condense", "--data", raw, "--target", target, "--search", args.grid,
                                  "--seed", str(seed), "--out", out, "--quiet"])
            row = {"seed": seed, "exit": code}
            if code == 0:
                with open(out[:-4] + ".owner.json", encoding="utf-8") as handle:
                    utility = json.load(handle)["utility"]
                with open(out[:-4] + ".schema.json", encoding="utf-8") as handle:
                    schema = json.load(handle)
                row.update(auroc=utility["synthetic"]["auroc"], random=utility["random_subset"]["auroc"],
                           columns=len(schema["columns"]))
            print(json.dumps(row), flush=True)
            rows.append(row)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"cohort": args.cohort, "grid": args.grid, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
