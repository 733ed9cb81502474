"""Scaling of one private zero-order step with the cohort size n: time per step and peak memory.

    python -m benchmarks.scaling --out benchmarks/results/scaling_cpu.json
    python -m benchmarks.scaling --out /tmp/scaling.json --sizes 300,3000 --quick --batch 64 --block 128

Issue 25, part 3. For each n (default 10^3, 10^4, 10^5, 10^6) and each variant, a FRESH Python
process (so ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is that run's own peak) builds a cohort
of n records, the native tree's evaluator (``get_preset("tree").native_factory(2)`` with
``ClassificationLoss("balanced_linear", ...)``, q = 16 directions, m = 20 rows) and runs steps
through :func:`zodc.condense.run` with grid noise (int32 zeros: the released path's arithmetic,
no noise to draw), ``chunk_size`` steps per compiled chunk:

* ``blocked``: expected batch 256 (p = 256 / n), ``record_block=512`` — the front door's path
  (``zodc.estimator.record_block(256) == 512``);
* ``unblocked``: the same p, ``record_block=None`` — every record scored every step, the unsampled
  ones masked (the path before blocks). Skipped, with the reason recorded, where the previous n's
  time or memory extrapolates (linearly in n) past ``--max-step-seconds`` or the free memory;
* ``fixed_p``: blocked at p = 0.01 (batch 0.01 n) with the front door's block for that batch
  (``record_block(0.01 n)``): time should grow with the batch.

Per run: ``compile_seconds`` (JAX's own trace + lowering + XLA compile durations during the first
chunk, from ``jax.monitoring``), ``first_chunk_seconds`` (wall, compile included; never in the
steady state), ``step_seconds`` = median over the timed chunks of wall seconds / chunk length (each
``block_until_ready``) and ``step_cpu_seconds``, the same of the process's CPU seconds (with one XLA
thread per run, the CPU time is the robust figure on a shared machine: wall time there measures the
scheduler too), the peak RSS and its increments over the baseline (the process after
imports and JAX's start, before the cohort exists), the RSS after the cohort was built, and the
data's own size (``n d`` float32 features + ``n`` int32 labels).

Sanity column ``same_table``: both variants at the same p start from the same seeded state with the
same noise, so their tables after the first chunk must be equal bit for bit (the blocked sums are the
unblocked ones, ``tests/test_record_blocks.py``); each run records a SHA-256 of that table and the
parent compares them.

The cohort is ``breast_cancer`` (569 rows, 30 numeric features) encoded into [-1, 1] with its public
schema (:class:`zodc.data.transform.TableEncoder`), resampled with replacement to n rows and jittered
with N(0, 0.02^2) noise (clipped to the box), from a seeded numpy Generator. It exists for
throughput only: **utility is not measured on it**.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root (the `benchmarks` package) importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_VERSION = 1
VARIANTS = ("blocked", "unblocked", "fixed_p")
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
DEFAULTS = dict(dataset="breast_cancer", model="tree", q=16, m=20, batch=256, block=512, fixed_p=0.01, jitter=0.02,
                seed=0, chunk_size=5, chunks=4, learning_rate=0.05, smoothing=0.2, l2_norm_clip=1.0,
                noise_multiplier=1.0, variant_budget_seconds=60.0, max_step_seconds=60.0, threads=1,
                unblocked_max_n=None)
QUICK = dict(chunk_size=2, chunks=1, variant_budget_seconds=10.0)
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


def _mib(kib: float) -> float:
    return kib / 1024.0


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _current_rss_kib() -> float | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024.0
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- the cohort


def make_cohort(n: int, seed: int, dataset: str = "breast_cancer", jitter: float = 0.02):
    """``(X (n, d) float32 in [-1, 1], y (n,) int32, class_weights)``: the bundled cohort encoded with
    its public schema, resampled with replacement to n rows plus N(0, jitter^2) (clipped to the box).
    For throughput only (no utility is measured on it). Built in float32 blocks, so the cohort's
    construction costs little more memory than the cohort itself."""
    import zodc
    from zodc.data.transform import TableEncoder

    bundled = zodc.load_dataset(dataset)
    encoded = TableEncoder(bundled.schema).encode(bundled.frame)
    base_X = np.asarray(encoded.X, np.float32)
    base_y = np.asarray(encoded.y, np.int32)
    rng = np.random.default_rng([seed, n])
    rows = rng.integers(0, len(base_y), size=n)
    X = base_X[rows]
    y = base_y[rows]
    for start in range(0, n, 65_536):
        part = X[start:start + 65_536]
        part += jitter * rng.standard_normal(part.shape, dtype=np.float32)
        np.clip(part, -1.0, 1.0, out=part)
    counts = np.bincount(base_y, minlength=2).astype(float)       # the bundled cohort's class shares
    class_weights = tuple(float(w) for w in counts.sum() / (len(counts) * counts))
    return X, y, class_weights


# --------------------------------------------------------------------------- one run (in its own process)


def variant_setup(variant: str, n: int, settings: dict) -> dict:
    """Sampling probability, block and the path the step takes for one (variant, n)."""
    from zodc.estimator import record_block

    if variant == "fixed_p":
        p = float(settings["fixed_p"])
        block = record_block(p * n)
    else:
        p = min(1.0, settings["batch"] / n)
        block = int(settings["block"]) if variant == "blocked" else None
    path = "blocked" if block is not None and block < n else "unblocked"
    return {"sampling_probability": p, "expected_batch": p * n, "record_block": block, "path": path}


def worker(n: int, variant: str, settings: dict) -> dict:
    """Builds the cohort and the step, compiles (first chunk) and times chunks. Run in a fresh process."""
    import jax

    events: dict[str, float] = {}
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, seconds, **_: events.__setitem__(name, events.get(name, 0.0) + seconds))
    import jax.numpy as jnp

    from zodc.condense import StepParams, adam, run, zero_order_condenser
    from zodc.models.losses import ClassificationLoss
    from zodc.models.native import native_classifier_data, native_classifier_evaluator
    from zodc.models.presets import get_preset
    from zodc.data.transform import TableEncoder  # noqa: F401 - imported before the baseline (make_cohort)

    jnp.zeros(1).block_until_ready()                 # JAX's backend is up: part of the baseline
    baseline_maxrss, baseline_rss = _maxrss_kib(), _current_rss_kib()
    setup = variant_setup(variant, n, settings)
    q, m, chunk = int(settings["q"]), int(settings["m"]), int(settings["chunk_size"])

    X, y, class_weights = make_cohort(n, settings["seed"], settings["dataset"], settings["jitter"])
    labels = np.arange(m, dtype=np.int32) % 2
    data = native_classifier_data(X, y, labels, jax.random.key(settings["seed"]))
    del X, y
    jax.block_until_ready(data)
    data_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(data) if getattr(leaf, "shape", ()) and leaf.shape[0] == n)
    after_data_maxrss, after_data_rss = _maxrss_kib(), _current_rss_kib()

    evaluate = native_classifier_evaluator(get_preset(settings["model"]).native_factory(2),
                                           ClassificationLoss("balanced_linear", class_weights))
    condenser = zero_order_condenser(evaluate, adam(settings["learning_rate"]), num_records=n, num_directions=q,
                                     record_block=setup["record_block"])
    p = setup["sampling_probability"]
    params = StepParams(smoothing=jnp.float32(settings["smoothing"]), l2_norm_clip=jnp.float32(settings["l2_norm_clip"]),
                        noise_multiplier=jnp.float32(settings["noise_multiplier"]),
                        sampling_probability=jnp.float32(p), expected_batch_size=jnp.float32(p * n))
    start = np.random.default_rng(settings["seed"] + 1).uniform(-0.5, 0.5, (m, X_width(data))).astype(np.float32)
    state = condenser.init(jax.random.key(settings["seed"] + 2), jnp.asarray(start))
    noise = np.zeros((chunk, q), np.int32)           # grid noise: the released path's arithmetic

    def one_chunk(state):
        began, began_cpu = time.perf_counter(), time.process_time()
        state, info = run(condenser, state, params, chunk, data=data, noise=noise, chunk_size=chunk, reuse=True)
        jax.block_until_ready((state, info))
        cpu_seconds.append(time.process_time() - began_cpu)
        return state, info, time.perf_counter() - began

    cpu_seconds: list[float] = []

    events.clear()
    state, info, first_chunk = one_chunk(state)
    compile_seconds = sum(events.get(name, 0.0) for name in COMPILE_EVENTS)
    compile_parts = {name.rsplit("/", 1)[-1]: events.get(name, 0.0) for name in COMPILE_EVENTS}
    first_table = np.asarray(state.table)
    after_compile_maxrss = _maxrss_kib()
    batches = [int(b) for b in np.asarray(info.batch_size)]
    chunk_seconds, budget = [], float(settings["variant_budget_seconds"])
    timed_began = time.perf_counter()
    events.clear()
    for _ in range(int(settings["chunks"])):
        state, info, seconds = one_chunk(state)
        chunk_seconds.append(seconds)
        batches += [int(b) for b in np.asarray(info.batch_size)]
        if time.perf_counter() - timed_began + statistics.median(chunk_seconds) > budget:
            break
    recompiled = sum(events.get(name, 0.0) for name in COMPILE_EVENTS)
    first_chunk_cpu, chunk_cpu = cpu_seconds[0], cpu_seconds[1:]
    peak, after_steps_rss = _maxrss_kib(), _current_rss_kib()
    step_seconds = statistics.median(chunk_seconds) / chunk
    return {
        "n": n, "variant": variant, **setup, "status": "measured",
        "compile_seconds": compile_seconds, "compile_parts_seconds": compile_parts,
        "first_chunk_seconds": first_chunk, "chunk_size": chunk, "chunks": len(chunk_seconds),
        "reduced_chunks": len(chunk_seconds) < int(settings["chunks"]),
        "chunk_seconds_all": chunk_seconds, "step_seconds": step_seconds, "steps_per_second": 1.0 / step_seconds,
        "first_chunk_cpu_seconds": first_chunk_cpu, "chunk_cpu_seconds_all": chunk_cpu,
        "step_cpu_seconds": statistics.median(chunk_cpu) / chunk,
        "compile_seconds_in_timed_chunks": recompiled,
        "batch_size_mean": float(np.mean(batches)), "batch_size_max": int(np.max(batches)),
        "data_mib": data_bytes / 2**20,
        "baseline_maxrss_mib": _mib(baseline_maxrss), "baseline_rss_mib": None if baseline_rss is None else _mib(baseline_rss),
        "after_data_maxrss_mib": _mib(after_data_maxrss),
        "after_data_rss_mib": None if after_data_rss is None else _mib(after_data_rss),
        "after_compile_maxrss_mib": _mib(after_compile_maxrss),
        "rss_after_steps_mib": None if after_steps_rss is None else _mib(after_steps_rss),
        "peak_rss_mib": _mib(peak), "peak_over_baseline_mib": _mib(peak - baseline_maxrss),
        "peak_over_data_mib": _mib(peak - after_data_maxrss),
        "first_chunk_table_sha256": hashlib.sha256(first_table.tobytes()).hexdigest(),
        "table_finite": bool(np.isfinite(np.asarray(state.table)).all()),
        "persistent_compilation_cache": jax.config.jax_compilation_cache_dir,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def X_width(data) -> int:
    return int(data["X"].shape[1])


# --------------------------------------------------------------------------- the parent: one process per run


def _worker_env(settings: dict) -> dict:
    env = dict(os.environ)
    if settings.get("threads") == 1:             # one XLA CPU thread (a shared machine: one core each)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _available_mib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def run_in_subprocess(n: int, variant: str, settings: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "run.json")
        command = [sys.executable, "-m", "benchmarks.scaling", "--worker", json.dumps({"n": n, "variant": variant,
                                                                                        "settings": settings}),
                   "--worker-out", path]
        began = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, env=_worker_env(settings), capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"n": n, "variant": variant, "status": "skipped",
                    "reason": f"timed out after {timeout:.0f} s (process killed)"}
        wall = time.perf_counter() - began
        if done.returncode != 0 or not os.path.exists(path):
            killed = done.returncode < 0 or done.returncode == 137
            tail = (done.stderr or "").strip().splitlines()[-3:]
            return {"n": n, "variant": variant, "status": "skipped",
                    "reason": (f"process {'killed (signal, likely out of memory)' if killed else 'failed'}, "
                               f"rc {done.returncode}: " + " | ".join(tail))[:400]}
        with open(path) as handle:
            record = json.load(handle)
        record["process_seconds"] = wall
        return record


def _skip_reason(variant: str, n: int, previous: dict | None, settings: dict) -> str | None:
    """Why an unblocked run at n would not fit: extrapolated linearly in n from the previous size."""
    if variant == "unblocked" and settings.get("unblocked_max_n") is not None and n > settings["unblocked_max_n"]:
        return f"not run: n above --unblocked-max-n {settings['unblocked_max_n']:,}"
    if variant != "unblocked" or previous is None or previous.get("status") != "measured":
        if variant == "unblocked" and previous is not None and previous.get("status") != "measured" \
                and "unblocked-max-n" not in previous.get("reason", ""):
            return f"not run: the unblocked run at n = {previous['n']:,} did not complete ({previous.get('reason')})"
        return None
    growth = n / previous["n"]
    seconds = previous["step_seconds"] * growth
    if seconds > settings["max_step_seconds"]:
        return (f"not run: {seconds:.0f} s per step extrapolated from n = {previous['n']:,} "
                f"({previous['step_seconds']:.3g} s x {growth:g}) > {settings['max_step_seconds']:g} s")
    memory = previous["peak_over_baseline_mib"] * growth
    available = _available_mib()
    if available is not None and memory > 0.8 * available:
        return (f"not run: {memory:,.0f} MiB above baseline extrapolated from n = {previous['n']:,} "
                f"> 80 % of the {available:,.0f} MiB available")
    return None


def machine_info(settings: dict) -> dict:
    """As ``benchmarks.throughput.machine_info``, plus the worker processes' XLA threads."""
    from benchmarks.throughput import machine_info as throughput_machine

    info = throughput_machine(1)
    info.pop("host_n_jobs", None)
    info["xla_cpu_threads_per_run"] = "1" if settings.get("threads") == 1 else "XLA default (all cores)"
    info["memory_available_mib_start"] = _available_mib()
    info["date"] = datetime.date.today().isoformat()
    return info


