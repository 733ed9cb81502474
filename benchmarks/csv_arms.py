"""Paired arms over seeds on one CSV run as a new user would (`zodc condense --data`, no schema).

Each seed runs every arm (arm 0 the defaults, the others with their extra options) on the same
table, holdout and noise seed, so differences are paired; the summary gives each arm's mean, its
paired difference from arm 0 and from the random real sample of the table's size (mean ± SE). The
table is a CSV (`--data`, with its roles) or a recipe of `benchmarks.cohorts` (`--cohort`).

    python -m benchmarks.csv_arms --cohort nwtco_three_classes --seeds 30 \\
        --arm "--learning-rate 0.02" --arm "--average-tail 0.5" --out benchmarks/results/three_classes_arms.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile

import numpy as np

from benchmarks import cohorts
from benchmarks.unseen_cohorts import one_run

def _chile():
    from benchmarks.unseen_cohorts import load

    return load("carData", "Chile")


#: Recipes and their roles: two derived from the bundled nwtco (for choosing), and carData's Chile
#: (4 classes, never used to choose anything: for checking a choice on a cohort it was not made on).
COHORTS = {"nwtco_three_classes": (cohorts.nwtco_three_classes, ["--target", "outcome"]),
           "nwtco_histology_classes": (cohorts.nwtco_histology_classes, ["--target", "outcome"]),
           "chile": (_chile, ["--target", "vote"])}


def paired(values: np.ndarray, reference: np.ndarray) -> dict:
    """Mean ± SE of the paired differences ``values - reference``."""
    d = np.asarray(values, float) - np.asarray(reference, float)
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None}


def run(csv: str, roles: list, arms: list, seeds: range, *, epsilon: str = "1", base: list = ()) -> dict:
    """Every arm on every seed; ``{"rows", "summary"}`` (``arms[0]`` is the reference, usually ``[]``)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            row = {"seed": seed}
            for k, arm in enumerate(arms):
                result = one_run(["--data", csv, *roles, "--epsilon", epsilon, "--seed", str(seed), *base, *arm],
                                 os.path.join(tmp, f"arm{k}.csv"))
                if result["exit"] != 0:
                    raise RuntimeError(f"arm {arm} seed {seed}: {result.get('error')}")
                metric = result["metric"]
                row[f"arm{k}"] = result[f"synthetic.{metric}"]
                row["random_subset"], row["full_data"] = result[f"random_subset.{metric}"], result[f"full_data.{metric}"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    random = np.array([r["random_subset"] for r in rows])
    summary = []
    for k, arm in enumerate(arms):
        values = np.array([r[f"arm{k}"] for r in rows])
        summary.append({"arm": arm, "mean": float(values.mean()), "minus_arm0": paired(values, [r["arm0"] for r in rows]),
                        "minus_random": paired(values, random)})
    return {"rows": rows, "summary": summary, "random_subset": float(random.mean()),
            "full_data": float(np.mean([r["full_data"] for r in rows]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cohort", choices=sorted(COHORTS))
    source.add_argument("--data", help="a CSV (give its roles with --roles)")
    parser.add_argument("--roles", default="", help='e.g. "--target outcome"')
    parser.add_argument("--base", default="", help='options every arm gets, quoted (e.g. "--model logistic")')
    parser.add_argument("--arm", action="append", default=[], help="one arm's extra options, quoted")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--epsilon", default="1")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    arms = [[]] + [shlex.split(arm) for arm in args.arm]
    with tempfile.TemporaryDirectory() as tmp:
        if args.cohort:
            make, roles = COHORTS[args.cohort]
            csv = os.path.join(tmp, f"{args.cohort}.csv")
            make().to_csv(csv, index=False)
        else:
            csv, roles = args.data, shlex.split(args.roles)
        result = run(csv, roles, arms, range(1, args.seeds + 1), epsilon=args.epsilon, base=shlex.split(args.base))
    result.update(cohort=args.cohort or os.path.basename(args.data), epsilon=args.epsilon, base=shlex.split(args.base))
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    for entry in result["summary"]:
        print(f"{' '.join(entry['arm']) or 'defaults'}: {entry['mean']:.3f}, - arm 0 {entry['minus_arm0']['mean']:+.3f} "
              f"± {entry['minus_arm0']['se'] or 0:.3f}, - random {entry['minus_random']['mean']:+.3f} "
              f"± {entry['minus_random']['se'] or 0:.3f}")


if __name__ == "__main__":
    main()
