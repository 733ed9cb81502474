"""AIM (benchmarks/baselines.py: aim) and the utility runner's training-size dimension (benchmarks/runner.py:
subsample_train, plan_train_sizes, the n column and the n-curve plots). Tiny data and few rounds: the whole file
runs in well under a minute. The AIM tests need mbi (the `bench` extra) and skip without it."""

import itertools
import json
import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from benchmarks import baselines, runner
from zodc.data.datasets import load_dataset
from zodc.data.schema import CategoricalColumn, NumericColumn, Schema
from zodc.data.validation import validate_table
from zodc.privacy.accounting import DEFAULT_ORDERS, RdpAccountant
from zodc.privacy.events import ComposedEvent, GaussianEvent, SelfComposedEvent

DELTA = 1e-5
# Few rounds, few iterations, coarse bins: the algorithm's every step, cheaply.
QUICK = dict(num_bins=3, max_rounds=4, round_iters=20, estimation_iters=40, oversample=5)


@pytest.fixture(scope="module")
def mbi():
    return pytest.importorskip("mbi", reason="the AIM baseline runs on mbi (Private-PGM), installed with the `bench` "
                                              "extra (pip install -e '.[test,bench]'), not with `test` (CI)")


@pytest.fixture(scope="module")
def toy():
    """300 records: a numeric and a categorical column that may be missing, one that may not, a binary class."""
    schema = Schema(name="toy", task="classification", source="test: public bounds by construction",
                    columns=(NumericColumn("x", 0.0, 10.0, missing=True),
                             CategoricalColumn("c", ("a", "b", "c"), missing=True),
                             NumericColumn("z", 0.0, 1.0),
                             CategoricalColumn("y", ("no", "yes"))),
                    target="y")
    rng = np.random.default_rng(7)
    n = 300
    y = rng.integers(0, 2, n)
    x = np.clip(rng.normal(3 + 4 * y, 1.5), 0, 10)
    x[rng.random(n) < 0.15] = np.nan
    c = np.array(["a", "b", "c"], dtype=object)[np.where(y == 1, rng.integers(1, 3, n), rng.integers(0, 2, n))]
    c[rng.random(n) < 0.1] = None
    frame = pd.DataFrame({"x": x, "c": c, "z": rng.random(n), "y": np.array(["no", "yes"])[y]})
    return frame, schema


@pytest.fixture(scope="module")
def toy_aim(mbi, toy):
    frame, schema = toy
    return baselines.aim(frame, schema, 6, epsilon=1.0, delta=DELTA, random_state=0, **QUICK)


