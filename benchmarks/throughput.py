"""Throughput of one private zero-order step: native (device) kernels vs host (scikit-learn /
lifelines) models, measured side by side in one process.

    python -m benchmarks.throughput --config benchmarks/configs/throughput.json --grid cpu \
        --out benchmarks/results/throughput_cpu.json --markdown benchmarks/results/throughput_cpu.md

For every grid point ``(model, q, m, d, B)`` the runner builds random data — ``B`` real records
with ``d`` features (plus labels, or times and events for Cox) and an ``(m, d)`` synthetic table
(``(m, d + 1)`` for Cox: the last column is the encoded log-time) — and builds the *same* private
step, :func:`zodc.condense.zero_order_condenser` ``.step`` under ``jax.jit``, twice: once with the
native evaluator (vmapped kernel fits) and once with the host evaluator (one batched
``pure_callback`` into a process pool of ``n_jobs`` workers). For each backend it records

* ``compile_seconds``: ``jit(step).lower(...).compile()``, excluded from the throughput;
* ``first_call_seconds``: the first call of the compiled step (for the host this includes starting
  the worker pool and shipping the real records to the workers once);
* ``step_seconds``: the median of the steady-state steps (each ``block_until_ready``), and from it
  ``steps_per_second`` and ``fits_per_second = steps_per_second * 2q`` (central differences fit
  ``2q`` perturbed tables per step).

``ratio = native steps/s / host steps/s`` (equivalently fits/s). Host points whose estimated cost
exceeds ``--host-budget-seconds`` are measured with fewer repeats (at least one steady-state step
after the warm-up) or, when even that would not fit, skipped with a recorded reason and an
estimate from single in-process fits (``host.status == "estimated"``); nothing is skipped silently.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root (the `benchmarks` package) importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = ("tree", "forest", "logistic", "cox")
SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- the grid


def expand_grid(config: dict, grid: str, models: list[str] | None = None) -> list[dict]:
    """The ordered, de-duplicated list of points ``{"model", "q", "m", "d", "B"}`` of one grid.

    A grid is a list of blocks; a block names its ``models`` and either ``axes`` (the Cartesian
    product of ``q``, ``m``, ``d``, ``B``) or explicit ``points``.
    """
    if grid not in config["grids"]:
        raise SystemExit(f"--grid must be one of {sorted(config['grids'])}. Got {grid!r}.")
    points, seen = [], set()
    for block in config["grids"][grid]["blocks"]:
        block_models = block.get("models", list(MODELS))
        if "axes" in block:
            axes = block["axes"]
            shapes = [dict(q=q, m=m, d=d, B=B) for q, m, d, B in
                      itertools.product(axes["q"], axes["m"], axes["d"], axes["B"])]
        else:
            shapes = [dict(point) for point in block["points"]]
        for model in block_models:
            if models is not None and model not in models:
                continue
            for shape in shapes:
                point = dict(model=model, **shape)
                key = tuple(point[name] for name in ("model", "q", "m", "d", "B"))
                if key not in seen:
                    seen.add(key)
                    points.append(point)
    return points


# --------------------------------------------------------------------------- one point


def _make_problem(point: dict, settings: dict, n_jobs: int):
    """Random data and the two evaluators (native, host) of one grid point."""
    import jax

    from zodc.models.host import HostEvaluator, fit_score_classifier
    from zodc.models.losses import ClassificationLoss
    from zodc.models.presets import PRESETS

    model, m, d, B = point["model"], point["m"], point["d"], point["B"]
    rng = np.random.default_rng([settings["seed"], m, d, B])
    X = rng.uniform(-1.0, 1.0, size=(B, d))
    weights = rng.normal(size=d)
    preset = PRESETS[model]
    model_key = jax.random.PRNGKey(settings["seed"])

    if preset.task == "classification":
        y = (X @ weights + 0.5 * rng.normal(size=B) > 0).astype(np.int32)
        labels = np.arange(m, dtype=np.int32) % 2
        table = rng.uniform(-0.5, 0.5, size=(m, d)).astype(np.float32)
        loss = ClassificationLoss("balanced_linear")
        native_fn, native_data = _native_classifier(preset.native_factory(2), loss, X, y, labels, model_key)
        payload = {"estimator": preset.host_factory(2), "X": X, "y": y, "synthetic_labels": labels,
                   "num_classes": 2, "loss": loss}
        host = HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=B,
                             n_jobs=n_jobs)
        fit_score_fn = fit_score_classifier
    else:
        from zodc.models.survival import (SurvivalLoss, TimeScale, fit_score_survival, host_survival_payload,
                                          native_survival_evaluator, public_time_grid)

        lower, upper = settings["time_bounds"]
        scale = TimeScale(lower, upper)
        hazard = np.exp(0.5 * (X @ weights) / math.sqrt(d))
        event_time = rng.exponential(365.0 / hazard)
        censor_time = rng.exponential(3.0 * 365.0, size=B)
        time_ = np.clip(np.minimum(event_time, censor_time), lower, upper)
        event = (event_time <= censor_time).astype(np.int64)
        synthetic_events = (np.arange(m) % 3 != 2).astype(np.int64)   # two thirds events, at least one
        table = np.concatenate([rng.uniform(-0.5, 0.5, size=(m, d)), rng.uniform(-0.8, 0.8, size=(m, 1))],
                               axis=1).astype(np.float32)
        loss = SurvivalLoss("discrete_nll", public_time_grid(lower, upper, settings["time_bins"]))
        native_fn = _with_data_argument(native_survival_evaluator(preset.native_factory(2), loss, X, time_, event,
                                                                  synthetic_events, scale, model_key))
        native_data = None
        payload = host_survival_payload(preset.host_factory(2), loss, X, time_, event, synthetic_events, scale)
        host = HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=B,
                             n_jobs=n_jobs)
        fit_score_fn = fit_score_survival
    return table, (native_fn, native_data), host, fit_score_fn


def _with_data_argument(evaluate_fn):
    """Adapts an ``evaluate_fn(tables, mask)`` to the core's ``(tables, mask, data)`` call."""
    parameters = inspect.signature(evaluate_fn).parameters
    if len(parameters) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters.values()):
        return evaluate_fn
    return lambda tables, mask, data=None: evaluate_fn(tables, mask)


