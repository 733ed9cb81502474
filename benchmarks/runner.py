"""The utility benchmark: condensed data against every alternative a clinical data owner has.

    python -m benchmarks.runner --grid ci --out /tmp/utility_ci.json       # from the repository root

Protocol (the same as ``zodc condense``): per seed, a 70/30 split of the cohort stratified by the
target (``train_test_split(random_state=seed)``); every table — the condensed one and each
baseline of :mod:`benchmarks.baselines` — is built from the 70 % only, each evaluation model
(the presets' host references) is trained on it and tested on the real 30 % (TSTR AUROC and
balanced accuracy). Every condensed table is evaluated with *every* evaluation model: the diagonal
is the headline, the rest is cross-model transfer. Private baselines get the same target
``(epsilon, delta)`` as the condenser and their own calibrated, ledger-checked noise.

Results are a JSON (rewritten after every cell, so an interrupted run keeps what it measured),
markdown tables (mean ± sd over seeds; paired win/tie/loss of the condensed table against each
baseline) and matplotlib plots (utility vs epsilon, utility vs size).

Survival cells follow ``zodc condense`` for survival: the split is stratified by the event, the
table is ``Condenser(model, rows=m, ...)`` fitted with ``duration_col`` / ``event_col``, and every
table is scored by TSTR Harrell's C-index (:func:`zodc.evaluate.survival.survival_utility`, host
reference of the model: lifelines Cox for ``cox``) against the survival baselines at the same
``m`` rows and ``(epsilon, delta)``. What cannot run here is recorded under ``not_run`` with the
reason: a model whose host reference is missing (``survival_forest`` without scikit-survival), a
size ``m`` at or above the training rows, the MST and AIM baselines without ``mbi`` (the ``bench``
extra).

Utility against the cohort size: with ``train_sizes`` (``--train-sizes 500,2000,all``) every cell
is also run on a training part subsampled to ``n`` rows after the 70/30 split
(:func:`subsample_train`: stratified by the target or event, seeded by the cell's seed, nested in
``n``) before any table is built; ``n`` is a cell dimension (``train_size`` in the records, a
column in the markdown), and the plot step draws utility against ``n`` and against epsilon per
cohort and model (:func:`curve_plots`). A size at or above the training rows is not run (recorded).

Result JSONs may be read and written gzip-compressed (``.json.gz``; :mod:`benchmarks.results_io`).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import inspect
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from typing import Any, Callable

import numpy as np

CLASSIFICATION_MODELS = ("tree", "forest", "boosting", "logistic")
SURVIVAL_MODELS = ("cox", "survival_forest")
# A paired difference counts as a win or a loss when its mean is beyond this many standard errors.
WIN_THRESHOLD_SE = 2.0
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "utility.json")


# --------------------------------------------------------------------------------------------- config

def _epsilon(value: Any) -> float:
    return math.inf if isinstance(value, str) and value.lower() in ("inf", "infinity") else float(value)


def _json_epsilon(value: float) -> float | str:
    return "inf" if math.isinf(value) else value


def load_grid(config: dict, grid: str) -> dict:
    """The named grid of a utility config, with defaults filled in and epsilons as floats."""
    grids = config.get("grids", {})
    if grid not in grids:
        raise KeyError(f"grid {grid!r} not in the config; grids are: {sorted(grids)}.")
    spec = dict(config.get("defaults", {}), **grids[grid])
    spec["epsilons"] = [_epsilon(e) for e in spec["epsilons"]]
    spec.setdefault("delta", 1e-5)
    spec.setdefault("seeds", 5)
    spec.setdefault("first_seed", 0)
    spec.setdefault("holdout", 0.3)
    spec.setdefault("backend", "auto")
    spec.setdefault("condenser", {})
    spec.setdefault("baselines", ["full_data", "random_subset", "kmeans_centroids", "dp_gaussian", "mst"])
    spec["train_sizes"] = [_train_size(n) for n in spec.get("train_sizes", ["all"])]
    spec.setdefault("baseline_options", {})
    spec.setdefault("survival_datasets", [])
    spec.setdefault("survival_models", [])
    spec.setdefault("survival_rows", [])
    spec.setdefault("survival_evaluate_models", spec["survival_models"])
    spec["survival_epsilons"] = [_epsilon(e) for e in spec.get("survival_epsilons", spec["epsilons"])]
    spec.setdefault("survival_seeds", spec["seeds"])
    spec.setdefault("survival_condenser", spec["condenser"])
    spec.setdefault("survival_baselines", spec["baselines"])
    spec.setdefault("survival_baseline_options", spec["baseline_options"])
    spec.setdefault("condense_models", [])
    spec.setdefault("datasets", [])
    spec.setdefault("rows_per_class", [])
    spec.setdefault("evaluate_models", spec["condense_models"])
    for model in list(spec["condense_models"]) + list(spec["evaluate_models"]):
        if model not in CLASSIFICATION_MODELS:
            raise ValueError(f"classification model {model!r} unknown; models are {CLASSIFICATION_MODELS}.")
    for model in list(spec["survival_models"]) + list(spec["survival_evaluate_models"]):
        if model not in SURVIVAL_MODELS:
            raise ValueError(f"survival model {model!r} unknown; models are {SURVIVAL_MODELS}.")
    return spec


def _train_size(value: Any) -> int | str:
    """A training-part size: ``"all"`` or an integer >= 2."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    if isinstance(value, bool) or float(value) != int(float(value)) or int(float(value)) < 2:
        raise ValueError(f"a train size is 'all' or an integer >= 2; got {value!r}.")
    return int(float(value))


def _size_value(train_size: Any) -> float:
    """Sort key of a train size: ``"all"`` after every number."""
    return math.inf if str(train_size) == "all" else float(train_size)


def cells(spec: dict) -> list[dict]:
    """The classification cells: one per (dataset, train size, rows_per_class, epsilon, seed)."""
    seeds = range(spec["first_seed"], spec["first_seed"] + spec["seeds"])
    return [{"task": "classification", "dataset": d, "train_size": n, "rows_per_class": k, "epsilon": e, "seed": s}
            for d, n, k, e, s in itertools.product(spec["datasets"], spec.get("train_sizes", ["all"]),
                                                   spec["rows_per_class"], spec["epsilons"], seeds)]


def survival_cells(spec: dict) -> list[dict]:
    """The survival cells: one per (dataset, train size, rows, epsilon, seed), sizes not yet checked against the data."""
    seeds = range(spec["first_seed"], spec["first_seed"] + spec["survival_seeds"])
    return [{"task": "survival", "dataset": d, "train_size": n, "rows": m, "epsilon": e, "seed": s}
            for d, n, m, e, s in itertools.product(spec["survival_datasets"], spec.get("train_sizes", ["all"]),
                                                   spec["survival_rows"], spec["survival_epsilons"], seeds)]


def subsample_train(frame, column: str, size: Any, seed: int):
    """``size`` rows of the training part ``frame``, stratified by ``column`` (the target, or the event),
    seeded by the cell's ``seed``; ``frame`` itself for ``"all"`` or a size >= its rows.

    Each stratum gets its proportional share of ``size`` (largest remainders; at least one row of
    every stratum present); its rows are a prefix of one seeded permutation of the stratum, so for
    one seed a smaller subsample lies inside a larger one (nested sizes, a smoother curve) whenever
    the shares grow with ``size``, which they do up to the rounding of one row.
    """
    import pandas as pd

    if str(size) == "all" or int(size) >= len(frame):
        return frame
    size = int(size)
    codes, _ = pd.factorize(frame[column], sort=True)
    if (codes < 0).any():
        raise ValueError(f"column {column!r} has missing values: cannot stratify the subsample by it.")
    counts = np.bincount(codes)
    exact = size * counts / counts.sum()
    shares = np.floor(exact).astype(np.int64)
    for g in sorted(range(counts.size), key=lambda g: (-(exact[g] - shares[g]), g))[:size - int(shares.sum())]:
        shares[g] += 1
    for g in np.flatnonzero((shares == 0) & (counts > 0)):   # keep every stratum (both classes)
        donor = int(np.argmax(shares))
        if shares[donor] > 1:
            shares[donor] -= 1
            shares[g] = 1
    rng = np.random.default_rng([int(seed), 104729])
    chosen = [rng.permutation(np.flatnonzero(codes == g))[:shares[g]] for g in range(counts.size)]
    return frame.iloc[np.sort(np.concatenate(chosen))]


