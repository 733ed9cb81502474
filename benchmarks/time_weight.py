"""The survival time column's weight in the DP schema (``zodc.data.dp_schema.TIME_WEIGHT``).

A bundled survival cohort's raw table, written as a CSV, is condensed as a data owner would run it
(``zodc condense --data cohort.csv --time-col T --event-col E``: no schema, epsilon 1, the default
model, steps and holdout), once per weight and seed, the same seed for every weight (paired). Per run:
released or refused, and the synthetic table's C-index on the held-out real records. A refusal is
scored 0.5 (nothing released, no model). One line of JSON per seed, then the paired summary.

    python -m benchmarks.time_weight --cohort gbsg2 --weights 1,2 --seeds 30

Seeds are fixed (0..seeds-1). Results: ``docs/results.md``, "The time column's weight".
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from benchmarks.paired_rules import condense_quietly, paired


def run(cohort: str, weights: list, seeds: int, extra: tuple = ()) -> dict:
    """The paired runs; ``extra``: more ``zodc condense`` arguments (the smoke test's short runs)."""
    from zodc.data import dp_schema
    from zodc.data.datasets import load_raw, load_schema

    schema = load_schema(cohort)
    default = dp_schema.TIME_WEIGHT
    scores = {w: [] for w in weights}
    with tempfile.TemporaryDirectory() as directory:
        data, out = os.path.join(directory, f"{cohort}.csv"), os.path.join(directory, "synthetic.csv")
        load_raw(cohort).to_csv(data, index=False)
        try:
            for seed in range(seeds):
                for weight in weights:
                    dp_schema.TIME_WEIGHT = weight
                    code = condense_quietly(["--data", data, "--time-col", schema.time.name, "--event-col",
                                             schema.event, "--seed", str(seed), "--quiet", "--out", out, *extra])
                    utility = json.load(open(out.replace(".csv", ".owner.json")))["utility"] if code == 0 else None
                    scores[weight].append(None if utility is None else utility["synthetic"]["c_index"])
                print(json.dumps({"seed": seed, **{str(w): scores[w][-1] for w in weights}}), flush=True)
        finally:
            dp_schema.TIME_WEIGHT = default
    summary = {"cohort": cohort, "seeds": seeds, "weights": {}}
    for weight in weights:
        summary["weights"][str(weight)] = paired(scores[weight], scores[weights[0]], "c_index")
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="gbsg2")
    parser.add_argument("--weights", default="1,2", help="comma-separated; the first is the baseline")
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.cohort, [float(w) for w in args.weights.split(",")], args.seeds), indent=1))


if __name__ == "__main__":
    main()