def _native_classifier(model, loss, X, y, labels, key):
    """The native classifier evaluator and its device data, whichever of the two APIs is installed:
    ``native_classifier_evaluator(model, loss)`` + ``native_classifier_data(X, y, labels, key)``
    (the real records passed to the step as an argument), or the older closure
    ``native_classifier_evaluator(model, loss, X, y, labels, key)``."""
    from zodc.models import native

    if hasattr(native, "native_classifier_data"):
        return native.native_classifier_evaluator(model, loss), native.native_classifier_data(X, y, labels, key)
    return _with_data_argument(native.native_classifier_evaluator(model, loss, X, y, labels, key)), None


def _step_takes_data(step) -> bool:
    return len(inspect.signature(step).parameters) >= 3


def _build_step(evaluate_fn, table, point: dict, settings: dict):
    import jax
    import jax.numpy as jnp
    import optax

    from zodc.condense import StepParams, zero_order_condenser

    kind = {"directions": settings["directions"]} if settings.get("directions") else {}  # else the library's default
    condenser = zero_order_condenser(evaluate_fn, optax.adam(settings["learning_rate"]), num_records=point["B"],
                                     num_directions=point["q"], scheme="central", **kind)
    # Every record sampled (p = 1): both backends score exactly the B real records each step.
    params = StepParams(smoothing=jnp.float32(settings["smoothing"]), l2_norm_clip=jnp.float32(1.0),
                        noise_multiplier=jnp.float32(1.0), sampling_probability=jnp.float32(1.0))
    state = condenser.init(jax.random.PRNGKey(settings["seed"]), jnp.asarray(table))
    if _step_takes_data(condenser.step):
        return jax.jit(condenser.step), state, params
    return jax.jit(lambda state, params, data: condenser.step(state, params)), state, params