def plan_train_sizes(planned: list[dict], spec: dict, not_run: list) -> list[dict]:
    """``planned`` less the cells whose train size is at or above the cohort's training rows (the same
    table as ``"all"``); each such (dataset, size) is appended to ``not_run`` with the reason."""
    from zodc.data.datasets import load_dataset

    sizes = sorted({(c["dataset"], c["train_size"]) for c in planned if str(c.get("train_size", "all")) != "all"})
    available = {d: train_rows(len(load_dataset(d).frame), spec["holdout"]) for d in {d for d, _ in sizes}}
    dropped = set()
    for dataset, size in sizes:
        if size >= available[dataset]:
            dropped.add((dataset, size))
            task = next(c["task"] for c in planned if c["dataset"] == dataset)
            not_run.append({"what": f"{task} {dataset} at n = {size} training rows",
                            "cells": sum(1 for c in planned if (c["dataset"], c.get("train_size")) == (dataset, size)),
                            "reason": f"n = {size} >= the {available[dataset]} training rows (70 % split): the same "
                                      "as n = all"})
    return [c for c in planned if (c["dataset"], c.get("train_size", "all")) not in dropped]


def survival_model_available(model: str) -> str | None:
    """``None`` when the survival preset's host reference can be built here, else the reason it cannot."""
    from zodc.models.presets import PRESETS

    if model not in PRESETS:
        return f"no {model} preset in this build"
    try:
        PRESETS[model].host_factory(0)
    except Exception as error:  # noqa: BLE001 - e.g. survival_forest without scikit-survival (GPL)
        return str(error)
    return None


def baseline_available(name: str) -> str | None:
    """``None`` when the baseline can be built here, else the reason it cannot (MST and AIM need ``mbi``)."""
    if name in ("mst", "aim") and importlib.util.find_spec("mbi") is None:
        return f"the {name.upper()} baseline needs mbi (Private-PGM), not installed: pip install -e '.[bench]'"
    return None


def drop_unavailable_baselines(spec: dict, not_run: list) -> dict:
    """``spec`` without the baselines that cannot be built here; each one left out is appended to
    ``not_run`` with the reason (nothing is dropped silently)."""
    spec = dict(spec)
    for key, datasets, task in (("baselines", "datasets", "classification"),
                                ("survival_baselines", "survival_datasets", "survival")):
        if key not in spec:
            continue
        kept = []
        for name in spec[key]:
            reason = baseline_available(name)
            if reason is None:
                kept.append(name)
            elif spec.get(datasets):
                not_run.append({"what": f"{task} baseline {name} (every {task} cell)", "reason": reason})
        spec[key] = kept
    return spec


def train_rows(num_rows: int, holdout: float) -> int:
    """Rows in the 70 % of ``train_test_split(test_size=holdout)`` (it rounds the test size up)."""
    return num_rows - math.ceil(holdout * num_rows)


def survival_api_available() -> bool:
    """Whether ``Condenser.fit`` takes ``duration_col`` / ``event_col`` (survival condensation)."""
    from zodc.estimator import Condenser

    parameters = inspect.signature(Condenser.fit).parameters
    return "duration_col" in parameters and "event_col" in parameters


def estimate_seconds(spec: dict, seconds_per_condense: dict[str, float], seconds_per_cell_baselines: float) -> float:
    """Rough runtime of a grid from measured per-condensation and per-cell baseline seconds."""
    classification = len(cells(spec)) * (sum(seconds_per_condense.get(m, 10.0) for m in spec["condense_models"])
                                         + seconds_per_cell_baselines)
    return classification


# --------------------------------------------------------------------------------------------- scoring

def _scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score

    from zodc.evaluate.utility import auroc

    return {"auroc": auroc(y_true, proba),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, proba.argmax(axis=1)))}


def _encode(frame, schema):
    from zodc.data.transform import TableEncoder
    from zodc.data.validation import clean_quietly

    return TableEncoder(schema).encode(clean_quietly(frame, schema))


def tstr(table, test, schema, models) -> dict[str, dict[str, float]]:
    """Train each model on ``table``, test on the real ``test`` (both DataFrames in schema columns; a
    ``sample_weight`` column in ``table``, a soft-label release, is passed to every fit)."""
    from zodc.evaluate.utility import fit_predict_proba
    from zodc.models.presets import PRESETS

    from zodc.models.soft_labels import split_release

    table, weight = split_release(table)
    train_encoded, test_encoded = _encode(table, schema), _encode(test, schema)
    out = {}
    for model in models:
        estimator = PRESETS[model].host_factory(schema.n_classes)
        proba = fit_predict_proba(estimator, train_encoded.X, train_encoded.y, test_encoded.X, schema.n_classes,
                                  sample_weight=weight)
        out[model] = _scores(test_encoded.y, proba)
    return out


# --------------------------------------------------------------------------------------------- one cell

def _baseline(name: str, train, schema, size: int, epsilon: float, delta: float, seed: int, options: dict,
              survival: bool = False):
    """Builds one baseline table: ``size`` rows per class (classification) or ``size`` rows (survival)."""
    from benchmarks import baselines

    rng = np.random.default_rng([seed, baselines.BASELINES.index(name), 7919] + ([1] if survival else []))
    if name == "full_data":
        return baselines.full_data(train, schema)
    if name == "random_subset":
        build = baselines.random_subset_survival if survival else baselines.random_subset
        return build(train, schema, size, random_state=rng)
    if name == "kmeans_centroids":
        build = baselines.kmeans_survival if survival else baselines.kmeans_centroids
        return build(train, schema, size, random_state=rng)
    if name == "dp_gaussian":
        build = baselines.dp_gaussian_survival if survival else baselines.dp_gaussian
        return build(train, schema, size, epsilon=epsilon, delta=delta, random_state=rng,
                     **options.get("dp_gaussian", {}))
    if name in ("mst", "aim"):
        per_class, total = (None, {"num_rows": size}) if survival else (size, {})
        return getattr(baselines, name)(train, schema, per_class, **total, epsilon=epsilon, delta=delta,
                                        random_state=rng, **options.get(name, {}))
    raise ValueError(f"unknown baseline {name!r}; baselines are {baselines.BASELINES}.")


def run_cell(cell: dict, spec: dict, cache: dict) -> dict:
    """Condense with every model and build every baseline for one (dataset, k, epsilon, seed)."""
    from sklearn.model_selection import train_test_split

    from zodc.data.datasets import load_dataset
    from zodc.estimator import Condenser
    from benchmarks.baselines import PRIVATE_BASELINES

    dataset = load_dataset(cell["dataset"])
    schema, target = dataset.schema, dataset.schema.target
    seed, k, epsilon, delta = cell["seed"], cell["rows_per_class"], cell["epsilon"], spec["delta"]
    size = cell.get("train_size", "all")
    train, test = train_test_split(dataset.frame, test_size=spec["holdout"], random_state=seed,
                                   stratify=dataset.frame[target])
    available = int(len(train))
    train = subsample_train(train, target, size, seed)
    evaluate_models = spec["evaluate_models"]
    record: dict[str, Any] = {**cell, "train_size": size, "epsilon": _json_epsilon(epsilon), "train_rows": int(len(train)),
                              "train_rows_available": available, "test_rows": int(len(test)), "condensed": {},
                              "baselines": {}}
    for model in spec["condense_models"]:
        started = time.perf_counter()
        condenser = Condenser(model, epsilon=epsilon, delta=delta, rows_per_class=k, schema=schema,
                              backend=spec["backend"], random_state=seed, verbose=0, **spec["condenser"])
        condenser.fit(train.drop(columns=[target]), train[target])
        seconds = time.perf_counter() - started
        record["condensed"][model] = {
            "epsilon_spent": _json_epsilon(condenser.epsilon_), "noise_multiplier": condenser.noise_multiplier_,
            "backend": condenser.backend_, "soft_labels": bool(condenser.soft_labels_), "seconds": round(seconds, 3),
            "utility": tstr(condenser.synthetic_, test, schema, evaluate_models)}
    for name in spec["baselines"]:
        private = name in PRIVATE_BASELINES
        # Non-private references do not depend on epsilon (full data not on k either): build once.
        key = (cell["dataset"], size, seed, name) + ((k, epsilon) if private else (() if name == "full_data" else (k,)))
        if key not in cache:
            started = time.perf_counter()
            result = _baseline(name, train, schema, k, epsilon, delta, seed, spec["baseline_options"])
            cache[key] = {"private": result.private, "epsilon_spent": _json_epsilon(result.epsilon),
                          "rows": int(len(result.table)), "seconds": round(time.perf_counter() - started, 3),
                          "details": _jsonable(result.details),
                          "utility": tstr(result.table, test, schema, evaluate_models)}
            if private and math.isfinite(epsilon) and result.epsilon > epsilon * (1 + 1e-9):
                raise RuntimeError(f"baseline {name} spent epsilon {result.epsilon} > target {epsilon}.")
        record["baselines"][name] = cache[key]
    return record


# --------------------------------------------------------------------------------------------- survival cells

def _survival_triple(frame, schema) -> tuple:
    """``(X (n, d), time (n,), event (n,))`` of a DataFrame in schema columns, as ``zodc condense`` encodes it."""
    table = _encode(frame, schema)
    return np.asarray(table.X, np.float64), np.asarray(table.time, np.float64), np.asarray(table.event)


