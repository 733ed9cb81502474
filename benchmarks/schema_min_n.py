"""How large must a cohort be for the DP schema to succeed without a public schema?

For 5, 10 and 20 feature columns and cohort sizes from 500 to 5,000, draws synthetic cohorts with the
kinds of columns clinical tables have (an age, a right-skewed lab value with 10 % missing, a year, a
3-level category with stray case, a small count) and a 5 % outcome, runs
:func:`zodc.data.dp_schema.estimate_schema_and_count` at the budget of a schema-less run (epsilon = 1,
delta = 1e-5, calibrated as :class:`zodc.Condenser` does; ``--share``: the schema's share, default
``auto`` as zodc's, :func:`zodc.data.dp_schema.auto_share`, or a number), and records per run:
whether it released, the share of feature columns estimated (the rest are left out with a warning),
and the share of values the estimated bounds clip. "Succeeds" at a size means every run released and
at least 95 % of the columns were estimated on average.

    python -m benchmarks.schema_min_n --seeds 20 --share auto --out benchmarks/results/schema_min_n_auto.json
    python -m benchmarks.schema_min_n --seeds 20 --share 0.1 --out benchmarks/results/schema_min_n.json

Seeds are fixed (0..seeds-1): reproducible, and the noise is the exact sampler's.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from zodc.data.dp_schema import auto_share, estimate_schema_and_count, schema_noise_multiplier
from zodc.data.schema import NumericColumn
from zodc.privacy.noise import secret_generator

EPSILON, DELTA, THRESHOLD_SHARE = 1.0, 1e-5, 0.1


def cohort(n: int, columns: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {}
    for j in range(columns):
        kind = j % 5
        if kind == 0:
            data[f"age{j}"] = rng.normal(60, 12, n).round()
        elif kind == 1:
            lab = np.exp(rng.normal(0, 0.8, n)) * (1 + j)
            lab[rng.random(n) < 0.1] = np.nan
            data[f"lab{j}"] = lab
        elif kind == 2:
            data[f"year{j}"] = rng.integers(1995, 2004, n).astype(float)
        elif kind == 3:
            data[f"cat{j}"] = rng.choice(["A", "b ", "B", "c"], n, p=[0.5, 0.15, 0.15, 0.2])
        else:
            data[f"count{j}"] = rng.poisson(2, n).astype(float)
    frame = pd.DataFrame(data).astype("string")  # as a CSV is read: every column "auto"
    frame["outcome"] = np.where(rng.random(n) < 0.05, "yes", "no")
    return frame


def run(sizes, column_counts, seeds: int, share="auto") -> dict:
    cells = []
    for columns in column_counts:
        shared = auto_share(columns, False) if share == "auto" else float(share)
        sigma = schema_noise_multiplier(EPSILON, DELTA, THRESHOLD_SHARE * DELTA, shared)
        for n in sizes:
            released, estimated, clipped, seconds = 0, [], [], []
            for seed in range(seeds):
                frame = cohort(n, columns, seed)
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        schema, _, _ = estimate_schema_and_count(
                            secret_generator(seed, (1,)), frame, target="outcome", noise_multiplier=sigma,
                            threshold_delta=THRESHOLD_SHARE * DELTA)
                    except Exception:  # noqa: BLE001 - a refusal is an outcome here
                        estimated.append(0.0)
                        continue
                seconds.append(time.perf_counter() - started)
                released += 1
                features = schema.feature_columns
                estimated.append(len(features) / columns)
                for column in features:
                    if isinstance(column, NumericColumn):
                        values = pd.to_numeric(frame[column.name], errors="coerce").dropna().to_numpy(float)
                        clipped.append(float(((values < column.lower) | (values > column.upper)).mean()))
            cell = {"columns": columns, "schema_share": shared, "noise_multiplier": sigma, "n": n, "runs": seeds,
                    "released": released,
                    "columns_estimated": float(np.mean(estimated)),
                    "clipped_median": float(np.median(clipped)) if clipped else None,
                    "clipped_p90": float(np.quantile(clipped, 0.9)) if clipped else None,
                    "seconds_median": float(np.median(seconds)) if seconds else None}
            cell["succeeds"] = released == seeds and cell["columns_estimated"] >= 0.95
            print(json.dumps(cell), flush=True)
            cells.append(cell)
    smallest = {}
    for columns in column_counts:
        ok = [c["n"] for c in cells if c["columns"] == columns and c["succeeds"]]
        smallest[str(columns)] = min(ok) if ok else None
    return {"epsilon": EPSILON, "delta": DELTA, "schema_share": share, "cells": cells, "smallest_n": smallest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sizes", default="250,350,500,750,1000,1500,3000")
    parser.add_argument("--columns", default="5,10,20,30")
    parser.add_argument("--share", default="auto", help="the schema's share of the budget: a number, or 'auto'")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = run([int(v) for v in args.sizes.split(",")], [int(v) for v in args.columns.split(",")], args.seeds,
                 args.share)
    print("smallest n:", result["smallest_n"])
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
