"""The steps' calibration: on RDP alone, or on the tighter of RDP and PLD (``zodc.budget.PLD_CALIBRATION``).

A bundled cohort is condensed as the README runs it (``zodc condense --dataset NAME``: its public
schema, epsilon 1, the default model, steps and holdout), once per calibration and seed, the same seed
for both (paired: the same split, the same directions and noise draws, scaled by each sigma). Per run:
the steps' noise multiplier, the epsilon the report gives, and the synthetic table's AUROC
(classification) or C-index (survival) on the held-out real records. One line of JSON per seed, then
the paired summary.

    python -m benchmarks.pld_calibration --cohort breast_cancer --seeds 30 [--model logistic]

Seeds are fixed (0..seeds-1). Results: ``docs/results.md``, "Calibrating the steps on the PLD".
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np

from benchmarks.paired_rules import condense_quietly, paired

RULES = {"rdp": False, "pld": True}


def run(cohort: str, seeds: int, extra: tuple = ()) -> dict:
    """The paired runs; ``extra``: more ``zodc condense`` arguments (the smoke test's short runs)."""
    from zodc import budget
    from zodc.data.datasets import load_schema

    metric = "auroc" if load_schema(cohort).task == "classification" else "c_index"
    default = budget.PLD_CALIBRATION
    rows = {rule: [] for rule in RULES}
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "synthetic.csv")
        try:
            for seed in range(seeds):
                for rule, pld in RULES.items():
                    budget.PLD_CALIBRATION = pld
                    code = condense_quietly(["--dataset", cohort, "--seed", str(seed), "--quiet", "--out", out, *extra])
                    if code != 0:
                        rows[rule].append(None)
                        continue
                    privacy = json.load(open(out.replace(".csv", ".report.json")))["privacy"]
                    utility = json.load(open(out.replace(".csv", ".owner.json")))["utility"]
                    rows[rule].append({"score": utility["synthetic"][metric], "sigma": privacy["noise_multiplier"],
                                       "epsilon": privacy["epsilon"], "epsilon_rdp": privacy["epsilon_rdp"]})
                print(json.dumps({"seed": seed, **{rule: rows[rule][-1] for rule in RULES}}), flush=True)
        finally:
            budget.PLD_CALIBRATION = default
    summary = {"cohort": cohort, "seeds": seeds, "metric": metric, "rules": {}}
    for rule in RULES:
        done = [r for r in rows[rule] if r is not None]
        summary["rules"][rule] = {
            "sigma_mean": round(float(np.mean([r["sigma"] for r in done])), 3) if done else None,
            "epsilon_max": round(float(max(r["epsilon"] for r in done)), 5) if done else None,
            **paired([None if r is None else r["score"] for r in rows[rule]],
                     [None if r is None else r["score"] for r in rows["rdp"]], metric)}
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="breast_cancer")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--model", default=None, help="the preset (default: the command's)")
    args = parser.parse_args(argv)
    extra = ("--model", args.model) if args.model else ()
    print(json.dumps(run(args.cohort, args.seeds, extra), indent=1))


if __name__ == "__main__":
    main()