def survival_tstr(table, train: tuple, test: tuple, schema, models, *, num_rows: int, seed: int,
                  time_grid=None, num_random_subsets: int = 1) -> dict[str, dict]:
    """C-index (and IBS on ``time_grid``) of each host survival model trained on ``table``, tested on ``test``
    (a ``sample_weight`` column in ``table``, a soft-event release, weights every fit).

    The evaluation of ``zodc condense``: :func:`zodc.evaluate.survival.survival_utility`; its own
    full-data and random-subset references are kept under ``reference``. Encoded feature columns
    constant in ``table`` are left out of this table's evaluation (``dropped_constant_columns``).
    """
    from zodc.errors import DataError
    from zodc.evaluate.survival import drop_constant_columns, survival_utility
    from zodc.models.soft_labels import split_release

    table, weight = split_release(table)  # a soft-event release: its copies' weights go to every fit
    triple = _survival_triple(table, schema) + ((weight,) if weight is not None else ())
    # lifelines' Cox cannot fit a column that is constant in its training table (a level absent from
    # a small table; it diverges and scores 0.5 as a failed fit): drop such columns from this table's
    # evaluation, train, test and references alike — what an analyst fitting Cox on the table would do.
    triple, train, test, dropped = drop_constant_columns(triple, train, test)
    out = {}
    for model in models:
        try:
            utility = survival_utility(model, triple, train, test, num_rows=num_rows, random_state=seed,
                                       num_random_subsets=num_random_subsets, time_grid=time_grid)
        except DataError:  # the grid has < 2 points below the largest test time: C-index only
            utility = survival_utility(model, triple, train, test, num_rows=num_rows, random_state=seed,
                                       num_random_subsets=num_random_subsets)
        out[model] = dict(utility["synthetic"], dropped_constant_columns=dropped,
                          reference={"full_data": utility["full_data"], "random_subset": utility["random_subset"]})
    return out


def run_survival_cell(cell: dict, spec: dict, cache: dict, models: list[str], evaluate_models: list[str]) -> dict:
    """Condense with each runnable survival model and build every survival baseline for one cell.

    Protocol of ``zodc condense`` for survival: 70/30 split stratified by the event, condense on the
    70 %, C-index of each host reference trained on each table on the 30 %.
    """
    from sklearn.model_selection import train_test_split

    from zodc.data.datasets import load_dataset
    from zodc.estimator import Condenser
    from benchmarks.baselines import PRIVATE_BASELINES

    dataset = load_dataset(cell["dataset"])
    schema = dataset.schema
    seed, rows, epsilon, delta = cell["seed"], cell["rows"], cell["epsilon"], spec["delta"]
    size = cell.get("train_size", "all")
    train, test = train_test_split(dataset.frame, test_size=spec["holdout"], random_state=seed,
                                   stratify=dataset.frame[schema.event])
    available = int(len(train))
    train = subsample_train(train, schema.event, size, seed)
    train_triple, test_triple = _survival_triple(train, schema), _survival_triple(test, schema)
    record: dict[str, Any] = {**cell, "train_size": size, "epsilon": _json_epsilon(epsilon), "train_rows": int(len(train)),
                              "train_rows_available": available, "test_rows": int(len(test)), "condensed": {},
                              "baselines": {}}
    time_grid = None
    for model in models:
        started = time.perf_counter()
        condenser = Condenser(model, epsilon=epsilon, delta=delta, rows=rows, schema=schema, backend=spec["backend"],
                              random_state=seed, verbose=0, **spec["survival_condenser"])
        condenser.fit(train, duration_col=schema.time.name, event_col=schema.event)
        seconds = time.perf_counter() - started
        time_grid = condenser.time_grid_  # public (schema bounds), the same for every model
        record["condensed"][model] = {
            "epsilon_spent": _json_epsilon(condenser.epsilon_), "noise_multiplier": condenser.noise_multiplier_,
            "backend": condenser.backend_, "seconds": round(seconds, 3),
            # soft events: the event copies' (the last m rows') total weight
            "events_in_synthetic": (int(np.sum(condenser.events_)) if condenser.sample_weight_ is None else
                                    round(float(np.sum(condenser.sample_weight_[rows:])), 3)),
            "utility": survival_tstr(condenser.synthetic_, train_triple, test_triple, schema, evaluate_models,
                                     num_rows=rows, seed=seed, time_grid=time_grid, num_random_subsets=5)}
    for name in spec["survival_baselines"]:
        private = name in PRIVATE_BASELINES
        key = ("survival", cell["dataset"], size, seed, name) + ((rows, epsilon) if private else (() if name == "full_data" else (rows,)))
        if key not in cache:
            started = time.perf_counter()
            result = _baseline(name, train, schema, rows, epsilon, delta, seed, spec["survival_baseline_options"],
                               survival=True)
            built = round(time.perf_counter() - started, 3)
            cache[key] = {"private": result.private, "epsilon_spent": _json_epsilon(result.epsilon),
                          "rows": int(len(result.table)), "events": int(result.table[schema.event].sum()),
                          "seconds": built, "details": _jsonable(result.details),
                          "utility": survival_tstr(result.table, train_triple, test_triple, schema, evaluate_models,
                                                   num_rows=rows, seed=seed, time_grid=time_grid)}
            if private and math.isfinite(epsilon) and result.epsilon > epsilon * (1 + 1e-9):
                raise RuntimeError(f"baseline {name} spent epsilon {result.epsilon} > target {epsilon}.")
        record["baselines"][name] = cache[key]
    return record


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------- summary

def _float(value) -> float:
    return _epsilon(value) if isinstance(value, str) else float(value)


def _stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if array.size > 1 else 0.0, "n": int(array.size)}


def summarise(records: list[dict], metric: str = "auroc") -> dict:
    """Mean ± sd over seeds, paired condensed-minus-baseline differences, transfer matrices.

    Returns:
      ``{"utility": [...], "comparisons": [...], "transfer": [...]}``; each entry is keyed by
      dataset, train_size (``"all"`` for records written before it was a dimension), rows_per_class,
      epsilon (and the models involved); utility rows also give the training rows used.
    """
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.get("task", "classification") != "classification":
            continue
        groups.setdefault((record["dataset"], record.get("train_size", "all"), record["rows_per_class"],
                           record["epsilon"]), []).append(record)
    utility, comparisons, transfer = [], [], []
    for (dataset, size, k, epsilon), group in groups.items():
        group = sorted(group, key=lambda r: r["seed"])
        condense_models = list(group[0]["condensed"])
        first = next(iter(group[0]["condensed"].values()), None) or next(iter(group[0]["baselines"].values()), None)
        evaluate_models = list(first["utility"]) if first else []
        baseline_names = list(group[0]["baselines"])
        key = {"dataset": dataset, "train_size": size, "rows_per_class": k, "epsilon": epsilon}
        for model in evaluate_models:
            row = dict(key, model=model, num_seeds=len(group), train_rows=int(group[0].get("train_rows", 0)))
            if model in condense_models:
                row["condensed"] = _stats([r["condensed"][model]["utility"][model][metric] for r in group])
            for name in baseline_names:
                row[name] = _stats([r["baselines"][name]["utility"][model][metric] for r in group])
            utility.append(row)
            if model not in condense_models:
                continue
            mine = np.array([r["condensed"][model]["utility"][model][metric] for r in group])
            for name in baseline_names:
                theirs = np.array([r["baselines"][name]["utility"][model][metric] for r in group])
                mean, se, verdict = _paired(mine, theirs)
                comparisons.append(dict(key, model=model, baseline=name, mean_difference=mean,
                                        se=se if math.isfinite(se) else "inf", verdict=verdict,
                                        baseline_private=bool(group[0]["baselines"][name]["private"])))
        for source in condense_models:
            transfer.append(dict(key, condensed_with=source, evaluated_with={
                target: _stats([r["condensed"][source]["utility"][target][metric] for r in group])
                for target in evaluate_models}))
    return {"metric": metric, "win_threshold_se": WIN_THRESHOLD_SE, "utility": utility,
            "comparisons": comparisons, "transfer": transfer}


def _paired(mine: np.ndarray, theirs: np.ndarray) -> tuple[float, float, str]:
    diff = mine - theirs
    se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else math.inf
    mean = float(diff.mean())
    verdict = "win" if mean > WIN_THRESHOLD_SE * se else "loss" if mean < -WIN_THRESHOLD_SE * se else "tie"
    return mean, se, verdict