def _pair_checks(records: list[dict]) -> list[dict]:
    """``same_table`` per n: the blocked and unblocked runs' tables after the first chunk, bit for bit."""
    checks = []
    for n in sorted({r["n"] for r in records}):
        runs = {r["variant"]: r for r in records if r["n"] == n and r.get("status") == "measured"}
        blocked, unblocked = runs.get("blocked"), runs.get("unblocked")
        same = None
        if blocked and unblocked:
            same = blocked["first_chunk_table_sha256"] == unblocked["first_chunk_table_sha256"]
        checks.append({"n": n, "same_table": same,
                       "compared": "blocked vs unblocked table after the first chunk (SHA-256 of float32 bytes)"
                       if same is not None else "unblocked not run"})
        for record in records:
            if record["n"] == n and record["variant"] in ("blocked", "unblocked"):
                record["same_table"] = same
    return checks


def _write_json(path: str, result: dict) -> None:
    from benchmarks.results_io import write_json_atomic

    write_json_atomic(path, result)


def run(sizes: list[int], variants: list[str], settings: dict, *, out: str | None = None, quick: bool = False,
        notes: list[str] | None = None, log=print) -> dict:
    """Every (n, variant) in its own process, n ascending; returns (and writes) the result dict."""
    result = {"schema_version": SCHEMA_VERSION, "quick": quick,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks.scaling"] + sys.argv[1:]),
              "machine": machine_info(settings), "settings": dict(settings), "sizes": list(sizes),
              "variants": list(variants),
              "cohort": (f"{settings['dataset']} encoded with its public schema into [-1, 1], resampled with "
                         f"replacement to n rows, + N(0, {settings['jitter']}^2) jitter clipped to the box; seeded "
                         "numpy Generator. For throughput only: utility is not measured on it."),
              "notes": list(notes or []), "records": [], "checks": [], "total_seconds": 0.0}
    began = time.perf_counter()
    previous: dict[str, dict] = {}
    for n in sizes:
        for variant in variants:
            label = f"n={n:,} {variant}"
            reason = _skip_reason(variant, n, previous.get(variant), settings)
            if reason is not None:
                record = {"n": n, "variant": variant, "status": "skipped", "reason": reason}
            else:
                estimate = previous.get(variant, {}).get("process_seconds", 60.0) * n / previous.get(variant, {}).get("n", n)
                timeout = max(600.0, 3.0 * estimate)
                record = run_in_subprocess(n, variant, settings, timeout)
            result["records"].append(record)
            previous[variant] = record
            if record["status"] == "measured":
                log(f"{label}: {record['step_seconds']:.4g} s/step (path {record['path']}, p {record['sampling_probability']:.3g}, "
                    f"batch ~{record['batch_size_mean']:.0f}), compile {record['compile_seconds']:.1f} s, peak RSS "
                    f"{record['peak_rss_mib']:.0f} MiB (+{record['peak_over_baseline_mib']:.0f} over baseline, data "
                    f"{record['data_mib']:.1f} MiB) [{time.perf_counter() - began:.0f} s elapsed]")
            else:
                log(f"{label}: {record['reason']}")
            result["checks"] = _pair_checks(result["records"])
            result["total_seconds"] = time.perf_counter() - began
            if out:
                _write_json(out, result)
    from benchmarks.results_io import finish_run

    return finish_run(result, began, out)