def _valid(table: pd.DataFrame, schema) -> None:
    """In the schema's columns, bounds and levels (missing cells only where the schema allows them)."""
    assert list(table.columns) == list(schema.column_names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "clip" would warn on any out-of-bounds value
        validate_table(table, schema, on_out_of_bounds="raise", require_variation=False)
    for column in schema.columns:
        values = table[column.name]
        if not column.missing:
            assert not values.isna().any(), column.name
        present = values[values.notna()]
        if hasattr(column, "categories"):
            assert set(present) <= set(column.categories), column.name
        else:
            assert ((present >= column.lower) & (present <= column.upper)).all(), column.name


# ------------------------------------------------------------------ AIM: the table

def test_aim_returns_k_rows_per_class_within_the_public_bounds(toy, toy_aim):
    frame, schema = toy
    _valid(toy_aim.table, schema)
    assert toy_aim.table["y"].value_counts().to_dict() == {"no": 6, "yes": 6}
    assert toy_aim.private and 1 <= toy_aim.details["rounds"] <= QUICK["max_rounds"]
    # Numeric values are bin midpoints of the public bounds (3 equal-width bins of [0, 10]).
    present = toy_aim.table["x"].dropna()
    assert set(np.round(present, 6)) <= {round(v, 6) for v in (10 / 6, 5.0, 50 / 6)}


def test_missing_values_get_their_own_code_and_come_back_missing(toy):
    frame, schema = toy
    attributes = baselines._attributes(schema, 3)
    assert [(a.name, a.size, a.missing) for a in attributes] == [("x", 4, True), ("c", 4, True), ("z", 3, False),
                                                                  ("y", 2, False)]
    clean = baselines._quiet_clean(frame, schema)
    codes = baselines._discretise(clean, attributes)
    assert np.array_equal(codes["x"] == 3, clean["x"].isna().to_numpy())
    assert np.array_equal(codes["c"] == 3, clean["c"].isna().to_numpy())
    back = baselines._undiscretise(codes, attributes, np.random.default_rng(0))
    assert np.array_equal(back["x"].isna().to_numpy(), clean["x"].isna().to_numpy())
    assert np.array_equal(back["c"].isna().to_numpy(), clean["c"].isna().to_numpy())
    assert (back["c"].dropna() == clean["c"].dropna()).all()
    # A column without `missing: true` puts a missing number in its middle bin, as the encoder does.
    no_missing = [a._replace(missing=False, size=3) if a.name == "x" else a for a in attributes[:1]]
    assert set(baselines._discretise(clean, no_missing)["x"][clean["x"].isna().to_numpy()]) == {1}


def test_aim_survival_rows_and_non_private_run(mbi):
    larynx = load_dataset("larynx")
    result = baselines.aim(larynx.frame, larynx.schema, None, num_rows=25, epsilon=2.0, delta=DELTA, random_state=1,
                           **QUICK)
    _valid(result.table, larynx.schema)
    assert len(result.table) == 25 and set(result.table[larynx.schema.event]) <= {0, 1}
    assert result.epsilon <= 2.0 * (1 + 1e-9)
    assert "3-way with the target" in result.details["workload"]
    exact = baselines.aim(larynx.frame, larynx.schema, None, num_rows=25, epsilon=math.inf, random_state=1, **QUICK)
    assert exact.ledger is None and math.isinf(exact.epsilon) and len(exact.table) == 25
    assert exact.details["rounds"] == QUICK["max_rounds"]


# ------------------------------------------------------------------ AIM: privacy

def _dp_accounting_epsilon(event, delta: float) -> float:
    """The (epsilon, delta) of a zodc event composed by dp_accounting's RDP accountant (the oracle)."""
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    def convert(e):
        if isinstance(e, GaussianEvent):
            return dp_event.GaussianDpEvent(e.noise_multiplier)
        if isinstance(e, SelfComposedEvent):
            return dp_event.SelfComposedDpEvent(convert(e.event), e.count)
        if isinstance(e, ComposedEvent):
            return dp_event.ComposedDpEvent([convert(x) for x in e.events])
        raise TypeError(type(e))

    logging.disable(logging.WARNING)
    try:
        accountant = rdp_privacy_accountant.RdpAccountant(list(DEFAULT_ORDERS))
        return accountant.compose(convert(event)).get_epsilon(delta)
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("epsilon", [0.5, 1.0])
def test_aim_spends_at_most_the_target_checked_against_dp_accounting(mbi, toy, toy_aim, epsilon):
    frame, schema = toy
    result = toy_aim if epsilon == 1.0 else baselines.aim(frame, schema, 6, epsilon=epsilon, delta=DELTA,
                                                          random_state=3, **QUICK)
    assert [e.name for e in result.ledger.entries] == ["aim_one_way", "aim_selection", "aim_measurement"]
    assert result.epsilon <= epsilon * (1 + 1e-9)
    assert result.epsilon == pytest.approx(epsilon, rel=2e-3)          # the last round spends what is left
    # The whole release as one composed event: dp_accounting agrees with the ledger, and stays below the target.
    history = result.details["history"]
    event = baselines.aim_event(result.details["one_way_noise_std"], 4,
                                [(h["selection_epsilon"], h["sigma"]) for h in history])
    oracle = _dp_accounting_epsilon(event, DELTA)
    assert oracle <= epsilon * (1 + 1e-9)
    assert oracle == pytest.approx(result.epsilon, rel=1e-6)
    assert RdpAccountant().compose(event).get_epsilon(DELTA) == pytest.approx(result.epsilon, rel=1e-12)
    # zCDP bookkeeping: the rounds' costs sum to the budget rho, never above it.
    rho_used = 4 * 0.5 / result.details["one_way_noise_std"] ** 2 + sum(
        0.5 / h["sigma"] ** 2 + h["selection_epsilon"] ** 2 / 8 for h in history)
    assert rho_used <= result.details["rho"] * (1 + 1e-12)
    assert rho_used == pytest.approx(result.details["rho"], rel=1e-9)


def test_aim_budget_annealing_never_overspends(mbi, toy):
    # Several rounds: sigma halves (and the selection epsilon doubles) after a measurement that barely
    # moved the model, else both stay; the final round takes exactly what is left of the budget.
    frame, schema = toy
    result = baselines.aim(frame, schema, 4, epsilon=8.0, delta=DELTA, random_state=5, rounds=64, max_rounds=10,
                           **{k: v for k, v in QUICK.items() if k != "max_rounds"})
    history = result.details["history"]
    assert len(history) >= 4
    flags = [bool(h.get("annealed")) for h in history[:-2]]
    assert any(flags) and not all(flags)
    for before, after in zip(history[:-2], history[1:-1]):          # the rounds before the final one
        factor = 0.5 if before.get("annealed") else 1.0
        assert after["sigma"] == pytest.approx(before["sigma"] * factor, rel=1e-12)
        assert after["selection_epsilon"] == pytest.approx(before["selection_epsilon"] / factor, rel=1e-12)
    assert result.epsilon <= 8.0 * (1 + 1e-9)
    composed = ComposedEvent(tuple(entry.event for entry in result.ledger.entries))
    assert _dp_accounting_epsilon(composed, DELTA) <= 8.0 * (1 + 1e-9)


def test_aim_refuses_bad_arguments(mbi, toy):
    frame, schema = toy
    from zodc.errors import ConfigError

    for bad in (dict(max_rounds=0), dict(round_iters=1.5), dict(max_model_size=0), dict(num_bins=1), dict(rounds=2)):
        with pytest.raises(ConfigError):
            baselines.aim(frame, schema, 4, epsilon=1.0, **bad)


# ------------------------------------------------------------------ AIM: reproducibility

def test_aim_is_reproducible_from_its_seed_and_leaves_numpy_global_state_alone(mbi, toy, toy_aim):
    frame, schema = toy
    np.random.seed(123)
    before = np.random.get_state()
    again = baselines.aim(frame, schema, 6, epsilon=1.0, delta=DELTA, random_state=0, **QUICK)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    pd.testing.assert_frame_equal(again.table, toy_aim.table)
    assert again.details["cliques"] == toy_aim.details["cliques"]
    other = baselines.aim(frame, schema, 6, epsilon=1.0, delta=DELTA, random_state=1, **QUICK)
    assert not other.table.equals(toy_aim.table)


# ------------------------------------------------------------------ AIM: its pieces

def test_candidates_and_weights_follow_the_workload():
    workload, candidates = baselines._aim_candidates(["a", "b", "c", "y"], ("y",), target_triples=True)
    assert set(workload) == {("a", "b"), ("a", "c"), ("a", "y"), ("b", "c"), ("b", "y"), ("c", "y"),
                             ("a", "b", "y"), ("a", "c", "y"), ("b", "c", "y")}
    # w_r = sum over workload marginals s of |r ∩ s|.
    assert candidates[("a",)] == 5 and candidates[("y",)] == 6
    assert candidates[("a", "y")] == sum(len({"a", "y"} & set(s)) for s in workload)
    assert ("a", "b", "c") not in candidates and len(candidates) == 4 + 6 + 3
    pairs_only, _ = baselines._aim_candidates(["a", "b", "c", "y"], ("y",), target_triples=False)
    assert len(pairs_only) == 6
    survival, _ = baselines._aim_candidates(["a", "b", "t", "e"], ("t", "e"), target_triples=True)
    assert ("a", "t", "e") in survival and ("b", "t", "e") in survival and ("a", "b", "e") not in survival


def test_model_size_matches_mbi(mbi):
    rng = np.random.default_rng(11)
    for trial in range(60):
        d = int(rng.integers(2, 9))
        names = [f"v{i}" for i in range(d)]
        domain = mbi.Domain(names, [int(s) for s in rng.choice([2, 3, 8, 40], d)])
        cliques = [(n,) for n in names]
        if trial % 2:  # a tree, as MST's
            cliques += [(names[i], names[int(rng.integers(i))]) for i in range(1, d)]
        else:
            cliques += [tuple(rng.choice(names, min(d, int(rng.integers(2, 4))), replace=False))
                        for _ in range(int(rng.integers(1, 6)))]
        assert baselines._model_megabytes(domain, cliques) == pytest.approx(
            mbi.junction_tree.hypothetical_model_size(domain, cliques), rel=1e-12)


def test_numpy_estimator_agrees_with_mbi(mbi, toy):
    # AIM's per-round models (numpy) and the released model (mbi) solve the same problem.
    frame, schema = toy
    attributes = baselines._attributes(schema, 3)
    codes = baselines._discretise(baselines._quiet_clean(frame, schema), attributes)
    names = [a.name for a in attributes]
    domain = mbi.Domain(names, [a.size for a in attributes])
    rng = np.random.default_rng(2)
    cliques = [(n,) for n in names] + [("x", "y"), ("c", "y"), ("x", "z")]
    measurements = []
    for clique in cliques:
        shape = tuple(domain.config[a] for a in clique)
        exact = np.bincount(np.ravel_multi_index(tuple(codes[a] for a in clique), shape),
                            minlength=math.prod(shape)).astype(float)
        measurements.append((clique, exact + rng.normal(0, 3.0, exact.size), 3.0))
    total = baselines._estimated_total(measurements)
    model = baselines._NumpyPGM(domain, cliques)
    theta = model.fit(measurements, None, total, 1500)
    theirs = mbi.estimation.MirrorDescent().estimate(
        domain, [mbi.LinearMeasurement(y, c, stddev=s) for c, y, s in measurements], iters=1500)
    assert float(theirs.total) == pytest.approx(total)
    beliefs = model.beliefs(theta, total)
    for query in [("x",), ("c", "y"), ("x", "z"), ("c", "z"), ("x", "c", "z")]:   # in a clique, and across cliques
        ours = model.marginal(beliefs, theta, query, total).ravel()
        assert np.abs(ours - np.asarray(theirs.project(query).datavector())).sum() <= 2e-3 * total, query


# ------------------------------------------------------------------ the runner: AIM and the training size

def test_subsample_is_stratified_seeded_and_nested():
    frame = load_dataset("nwtco").frame
    target = "relapse"
    rates = frame[target].value_counts(normalize=True)
    small = runner.subsample_train(frame, target, 500, seed=3)
    assert len(small) == 500
    counts = small[target].value_counts()
    assert all(abs(counts[level] - 500 * rates[level]) <= 1 for level in rates.index)      # proportional shares
    pd.testing.assert_frame_equal(small, runner.subsample_train(frame, target, 500, seed=3))  # seeded
    assert not small.index.equals(runner.subsample_train(frame, target, 500, seed=4).index)
    large = runner.subsample_train(frame, target, 2000, seed=3)
    assert len(set(small.index) - set(large.index)) <= rates.size                          # nested up to rounding
    assert runner.subsample_train(frame, target, "all", seed=3) is frame
    assert runner.subsample_train(frame, target, len(frame) + 5, seed=3) is frame
    # A rare class keeps at least one row.
    rare = pd.concat([frame[frame[target] == "no"].iloc[:400], frame[frame[target] == "yes"].iloc[:2]])
    assert set(runner.subsample_train(rare, target, 50, seed=0)[target]) == {"no", "yes"}


def test_train_sizes_are_a_cell_dimension_and_oversized_ones_are_recorded():
    spec = runner.load_grid({"grids": {"g": {"datasets": ["nwtco"], "condense_models": ["tree"], "epsilons": [1],
                                             "rows_per_class": [10], "seeds": 2, "train_sizes": [500, "all", 5000]}}},
                            "g")
    planned = runner.cells(spec)
    assert {c["train_size"] for c in planned} == {500, "all", 5000} and len(planned) == 3 * 2
    not_run = []
    kept = runner.plan_train_sizes(planned, spec, not_run)
    assert {c["train_size"] for c in kept} == {500, "all"}
    assert not_run == [{"what": "classification nwtco at n = 5000 training rows", "cells": 2,
                        "reason": "n = 5000 >= the 2819 training rows (70 % split): the same as n = all"}]
    # Records written before train sizes existed are at n = all (skip-recorded and merges still match).
    old = {"task": "classification", "dataset": "nwtco", "rows_per_class": 10, "epsilon": 1.0, "seed": 0}
    assert runner._record_key(old) == runner._record_key(dict(old, train_size="all"))
    assert runner._record_key(old) != runner._record_key(dict(old, train_size=500))
    args = runner.build_parser().parse_args(["--train-sizes", "500,all", "--baselines", "random_subset,aim"])
    assert args.train_sizes == "500,all" and args.baselines == "random_subset,aim"
    assert runner.run_command(runner.build_parser().parse_args(["--grid", "ci", "--baselines", "nope"])) == 2


def test_runner_cell_builds_aim_on_the_subsample_and_stops_on_overspending(mbi, monkeypatch):
    spec = runner.load_grid({"grids": {"g": {"datasets": ["nwtco"], "condense_models": [], "evaluate_models": ["logistic"],
                                             "epsilons": [1], "rows_per_class": [5], "seeds": 1, "train_sizes": [300],
                                             "baselines": ["random_subset", "aim"],
                                             "baseline_options": {"aim": QUICK}}}}, "g")
    (cell,) = runner.cells(spec)
    record = runner.run_cell(cell, spec, {})
    assert record["train_size"] == 300 and record["train_rows"] == 300 and record["train_rows_available"] == 2819
    aim = record["baselines"]["aim"]
    assert aim["private"] and aim["rows"] == 10 and aim["epsilon_spent"] <= 1 + 1e-9
    assert 0 <= aim["utility"]["logistic"]["auroc"] <= 1
    # A baseline that spends more than the target stops the benchmark.
    real = baselines.aim

    def greedy(*args, **kwargs):
        return real(*args, **kwargs)._replace(epsilon=1.5)
    monkeypatch.setattr(baselines, "aim", greedy)
    with pytest.raises(RuntimeError, match="baseline aim spent epsilon 1.5 > target 1"):
        runner.run_cell(cell, spec, {})
    # Without mbi the runner lists AIM under not_run.
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "mbi" else find_spec(name, *rest))
    not_run = []
    assert runner.drop_unavailable_baselines(spec, not_run)["baselines"] == ["random_subset"]
    assert not_run == [{"what": "classification baseline aim (every classification cell)",
                        "reason": runner.baseline_available("aim")}] and "AIM" in not_run[0]["reason"]


