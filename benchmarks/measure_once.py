"""Measure once, then optimise freely: a DP synthetic proxy of the cohort, condensed without noise.

The per-step mechanism spends the budget on every step's noisy loss differences. Here the whole
budget is spent once, on the marginals a graphical model is fitted to (MST on Private-PGM,
``benchmarks.baselines.mst``: 1- and 2-way marginals of public bins, McKenna et al. 2021), a proxy
of ``--proxy-rows`` records (a public number) is sampled from it, and the zero-order loop runs on the
proxy at ``epsilon = inf`` — post-processing of the DP marginals, so any number of steps costs
nothing more. Each seed scores, paired on the same split, the default per-step condensation, the
measure-once table, and the random real subset, exactly as ``zodc condense`` splits and scores
(``zodc.evaluate.heldout``)::

    python -m benchmarks.measure_once --dataset covid_testing --model tree --epsilon 1 --seeds 30 \
        --out benchmarks/results/measure_once_covid_tree.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.runner import release_compiled_programs  # noqa: E402


def run_seed(dataset: str, model: str, epsilon: float, seed: int, proxy_rows: int, arms: tuple) -> dict:
    from benchmarks.baselines import mst
    from zodc.cli import _split
    from zodc.data.datasets import load_dataset
    from zodc.estimator import Condenser
    from zodc.evaluate.heldout import classification_heldout, survival_heldout

    data = load_dataset(dataset)
    schema, frame = data.schema, data.frame
    train, test = _split(frame, 0.3, seed)
    survival = schema.task == "survival"
    heldout = survival_heldout if survival else classification_heldout
    metric = "c_index" if survival else "auroc"
    row = {"seed": seed}

    def fit(table, eps, random_state):
        condenser = Condenser(model, epsilon=eps, schema=schema, random_state=random_state)
        if survival:
            condenser.fit(table, duration_col=schema.time.name, event_col=schema.event)
        else:
            target = schema.target
            condenser.fit(table.drop(columns=[target]), table[target])
        return condenser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "per_step" in arms:
            started = time.perf_counter()
            result = heldout(fit(train, epsilon, seed), model, train, test, seed)
            row["per_step"] = result["synthetic"][metric]
            row["full_data"], row["random_subset"] = result["full_data"][metric], result["random_subset"][metric]
            row["per_step_seconds"] = time.perf_counter() - started
        if "measure_once" in arms:
            started = time.perf_counter()
            proxy = mst(train, schema, epsilon=epsilon, num_rows=proxy_rows, random_state=seed).table
            result = heldout(fit(proxy, math.inf, seed), model, train, test, seed)
            row["measure_once"] = result["synthetic"][metric]
            row["full_data"], row["random_subset"] = result["full_data"][metric], result["random_subset"][metric]
            row["measure_once_seconds"] = time.perf_counter() - started
    return row


def paired(rows: list, a: str, b: str) -> str:
    diffs = np.array([row[a] - row[b] for row in rows if a in row and b in row])
    if diffs.size < 2:
        return "n/a"
    return f"{diffs.mean():+.3f} ± {diffs.std(ddof=1) / math.sqrt(diffs.size):.3f} (n={diffs.size})"


def paired_arms_parser(description: str) -> argparse.ArgumentParser:
    """The options every paired-arms benchmark takes: a cohort, a model, ε, the seeds and ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", default="tree")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out")
    return parser


def main(argv=None) -> int:
    parser = paired_arms_parser(__doc__.splitlines()[0])
    parser.add_argument("--proxy-rows", type=int, default=5000, help="public size of the DP proxy")
    parser.add_argument("--arms", default="per_step,measure_once")
    args = parser.parse_args(argv)
    arms = tuple(args.arms.split(","))
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        release_compiled_programs()  # a long run of MST fits would otherwise exhaust the memory maps
        rows.append(run_seed(args.dataset, args.model, args.epsilon, seed, args.proxy_rows, arms))
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    summary = {f"{a} - {b}": paired(rows, a, b) for a, b in [("per_step", "random_subset"),
                                                               ("measure_once", "random_subset"),
                                                               ("measure_once", "per_step"),
                                                               ("full_data", "random_subset")]}
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"dataset": args.dataset, "model": args.model, "epsilon": args.epsilon,
                       "proxy_rows": args.proxy_rows, "rows": rows, "paired": summary}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