def summarise_survival(records: list[dict], metric: str = "c_index") -> dict:
    """Survival records: mean ± sd over seeds and paired condensed-minus-baseline differences.

    Returns:
      ``{"metric", "utility": [...], "comparisons": [...]}`` keyed by dataset, train_size, rows, epsilon, model.
      No transfer matrix: only the condensing models that ran are evaluated (cox).
    """
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.get("task") == "survival":
            groups.setdefault((record["dataset"], record.get("train_size", "all"), record["rows"], record["epsilon"]),
                              []).append(record)
    utility, comparisons = [], []
    for (dataset, size, rows, epsilon), group in groups.items():
        group = sorted(group, key=lambda r: r["seed"])
        condense_models = list(group[0]["condensed"])
        baseline_names = list(group[0]["baselines"])
        key = {"dataset": dataset, "train_size": size, "rows": rows, "epsilon": epsilon}
        for model in condense_models:
            row = dict(key, model=model, num_seeds=len(group), train_rows=int(group[0].get("train_rows", 0)))
            mine = np.array([r["condensed"][model]["utility"][model][metric] for r in group])
            row["condensed"] = _stats(list(mine))
            for name in baseline_names:
                theirs = np.array([r["baselines"][name]["utility"][model][metric] for r in group])
                row[name] = _stats(list(theirs))
                mean, se, verdict = _paired(mine, theirs)
                comparisons.append(dict(key, model=model, baseline=name, mean_difference=mean,
                                        se=se if math.isfinite(se) else "inf", verdict=verdict,
                                        baseline_private=bool(group[0]["baselines"][name]["private"])))
            utility.append(row)
    return {"metric": metric, "win_threshold_se": WIN_THRESHOLD_SE, "utility": utility, "comparisons": comparisons}


def _cell(stats: dict | None) -> str:
    return "–" if not stats else f"{stats['mean']:.3f} ± {stats['sd']:.3f}"


def _eps_text(epsilon) -> str:
    return "∞" if str(epsilon) == "inf" else f"{_float(epsilon):g}"


BASELINE_LABELS = {"full_data": "full data†", "random_subset": "random real†", "kmeans_centroids": "k-means†",
                   "dp_gaussian": "DP Gaussian", "mst": "MST", "aim": "AIM"}
PRIVATE_TABLES = ("condensed", "dp_gaussian", "mst", "aim")


def _varies_n(rows: list[dict]) -> bool:
    """Whether a report needs a training-size column: some row was run on a subsample."""
    return any(str(r.get("train_size", "all")) != "all" for r in rows)


def _n_text(row: dict) -> str:
    return "all" if str(row.get("train_size", "all")) == "all" else str(row["train_size"])


def _label_provenance(result: dict) -> list[str]:
    """A line per condensing model whose tables were not all made with the same labels.

    Records written since ``soft_labels`` became a condenser setting say, per condensed table,
    whether it has soft labels; older ones do not (they are hard-label tables: soft labels were
    off by default then). Says nothing when every table of every model has hard labels.
    """
    counts: dict[str, Counter] = {}
    for record in result["records"]:
        if record.get("task", "classification") != "classification":
            continue
        for model, entry in record.get("condensed", {}).items():
            counts.setdefault(model, Counter())[bool(entry.get("soft_labels", False))] += 1
    lines = []
    for model in sorted(counts):
        soft, total = counts[model][True], sum(counts[model].values())
        if soft == total:
            lines.append(f"- `{model}` tables have soft labels (all {total} cells).")
        elif soft:
            lines.append(f"- `{model}` tables have soft labels in {soft} of {total} cells, hard labels in the others "
                         "(a grid merged from runs before and after the soft-label default).")
    return lines + [""] if lines else []


def markdown(result: dict) -> str:
    """Markdown report of a results JSON: headline tables, win/tie/loss, transfer, not run."""
    summary = result["summary"]
    metric = summary["metric"].upper() if summary["metric"] == "auroc" else summary["metric"]
    lines = [f"# Utility benchmark — grid `{result['settings']['grid']}`", ""]
    if any(r.get("task", "classification") == "classification" for r in result["records"]):
        lines += [f"TSTR {metric} on the held-out real 30 %, mean ± sd over seeds "
                  f"({result['settings']['seeds']} seeds; 70/30 stratified split per seed). † = non-private reference "
                  "(real records; not a DP release). Private rows: the condensed table, DP Gaussian, MST and AIM all meet "
                  "the same target (ε, δ = " f"{result['settings']['delta']:g}) with their own calibrated ledgers.", ""]
    else:
        lines += ["Private tables (condensed, DP Gaussian, MST, AIM) all meet the same target (ε, δ = "
                  f"{result['settings']['delta']:g}) with their own calibrated ledgers.", ""]
    if _varies_n(result["records"]):
        lines += ["n = training rows: the 70 % training part subsampled to n rows (stratified, seeded by the seed) before "
                  "any table is built; all = the whole 70 %.", ""]
    lines += _label_provenance(result)
    rows = [r for r in summary["utility"] if "condensed" in r]
    baselines = [b for b in BASELINE_LABELS if rows and b in rows[0]]
    show_n = _varies_n(rows)
    n_head, n_rule = (" n |", "|---") if show_n else ("", "")
    for dataset in sorted({r["dataset"] for r in rows}):
        lines += [f"## {dataset}", "",
                  "| model | k/class | ε |" + n_head + " condensed | " + " | ".join(BASELINE_LABELS[b] for b in baselines) + " |",
                  "|---" * (4 + len(baselines)) + n_rule + "|"]
        for r in sorted((r for r in rows if r["dataset"] == dataset),
                        key=lambda r: (r["model"], r["rows_per_class"], _float(r["epsilon"]), _size_value(r.get("train_size", "all")))):
            # A grid finished over several runs can hold fewer seeds for some cells so far.
            short = f" (n = {r['num_seeds']})" if r["num_seeds"] < result["settings"]["seeds"] else ""
            n_cell = f" {_n_text(r)} |" if show_n else ""
            lines.append(f"| {r['model']} | {r['rows_per_class']} | {_eps_text(r['epsilon'])} |{n_cell} **{_cell(r['condensed'])}**{short} | "
                         + " | ".join(_cell(r.get(b)) for b in baselines) + " |")
        lines.append("")
    comparisons = summary["comparisons"]
    if comparisons:
        lines += ["## Condensed vs each baseline (paired over seeds)", "",
                  f"Mean paired difference condensed − baseline (same split and seed), ± standard error; "
                  f"win / loss when beyond {summary['win_threshold_se']:g} SE, else tie.", "",
                  "| dataset | model | k/class | ε |" + n_head + " " + " | ".join(BASELINE_LABELS[b] for b in baselines) + " |",
                  "|---" * (4 + len(baselines)) + n_rule + "|"]
        index = {(c["dataset"], c["model"], c["rows_per_class"], c["epsilon"], c.get("train_size", "all"), c["baseline"]): c
                 for c in comparisons}
        for dataset, model, k, epsilon, size in sorted(
                {(c["dataset"], c["model"], c["rows_per_class"], c["epsilon"], c.get("train_size", "all")) for c in comparisons},
                key=lambda t: (t[0], t[1], t[2], _float(t[3]), _size_value(t[4]))):
            cells_ = []
            for b in baselines:
                c = index.get((dataset, model, k, epsilon, size, b))
                se = math.inf if c is None or isinstance(c["se"], str) else c["se"]  # a missing cell: "–"
                cells_.append("–" if c is None else f"{c['verdict']} ({c['mean_difference']:+.3f} ± {se:.3f})")
            n_cell = f" {_n_text({'train_size': size})} |" if show_n else ""
            lines.append(f"| {dataset} | {model} | {k} | {_eps_text(epsilon)} |{n_cell} " + " | ".join(cells_) + " |")
        lines.append("")
    if summary["transfer"]:
        lines += ["## Cross-model transfer", "",
                  "Rows: the model the table was condensed for; columns: the model trained on it (TSTR "
                  f"{metric}). The diagonal is the headline above.", ""]
        for dataset, k, epsilon, size in sorted(
                {(t["dataset"], t["rows_per_class"], t["epsilon"], t.get("train_size", "all")) for t in summary["transfer"]},
                key=lambda t: (t[0], t[1], _float(t[2]), _size_value(t[3]))):
            block = [t for t in summary["transfer"]
                     if (t["dataset"], t["rows_per_class"], t["epsilon"], t.get("train_size", "all")) == (dataset, k, epsilon, size)]
            targets = list(block[0]["evaluated_with"])
            n_text = f", n = {_n_text({'train_size': size})}" if show_n else ""
            lines += [f"**{dataset}, k = {k}/class, ε = {_eps_text(epsilon)}{n_text}**", "",
                      "| condensed with \\ evaluated with | " + " | ".join(targets) + " |", "|---" * (1 + len(targets)) + "|"]
            for t in block:
                lines.append(f"| {t['condensed_with']} | " + " | ".join(_cell(t["evaluated_with"][m]) for m in targets) + " |")
            lines.append("")
    lines += _survival_markdown(result)
    if result.get("not_run"):
        lines += ["## Not run", ""] + [f"- {item['what']}: {item['reason']}" for item in result["not_run"]] + [""]
    timing = result.get("timing", {})
    machines = Counter((m.get("cpu_count"), m.get("jax_backend")) for m in result.get("machines", []))
    if timing:
        lines += ["## Runtime", "", f"- wall clock: {timing.get('wall_seconds', 0):.0f} s for {timing.get('cells_done', 0)} cells "
                  f"({timing.get('cells_planned', 0)} planned) on {result['machine'].get('cpu_count')} CPU cores, "
                  f"JAX backend {result['machine'].get('jax_backend')}",
                  *([f"- merged from {len(result['machines'])} runs on: " + "; ".join(
                      f"{count} x {cores} CPU cores, JAX {backend}" for (cores, backend), count in machines.items())
                     + " (the wall clock is the longest run's; per-item means are the first run's)"]
                    if len(machines) > 1 else []),
                  "- mean seconds per condensation: " + ", ".join(f"{m} {s:.1f}" for m, s in timing.get("seconds_per_condense", {}).items()),
                  "- mean seconds per baseline build: " + ", ".join(f"{m} {s:.2f}" for m, s in timing.get("seconds_per_baseline", {}).items()), ""]
    return "\n".join(lines)


