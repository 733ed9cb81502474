"""Ablation: many variants x many seeds, run in parallel, with paired differences per group.

A config lists groups; each group fixes (dataset, model, epsilon) and names its variants as
``{name: {condense-argument: value}}`` — the first variant is the group's baseline. A group's
optional ``fixed`` (``{condense-argument: value}``) applies to every variant under its own
overrides: pin the defaults a round ran with, so it reruns the same after a default changes. Every variant
runs the same seeds, so each seed's split, random subset and full-data reference are shared, and
the table reports paired differences (mean ± SE) against the baseline and the random real subset:

    python -m benchmarks.ablation benchmarks/configs/ablation_round1.json --seeds 30 --workers 16 \
        --out benchmarks/results/ablation_round1.json --markdown benchmarks/results/ablation_round1.md \
        --rows-log benchmarks/results/ablation_round1.jsonl.gz

Each seed runs exactly what ``zodc condense`` runs (70/30 stratified split; train on synthetic,
test on the real 30 %). Jobs are (group, variant, seed-block) triples spread over ``--workers``
processes; the JSON is written once, at the end, atomically. A ``--rows-log`` or ``--out`` path
ending in ``.gz`` is written gzip-compressed; ``--from-rows`` reads plain or ``.gz`` logs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root (the `benchmarks` package) importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import append_text, encode, read_jsonl  # noqa: E402
from benchmarks.seeds import run_seed  # noqa: E402


def _owner(path: str):
    """``(object, attribute)`` of a dotted path: the longest importable module, then attributes
    (``zodc.tasks.classification.Classification.start_scale_data``: the class, ``start_scale_data``)."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:-1]:
            owner = getattr(owner, part)
        return owner, parts[-1]
    raise ValueError(f"no module in {path!r}")


def _patched(settings: dict):
    """Research settings that are not options of ``zodc condense``: a key ``"@module.NAME"`` sets the
    module-level constant ``NAME`` of ``module`` (e.g. ``"@zodc.estimator.STEP_RULE": "sgd"``) for
    the job, restored after. Keeps losing research knobs out of the public API."""
    import contextlib

    @contextlib.contextmanager
    def patch():
        saved = []
        try:
            for key, value in settings.items():
                owner, name = _owner(key[1:])
                saved.append((owner, name, getattr(owner, name)))
                setattr(owner, name, value)
            yield
        finally:
            for module, name, value in reversed(saved):
                setattr(module, name, value)
    return patch()


def _run_block(job: dict) -> list[dict]:
    """The job's seeds through ``seeds.run_seed`` (exactly ``zodc condense``), in a private folder;
    ``@module.NAME`` keys patch research constants (:func:`_patched`)."""
    overrides = {key: str(value) for key, value in job["set"].items() if not key.startswith("@")}
    research = {key: value for key, value in job["set"].items() if key.startswith("@")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="zodc-ablation-") as tmp, _patched(research):
        for seed in job["seeds"]:
            started = time.perf_counter()
            row = run_seed(job["dataset"], job["model"], job["epsilon"], seed, overrides, "auto", out_dir=tmp)
            rows.append({"group": job["group"], "variant": job["variant"], **row,
                         "seconds": time.perf_counter() - started})
    return rows


def _jobs(config: dict, seeds: int, block: int, first_seed: int = 0) -> list[dict]:
    jobs = []
    end = first_seed + seeds
    for group in config["groups"]:
        for variant, overrides in group["variants"].items():
            for start in range(first_seed, end, block):
                jobs.append({"group": group["name"], "variant": variant, "dataset": group["dataset"],
                             "model": group["model"], "epsilon": group["epsilon"],
                             "set": {**group.get("fixed", {}), **overrides},
                             "seeds": list(range(start, min(end, start + block)))})
    return jobs


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")


def summarise(config: dict, rows: list[dict]) -> list[dict]:
    """One entry per (group, variant): mean/median/sd and paired differences."""
    out = []
    for group in config["groups"]:
        names = list(group["variants"])
        by_variant = {name: {r["seed"]: r for r in rows if r["group"] == group["name"] and r["variant"] == name}
                      for name in names}
        base = by_variant[names[0]]
        for name in names:
            runs = by_variant[name]
            seeds = sorted(set(runs) & set(base))
            if not seeds:
                continue
            s = np.array([runs[i]["synthetic"] for i in seeds])
            out.append({"group": group["name"], "variant": name, "overrides": group["variants"][name],
                        "fixed": group.get("fixed", {}),
                        "dataset": group["dataset"], "model": group["model"], "epsilon": group["epsilon"],
                        "metric": runs[seeds[0]]["metric"], "seeds": len(seeds), "mean": float(s.mean()),
                        "median": float(np.median(s)), "sd": float(s.std(ddof=1)) if len(s) > 1 else float("nan"),
                        "minus_baseline": _paired(s, np.array([base[i]["synthetic"] for i in seeds])),
                        "minus_random_subset": _paired(s, np.array([runs[i]["random_subset"] for i in seeds])),
                        "minus_full_data": _paired(s, np.array([runs[i]["full_data"] for i in seeds])),
                        "random_subset": float(np.mean([runs[i]["random_subset"] for i in seeds])),
                        "full_data": float(np.mean([runs[i]["full_data"] for i in seeds]))})
    return out