def _timed_step(compiled, state, params, data):
    import jax

    start = time.perf_counter()
    state, info = compiled(state, params, data)
    jax.block_until_ready((state, info))
    return state, time.perf_counter() - start


def _measure(evaluate_fn, data, table, point, settings, *, repeats: int, budget_seconds: float,
             estimate_seconds: float | None = None, warmup_steps: int = 1, runners: dict | None = None,
             name: str = "") -> dict:
    """Compiles and times the jitted step; ``repeats`` steady-state steps, fewer if over budget.
    With ``runners``, leaves ``runners[name] = (compiled, state, params, data)`` for paired rounds."""
    import jax

    step, state, params = _build_step(evaluate_fn, table, point, settings)
    start = time.perf_counter()
    compiled = step.lower(state, params, data).compile()
    compile_seconds = time.perf_counter() - start
    state, first_call = _timed_step(compiled, state, params, data)
    # Extra warm-up steps (host: a process pool spawns and warms its workers over several calls).
    warmup = [first_call]
    for _ in range(max(0, warmup_steps - 1)):
        if sum(warmup) > budget_seconds / 2:
            break
        state, seconds = _timed_step(compiled, state, params, data)
        warmup.append(seconds)
    first_call = warmup[-1] if len(warmup) > 1 else first_call
    # Plan the repeats from the cost of one step; the first call over-estimates it (pool start-up).
    per_step = first_call if estimate_seconds is None else min(first_call, max(estimate_seconds, 1e-9))
    planned = max(1, min(repeats, int((budget_seconds - first_call) // max(per_step, 1e-9))))
    times = []
    for _ in range(planned):
        state, seconds = _timed_step(compiled, state, params, data)
        times.append(seconds)
        if len(times) < planned and sum(times) + first_call + statistics.median(times) > budget_seconds:
            break
    finite = bool(np.isfinite(np.asarray(jax.device_get(state.table))).all())
    if runners is not None:
        runners[name] = (compiled, state, params, data)
    step_seconds = statistics.median(times)
    return {"status": "measured", "compile_seconds": compile_seconds, "first_call_seconds": warmup[0],
            "warmup_seconds_all": warmup,
            "step_seconds": step_seconds, "step_seconds_all": times, "repeats": len(times),
            "reduced_repeats": len(times) < repeats, "steps_per_second": 1.0 / step_seconds,
            "fits_per_second": 2 * point["q"] / step_seconds, "table_finite": finite}


def _estimate_host_step(host, fit_score_fn, table, point, n_jobs: int, fits: int = 3) -> dict:
    """Estimates one host step from a few in-process fits: ``fit seconds * 2q / n_jobs``."""
    payload = dict(host.payload)
    indices = np.arange(point["B"])
    table = np.asarray(table, dtype=np.float64)
    fit_score_fn(payload, table, indices)            # imports, caches
    start = time.perf_counter()
    for _ in range(fits):
        fit_score_fn(payload, table, indices)
    per_fit = (time.perf_counter() - start) / fits
    return {"fit_seconds_in_process": per_fit, "estimated_step_seconds": per_fit * 2 * point["q"] / n_jobs}


def _paired_rounds(runners: dict, rounds: int, native_seconds: float, host_seconds: float) -> dict:
    """``rounds`` rounds, each a block of native steps then one host step, back to back.

    On a shared machine the speed drifts by 2x over a minute (measured on the 2-core VM: the same
    code's tree ratio read 11.9 to 20 in five runs), and the separate medians above time the two
    backends minutes apart. A round's ratio compares them within seconds of each other; the block
    of native steps lasts about as long as the host step. The median round is the figure to quote.
    """
    per_block = max(1, min(200, round(host_seconds / max(native_seconds, 1e-9))))
    ratios, native_times, host_times = [], [], []
    native, host = list(runners["native"]), list(runners["host"])
    for _ in range(rounds):
        block = []
        for _ in range(per_block):
            native[1], seconds = _timed_step(native[0], native[1], native[2], native[3])
            block.append(seconds)
        host[1], host_step = _timed_step(host[0], host[1], host[2], host[3])
        native_step = statistics.median(block)
        native_times.append(native_step)
        host_times.append(host_step)
        ratios.append(host_step / native_step)
    return {"rounds": rounds, "native_steps_per_round": per_block, "native_step_seconds": native_times,
            "host_step_seconds": host_times, "ratios": ratios, "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios)}


def run_point(point: dict, settings: dict, *, n_jobs: int, repeats: int, host_budget_seconds: float,
              native_budget_seconds: float, paired_rounds: int = 0) -> dict:
    """Measures native and host for one grid point, side by side; returns the result record.

    With ``paired_rounds`` (and a measured host), also :func:`_paired_rounds` (``record["paired"]``).
    """
    table, (native_fn, native_data), host, fit_score_fn = _make_problem(point, settings, n_jobs)
    record = dict(point, fits_per_step=2 * point["q"])
    runners: dict = {}
    try:
        record["native"] = _measure(native_fn, native_data, table, point, settings, repeats=repeats,
                                    budget_seconds=native_budget_seconds, runners=runners, name="native")
        estimate = _estimate_host_step(host, fit_score_fn, table, point, n_jobs)
        # Warm-up step + at least one steady-state step must fit in the budget.
        if 2 * estimate["estimated_step_seconds"] > host_budget_seconds:
            seconds = estimate["estimated_step_seconds"]
            record["host"] = {"status": "estimated", **estimate, "step_seconds": seconds,
                              "steps_per_second": 1.0 / seconds, "fits_per_second": 2 * point["q"] / seconds,
                              "reason": (f"estimated {seconds:.2f} s per host step (in-process fit "
                                         f"{estimate['fit_seconds_in_process'] * 1e3:.1f} ms x {2 * point['q']} fits / "
                                         f"{n_jobs} workers); warm-up + 1 step > host budget {host_budget_seconds:g} s")}
        else:
            record["host"] = dict(_measure(_with_data_argument(host.jax_fn()), None, table, point, settings, repeats=repeats,
                                           budget_seconds=host_budget_seconds,
                                           estimate_seconds=estimate["estimated_step_seconds"],
                                           warmup_steps=int(settings.get("host_warmup_steps", 1)),
                                           runners=runners, name="host"), **estimate)
            if paired_rounds > 0:
                record["paired"] = _paired_rounds(runners, paired_rounds, record["native"]["step_seconds"],
                                                  record["host"]["step_seconds"])
    finally:
        host.close()
    record["ratio"] = record["native"]["steps_per_second"] / record["host"]["steps_per_second"]
    record["ratio_is_estimate"] = record["host"]["status"] != "measured"
    return record


# --------------------------------------------------------------------------- machine, output


def machine_info(n_jobs: int) -> dict:
    import importlib.metadata

    import jax

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or None
    except OSError:
        commit = None
    return {"jax_version": jax.__version__, "jax_backend": jax.default_backend(),
            "jax_devices": [str(device) for device in jax.devices()],
            "device_kinds": sorted({device.device_kind for device in jax.devices()}),
            "cpu_count": os.cpu_count(), "host_n_jobs": n_jobs, "platform": platform.platform(),
            "processor": platform.processor(), "python": sys.version.split()[0],
            "numpy": np.__version__, "scikit_learn": version("scikit-learn"), "lifelines": version("lifelines"),
            "git_commit": commit,
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _paired_cell(paired: dict | None) -> str:
    if paired is None:
        return " — |"
    return (f" **{_fmt(paired['ratio_median'])}** ({_fmt(paired['ratio_min'])}–{_fmt(paired['ratio_max'])}, "
            f"{paired['rounds']} rounds) |")


def to_markdown(result: dict) -> str:
    """The results table: one row per point, with the machine and the notes above it."""
    machine = result["machine"]
    lines = [f"# zodc throughput — grid `{result['grid']}`", "",
             f"Recorded {result['created']} on {machine['platform']} "
             f"({machine['cpu_count']} CPUs, JAX {machine['jax_version']} on {', '.join(machine['device_kinds'])}; "
             f"host pool n_jobs = {machine['host_n_jobs']}). Total runtime {result['total_seconds']:.0f} s.", ""]
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    lines += ["", "Ratio = native steps/s ÷ host steps/s for one full private ZO step (2q fits + scoring B "
              "records), compile excluded. `~` marks a host estimate (not measured, see JSON `host.reason`); "
              "`*` marks fewer steady-state repeats than asked (host budget).", ""]
    paired = any("paired" in record for record in result["results"])
    if paired:
        lines += ["Paired ratio: the median (and range) over rounds of native steps and one host step run back to "
                  "back (`--paired-rounds`), robust to the machine's drift; quote it over the separate ratio.", ""]
    lines += ["| model | q | m | d | B | host steps/s | native steps/s | ratio | native fits/s | compile s (native / host) |"
              + (" paired ratio |" if paired else ""),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if paired else "")]
    for record in result["results"]:
        native, host = record["native"], record["host"]
        mark = "~" if host["status"] != "measured" else ("*" if host.get("reduced_repeats") else "")
        host_compile = _fmt(host.get("compile_seconds"), 2) if host["status"] == "measured" else "—"
        lines.append(f"| {record['model']} | {record['q']} | {record['m']} | {record['d']} | {record['B']} | "
                     f"{mark}{_fmt(host['steps_per_second'])} | {_fmt(native['steps_per_second'])} | "
                     f"{mark}{_fmt(record['ratio'])} | {_fmt(native['fits_per_second'])} | "
                     f"{_fmt(native['compile_seconds'], 2)} / {host_compile} |"
                     + (_paired_cell(record.get("paired")) if paired else ""))
    for skipped in result.get("skipped", []):
        lines.append(f"| {skipped['model']} | {skipped['q']} | {skipped['m']} | {skipped['d']} | {skipped['B']} | "
                     f"not run: {skipped['reason']} | | | | |")
    return "\n".join(lines) + "\n"


def _write_json(path: str, result: dict) -> None:
    from benchmarks.results_io import write_json_atomic

    write_json_atomic(path, result)


def run(config: dict, grid: str, *, models: list[str] | None = None, quick: bool = False,
        max_seconds: float | None = None, host_budget_seconds: float | None = None, n_jobs: int | None = None,
        out: str | None = None, notes: list[str] | None = None, paired_rounds: int = 0, log=print) -> dict:
    """Runs one grid and returns (and writes, if ``out``) the result dict."""
    from zodc.models.host import resolve_n_jobs

    settings = dict(config["settings"])
    n_jobs = resolve_n_jobs(settings["n_jobs"] if n_jobs is None else n_jobs)
    repeats = settings["quick_repeats"] if quick else settings["repeats"]
    host_budget = settings["host_budget_seconds"] if host_budget_seconds is None else host_budget_seconds
    native_budget = settings["native_budget_seconds"]
    if quick:
        host_budget, native_budget = min(host_budget, settings["quick_budget_seconds"]), settings["quick_budget_seconds"]
    points = expand_grid(config, grid, models)
    result = {"schema_version": SCHEMA_VERSION, "grid": grid, "quick": quick,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
              "machine": machine_info(n_jobs),
              "settings": dict(settings, repeats=repeats, host_budget_seconds=host_budget,
                               native_budget_seconds=native_budget, max_seconds=max_seconds,
                               paired_rounds=paired_rounds),
              "notes": list(config.get("notes", [])) + list(notes or []),
              "results": [], "skipped": [], "total_seconds": 0.0}
    start = time.perf_counter()
    for index, point in enumerate(points):
        elapsed = time.perf_counter() - start
        label = f"[{index + 1}/{len(points)}] {point['model']} q={point['q']} m={point['m']} d={point['d']} B={point['B']}"
        if max_seconds is not None and elapsed > max_seconds:
            result["skipped"].append(dict(point, reason=f"--max-seconds {max_seconds:g} reached after {elapsed:.0f} s"))
            log(f"{label}: skipped (max-seconds)")
            continue
        try:
            record = run_point(point, settings, n_jobs=n_jobs, repeats=repeats, host_budget_seconds=host_budget,
                               native_budget_seconds=native_budget, paired_rounds=paired_rounds)
        except Exception as error:  # noqa: BLE001 - a failed point is recorded, the grid goes on
            result["skipped"].append(dict(point, reason=f"error: {type(error).__name__}: {error}"[:300]))
            log(f"{label}: ERROR {type(error).__name__}: {error}")
            continue
        result["results"].append(record)
        host = record["host"]
        log(f"{label}: host {host['steps_per_second']:.3g} steps/s ({host['status']}), native "
            f"{record['native']['steps_per_second']:.3g} steps/s, ratio {record['ratio']:.3g}, "
            f"compile {record['native']['compile_seconds']:.1f} s ({elapsed:.0f} s elapsed)")
        result["total_seconds"] = time.perf_counter() - start
        if out:
            _write_json(out, result)    # partial results survive an interruption
    from benchmarks.results_io import finish_run

    return finish_run(result, start, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--config", default=os.path.join(here, "configs", "throughput.json"))
    parser.add_argument("--grid", default="cpu", help="a grid of the config: full, cpu or headline")
    parser.add_argument("--out", help="result JSON (written after every point)")
    parser.add_argument("--markdown", help="markdown table (default: --out with .md)")
    parser.add_argument("--models", help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--quick", action="store_true", help="fewer repeats and small budgets (a smoke run)")
    parser.add_argument("--max-seconds", type=float, help="stop starting new points after this many seconds "
                                                          "(the rest are recorded as skipped)")
    parser.add_argument("--host-budget-seconds", type=float, help="per-point host time budget (config default)")
    parser.add_argument("--n-jobs", type=int, help="host worker processes (config default; -1 = all cores)")
    parser.add_argument("--note", action="append", default=[], help="a note recorded with the results")
    parser.add_argument("--directions", choices=["gaussian", "rademacher"],
                        help="kind of random directions (default: the library's, rademacher)")
    parser.add_argument("--paired-rounds", type=int, default=0,
                        help="after the separate medians, this many rounds of (native steps, one host step) back "
                             "to back: the ratio within each round, robust to the machine's drift (0: none)")
    parser.add_argument("--from-json", help="only render --markdown from an existing result JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_json:
        from benchmarks.results_io import read_json

        result = read_json(args.from_json)  # plain or .gz
    else:
        with open(args.config) as handle:
            config = json.load(handle)
        if args.directions:
            config["settings"]["directions"] = args.directions
        models = None
        if args.models:
            models = [name.strip() for name in args.models.split(",") if name.strip()]
            unknown = sorted(set(models) - set(MODELS))
            if unknown:
                raise SystemExit(f"--models must be among {list(MODELS)}. Got {unknown}.")
        result = run(config, args.grid, models=models, quick=args.quick, max_seconds=args.max_seconds,
                     host_budget_seconds=args.host_budget_seconds, n_jobs=args.n_jobs, out=args.out,
                     notes=args.note, paired_rounds=args.paired_rounds)
    from benchmarks.results_io import write_markdown

    write_markdown(args.markdown, args.out, to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
