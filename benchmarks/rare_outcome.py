"""The generated rare-outcome cohort (:func:`benchmarks.cohorts.rare_outcome`) run as a new user's
CSV — ``zodc condense --data cohort.csv --target outcome`` with no schema — under named variants
over the same seeds, paired. A variant is ``{condense-argument: value}`` plus research constants as
``"@module.NAME"`` keys (as in :mod:`benchmarks.ablation`)::

    python -m benchmarks.rare_outcome --seeds 30 --model tree \
        --variants '{"old_clip": {"@zodc.estimator.WEIGHTED_CLIP": false}, "default": {}}' \
        --out benchmarks/results/rare_outcome_round29.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import warnings

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.ablation import _patched  # noqa: E402
from benchmarks.cohorts import rare_outcome  # noqa: E402


def run(variants: dict, seeds: range, model: str, epsilon: float, folder: str) -> list[dict]:
    from zodc.cli import build_parser, condense_command

    path = os.path.join(folder, "rare_outcome.csv")
    rare_outcome().to_csv(path, index=False)
    rows = []
    for name, settings in variants.items():
        options = {key: value for key, value in settings.items() if not key.startswith("@")}
        research = {key: value for key, value in settings.items() if key.startswith("@")}
        with _patched(research), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for seed in seeds:
                argv = ["condense", "--data", path, "--target", "outcome", "--model", model, "--epsilon", str(epsilon),
                        "--seed", str(seed), "--quiet", "--out", os.path.join(folder, "out.csv")]
                for key, value in options.items():
                    argv += [f"--{key.replace('_', '-')}", str(value)]
                utility = condense_command(build_parser().parse_args(argv))["owner_only"]["utility"]
                rows.append({"variant": name, "seed": seed,
                             **{table: utility[table]["auroc"] for table in ("synthetic", "random_subset", "full_data")}})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    by = {}
    for row in rows:
        by.setdefault(row["variant"], {})[row["seed"]] = row
    names = list(by)
    out = {}
    for name in names:
        seeds = sorted(by[name])
        synthetic = np.array([by[name][s]["synthetic"] for s in seeds])
        against = {"random_subset": np.array([by[name][s]["random_subset"] for s in seeds])}
        if name != names[0]:
            common = [s for s in seeds if s in by[names[0]]]
            against[names[0]] = np.array([by[names[0]][s]["synthetic"] for s in common])
            synthetic_common = np.array([by[name][s]["synthetic"] for s in common])
        entry = {"seeds": len(seeds), "synthetic": float(synthetic.mean()),
                 "full_data": float(np.mean([by[name][s]["full_data"] for s in seeds]))}
        for other, values in against.items():
            diff = (synthetic_common if other == names[0] else synthetic) - values
            entry[f"minus_{other}"] = [float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size))]
        out[name] = entry
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default='{"default": {}}', help="JSON {name: {argument: value}}")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--model", default="tree")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zodc-rare-") as folder:
        rows = run(json.loads(args.variants), range(args.first_seed, args.first_seed + args.seeds), args.model,
                   args.epsilon, folder)
    result = {"cohort": "benchmarks.cohorts.rare_outcome()", "model": args.model, "epsilon": args.epsilon,
              "variants": json.loads(args.variants), "summary": summary(rows), "rows": rows}
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
