"""Batched runs and the tree kernel's profile, on this machine, side by side in one process.

    python -m benchmarks.batched --out benchmarks/results/batched_cpu.json

1. **Batched runs** (issue 25, part 4): ``R`` independent condensations (own seeds and noise) in one
   compiled program (:func:`zodc.condense.run_batch`), against ``R = 1``: steady-state seconds per
   step of the whole batch, fits per second (``R * 2q / step``), the speed-up per run over ``R``
   separate runs, and compile seconds apart. Native tree, the default job's shapes (q 16, m 20,
   d 30; 400 records at p 0.64).
2. **The tree kernel's profile** (part 6) at the throughput headline's shapes (q 64: 128 fits of
   m 100 x d 30; B 1,024 records): the whole vmapped fit (on CPU the C++ builder), the portable
   ``grow_tree`` fit and the per-feature sort it starts with
   (:func:`zodc.kernels._common.feature_order`), the prediction of the B records, and scikit-learn's
   C builder fitting and predicting the same tables in this process (one thread), per table.

3. **The private search's candidates** (part 4): :class:`zodc.tuning.PrivateSearch` on breast cancer
   (native tree, its public schema, default steps, four candidates: two step sizes x two
   smoothings), the candidates' steps as one batched program (``zodc.estimator.BATCH``, the
   default) against one after another (``BATCH = 1``), the same searches (seed) alternating; wall
   seconds of the whole search (DP preprocessing, steps, scoring), the first search of each mode
   (compiling) apart.

Compilation is excluded from every steady-state figure and reported apart.

    python -m benchmarks.batched --parts search --out benchmarks/results/batched_search_cpu.json

4. **Fits per second against the tables per call** (``--parts fits``, the H100 aim of part 6): one
   vmapped depth-4 fit of ``k`` random 100 x 30 tables, ``k`` from ``--fit-batches``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _timed(function, *args, repeats: int = 5):
    """(compile-and-first-call seconds, median steady seconds) of ``function(*args)``."""
    import jax

    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def batched(runs_list, steps: int = 10, seed: int = 0) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from zodc.condense import StepParams, adam, init_batch, run_batch, stack_params, zero_order_condenser
    from zodc.models.losses import ClassificationLoss
    from zodc.models.native import native_classifier_data, native_classifier_evaluator
    from zodc.models.presets import get_preset

    n, d, m, q, p = 400, 30, 20, 16, 0.64
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int32)
    evaluate = native_classifier_evaluator(get_preset("tree").native_factory(2), ClassificationLoss("balanced_linear"))
    data = native_classifier_data(X, y, np.repeat([0, 1], m // 2), jax.random.key(0))
    condenser = zero_order_condenser(evaluate, adam(0.05), num_records=n, num_directions=q)
    rows = []
    for runs in runs_list:
        params = stack_params([StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(1.0),
                                          noise_multiplier=jnp.float32(1.0 + r), sampling_probability=jnp.float32(p),
                                          expected_batch_size=jnp.float32(p * n)) for r in range(runs)])
        noise = rng.integers(-4000, 4000, (runs, steps, q)).astype(np.int32)
        states = init_batch(condenser, jnp.stack([jax.random.key(r) for r in range(runs)]),
                            jnp.asarray(rng.uniform(-0.5, 0.5, (runs, m, d)), jnp.float32))
        first, steady = _timed(lambda: run_batch(condenser, states, params, steps, data=data, noise=noise)[0].table)
        per_step = steady / steps
        rows.append({"runs": runs, "steps": steps, "compile_and_first_seconds": first,
                     "seconds_per_step": per_step, "fits_per_second": runs * 2 * q / per_step})
    single = rows[0]["seconds_per_step"] / rows[0]["runs"]
    for row in rows:
        row["speedup_per_run_vs_separate"] = single * row["runs"] / row["seconds_per_step"]
    return rows


def tree_profile(q: int = 64, m: int = 100, d: int = 30, B: int = 1024, seed: int = 0) -> dict:
    import jax
    import jax.numpy as jnp
    from sklearn.tree import DecisionTreeClassifier as SkTree
    from threadpoolctl import threadpool_limits

    from zodc.kernels import _common
    from zodc.kernels.tree import DecisionTreeClassifier

    rng = np.random.default_rng(seed)
    k = 2 * q
    tables = jnp.asarray(rng.uniform(-1, 1, (k, m, d)), jnp.float32)
    labels = jnp.asarray(np.repeat([0, 1], m // 2), jnp.int32)
    X = jnp.asarray(rng.uniform(-1, 1, (B, d)), jnp.float32)
    model = DecisionTreeClassifier(2, 4)
    key = jax.random.key(0)
    fit = jax.jit(jax.vmap(lambda table: model.fit(key, table, labels)))
    out = {"shape": {"fits": k, "m": m, "d": d, "B": B, "max_depth": 4}}
    first, steady = _timed(fit, tables)
    out["native_fit"] = {"compile_and_first_seconds": first, "seconds": steady, "fits_per_second": k / steady}
    from zodc.kernels._native import native_tree_status

    out["native_fit"]["cpu_builder"] = native_tree_status()[0]
    # The portable builder (grow_tree's dense search, what a GPU runs) and the sort it starts with.
    stats = jax.nn.one_hot(labels, 2)
    portable = jax.jit(jax.vmap(lambda table: _common.grow_tree(table, stats, _common.GINI, 4, 1)[0]))
    first, steady = _timed(portable, tables)
    out["portable_fit"] = {"compile_and_first_seconds": first, "seconds": steady, "fits_per_second": k / steady}
    first, steady = _timed(jax.jit(jax.vmap(_common.feature_order)), tables)
    out["portable_sort"] = {"compile_and_first_seconds": first, "seconds": steady,
                            "share_of_fit": steady / out["portable_fit"]["seconds"]}
    params = fit(tables)
    first, steady = _timed(jax.jit(jax.vmap(lambda p: model.predict_proba(p, X))), params)
    out["native_predict"] = {"compile_and_first_seconds": first, "seconds": steady}
    host_tables, host_labels, host_X = np.asarray(tables), np.asarray(labels), np.asarray(X)
    with threadpool_limits(1):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for table in host_tables:
                SkTree(max_depth=4).fit(table, host_labels).predict_proba(host_X)
            times.append(time.perf_counter() - start)
    host = statistics.median(times)
    out["sklearn_fit_predict_one_thread"] = {"seconds": host, "fits_per_second": k / host}
    out["native_over_sklearn_one_thread"] = host / (out["native_fit"]["seconds"] + out["native_predict"]["seconds"])
    return out


def fit_scaling(batches, m: int = 100, d: int = 30, seed: int = 0) -> list[dict]:
    """Depth-4 tree fits per second against the number of tables fitted in one call (the H100 aim:
    >= 10^6 fits/s at m 100, d 30): one vmapped ``fit`` of ``k`` random tables, compile apart."""
    import jax
    import jax.numpy as jnp

    from zodc.kernels.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(2, 4)
    labels = jnp.asarray(np.repeat([0, 1], m // 2), jnp.int32)
    fit = jax.jit(jax.vmap(lambda table: model.fit(None, table, labels)))
    rows = []
    for k in batches:
        tables = jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (k, m, d)), jnp.float32)
        first, steady = _timed(fit, tables)
        rows.append({"fits": k, "m": m, "d": d, "compile_and_first_seconds": first, "seconds": steady,
                     "fits_per_second": k / steady})
    return rows


def search(repeats: int = 3, seed: int = 0) -> dict:
    import zodc.estimator as estimator
    from zodc import Condenser
    from zodc.data.datasets import load_dataset
    from zodc.tuning import PrivateSearch

    data = load_dataset("breast_cancer")
    X, y = data.frame.drop(columns=[data.schema.target]), data.frame[data.schema.target]
    grid = {"learning_rate": [0.02, 0.05], "smoothing": [0.05, 0.1]}
    default_batch = estimator.BATCH
    modes = {"batched": default_batch, "one_after_another": 1}
    times = {mode: [] for mode in modes}
    for repeat in range(repeats + 1):  # the first of each mode compiles
        for mode, size in modes.items():
            estimator.BATCH = size
            try:
                start = time.perf_counter()
                PrivateSearch(Condenser("tree", schema=data.schema), grid, random_state=seed + repeat).fit(X, y)
                times[mode].append(time.perf_counter() - start)
            finally:
                estimator.BATCH = default_batch
    out = {"dataset": "breast_cancer", "model": "tree", "candidates": 4, "grid": grid,
           "steps": Condenser().steps, "repeats": repeats}
    for mode in modes:
        out[mode] = {"first_seconds": times[mode][0], "seconds": statistics.median(times[mode][1:]),
                     "all_seconds": times[mode]}
    out["speedup"] = out["one_after_another"]["seconds"] / out["batched"]["seconds"]
    return out


def main(argv=None) -> int:
    from benchmarks.throughput import machine_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", default="1,8,32")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--parts", default="batched,profile,search", help="which sections to run (also: fits)")
    parser.add_argument("--fit-batches", default="128,1024,4096", help="tables per call of the `fits` part")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    started = time.perf_counter()
    result = {"recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(1), "notes": args.note}
    if "batched" in parts:
        result["batched"] = batched([int(r) for r in args.runs.split(",")], args.steps)
    if "profile" in parts:
        result["tree_profile"] = tree_profile()
    if "fits" in parts:
        result["fit_scaling"] = fit_scaling([int(k) for k in args.fit_batches.split(",")])
    if "search" in parts:
        result["search"] = search()
    result["total_seconds"] = time.perf_counter() - started
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w", encoding="utf-8") as handle:
        handle.write(to_markdown(result))
    print(to_markdown(result))
    return 0


def to_markdown(result: dict) -> str:
    machine = result["machine"]
    lines = ["# Batched runs and the tree kernel's profile\n",
             f"Recorded {result['recorded']} on {machine['platform']} ({machine['cpu_count']} CPUs, JAX "
             f"{machine['jax_version']} on {machine['jax_backend']}); load average at start "
             f"{machine.get('load_average_start')}. Compile excluded from steady-state figures.\n"]
    lines += [f"- {note}" for note in result.get("notes", [])]
    if "batched" in result:
        lines += _batched_markdown(result)
    if "tree_profile" in result:
        lines += _profile_markdown(result["tree_profile"])
    if "fit_scaling" in result:
        lines += ["\n## Depth-4 tree fits per second against the tables per call (m 100, d 30)\n",
                  "| tables per call | s / call | fits / s | compile + first s |", "|---:|---:|---:|---:|"]
        lines += [f"| {row['fits']:,} | {row['seconds']:.4f} | {row['fits_per_second']:,.0f} | "
                  f"{row['compile_and_first_seconds']:.1f} |" for row in result["fit_scaling"]]
    if "search" in result:
        found = result["search"]
        lines += [f"\n## The private search's candidates ({found['candidates']} candidates, {found['model']}, "
                  f"{found['dataset']}, {found['steps']} steps; median of {found['repeats']} searches)\n",
                  "| candidates' steps | s / search | first search (compiles) s |", "|---|---:|---:|",
                  f"| one batched program | {found['batched']['seconds']:.2f} | {found['batched']['first_seconds']:.1f} |",
                  f"| one after another | {found['one_after_another']['seconds']:.2f} | "
                  f"{found['one_after_another']['first_seconds']:.1f} |",
                  f"\nBatched over one after another: {found['speedup']:.2f}x (the whole search: DP preprocessing, "
                  "steps and scoring).\n"]
    return "\n".join(lines) + "\n"


def _batched_markdown(result: dict) -> list[str]:
    lines = ["\n## Batched runs (native tree, q 16, m 20, d 30, 400 records, p 0.64)\n",
              "| runs R | s / step (batch) | fits / s | speed-up per run vs R separate runs | compile + first s |",
              "|---:|---:|---:|---:|---:|"]
    for row in result["batched"]:
        lines.append(f"| {row['runs']} | {row['seconds_per_step']:.4f} | {row['fits_per_second']:,.0f} | "
                     f"{row['speedup_per_run_vs_separate']:.2f} | {row['compile_and_first_seconds']:.1f} |")
    return lines


def _profile_markdown(profile: dict) -> list[str]:
    shape = profile["shape"]
    return [f"\n## The tree kernel at the headline shapes ({shape['fits']} fits of {shape['m']} x {shape['d']}, "
              f"depth {shape['max_depth']}; {shape['B']} records predicted per table)\n",
              "| part | seconds | note |", "|---|---:|---|",
              f"| native fit (vmapped{'; the C++ CPU builder' if profile['native_fit'].get('cpu_builder') else ''}) | "
              f"{profile['native_fit']['seconds']:.4f} | {profile['native_fit']['fits_per_second']:,.0f} fits/s |",
              f"| portable fit (`grow_tree`'s dense search, vmapped) | {profile['portable_fit']['seconds']:.4f} | "
              f"{profile['portable_fit']['fits_per_second']:,.0f} fits/s |",
              f"| of which the per-feature sort | {profile['portable_sort']['seconds']:.4f} | "
              f"{100 * profile['portable_sort']['share_of_fit']:.0f} % of the portable fit |",
              f"| native predict of B records, all tables | {profile['native_predict']['seconds']:.4f} | |",
              f"| scikit-learn fit + predict, one thread, all tables | "
              f"{profile['sklearn_fit_predict_one_thread']['seconds']:.4f} | "
              f"{profile['sklearn_fit_predict_one_thread']['fits_per_second']:,.0f} fits/s |",
              f"\nNative over scikit-learn on one thread: {profile['native_over_sklearn_one_thread']:.2f}x.\n"]


if __name__ == "__main__":
    sys.exit(main())
