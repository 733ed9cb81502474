"""Fewer releases, more signal each: private evolution against the per-step mechanism, paired.

Each seed splits the cohort as ``zodc condense`` does (its 30 % holdout, ``zodc.cli._split``) and
scores, on the same split with the owner's held-out utility (``zodc.evaluate.heldout``): the default
per-step condensation (``per_step``), private evolution by nearest-neighbour voting
(``benchmarks.private_evolution``; one arm per named settings) and the random real subset of the
same size. The paired differences over seeds are printed and written with ``--out``::

    python -m benchmarks.fewer_releases --dataset nwtco --model tree --seeds 30 \
        --pe '{"pe": {}, "pe_t3": {"iterations": 3}}' --out benchmarks/results/fewer_releases_nwtco_tree.json
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
import warnings

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.measure_once import paired, paired_arms_parser  # noqa: E402
from benchmarks.runner import release_compiled_programs  # noqa: E402


def run_seed(dataset: str, model: str, epsilon: float, seed: int, rows_per_class: int, arms: dict,
             per_step: bool) -> dict:
    from benchmarks.private_evolution import private_evolution
    from zodc.cli import _split
    from zodc.data.datasets import load_dataset
    from zodc.estimator import Condenser
    from zodc.evaluate.heldout import classification_heldout

    data = load_dataset(dataset)
    schema, frame = data.schema, data.frame
    train, test = _split(frame, 0.3, seed)
    row = {"seed": seed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if per_step:
            started = time.perf_counter()
            condenser = Condenser(model, epsilon=epsilon, rows_per_class=rows_per_class, schema=schema,
                                  random_state=seed)
            condenser.fit(train.drop(columns=[schema.target]), train[schema.target])
            result = classification_heldout(condenser, model, train, test, seed)
            row["per_step"] = result["synthetic"]["auroc"]
            row["full_data"], row["random_subset"] = result["full_data"]["auroc"], result["random_subset"]["auroc"]
            row["per_step_seconds"] = time.perf_counter() - started
        for name, options in arms.items():
            started = time.perf_counter()
            rng = np.random.default_rng([seed, 4049])
            options = dict(options)
            budget = float(options.pop("epsilon", epsilon))  # an arm may set its own (e.g. "inf": no noise)
            built = private_evolution(train, schema, rows_per_class, epsilon=budget, random_state=rng, **options)
            assert built.epsilon <= budget * (1 + 1e-9), (built.epsilon, budget)
            release = types.SimpleNamespace(schema_=schema, synthetic_=built.table, num_rows_=len(built.table))
            result = classification_heldout(release, model, train, test, seed)
            row[name] = result["synthetic"]["auroc"]
            row["full_data"], row["random_subset"] = result["full_data"]["auroc"], result["random_subset"]["auroc"]
            row[f"{name}_seconds"] = time.perf_counter() - started
    return row


def main(argv=None) -> int:
    parser = paired_arms_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows-per-class", type=int, default=10)
    parser.add_argument("--pe", default='{"pe": {}}', help="JSON {arm name: private_evolution options}")
    parser.add_argument("--no-per-step", action="store_true", help="skip the per-step condensation")
    args = parser.parse_args(argv)
    arms = json.loads(args.pe)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        release_compiled_programs()  # a long run of fits would otherwise exhaust the memory maps
        rows.append(run_seed(args.dataset, args.model, args.epsilon, seed, args.rows_per_class, arms,
                             not args.no_per_step))
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    pairs = [(name, "random_subset") for name in arms] + [(name, "per_step") for name in arms]
    pairs += [("per_step", "random_subset"), ("full_data", "random_subset")]
    summary = {f"{a} - {b}": paired(rows, a, b) for a, b in pairs}
    means = {key: float(np.mean([row[key] for row in rows if key in row]))
             for key in ["per_step", "random_subset", "full_data", *arms] if any(key in row for row in rows)}
    print(json.dumps({"means": means, "paired": summary}, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"dataset": args.dataset, "model": args.model, "epsilon": args.epsilon,
                       "rows_per_class": args.rows_per_class, "arms": arms, "rows": rows, "means": means,
                       "paired": summary}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
