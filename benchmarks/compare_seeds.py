"""Paired comparison of `benchmarks/seeds.py` runs against a baseline run (same seeds).

    python -m benchmarks.compare_seeds benchmarks/results/sweeps/eps1_tree_base.json \
        benchmarks/results/sweeps/*.json --markdown benchmarks/results/sweeps/SUMMARY.md

For each run: mean, median and sd of the synthetic table's score, and the paired difference
(mean ± standard error over seeds) against the baseline and against the random real subset.
Only seeds present in both runs are paired. Runs may be plain or ``.json.gz``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root (the `benchmarks` package) importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import read_json, stem  # noqa: E402


def _scores(run: dict, key: str) -> dict[int, float]:
    return {row["seed"]: row[key] for row in run["rows"]}


def compare(baseline: dict, run: dict) -> dict:
    base = _scores(baseline, "synthetic")
    synthetic = _scores(run, "synthetic")
    random = _scores(run, "random_subset")
    seeds = sorted(set(base) & set(synthetic))
    s = np.array([synthetic[i] for i in seeds])
    d_base = s - np.array([base[i] for i in seeds])
    d_random = s - np.array([random[i] for i in seeds])
    se = lambda x: float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
    return {"seeds": len(seeds), "mean": float(s.mean()), "median": float(np.median(s)), "sd": float(s.std(ddof=1)),
            "minus_baseline": (float(d_base.mean()), se(d_base)), "minus_random_subset": (float(d_random.mean()), se(d_random)),
            "below_0.6": int((s < 0.6).sum())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("baseline")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    baseline = read_json(args.baseline)
    lines = ["| run | overrides | ε | seeds | mean | median | sd | − baseline (± se) | − random subset (± se) | runs < 0.6 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in args.runs:
        run = read_json(path)
        c = compare(baseline, run)
        config = run["config"]
        overrides = ", ".join(f"{k}={v}" for k, v in config.get("overrides", {}).items()) or "defaults"
        lines.append(f"| {os.path.basename(stem(path))} | {overrides} | {config['epsilon']} | {c['seeds']} | {c['mean']:.3f} | "
                     f"{c['median']:.3f} | {c['sd']:.3f} | {c['minus_baseline'][0]:+.3f} ± {c['minus_baseline'][1]:.3f} | "
                     f"{c['minus_random_subset'][0]:+.3f} ± {c['minus_random_subset'][1]:.3f} | {c['below_0.6']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(f"Paired against `{os.path.basename(args.baseline)}` (same seeds).\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