def _survival_markdown(result: dict) -> list[str]:
    summary = result["summary"].get("survival") or {}
    rows = summary.get("utility", [])
    if not rows:
        return []
    settings = result["settings"]
    baselines = [b for b in BASELINE_LABELS if b in rows[0]]
    show_n = _varies_n(rows)
    n_head, n_rule = (" n |", "|---") if show_n else ("", "")

    def n_cell(r):
        return f" {_n_text(r)} |" if show_n else ""

    def order(r):
        return (r["dataset"], r["model"], r["rows"], _float(r["epsilon"]), _size_value(r.get("train_size", "all")))
    lines = ["## Survival", "",
             f"TSTR C-index (Harrell's) on the held-out real 30 %, mean ± sd over seeds ({settings.get('survival_seeds')} "
             "seeds; 70/30 split stratified by the event, as `zodc condense`). The condensed table is "
             "`Condenser(model, rows=m, epsilon)` fitted on the 70 %; every table is scored with the host reference of "
             "the same model (lifelines Cox for `cox`). Baselines at the same m rows and (ε, δ); † = non-private.", "",
             "| dataset | model | rows | ε |" + n_head + " condensed | " + " | ".join(BASELINE_LABELS[b] for b in baselines) + " |",
             "|---" * (5 + len(baselines)) + n_rule + "|"]
    for r in sorted(rows, key=order):
        lines.append(f"| {r['dataset']} | {r['model']} | {r['rows']} | {_eps_text(r['epsilon'])} |{n_cell(r)} **{_cell(r['condensed'])}** | "
                     + " | ".join(_cell(r.get(b)) for b in baselines) + " |")
    lines += ["", "### Survival: condensed vs each baseline (paired over seeds)", "",
              f"Mean paired C-index difference condensed − baseline (same split and seed) ± standard error; win / loss "
              f"beyond {summary['win_threshold_se']:g} SE, else tie.", "",
              "| dataset | model | rows | ε |" + n_head + " " + " | ".join(BASELINE_LABELS[b] for b in baselines) + " |",
              "|---" * (4 + len(baselines)) + n_rule + "|"]
    index = {(c["dataset"], c["model"], c["rows"], c["epsilon"], c.get("train_size", "all"), c["baseline"]): c
             for c in summary["comparisons"]}
    for r in sorted(rows, key=order):
        cells_ = []
        for b in baselines:
            c = index.get((r["dataset"], r["model"], r["rows"], r["epsilon"], r.get("train_size", "all"), b))
            se = math.inf if c is None or isinstance(c["se"], str) else c["se"]
            cells_.append("–" if c is None else f"{c['verdict']} ({c['mean_difference']:+.3f} ± {se:.3f})")
        lines.append(f"| {r['dataset']} | {r['model']} | {r['rows']} | {_eps_text(r['epsilon'])} |{n_cell(r)} " + " | ".join(cells_) + " |")
    if len({r["model"] for r in rows}) < 2:
        lines += ["", "Cross-model transfer for survival: not shown — tables were condensed for one model only "
                  "(`survival_forest` needs scikit-survival, GPL-3.0, optional, and condenses slowly on the host), so "
                  "there is no second model to transfer to.", ""]
    else:
        lines += ["", "Cross-model transfer for survival: every condensed table's C-index under each evaluation model is "
                  "in the JSON (`records[].condensed[model].utility`).", ""]
    return lines


def readme_table(result: dict, model: str | None = None) -> str:
    """One compact table for the README: condensed vs baselines, same model, every dataset and ε."""
    rows = [r for r in result["summary"]["utility"] if "condensed" in r and (model is None or r["model"] == model)]
    baselines = [b for b in BASELINE_LABELS if rows and b in rows[0]]
    show_n = _varies_n(rows)
    lines = ["| dataset | model | k/class | ε |" + (" n |" if show_n else "") + " condensed | "
             + " | ".join(BASELINE_LABELS[b] for b in baselines) + " |",
             "|---" * (5 + len(baselines)) + ("|---" if show_n else "") + "|"]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["model"], r["rows_per_class"], _float(r["epsilon"]),
                                         _size_value(r.get("train_size", "all")))):
        lines.append(f"| {r['dataset']} | {r['model']} | {r['rows_per_class']} | {_eps_text(r['epsilon'])} | "
                     + (f"{_n_text(r)} | " if show_n else "")
                     + f"{_cell(r['condensed'])} | " + " | ".join(_cell(r.get(b)) for b in baselines) + " |")
    return "\n".join(lines)


def _epsilon_plot_size(block: list[dict]) -> int:
    """The size (rows per class) a utility-vs-ε plot shows: the one recorded at the most ε values,
    the largest among equals (a grid finished at k = 5 and 10 but only partly at 50 plots k = 10)."""
    per_size: dict[int, set] = {}
    for row in block:
        per_size.setdefault(row["rows_per_class"], set()).add(_float(row["epsilon"]))
    return max(per_size, key=lambda size: (len(per_size[size]), size))


def _largest_train_size(rows: list[dict]) -> list[dict]:
    """The rows at each dataset's largest training size (``all`` where recorded): the plots of
    utility against epsilon and size hold n fixed (:func:`curve_plots` draws the n dimension)."""
    largest: dict[str, float] = {}
    for r in rows:
        largest[r["dataset"]] = max(largest.get(r["dataset"], -math.inf), _size_value(r.get("train_size", "all")))
    return [r for r in rows if _size_value(r.get("train_size", "all")) == largest[r["dataset"]]]