# --------------------------------------------------------------------------- markdown


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _slope(records: list[dict], variant: str, key: str) -> float | None:
    """The log-log slope of ``key`` against n between the smallest and largest measured n."""
    points = sorted((r["n"], r[key]) for r in records if r["variant"] == variant and r.get("status") == "measured"
                    and r.get(key) and r[key] > 0)
    if len(points) < 2:
        return None
    (n0, v0), (n1, v1) = points[0], points[-1]
    return math.log(v1 / v0) / math.log(n1 / n0)


def to_markdown(result: dict) -> str:
    machine, settings = result["machine"], result["settings"]
    lines = ["# zodc scaling with the cohort size n", "",
             f"Recorded {result['created']} on {machine['platform']} ({machine['cpu_count']} CPUs, JAX "
             f"{machine['jax_version']} on {', '.join(machine['device_kinds'])}; XLA threads per run: "
             f"{machine['xla_cpu_threads_per_run']}). Total runtime {result['total_seconds']:.0f} s. "
             f"Native tree, q = {settings['q']}, m = {settings['m']}, grid noise (zeros), "
             f"{settings['chunk_size']} steps per chunk, median over up to {settings['chunks']} timed chunks; "
             "each (n, variant) in a fresh process.", "",
             f"Cohort: {result['cohort']}", ""]
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    if result.get("notes"):
        lines.append("")
    lines += ["| n | variant | path | p | batch | block | s/step | CPU s/step | compile s | first chunk s | peak RSS MiB | "
              "+ over baseline MiB | RSS after steps MiB | data MiB | same table |",
              "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["records"]:
        if r.get("status") != "measured":
            lines.append(f"| {r['n']:,} | {r['variant']} | | | | | {r['reason']} | | | | | | | | |")
            continue
        same = {True: "yes", False: "**NO**", None: "—"}[r.get("same_table")] if r["variant"] != "fixed_p" else ""
        lines.append(f"| {r['n']:,} | {r['variant']} | {r['path']} | {_fmt(r['sampling_probability'])} | "
                     f"{r['batch_size_mean']:.0f} | {r['record_block'] or '—'} | {_fmt(r['step_seconds'])} | "
                     f"{_fmt(r.get('step_cpu_seconds'))} | "
                     f"{_fmt(r['compile_seconds'], 2)} | {_fmt(r['first_chunk_seconds'], 2)} | {_fmt(r['peak_rss_mib'])} | "
                     f"{_fmt(r['peak_over_baseline_mib'])} | {_fmt(r.get('rss_after_steps_mib'))} | {_fmt(r['data_mib'], 2)} | "
                     f"{same} |")
    slopes = []
    for variant in result["variants"]:
        time_slope = _slope(result["records"], variant, "step_cpu_seconds") or _slope(result["records"], variant,
                                                                                       "step_seconds")
        memory_slope = _slope(result["records"], variant, "peak_over_baseline_mib")
        if time_slope is not None:
            slopes.append(f"`{variant}`: CPU s/step ~ n^{time_slope:.2f}, peak over baseline ~ n^{memory_slope:.2f}"
                          if memory_slope is not None else f"`{variant}`: CPU s/step ~ n^{time_slope:.2f}")
    lines += ["", "Log-log slopes between the smallest and largest measured n (1 = linear, 0 = flat): "
              + ("; ".join(slopes) if slopes else "—") + ".", ""]
    for paragraph in result.get("discussion", []):
        lines += [paragraph, ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="result JSON (rewritten after every run)")
    parser.add_argument("--markdown", help="markdown table (default: --out with .md)")
    parser.add_argument("--sizes", default=",".join(str(n) for n in DEFAULT_SIZES), help="comma-separated n")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK}")
    parser.add_argument("--batch", type=float, help=f"expected batch of blocked / unblocked (default {DEFAULTS['batch']})")
    parser.add_argument("--block", type=int, help=f"record_block of the blocked variant (default {DEFAULTS['block']})")
    parser.add_argument("--fixed-p", type=float, help=f"sampling probability of fixed_p (default {DEFAULTS['fixed_p']})")
    parser.add_argument("--chunk-size", type=int, help=f"steps per compiled chunk (default {DEFAULTS['chunk_size']})")
    parser.add_argument("--chunks", type=int, help=f"timed chunks per run, at most (default {DEFAULTS['chunks']})")
    parser.add_argument("--max-step-seconds", type=float,
                        help=f"skip unblocked past this extrapolated s/step (default {DEFAULTS['max_step_seconds']:g})")
    parser.add_argument("--unblocked-max-n", type=int, help="skip unblocked above this n (recorded as skipped)")
    parser.add_argument("--variant-budget-seconds", type=float,
                        help=f"stop timing chunks past this (default {DEFAULTS['variant_budget_seconds']:g}; >= 1 chunk)")
    parser.add_argument("--threads", type=int, choices=(0, 1), help="1: one XLA CPU thread per run (default); "
                                                                    "0: XLA's default (all cores)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--note", action="append", default=[], help="a note recorded with the results")
    parser.add_argument("--discussion", action="append", default=[], help="a paragraph for the markdown")
    parser.add_argument("--from-json", help="only render --markdown from an existing result JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        record = worker(int(spec["n"]), spec["variant"], spec["settings"])
        _write_json(args.worker_out, record)
        return 0
    if args.from_json:
        with open(args.from_json) as handle:
            result = json.load(handle)
        if args.discussion:
            result["discussion"] = list(args.discussion)
            if args.out:
                _write_json(args.out, result)
    else:
        settings = dict(DEFAULTS, **(QUICK if args.quick else {}))
        for name in ("batch", "block", "fixed_p", "chunk_size", "chunks", "max_step_seconds", "threads", "seed",
                     "unblocked_max_n", "variant_budget_seconds"):
            if getattr(args, name) is not None:
                settings[name] = getattr(args, name)
        sizes = [int(float(size)) for size in args.sizes.split(",") if size.strip()]
        variants = [name.strip() for name in args.variants.split(",") if name.strip()]
        unknown = sorted(set(variants) - set(VARIANTS))
        if unknown:
            raise SystemExit(f"--variants must be among {list(VARIANTS)}. Got {unknown}.")
        result = run(sorted(sizes), variants, settings, out=args.out, quick=args.quick, notes=args.note)
        if args.discussion:
            result["discussion"] = list(args.discussion)
            if args.out:
                _write_json(args.out, result)
    from benchmarks.results_io import write_markdown

    write_markdown(args.markdown, args.out, to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
