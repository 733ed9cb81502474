"""Paired arms over seeds on one CSV run as a new user would (`zodc condense --data`, no schema),
through :func:`benchmarks.paired_rules.paired_runs`.

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
import shlex

import numpy as np
import pandas as pd

from benchmarks import cohorts
from benchmarks.paired_rules import paired_runs, scored


def _chile():
    from benchmarks.unseen_cohorts import load

    return load("carData", "Chile")


#: Recipes and their roles: two derived from the bundled nwtco (for choosing), and carData's Chile
#: (4 classes, never used to choose anything: for checking a choice on a cohort it was not made on).
COHORTS = {"nwtco_three_classes": (cohorts.nwtco_three_classes, ["--target", "outcome"]),
           "nwtco_histology_classes": (cohorts.nwtco_histology_classes, ["--target", "outcome"]),
           "chile": (_chile, ["--target", "vote"])}


def _references(metric: str):
    """``measure`` for :func:`benchmarks.paired_rules.paired_runs`: the random real sample's and the
    full data's score from the owner's file of a released run."""
    def measure(out: str) -> tuple:
        with open(out.replace(".csv", ".owner.json"), encoding="utf-8") as handle:
            utility = json.load(handle)["utility"]
        return utility["random_subset"][metric], utility["full_data"][metric]
    return measure


def run(table: pd.DataFrame, roles: list, arms: list, seeds: range, *, epsilon: str = "1", base: list = ()) -> dict:
    """Every arm on every seed (``arms[0]`` is the reference, usually ``[]``), through
    :func:`benchmarks.paired_rules.paired_runs`; ``{"rows", "summary", "random_subset", "full_data"}``."""
    metric = "auroc" if "--target" in roles else "c_index"
    rules = {f"arm{k}": tuple(arm) for k, arm in enumerate(arms)}
    scores, references = paired_runs(table, roles, metric, len(seeds), None, None, rules, first_seed=seeds.start,
                                     extra=("--epsilon", epsilon, *base), measure=_references(metric))
    if any(score is None for values in scores.values() for score in values):
        raise RuntimeError(f"a run was refused: {scores}")
    random, full = (np.array([r[i] for r in references["arm0"]]) for i in (0, 1))
    rows = [{"seed": seed, **{label: scores[label][i] for label in rules}, "random_subset": random[i],
             "full_data": full[i]} for i, seed in enumerate(seeds)]
    summary = []
    for k, arm in enumerate(arms):
        values = scored(scores[f"arm{k}"])
        summary.append({"arm": arm, "mean": float(values.mean()),
                        "minus_arm0": _difference(values, scored(scores["arm0"])),
                        "minus_random": _difference(values, random)})
    return {"rows": rows, "summary": summary, "random_subset": float(random.mean()), "full_data": float(full.mean())}


def _difference(values: np.ndarray, reference: np.ndarray) -> dict:
    """Mean ± SE of the paired differences ``values - reference``."""
    d = values - reference
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None}


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
    if args.cohort:
        make, roles = COHORTS[args.cohort]
        table = make()
    else:  # read as text, as the command line reads it (the CSV is written back and read by zodc condense)
        table, roles = pd.read_csv(args.data, dtype=str, keep_default_na=False), shlex.split(args.roles)
    result = run(table, roles, arms, range(1, args.seeds + 1), epsilon=args.epsilon, base=shlex.split(args.base))
    result.update(cohort=args.cohort or args.data, epsilon=args.epsilon, base=shlex.split(args.base))
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    for entry in result["summary"]:
        print(f"{' '.join(entry['arm']) or 'defaults'}: {entry['mean']:.3f}, - arm 0 {entry['minus_arm0']['mean']:+.3f} "
              f"± {entry['minus_arm0']['se'] or 0:.3f}, - random {entry['minus_random']['mean']:+.3f} "
              f"± {entry['minus_random']['se'] or 0:.3f}")


if __name__ == "__main__":
    main()