def plots(result: dict, directory: str, prefix: str) -> list[str]:
    """Utility vs epsilon (per dataset and model, at the size recorded at the most ε) and utility vs size
    (at ε = 1 where recorded), at the largest training size; with several training sizes also
    :func:`curve_plots`; PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _largest_train_size([r for r in result["summary"]["utility"] if "condensed" in r])
    written = []
    names = ["condensed"] + [b for b in BASELINE_LABELS if rows and b in rows[0]]
    labels = dict(BASELINE_LABELS, condensed="condensed (zodc)")
    for dataset in sorted({r["dataset"] for r in rows}):
        block = [r for r in rows if r["dataset"] == dataset]
        models = sorted({r["model"] for r in block})
        sizes = sorted({r["rows_per_class"] for r in block})
        epsilons = sorted({_float(r["epsilon"]) for r in block})
        finite = [e for e in epsilons if math.isfinite(e)]
        inf_at = (max(finite) * 3 if finite else 1.0)
        k = _epsilon_plot_size(block)
        if len(epsilons) > 1:
            fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False)
            for ax, model in zip(axes[0], models):
                for name in names:
                    pts = sorted(((_float(r["epsilon"]), r[name]) for r in block
                                  if r["model"] == model and r["rows_per_class"] == k and name in r), key=lambda p: p[0])
                    xs = [inf_at if math.isinf(e) else e for e, _ in pts]
                    if name in ("full_data", "random_subset", "kmeans_centroids"):
                        ax.axhline(np.mean([s["mean"] for _, s in pts]), ls="--", lw=1,
                                   label=labels[name], color={"full_data": "k", "random_subset": "grey",
                                                              "kmeans_centroids": "tab:brown"}[name])
                        continue
                    ax.errorbar(xs, [s["mean"] for _, s in pts], yerr=[s["sd"] for _, s in pts], marker="o",
                                capsize=3, label=labels[name])
                ax.set_xscale("log")
                ticks = finite + ([inf_at] if any(math.isinf(e) for e in epsilons) else [])
                ax.set_xticks(ticks)
                ax.set_xticklabels([f"{e:g}" for e in finite] + (["∞"] if len(ticks) > len(finite) else []))
                ax.minorticks_off()  # a narrow log range otherwise labels minor ticks (6×10⁻¹)
                ax.set_xlabel("ε")
                ax.set_ylabel(f"TSTR {result['summary']['metric']}")
                ax.set_title(f"{dataset} — {model}, k = {k}/class")
                ax.grid(alpha=0.3)
            axes[0][-1].legend(fontsize=7, loc="lower right")
            fig.tight_layout()
            path = os.path.join(directory, f"{prefix}_{dataset}_vs_epsilon.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
        if len(sizes) > 1:
            fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False)
            epsilon = 1.0 if 1.0 in epsilons else epsilons[0]
            for ax, model in zip(axes[0], models):
                for name in names:
                    pts = sorted(((r["rows_per_class"], r[name]) for r in block if r["model"] == model
                                  and _float(r["epsilon"]) == epsilon and name in r), key=lambda p: p[0])
                    ax.errorbar([k for k, _ in pts], [s["mean"] for _, s in pts], yerr=[s["sd"] for _, s in pts],
                                marker="o", capsize=3, label=labels[name])
                ax.set_xscale("log")
                ax.set_xticks(sizes)
                ax.set_xticklabels([str(size) for size in sizes])
                ax.minorticks_off()
                ax.set_xlabel("rows per class")
                ax.set_ylabel(f"TSTR {result['summary']['metric']}")
                ax.set_title(f"{dataset} — {model}, ε = {_eps_text(_json_epsilon(epsilon))}")
                ax.grid(alpha=0.3)
            axes[0][-1].legend(fontsize=7, loc="lower right")
            fig.tight_layout()
            path = os.path.join(directory, f"{prefix}_{dataset}_vs_size.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    written += _survival_plots(result, directory, prefix, plt)
    written += curve_plots(result, directory, prefix)
    return written


def _survival_plots(result: dict, directory: str, prefix: str, plt) -> list[str]:
    """C-index vs epsilon, one panel per survival dataset (largest size, first model); PNG paths."""
    rows = _largest_train_size((result["summary"].get("survival") or {}).get("utility", []))
    datasets = sorted({r["dataset"] for r in rows})
    if not datasets or len({_float(r["epsilon"]) for r in rows}) < 2:
        return []
    labels = dict(BASELINE_LABELS, condensed="condensed (zodc)")
    names = ["condensed"] + [b for b in BASELINE_LABELS if b in rows[0]]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        block = [r for r in rows if r["dataset"] == dataset]
        model, size = sorted({r["model"] for r in block})[0], max(r["rows"] for r in block)
        block = sorted((r for r in block if r["model"] == model and r["rows"] == size), key=lambda r: _float(r["epsilon"]))
        epsilons = [_float(r["epsilon"]) for r in block]
        finite = [e for e in epsilons if math.isfinite(e)]
        inf_at = max(finite) * 3 if finite else 1.0
        xs = [inf_at if math.isinf(e) else e for e in epsilons]
        for offset, name in enumerate(names):
            shift = 1 + 0.03 * (offset - len(names) / 2)  # spread the error bars a little on the log axis
            ax.errorbar([x * shift for x in xs], [r[name]["mean"] for r in block], yerr=[r[name]["sd"] for r in block],
                        marker="o", capsize=3, label=labels[name], ls="-" if name in PRIVATE_TABLES else ":")
        ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels(["∞" if math.isinf(e) else f"{e:g}" for e in epsilons])
        ax.minorticks_off()
        ax.set_xlabel("ε")
        ax.set_ylabel("TSTR C-index")
        ax.set_title(f"{dataset} — {model}, {size} rows")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = os.path.join(directory, f"{prefix}_survival_vs_epsilon.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def curve_plots(result: dict, directory: str, prefix: str) -> list[str]:
    """Utility against the training size n and against epsilon, one PNG each per cohort x model (and
    size k / m where a grid has several), for every cohort recorded at two or more training sizes.

    ``X_<dataset>_<model>_vs_n.png``: one panel per ε, x = training rows (log scale; ``all`` at the
    whole 70 %), ``X_<dataset>_<model>_vs_epsilon_by_n.png``: one panel per n, x = ε. Every table
    (condensed and each baseline) is a line with ± one standard error over seeds (sd / sqrt(seeds));
    private tables solid, non-private references dotted. Classification: the diagonal (the table
    condensed for the model that is evaluated) and the TSTR metric; survival: the C-index.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = dict(BASELINE_LABELS, condensed="condensed (zodc)")
    blocks = [("classification", [r for r in result["summary"]["utility"] if "condensed" in r], "rows_per_class",
               f"TSTR {result['summary']['metric']}", "k = {}/class")]
    survival = result["summary"].get("survival") or {}
    blocks.append(("survival", survival.get("utility", []), "rows", "TSTR C-index", "m = {} rows"))
    written = []
    for _task, rows, size_key, ylabel, size_text in blocks:
        for dataset in sorted({r["dataset"] for r in rows}):
            block = [r for r in rows if r["dataset"] == dataset]
            if len({str(r.get("train_size", "all")) for r in block}) < 2:
                continue
            ks = sorted({r[size_key] for r in block})
            for model, k in itertools.product(sorted({r["model"] for r in block}), ks):
                mine = [r for r in block if r["model"] == model and r[size_key] == k]
                if not mine:
                    continue
                names = ["condensed"] + [b for b in BASELINE_LABELS if b in mine[0]]
                sizes = sorted({r.get("train_size", "all") for r in mine}, key=_size_value)
                epsilons = sorted({_float(r["epsilon"]) for r in mine})
                finite = [e for e in epsilons if math.isfinite(e)]
                inf_at = max(finite) * 3 if finite else 1.0
                suffix = f"_{k}" if len(ks) > 1 else ""
                title = f"{dataset} — {model}, {size_text.format(k)}"
                for across, panels, x_of, xlabel, filename in (
                        ("n", epsilons, lambda r: r.get("train_rows") or _size_value(r.get("train_size", "all")),
                         "training rows n", f"{prefix}_{dataset}_{model}{suffix}_vs_n.png"),
                        ("epsilon", sizes, lambda r: inf_at if math.isinf(_float(r["epsilon"])) else _float(r["epsilon"]),
                         "ε", f"{prefix}_{dataset}_{model}{suffix}_vs_epsilon_by_n.png")):
                    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False, sharey=True)
                    for ax, panel in zip(axes[0], panels):
                        if across == "n":
                            chosen = [r for r in mine if _float(r["epsilon"]) == panel]
                            ax.set_title(f"{title}, ε = {_eps_text(_json_epsilon(panel))}", fontsize=9)
                        else:
                            chosen = [r for r in mine if str(r.get("train_size", "all")) == str(panel)]
                            ax.set_title(f"{title}, n = {panel}", fontsize=9)
                        chosen = sorted(chosen, key=x_of)
                        xs = [x_of(r) for r in chosen]
                        for offset, name in enumerate(names):
                            pts = [(x, r[name]) for x, r in zip(xs, chosen) if name in r]
                            if not pts:
                                continue
                            shift = 1 + 0.02 * (offset - len(names) / 2)  # spread the error bars on the log axis
                            ax.errorbar([x * shift for x, _ in pts], [st["mean"] for _, st in pts],
                                        yerr=[st["sd"] / math.sqrt(st["n"]) if st["n"] > 1 else 0.0 for _, st in pts],
                                        marker="o", ms=3, capsize=3, label=labels[name],
                                        ls="-" if name in PRIVATE_TABLES else ":")
                        ax.set_xscale("log")
                        ax.set_xticks(xs)
                        if across == "n":
                            ax.set_xticklabels([("all\n" if str(r.get("train_size", "all")) == "all" else "") + f"{x:g}"
                                                for x, r in zip(xs, chosen)])
                        else:
                            ax.set_xticklabels(["∞" if math.isinf(_float(r["epsilon"])) else f"{_float(r['epsilon']):g}"
                                                for r in chosen])
                        ax.minorticks_off()
                        ax.set_xlabel(xlabel)
                        ax.grid(alpha=0.3)
                    axes[0][0].set_ylabel(f"{ylabel} (± s.e.)")
                    axes[0][-1].legend(fontsize=7, loc="lower right")
                    fig.tight_layout()
                    path = os.path.join(directory, filename)
                    fig.savefig(path, dpi=110)
                    plt.close(fig)
                    written.append(path)
    return written


# --------------------------------------------------------------------------------------------- runner

