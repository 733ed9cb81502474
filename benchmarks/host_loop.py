"""Host backend: the step through a ``jax.pure_callback`` inside ``jit`` (``zodc.condense.run``)
against ask / tell compiled with the fits called directly outside ``jit`` (``run_ask_tell``, what
``Condenser`` runs for host models), side by side in one process on the same data and seed.

    python -m benchmarks.host_loop --steps 30 --rounds 3 --out benchmarks/results/host_loop_cpu.json

Per model and loop: the first ``warmup`` steps (compilation, the first fits) are timed apart and
excluded; ``step_seconds`` is the median over ``rounds`` of the mean steady-state step. Both loops
must end on the same table (``identical``), or the comparison is void.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np


def _problem(model: str):
    from zodc.data.datasets import load_dataset
    from zodc.data.transform import TableEncoder
    from zodc.models.host import HostEvaluator, fit_score_classifier
    from zodc.models.losses import ClassificationLoss
    from zodc.models.presets import get_preset
    from zodc.models.survival import (SurvivalLoss, TimeScale, fit_score_survival, host_survival_payload,
                                      public_time_grid)

    if model == "cox":
        data = load_dataset("gbsg2")
        schema = data.schema
        encoded = TableEncoder(schema).encode(data.frame)
        X, time_, event = np.asarray(encoded.X), data.frame[schema.time.name].to_numpy(float), np.asarray(encoded.event)
        grid = public_time_grid(schema.time.lower, schema.time.upper, 10, "log")
        loss = SurvivalLoss("discrete_nll", grid)
        events = (np.arange(50) < 22).astype(np.int64)
        payload = host_survival_payload(get_preset("cox").host(2), loss, X, time_, event, events,
                                        TimeScale.from_schema(schema))
        evaluator = HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=len(X))
        return evaluator, len(X), (50, X.shape[1] + 1)
    data = load_dataset("breast_cancer")
    encoded = TableEncoder(data.schema).encode(data.frame)
    X, y = np.asarray(encoded.X), np.asarray(encoded.y, np.int32)
    loss = ClassificationLoss("balanced_linear")
    payload = {"estimator": get_preset(model).host(2), "X": X, "y": y, "synthetic_labels": np.repeat([0, 1], 10),
               "num_classes": 2, "loss": loss, "soft_labels": False}
    evaluator = HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=len(X))
    return evaluator, len(X), (20, X.shape[1])


def measure(model: str, steps: int, rounds: int, warmup: int) -> dict:
    from zodc.condense import StepParams, ZeroOrderCondenser, adam, run, run_ask_tell

    evaluator, n, shape = _problem(model)
    params = StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(1.0), noise_multiplier=jnp.float32(3.0),
                        sampling_probability=jnp.float32(0.4), expected_batch_size=jnp.float32(0.4 * n))
    noise = np.random.default_rng(0).integers(-2**20, 2**20, size=(steps, 16)).astype(np.int32)
    start = jax.random.uniform(jax.random.key(1), shape, minval=-0.5, maxval=0.5)
    condenser = ZeroOrderCondenser(evaluator.jax_fn(), adam(0.05), num_records=n, num_directions=16)
    loops = {"callback": lambda s, cb: run(condenser, s, params, steps, noise=noise, chunk_size=1, on_chunk=cb),
             "ask_tell": lambda s, cb: run_ask_tell(condenser, s, params, steps, evaluator, noise=noise, on_chunk=cb)}
    times = {name: [] for name in loops}
    warm = {name: [] for name in loops}
    tables = {}
    for r in range(rounds):
        for name in (list(loops) if r % 2 == 0 else list(loops)[::-1]):  # alternate the order
            stamps = [time.perf_counter()]
            state, _ = loops[name](condenser.init(jax.random.key(3), start),
                                   lambda st, info: (jax.block_until_ready(st.table), stamps.append(time.perf_counter())))
            warm[name].append(stamps[warmup] - stamps[0])
            times[name].append((stamps[-1] - stamps[warmup]) / (steps - warmup))
            tables[name] = np.asarray(state.table)
    evaluator.close()
    out = {name: {"step_seconds": statistics.median(times[name]), "warmup_seconds": statistics.median(warm[name])}
           for name in loops}
    out["ratio_callback_over_ask_tell"] = out["callback"]["step_seconds"] / out["ask_tell"]["step_seconds"]
    out["identical"] = bool(np.array_equal(tables["callback"], tables["ask_tell"]))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tree,logistic,cox", help="host presets to time")
    parser.add_argument("--steps", type=int, default=30, help="steps per loop and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (loops alternate their order)")
    parser.add_argument("--warmup", type=int, default=5, help="first steps excluded (compilation, first fits)")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    results = {model: measure(model, args.steps, args.rounds, args.warmup) for model in args.models.split(",")}
    record = {"machine": f"{platform.machine()} {platform.processor() or ''} ({jax.devices()[0].platform})".strip(),
              "cpu_count": __import__("os").cpu_count(), "steps": args.steps, "rounds": args.rounds,
              "warmup": args.warmup, "results": results}
    print(json.dumps(record, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(record, handle, indent=1)


if __name__ == "__main__":
    main()
