"""How the DP schema decides that a column has missing values (``zodc.data.dp_schema.COMBINE_MISSING``).

A bundled cohort's raw table gets missing cells (``--holes`` of the records in its first three feature
columns, completely at random, or with ``--informative`` only in records of the last class or with
an event; fixed seed), is written as a CSV and condensed as a data owner would
run it (``zodc condense --data cohort.csv``: no schema, epsilon 1, the default model, steps and
holdout), once per rule and seed, the same seed for both rules (paired). Per run: released or
refused, the number of columns marked ``missing`` in the DP schema, and the synthetic table's
AUROC (classification) or C-index (survival) on the held-out real records; a refusal is scored 0.5.
One line of JSON per seed, then the paired summary.

    python -m benchmarks.missing_count --cohort diabetes_progression --seeds 30

Rules: ``refine`` (the refinement's missing count alone, the rule before) and ``combined`` (the
scan's and the refinement's counts, inverse-variance weighted). Seeds are fixed (0..seeds-1).
Results: ``docs/results.md``, "Which columns are marked missing".
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np

from benchmarks.paired_rules import condense_quietly, paired

RULES = {"refine": False, "combined": True}


def holed(cohort: str, holes: float, informative: bool = False):
    """The cohort's raw table with ``holes`` of the cells of its first three feature columns blanked
    (a fixed generator: the same table every run). ``informative``: only in records of the last
    class (classification) or with an event (survival), at ``holes`` of the records overall (a
    test ordered for the sicker patients, missing for the others; assumes that group holds more
    than ``holes`` of the records)."""
    from zodc.data.datasets import load_raw, load_schema

    schema, raw = load_schema(cohort), load_raw(cohort).copy()
    roles = {schema.target} if schema.task == "classification" else {schema.time.name, schema.event}
    rng = np.random.default_rng(20261207)
    if not informative:
        rate = np.full(len(raw), holes)
    else:
        labels = raw[schema.target] if schema.task == "classification" else raw[schema.event]
        group = (labels == sorted(labels.dropna().unique())[-1]).to_numpy()
        rate = np.where(group, holes * len(raw) / group.sum(), 0.0)
    for column in [c for c in raw.columns if c not in roles][:3]:
        raw[column] = raw[column].astype(object).where(rng.random(len(raw)) >= rate, None)
    return schema, raw


def run(cohort: str, seeds: int, holes: float = 0.1, extra: tuple = (), informative: bool = False) -> dict:
    """The paired runs; ``extra``: more ``zodc condense`` arguments (the smoke test's short runs)."""
    from zodc.data import dp_schema

    schema, raw = holed(cohort, holes, informative)
    roles = (["--target", schema.target] if schema.task == "classification"
             else ["--time-col", schema.time.name, "--event-col", schema.event])
    metric = "auroc" if schema.task == "classification" else "c_index"
    default = dp_schema.COMBINE_MISSING
    scores, marked = {r: [] for r in RULES}, {r: [] for r in RULES}
    with tempfile.TemporaryDirectory() as directory:
        data, out = os.path.join(directory, f"{cohort}.csv"), os.path.join(directory, "synthetic.csv")
        raw.to_csv(data, index=False)
        try:
            for seed in range(seeds):
                for rule, combine in RULES.items():
                    dp_schema.COMBINE_MISSING = combine
                    code = condense_quietly(["--data", data, *roles, "--seed", str(seed), "--quiet", "--out", out,
                                             *extra])
                    if code == 0:
                        utility = json.load(open(out.replace(".csv", ".owner.json")))["utility"]
                        columns = json.load(open(out.replace(".csv", ".schema.json")))["columns"]
                        scores[rule].append(utility["synthetic"][metric])
                        marked[rule].append(sum(bool(c.get("missing")) for c in columns))
                    else:
                        scores[rule].append(None)
                        marked[rule].append(None)
                print(json.dumps({"seed": seed, **{r: [scores[r][-1], marked[r][-1]] for r in RULES}}), flush=True)
        finally:
            dp_schema.COMBINE_MISSING = default
    summary = {"cohort": cohort, "seeds": seeds, "holes": holes, "informative": informative, "metric": metric,
               "rules": {}}
    for rule in RULES:
        done = [m for m in marked[rule] if m is not None]
        summary["rules"][rule] = {"columns_marked_missing_mean": round(float(np.mean(done or [0])), 2),
                                  **paired(scores[rule], scores["refine"], metric)}
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="diabetes_progression")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--holes", type=float, default=0.1)
    parser.add_argument("--informative", action="store_true",
                        help="holes only in records of the last class or with an event")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.cohort, args.seeds, args.holes, informative=args.informative), indent=1))


if __name__ == "__main__":
    main()