def _fake_result(task: str) -> dict:
    """A results dict of made-up scores over 2 training sizes x 2 epsilons x 3 seeds (no model is fitted)."""
    rng = np.random.default_rng(0)
    metric = "auroc" if task == "classification" else "c_index"
    size_key, model = ("rows_per_class", "tree") if task == "classification" else ("rows", "cox")
    records = []
    for size, epsilon, seed in itertools.product([500, "all"], [1.0, 2.0], range(3)):
        def scores():
            return {model: {metric: float(rng.uniform(0.5, 0.9))}}
        records.append({"task": task, "dataset": "cohort", "train_size": size, size_key: 10, "epsilon": epsilon,
                        "seed": seed, "train_rows": 500 if size == 500 else 3000,
                        "condensed": {model: {"utility": scores()}},
                        "baselines": {b: {"private": b in baselines.PRIVATE_BASELINES, "utility": scores()}
                                      for b in ("full_data", "random_subset", "mst", "aim")}})
    summary = runner.summarise(records)
    summary["survival"] = runner.summarise_survival(records)
    return {"records": records, "summary": summary, "not_run": [], "settings": {"grid": "fake", "seeds": 3,
                                                                                "survival_seeds": 3, "delta": 1e-5},
            "machine": {}, "timing": {}}


