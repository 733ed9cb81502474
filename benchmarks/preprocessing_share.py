"""How much of the budget the DP schema gets when a data owner gives none (``--preprocessing-share``).

A bundled cohort's raw table is written as a CSV and condensed as a data owner would run it
(``zodc condense --data cohort.csv``: no schema, epsilon 1, the default model, steps and holdout),
once per share and seed, the same seed for every share. Per run: released or refused, the number of
feature columns the DP schema kept, and the synthetic table's AUROC (classification) or C-index
(survival) on the held-out real records; a refusal is scored 0.5. One line of JSON per seed, then
the paired summary against the first share.

    python -m benchmarks.preprocessing_share --cohort breast_cancer --seeds 30 --shares 0.1 0.2 0.3 0.45 auto

A share is a number in (0, 1) or ``auto`` (zodc's default, :func:`zodc.data.dp_schema.auto_share`).
Seeds are fixed (0..seeds-1). Results: ``docs/results.md``, "The schema's share of the budget".
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.paired_rules import paired, paired_runs, roles_and_metric


def run(cohort: str, seeds: int, shares: list, extra: tuple = ()) -> dict:
    """The paired runs; ``extra``: more ``zodc condense`` arguments (the smoke test's short runs)."""
    from zodc.data.datasets import load_raw, load_schema

    roles, metric = roles_and_metric(load_schema(cohort))
    rules = {str(share): ("--preprocessing-share", str(share)) for share in shares}

    def kept_features(out: str) -> int:
        with open(out.replace(".csv", ".schema.json")) as file:
            return len(json.load(file)["columns"]) - (1 if roles[0] == "--target" else 0)

    scores, kept = paired_runs(load_raw(cohort), roles, metric, seeds, None, None, rules, extra=extra,
                               measure=kept_features)
    first = next(iter(rules))
    summary = {"cohort": cohort, "seeds": seeds, "metric": metric, "shares": {}}
    for rule in rules:
        done = [k for k in kept[rule] if k is not None]
        summary["shares"][rule] = {"features_kept_mean": round(float(np.mean(done)), 2) if done else None,
                                   **paired(scores[rule], scores[first], metric)}
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="breast_cancer")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--shares", nargs="+", default=["0.1", "auto"])
    args = parser.parse_args(argv)
    print(json.dumps(run(args.cohort, args.seeds, args.shares), indent=1))


if __name__ == "__main__":
    main()