def _machine() -> dict:
    import jax

    from zodc import __version__

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    versions = {}
    for name in ("sklearn", "mbi", "lifelines", "numpy"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - optional packages
            versions[name] = None
    return {"zodc_version": __version__, "git_commit": commit, "jax_version": jax.__version__,
            "jax_backend": jax.default_backend(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "libraries": versions,
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def release_compiled_programs(threshold: float = 0.5) -> bool:
    """Drops JAX's compiled programs when this process's memory maps pass ``threshold`` of the
    kernel's limit; returns whether it did.

    Every new table shape (a cohort, a training size n) and every Private-PGM model (MST and AIM
    compile many small programs per cell) leaves its executables in JAX's caches, each holding
    memory maps that are never returned; past ``vm.max_map_count`` (65,530 by default) LLVM fails
    with "Cannot allocate memory" and the process dies (a 35-cell n_curve slice died at cell 26).
    Clearing the caches returns them; the next cell compiles afresh. Linux only (elsewhere: no-op).
    """
    try:
        with open("/proc/sys/vm/max_map_count", encoding="ascii") as handle:
            limit = int(handle.read())
        with open("/proc/self/maps", "rb") as handle:
            in_use = sum(1 for _ in handle)
    except OSError:
        return False
    if in_use <= threshold * limit:
        return False
    import jax

    jax.clear_caches()
    return True


def _write_json(result: dict, path: str) -> None:
    """Atomically; gzip-compressed when ``path`` ends in ``.gz``."""
    from zodc.data.io import write_files_atomic, write_json_atomic

    if not path.endswith(".gz"):
        write_json_atomic(_jsonable(result), path)
        return
    from benchmarks.results_io import encode

    text = json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n"
    write_files_atomic({path: encode(path, text)})


def run_utility(spec: dict, *, grid: str = "custom", out: str | None = None, max_seconds: float | None = None,
                log: Callable[[str], None] | None = None, skip: set | None = None) -> dict:
    """Runs a utility grid; returns (and, with ``out``, writes after every cell) the results dict.

    ``skip``: keys (:func:`_record_key`) of cells recorded elsewhere — a grid finished over several
    runs or machines — which are left out here (counted under ``settings.skipped_recorded``) and
    merged back with ``--from-json``.
    """
    log = log or (lambda message: None)
    started = time.perf_counter()
    skip = skip or set()
    not_run: list[dict] = []
    spec = drop_unavailable_baselines(spec, not_run)
    planned = [cell for cell in plan_train_sizes(cells(spec), spec, not_run) if _record_key(cell) not in skip]
    result: dict[str, Any] = {
        "benchmark": "utility", "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {"grid": grid, **{k: (_jsonable([_json_epsilon(e) for e in v]) if k == "epsilons" else _jsonable(v))
                                      for k, v in spec.items()}},
        "protocol": ("per seed: 70/30 split stratified by the target (train_test_split(random_state=seed)); with a "
                     "train size n, the 70 % subsampled to n rows (stratified by the target / event, seeded by the seed); "
                     "condensed table and every baseline built from that training part only; each evaluation model "
                     "(preset host reference) trained on each table and tested on the real 30 % (TSTR)."),
        "records": [], "not_run": not_run, "summary": None, "timing": {}}
    survival_planned, survival_models, survival_evaluate = _plan_survival(spec, result["not_run"])
    survival_planned = [cell for cell in survival_planned if _record_key(cell) not in skip]
    result["settings"]["skipped_recorded"] = (sum(1 for c in cells(spec) if _record_key(c) in skip)
                                              + sum(1 for c in survival_cells(spec) if _record_key(c) in skip)) if skip else 0
    planned_total = len(planned) + len(survival_planned)
    cache: dict = {}
    for index, cell in enumerate(planned):
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            result["not_run"].append({"what": f"{len(planned) - index} remaining cells",
                                      "reason": f"--max-seconds {max_seconds:g} reached"})
            break
        record = run_cell(cell, spec, cache)
        release_compiled_programs()
        result["records"].append(record)
        n_text = "" if str(cell.get("train_size", "all")) == "all" else f" n={cell['train_size']}"
        line = (f"[{index + 1}/{len(planned)}] {cell['dataset']}{n_text} k={cell['rows_per_class']} eps={_eps_text(record['epsilon'])} "
                f"seed={cell['seed']}: " + ", ".join(f"{m} {v['utility'][m]['auroc']:.3f} ({v['seconds']:.1f}s)"
                                                     for m, v in record["condensed"].items())
                + " | " + ", ".join(f"{b} {v['utility'][next(iter(v['utility']))]['auroc']:.3f}"
                                    for b, v in record["baselines"].items()))
        log(line)
        _finish(result, started, planned_total)
        if out:
            _write_json(result, out)
    for index, cell in enumerate(survival_planned):
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            result["not_run"].append({"what": f"{len(survival_planned) - index} remaining survival cells: "
                                              + ", ".join(f"{c['dataset']} m={c['rows']} eps={_eps_text(_json_epsilon(c['epsilon']))} "
                                                          f"seed={c['seed']}" for c in survival_planned[index:]),
                                      "reason": f"--max-seconds {max_seconds:g} reached"})
            break
        record = run_survival_cell(cell, spec, cache, survival_models, survival_evaluate)
        release_compiled_programs()
        result["records"].append(record)
        n_text = "" if str(cell.get("train_size", "all")) == "all" else f" n={cell['train_size']}"
        log(f"[survival {index + 1}/{len(survival_planned)}] {cell['dataset']}{n_text} m={cell['rows']} "
            f"eps={_eps_text(record['epsilon'])} seed={cell['seed']}: "
            + ", ".join(f"{m} C {v['utility'][m]['c_index']:.3f} ({v['seconds']:.1f}s)" for m, v in record["condensed"].items())
            + " | " + ", ".join(f"{b} {v['utility'][next(iter(v['utility']))]['c_index']:.3f}"
                                for b, v in record["baselines"].items() if v["utility"]))
        _finish(result, started, planned_total)
        if out:
            _write_json(result, out)
    _finish(result, started, planned_total)
    if out:
        _write_json(result, out)
    return result


def _plan_survival(spec: dict, not_run: list) -> tuple[list[dict], list[str], list[str]]:
    """The survival cells that can run here, the runnable condensing / evaluation models; what cannot
    run is appended to ``not_run`` with the reason."""
    if not spec["survival_datasets"]:
        return [], [], []
    planned = survival_cells(spec)
    if not survival_api_available():
        not_run.append({"what": f"survival: {', '.join(spec['survival_datasets'])}", "cells": len(planned),
                        "reason": "the Condenser survival API (fit(df, duration_col=..., event_col=...)) is not in this checkout"})
        return [], [], []
    runnable = []
    for model in dict.fromkeys(list(spec["survival_models"]) + list(spec["survival_evaluate_models"])):
        reason = survival_model_available(model)
        if reason is None:
            runnable.append(model)
        else:
            not_run.append({"what": f"survival model {model} (condensing and evaluation, every survival cell)",
                            "reason": reason, "cells": len(planned)})
    for model in spec.get("skipped_survival_models", []):
        not_run.append({"what": f"survival model {model} as the condensing model (still evaluated where it can run)",
                        "reason": "left out of this run by --survival-models", "cells": len(planned)})
    models = [m for m in spec["survival_models"] if m in runnable]
    evaluate = [m for m in spec["survival_evaluate_models"] if m in runnable]
    if not models:
        not_run.append({"what": f"survival: {', '.join(spec['survival_datasets'])}", "cells": len(planned),
                        "reason": "no runnable survival condensing model"})
        return [], [], []
    from zodc.data.datasets import load_dataset

    kept = []
    planned = plan_train_sizes(planned, spec, not_run)
    for dataset in spec["survival_datasets"]:
        n_train = train_rows(len(load_dataset(dataset).frame), spec["holdout"])
        for rows in spec["survival_rows"]:
            block = [c for c in planned if c["dataset"] == dataset and c["rows"] == rows]
            if rows >= n_train:
                not_run.append({"what": f"survival {dataset} at {rows} rows", "cells": len(block),
                                "reason": f"{rows} rows >= the {n_train} training rows (70 % split): not a condensation"})
                continue
            for size in dict.fromkeys(c.get("train_size", "all") for c in block):
                part = [c for c in block if c.get("train_size", "all") == size]
                if str(size) != "all" and rows >= int(size):
                    not_run.append({"what": f"survival {dataset} at {rows} rows, n = {size}", "cells": len(part),
                                    "reason": f"{rows} rows >= the {size} training rows of the subsample: not a condensation"})
                else:
                    kept += part
    return kept, models, evaluate


def _finish(result: dict, started: float, planned: int) -> None:
    records = result["records"]
    result["summary"] = summarise(records)
    result["summary"]["survival"] = summarise_survival(records)
    condense_seconds: dict[str, list[float]] = {}
    baseline_seconds: dict[str, list[float]] = {}
    for record in records:
        for model, value in record["condensed"].items():
            condense_seconds.setdefault(model, []).append(value["seconds"])
        for name, value in record["baselines"].items():
            baseline_seconds.setdefault(name, []).append(value["seconds"])
    result["timing"] = {"wall_seconds": round(time.perf_counter() - started, 1), "cells_done": len(records),
                        "cells_planned": planned,
                        "seconds_per_condense": {m: float(np.mean(v)) for m, v in condense_seconds.items()},
                        "seconds_per_baseline": {m: float(np.mean(v)) for m, v in baseline_seconds.items()}}
    result["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None


# --------------------------------------------------------------------------------------------- CLI

def _read_json(path: str) -> dict:
    """A results JSON, plain or ``.gz`` (``X.json`` is read from ``X.json.gz`` when only that exists)."""
    from benchmarks.results_io import read_json

    return read_json(path)


def _record_key(record: dict) -> tuple:
    """(task, dataset, train size, size, epsilon, seed) of a record or of a planned cell (epsilon as a float or
    JSON; a record written before train sizes existed is at ``all``)."""
    return (record.get("task", "classification"), record["dataset"], str(record.get("train_size", "all")),
            record.get("rows_per_class", record.get("rows")), str(_json_epsilon(_epsilon(record["epsilon"]))),
            record["seed"])


def merge_results(results: list[dict], replace_models: tuple[str, ...] | list[str] = ()) -> dict:
    """One result from runs of disjoint cells (e.g. datasets run in parallel processes).

    Records are concatenated; a cell present in several runs keeps the first run's record. With
    ``replace_models`` (``--replace-models``), the condensed tables of those models in a cell are
    the *last* run's that has them, the rest of the cell (baselines, other models) still the
    first's: rerun one preset after its default changed (``--models boosting`` on the same grid)
    and merge ``OLD,NEW --replace-models boosting``. Replacements are counted in
    ``settings.condensed_replaced`` (``{model: cells}``). ``not_run`` entries are kept, the
    summary is recomputed; settings and machine are the first run's, with the others' datasets
    added and each run's timing kept under ``timing.runs``.
    """
    if len(results) == 1:
        return results[0]
    replace_models = set(replace_models)
    results = json.loads(json.dumps(results))  # merged records are updated in place: leave the inputs alone
    merged = results[0]
    seen = {_record_key(r): r for r in merged["records"]}
    replaced = Counter(merged["settings"].get("condensed_replaced", {}))
    runs = [results[0].get("timing", {})]
    for other in results[1:]:
        for record in other["records"]:
            key = _record_key(record)
            if key not in seen:
                merged["records"].append(record)
                seen[key] = record
            else:
                for model, entry in record.get("condensed", {}).items():
                    if model in replace_models:
                        replaced[model] += 1
                        seen[key].setdefault("condensed", {})[model] = entry
        merged["not_run"] += [item for item in other.get("not_run", []) if item not in merged["not_run"]]
        runs.append(other.get("timing", {}))
    merged["settings"]["datasets"] = sorted({r["dataset"] for r in merged["records"] if r.get("task") != "survival"})
    merged["settings"]["survival_datasets"] = sorted({r["dataset"] for r in merged["records"] if r.get("task") == "survival"})
    if replaced:
        merged["settings"]["condensed_replaced"] = dict(sorted(replaced.items()))
    merged["summary"] = summarise(merged["records"])
    merged["summary"]["survival"] = summarise_survival(merged["records"])
    merged["timing"] = dict(runs[0], runs=runs, cells_done=len(merged["records"]),
                            cells_planned=sum(run.get("cells_planned", 0) for run in runs),
                            wall_seconds=max(run.get("wall_seconds", 0) for run in runs))
    merged["machines"] = [result.get("machine", {}) for result in results]
    return merged


def add_utility_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="grid config JSON")
    parser.add_argument("--grid", default="ci", help="grid name in the config (full, cpu, ci)")
    parser.add_argument("--datasets", help="comma-separated subset of the grid's datasets ('' for none: survival cells only)")
    parser.add_argument("--models", help="comma-separated condensing models (overrides the grid)")
    parser.add_argument("--epsilons", help="comma-separated epsilons, 'inf' allowed (overrides the grid, survival too)")
    parser.add_argument("--seeds", type=int, help="number of seeds (overrides the grid, survival too)")
    parser.add_argument("--rows-per-class", help="comma-separated classification sizes k (overrides the grid)")
    parser.add_argument("--survival-datasets", help="comma-separated survival cohorts (overrides the grid; '' for none)")
    parser.add_argument("--survival-rows", help="comma-separated survival table sizes (overrides the grid)")
    parser.add_argument("--survival-models", help="comma-separated survival condensing models (overrides the grid)")
    parser.add_argument("--train-sizes", help="comma-separated training-part sizes n, 'all' allowed (e.g. 500,2000,all): "
                                              "the 70 %% subsampled to n rows (stratified, seeded by the seed) before "
                                              "every table; a cell dimension (overrides the grid, survival too)")
    parser.add_argument("--baselines", help="comma-separated baselines (overrides the grid, survival too; e.g. adding aim)")
    parser.add_argument("--max-seconds", type=float, help="stop starting new cells after this long")
    parser.add_argument("--skip-recorded", help="comma-separated results JSONs: cells recorded there are not run again "
                                                "(finish a grid over several runs, then merge with --from-json)")
    parser.add_argument("--out", help="results JSON (rewritten after every cell)")
    parser.add_argument("--markdown", help="markdown report (default: OUT with .md)")
    parser.add_argument("--plots", help="directory for PNG plots (default: OUT's directory; 'none' to skip)")
    parser.add_argument("--from-json", help="re-render markdown and plots from results JSON(s), comma-separated runs of disjoint cells are merged; runs nothing")
    parser.add_argument("--replace-models", help="with --from-json: comma-separated condensing models whose tables "
                                                 "a later run replaces in cells an earlier run holds (merge OLD,NEW "
                                                 "after rerunning one preset)")
    parser.add_argument("--quiet", action="store_true", help="no per-cell log on stderr")


def run_command(args) -> int:
    """Runs the utility benchmark from parsed arguments (:func:`build_parser`); returns the exit code."""
    if getattr(args, "replace_models", None) and not args.from_json:
        print("benchmarks.runner: --replace-models only applies to merging with --from-json", file=sys.stderr)
        return 2
    if args.from_json:
        replace = [m for m in (args.replace_models or "").split(",") if m]
        result = merge_results([_read_json(path) for path in args.from_json.split(",")], replace_models=replace)
        out = args.out or args.from_json.split(",")[0]
        if args.out:
            _write_json(result, args.out)
    else:
        with open(args.config, encoding="utf-8") as handle:
            spec = load_grid(json.load(handle), args.grid)
        if args.datasets is not None:
            spec["datasets"] = [d for d in args.datasets.split(",") if d]
        if args.models:
            spec["condense_models"] = [m for m in args.models.split(",") if m]
        if args.rows_per_class:
            spec["rows_per_class"] = [int(k) for k in args.rows_per_class.split(",") if k]
        if args.survival_datasets is not None:
            spec["survival_datasets"] = [d for d in args.survival_datasets.split(",") if d]
        if args.survival_rows:
            spec["survival_rows"] = [int(m) for m in args.survival_rows.split(",") if m]
        if args.survival_models:
            chosen = [m for m in args.survival_models.split(",") if m]
            spec["skipped_survival_models"] = [m for m in spec["survival_models"] if m not in chosen]
            spec["survival_models"] = chosen
        if args.epsilons:
            spec["epsilons"] = spec["survival_epsilons"] = [_epsilon(e) for e in args.epsilons.split(",") if e]
        if args.seeds:
            spec["seeds"] = spec["survival_seeds"] = args.seeds
        if args.train_sizes:
            spec["train_sizes"] = [_train_size(n) for n in args.train_sizes.split(",") if n]
        if args.baselines is not None:
            from benchmarks.baselines import BASELINES

            chosen = [b for b in args.baselines.split(",") if b]
            unknown = [b for b in chosen if b not in BASELINES]
            if unknown:
                print(f"benchmarks.runner: unknown baselines {unknown}; baselines are {list(BASELINES)}", file=sys.stderr)
                return 2
            spec["baselines"] = spec["survival_baselines"] = chosen
        out = args.out
        log = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
        skip = set()
        for path in (args.skip_recorded or "").split(","):
            if path:
                skip |= {_record_key(record) for record in _read_json(path)["records"]}
        result = run_utility(spec, grid=args.grid, out=out, max_seconds=args.max_seconds, log=log, skip=skip)
    if out:
        from benchmarks.results_io import stem

        root = stem(out)  # results/x.json or results/x.json.gz -> results/x
        markdown_path = args.markdown or root + ".md"
        with open(markdown_path, "w", encoding="utf-8") as handle:
            handle.write(markdown(result))
        if (args.plots or "").lower() != "none":
            directory = args.plots or (os.path.dirname(os.path.abspath(out)) or ".")
            os.makedirs(directory, exist_ok=True)
            plots(result, directory, os.path.basename(root))
    else:
        print(markdown(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runner", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_utility_arguments(parser)
    return parser


def main(argv=None) -> int:
    """Entry point (``python -m benchmarks.runner``; ``benchmarks/utility.py`` is the same)."""
    from zodc.runtime import enable_compilation_cache

    args = build_parser().parse_args(argv)
    enable_compilation_cache()
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
