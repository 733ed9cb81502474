"""The four larger bundled cohorts run as a data owner would: the raw table as a CSV with no schema,
and the bundled public schema, each over several seeds of ``zodc condense`` with default settings
(epsilon 1, holdout 0.3). Records the owner-only utility (synthetic table, random real sample of the
same size, full real data), what the DP schema kept, and the wall time of each run.

    python -m benchmarks.own_cohorts --seeds 5 --out benchmarks/results/issue22_own_cohorts.json

Needs the GPL cohorts extra (``pip install "zodc[cohorts]"``). Seeds 1..seeds are fixed (secret seeds in
a release; here reproducibility).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
import warnings

from zodc.cli import main as zodc_main
from zodc.data.datasets import COHORTS, load_raw, load_schema


def _metric(entry: dict, name: str):
    return None if entry is None else entry.get(name)


def one_run(args: list, out: str) -> dict:
    started = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        code = zodc_main(["condense", *args, "--quiet", "--out", out])
    seconds = time.perf_counter() - started
    if code != 0:
        return {"exit": code, "seconds": seconds}
    owner = json.load(open(out[:-4] + ".owner.json", encoding="utf-8"))["utility"]
    metric = owner["metric"]
    schema = json.load(open(out[:-4] + ".schema.json", encoding="utf-8")) if os.path.exists(out[:-4] + ".schema.json") else None
    return {"exit": 0, "seconds": round(seconds, 1), "metric": metric,
            "synthetic": _metric(owner["synthetic"], metric),
            "random_subset": _metric(owner["random_subset"], metric),
            "full_data": _metric(owner["full_data"], metric),
            "schema_columns": None if schema is None else [c["name"] for c in schema["columns"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cohorts", default=",".join(COHORTS))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cohorts.split(","):
            schema = load_schema(name)
            raw = os.path.join(tmp, f"{name}.csv")
            load_raw(name).to_csv(raw, index=False)
            roles = ["--target", schema.target] if schema.task == "classification" else \
                ["--time-col", schema.time.name, "--event-col", schema.event]
            for mode, base in (("schema-less CSV", ["--data", raw, *roles]), ("public schema", ["--dataset", name])):
                for seed in range(1, args.seeds + 1):
                    row = {"cohort": name, "mode": mode, "seed": seed,
                           **one_run([*base, "--epsilon", "1", "--seed", str(seed)],
                                     os.path.join(tmp, f"{name}-{mode.split()[0]}-{seed}.csv"))}
                    print(json.dumps(row), flush=True)
                    results.append(row)
                    with open(args.out, "w", encoding="utf-8") as handle:
                        json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
