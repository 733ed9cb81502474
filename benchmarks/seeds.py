"""Utility over many seeds, with paired differences: the evidence behind a default.

On cohorts of a few hundred rows one run's AUROC moves by 0.03-0.07 from seed to seed, so a
claim rests on >= 30 seeds and on *paired* differences (the same seed fixes the split, the random
subset draws and the condensation's randomness for both arms).

    python -m benchmarks.seeds --dataset breast_cancer --model tree --epsilon 1 --seeds 30 \
        --out benchmarks/results/seeds_breast_cancer_tree_eps1.json

Survival cohorts (``--dataset gbsg2 --model cox``) are summarised by the C-index instead of AUROC.

Each seed runs exactly what ``zodc condense`` runs (70/30 stratified split, condense on the 70 %,
train-on-each-test-on-real on the 30 %). Extra ``--set key=value`` pairs override Condenser
parameters for an A/B comparison against the defaults (``--compare``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def run_seed(dataset: str, model: str, epsilon: float, seed: int, overrides: dict, backend: str,
             out_dir: str | None = None) -> dict:
    """One seed of ``zodc condense`` (``overrides``: ``{argument_name: text}``); its files go to ``out_dir``
    (default: a shared temporary folder — give each concurrent process its own)."""
    from zodc.cli import build_parser, condense_command

    argv = ["condense", "--dataset", dataset, "--model", model, "--epsilon", str(epsilon), "--seed", str(seed),
            "--backend", backend, "--quiet", "--out", os.devnull + ".csv"]
    args = build_parser().parse_args(argv)
    for key, value in overrides.items():
        current = getattr(args, key)
        setattr(args, key, _parse(value) if current is None or isinstance(current, str) else type(current)(value))
    args.out = os.path.join(out_dir or args_tmp(), f"seed{seed}.csv")
    report = condense_command(args)
    utility = report["owner_only"]["utility"]
    metric = "c_index" if "c_index" in utility["synthetic"] else "auroc"  # survival reports Harrell's C-index
    row = {"seed": seed, "metric": metric, **{name: utility[name][metric] for name in ("synthetic", "full_data", "random_subset")},
           "seconds": report["owner_only"]["timing"]["condense_seconds"]}
    if "search" in report["hyperparameters"]:  # a --search run: which candidate the exponential mechanism chose
        row["chosen"] = report["privacy"]["search"]["chosen"]
    return row


def _parse(text: str):
    """An override whose default is None or text: None ("none"), a boolean ("True" / "False", as JSON true / false arrive),
    else int, else float, else the string."""
    if text in ("True", "False", "true", "false"):
        return text.lower() == "true"
    if text in ("None", "none"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def args_tmp() -> str:
    import tempfile

    path = os.path.join(tempfile.gettempdir(), "zodc-seeds")
    os.makedirs(path, exist_ok=True)
    return path


def summarise(rows: list[dict]) -> dict:
    synthetic = np.array([r["synthetic"] for r in rows])
    out = {"num_seeds": len(rows), "metric": rows[0].get("metric", "auroc") if rows else None}
    for name in ("synthetic", "full_data", "random_subset"):
        values = np.array([r[name] for r in rows])
        out[name] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                     "median": float(np.median(values))}
    for name in ("full_data", "random_subset"):
        diff = synthetic - np.array([r[name] for r in rows])
        out[f"synthetic_minus_{name}"] = {"mean": float(diff.mean()),
                                          "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0}
    out["seconds_per_run"] = float(np.mean([r["seconds"] for r in rows]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="breast_cancer")
    parser.add_argument("--model", default="tree")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--set", action="append", default=[], help="override: key=value (CLI argument names with _)")
    parser.add_argument("--out", help="JSON file for the per-seed rows and the summary")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    rows = []
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows.append(run_seed(args.dataset, args.model, args.epsilon, seed, overrides, args.backend))
        print(json.dumps(rows[-1]), file=sys.stderr)
    result = {"config": {"dataset": args.dataset, "model": args.model, "epsilon": args.epsilon, "backend": args.backend,
                         "overrides": overrides, "seeds": [args.first_seed, args.first_seed + args.seeds - 1]},
              "summary": summarise(rows), "rows": rows, "wall_seconds": time.perf_counter() - started}
    print(json.dumps(result["summary"], indent=2))
    if args.out:
        from zodc.data.io import json_safe, write_json_atomic

        write_json_atomic(json_safe(result), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