def markdown(summary: list[dict], title: str) -> str:
    fmt = lambda pair: f"{pair[0]:+.3f} ± {pair[1]:.3f}"
    lines = [f"# {title}", "",
             "Mean over seeds of the synthetic table's score (AUROC; C-index for survival) and paired differences "
             "(mean ± standard error over the same seeds) against the group's baseline (its first variant), the "
             "random real subset of the same size (non-private) and the full data (non-private).", ""]
    for group in dict.fromkeys(entry["group"] for entry in summary):
        entries = [e for e in summary if e["group"] == group]
        first = entries[0]
        fixed = ", ".join(f"{k}={v}" for k, v in first.get("fixed", {}).items())
        lines += [f"## {group}: {first['dataset']}, {first['model']}, ε = {first['epsilon']}", "",
                  *([f"Every variant: {fixed} (unless it overrides them).", ""] if fixed else []),
                  f"random real subset {first['random_subset']:.3f}, full data {first['full_data']:.3f} "
                  f"({first['seeds']} seeds)", "",
                  "| variant | overrides | mean | median | sd | − baseline | − random subset | − full data |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for e in entries:
            overrides = ", ".join(f"{k}={v}" for k, v in e["overrides"].items()) or "defaults"
            lines.append(f"| {e['variant']} | {overrides} | {e['mean']:.3f} | {e['median']:.3f} | {e['sd']:.3f} | "
                         f"{fmt(e['minus_baseline'])} | {fmt(e['minus_random_subset'])} | {fmt(e['minus_full_data'])} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="JSON: {\"groups\": [{name, dataset, model, epsilon, variants: {name: {...}}}]}")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1: extend a screen with --rows-log on the "
                             "same log, then summarise every seed with --from-rows")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--block", type=int, default=10, help="seeds per job")
    parser.add_argument("--only", default=None, help="comma-separated group names to run (default: all)")
    parser.add_argument("--out", required=True, help="JSON of every row and the summary")
    parser.add_argument("--markdown", help="markdown table of the summary")
    parser.add_argument("--rows-log", help="also append each finished block's rows here (JSON lines), as they come")
    parser.add_argument("--from-rows", help="skip running: summarise the rows of --rows-log files (comma-separated)")
    args = parser.parse_args(argv)
    with open(args.config) as handle:
        config = json.load(handle)
    if args.only:
        wanted = set(args.only.split(","))
        config["groups"] = [g for g in config["groups"] if g["name"] in wanted]
    jobs = _jobs(config, args.seeds, args.block, args.first_seed)
    started = time.perf_counter()
    rows: list[dict] = []
    def log(block):
        if args.rows_log:
            append_text(args.rows_log, "".join(json.dumps(row) + "\n" for row in block))

    if args.from_rows:
        for path in args.from_rows.split(","):
            rows += read_jsonl(path)
    elif args.workers <= 1:
        for job in jobs:
            rows += _run_block(job)
            log(rows[-len(job["seeds"]):])
    else:
        import multiprocessing

        # One XLA CPU thread per worker: the parallelism is across processes.
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            for done, block in enumerate(pool.imap_unordered(_run_block, jobs), 1):
                rows += block
                log(block)
                print(f"[{done}/{len(jobs)}] {block[0]['group']}/{block[0]['variant']} "
                      f"{time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    summary = summarise(config, rows)
    from zodc.data.io import json_safe, write_files_atomic

    text = markdown(summary, config.get("title", "Ablation"))
    payload = json_safe({"config": config, "seeds": len({row["seed"] for row in rows}), "summary": summary, "rows": rows,
                         "rows_from": args.from_rows,
                         "wall_seconds": None if args.from_rows else time.perf_counter() - started})
    write_files_atomic({args.out: encode(args.out, json.dumps(payload, indent=1)),
                        **({args.markdown: text} if args.markdown else {})})
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