@pytest.mark.parametrize("task", ["classification", "survival"])
def test_n_column_and_curve_plots(task, tmp_path):
    result = _fake_result(task)
    rows = result["summary"]["utility"] if task == "classification" else result["summary"]["survival"]["utility"]
    assert {(r["train_size"], r["train_rows"]) for r in rows} == {(500, 500), ("all", 3000)}
    text = runner.markdown(json.loads(json.dumps(result)))
    assert "| n |" in text or " n | condensed" in text
    line = "| tree | 10 | 1 | 500 |" if task == "classification" else "| cohort | cox | 10 | 1 | 500 |"
    assert line in text and "| AIM |" in text
    paths = runner.curve_plots(result, str(tmp_path), "x")
    model = "tree" if task == "classification" else "cox"
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == [f"x_cohort_{model}_vs_epsilon_by_n.png", f"x_cohort_{model}_vs_n.png"]
    assert all((tmp_path / p.rsplit("/", 1)[1]).stat().st_size > 1000 for p in paths)
    # The epsilon plot of plots() holds n fixed at the largest size; the curves come with it.
    names = [p.rsplit("/", 1)[1] for p in runner.plots(result, str(tmp_path), "y")]
    assert f"y_cohort_{model}_vs_n.png" in names


SAMPLER_SCRIPT = """
import hashlib, math, sys
import numpy as np, mbi
from benchmarks import baselines
names = ["a", "b", "c", "d", "y"]
domain = mbi.Domain(names, [3, 4, 2, 3, 2])
cliques = [("a", "b", "y"), ("b", "c", "y"), ("c", "d"), ("a", "d")]       # not a tree: parents come in pairs
model = baselines._NumpyPGM(domain, cliques)
rng = np.random.default_rng(0)
theta = {p: rng.normal(0, 1, model.shape(p)) for p in model.potentials}
data = model.sample(theta, 1000.0, int(sys.argv[1]), np.random.default_rng(1))
print(hashlib.sha1(np.stack([data[n] for n in names]).tobytes()).hexdigest())
"""


def test_sampler_is_reproducible_across_hash_seeds_and_follows_the_model(mbi, tmp_path):
    # mbi's synthetic_data orders a column's parents by set iteration, which PYTHONHASHSEED changes from
    # process to process: AIM (whose cliques are not a tree) samples with its own seeded sampler instead.
    import os
    import pathlib
    import subprocess
    import sys

    script = tmp_path / "sample.py"
    script.write_text(SAMPLER_SCRIPT)
    root = str(pathlib.Path(__file__).resolve().parents[2])
    digests = {subprocess.run([sys.executable, str(script), "300"], capture_output=True, text=True, check=True,
                              env=dict(os.environ, PYTHONHASHSEED=str(seed), PYTHONPATH=root)).stdout.strip()
               for seed in (1, 2)}
    assert len(digests) == 1
    # The draws follow the model: every pairwise marginal of 40,000 rows within sampling error.
    names = ["a", "b", "c", "d", "y"]
    domain = mbi.Domain(names, [3, 4, 2, 3, 2])
    model = baselines._NumpyPGM(domain, [("a", "b", "y"), ("b", "c", "y"), ("c", "d"), ("a", "d")])
    rng = np.random.default_rng(0)
    theta = {p: rng.normal(0, 1, model.shape(p)) for p in model.potentials}
    rows = 40000
    data = model.sample(theta, 1.0, rows, np.random.default_rng(1))
    beliefs = model.beliefs(theta, 1.0)
    for pair in itertools.combinations(names, 2):
        shape = model.shape(pair)
        empirical = np.bincount(np.ravel_multi_index(tuple(data[a] for a in pair), shape),
                                minlength=math.prod(shape)) / rows
        assert np.abs(empirical - model.marginal(beliefs, theta, pair, 1.0).ravel()).sum() < 0.03, pair


def test_n_curve_grid_expresses_the_issue():
    import pathlib

    config = json.loads((pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "configs" / "utility.json").read_text())
    spec = runner.load_grid(config, "n_curve")
    assert spec["datasets"] == ["covid_testing", "nwtco"] and spec["survival_datasets"] == ["flchain", "nafld1"]
    assert spec["train_sizes"] == [500, 2000, 5000, "all"] and spec["epsilons"] == [0.5, 1.0, 2.0]
    assert spec["condense_models"] == spec["evaluate_models"] == ["tree", "logistic"] and spec["survival_models"] == ["cox"]
    tables = {"full_data", "random_subset", "kmeans_centroids", "dp_gaussian", "mst", "aim"}
    assert set(spec["baselines"]) == set(spec["survival_baselines"]) == tables
    assert spec["seeds"] == spec["survival_seeds"] == 30
    assert len(runner.cells(spec)) == 2 * 4 * 3 * 30 and len(runner.survival_cells(spec)) == 2 * 4 * 3 * 30
