"""The front door's everyday hygiene: declarative checks, deprecations, the resolved configuration,
pickling, a short repr, the model and task protocols, and the shared-budget hook."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import warnings

import numpy as np
import pytest

from zodc import Condenser, DPMeans, NoiseStart, SharedBudget
from zodc._params import Interval, Options, validate_params
from zodc.budget import Budget
from zodc.data.datasets import load_dataset
from zodc.errors import ConfigError, PrivacyBudgetError
from zodc.privacy.events import GaussianEvent
from zodc.tasks import TASKS
from zodc.tasks.base import Task

FAST = dict(steps=3, num_directions=4, rows_per_class=3)


@pytest.fixture(scope="module")
def cancer():
    data = load_dataset("breast_cancer")
    return data.frame.drop(columns="diagnosis"), data.frame["diagnosis"], data.schema


@pytest.fixture(scope="module")
def fitted(cancer):
    X, y, schema = cancer
    return Condenser(schema=schema, random_state=0, **FAST).fit(X, y)


@pytest.mark.parametrize("constraints, value, message", [
    ([Interval(float, 0, 1, closed="neither")], 1.0, r"`p` must be in \(0, 1\)\. Got 1\.0\."),
    ([Interval(int, 1, None)], 2.5, r"`p` must be an integer >= 1\. Got 2\.5\."),
    ([Interval(int, 1, None)], True, r"`p` must be an integer >= 1\. Got True\."),
    ([None, Options("a", "b")], "c", r"`p` must be None or one of 'a', 'b'\. Got 'c'\."),
    ([Interval(float, 0, None, closed="neither", inf=True)], float("nan"), r"`p` must be > 0 \(inf allowed\)"),
])
def test_declared_constraints_name_the_parameter_and_what_it_accepts(constraints, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_params({"p": value}, {"p": constraints})
    validate_params({"p": math.inf if constraints[0] is not None and getattr(constraints[0], "inf", False) else None},
                    {"p": [None, *constraints]})


def test_every_constructor_parameter_has_a_declared_constraint():
    names = set(Condenser().get_params())
    assert names - {"model", "n_jobs", "random_state"} == set(Condenser._constraints)


@pytest.mark.parametrize("name, value", [("subspace", 4), ("soft_label_steps", 1), ("init_centre", 0.2),
                                         ("init_share", 0.3), ("init_scale", 0.2), ("init_clip", 0.4),
                                         ("directions", "rows")])
def test_retired_options_warn_and_still_run(cancer, name, value):
    X, y, schema = cancer
    with pytest.warns(FutureWarning, match=f"`{name}`|directions="):
        condenser = Condenser(schema=schema, random_state=1, **FAST, **{name: value}).fit(X, y)
    assert condenser.synthetic_.shape[0] == 6


def test_flat_start_names_equal_the_start_object(cancer):
    X, y, schema = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        flat = Condenser(schema=schema, random_state=2, init_share=0.3, init_clip=0.4, **FAST).fit(X, y)
    grouped = Condenser(schema=schema, random_state=2, init=DPMeans(share=0.3, clip=0.4), **FAST).fit(X, y)
    assert flat.config_.init == grouped.config_.init == DPMeans(share=0.3, clip=0.4)
    np.testing.assert_array_equal(flat.table_, grouped.table_)
    noise = Condenser(schema=schema, random_state=2, init=NoiseStart(scale=0.3), **FAST).fit(X, y)
    assert noise.init_ == "noise" and noise.init_scale_ == 0.3 and "initialisation" not in \
        [entry.name for entry in noise.ledger_.entries]


@pytest.mark.parametrize("start, message", [(lambda: DPMeans(share=1.5), "init_share"),
                                            (lambda: DPMeans(clip=0), "init_clip"),
                                            (lambda: NoiseStart(scale=-1), "init_scale")])
def test_a_bad_start_is_named(start, message):
    with pytest.raises(ConfigError, match=message):
        start()


def test_the_resolved_configuration_is_one_json_ready_attribute(fitted):
    config = fitted.config_.to_dict()
    json.dumps(config)
    assert config["task"] == "classification" and config["model"] == "tree" and config["backend"] == "native"
    assert config["learning_rate"] == 0.05 and config["loss"] == "balanced_linear" and config["rows"] == 3
    assert config["init"] == {"kind": "dp_means", "share": 0.5, "scale": 0.1, "clip": 0.5, "centre": 0.0}
    assert config["soft_labels"] is False and fitted.learning_rate_ == 0.05


def test_a_fitted_condenser_pickles_and_its_repr_is_short(fitted):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.table_, fitted.table_)
    assert again.config_ == fitted.config_ and again.report()["epsilon"] == fitted.report()["epsilon"]
    assert "NumericColumn" not in repr(fitted) and "30 features" in repr(fitted) and len(repr(fitted)) < 300


def test_every_task_implements_the_protocol():
    members = [name for name in vars(Task) if not name.startswith("_")]
    for task in TASKS.values():
        for name in members + ["score", "utility", "report_roles", "fit_arguments", "soft_events", "default_model",
                               "losses", "row_parameter", "default_rows", "other_settings"]:
            assert hasattr(task, name), (task.name, name)


class _Stump:
    """A user's model through the protocol: a depth-1 tree on the host."""

    task = "classification"
    name = "stump"

    def host(self, num_classes):
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=1, random_state=0)

    def native(self, num_classes):
        return None


def test_a_model_through_the_protocol_runs_on_the_host(cancer):
    X, y, schema = cancer
    condenser = Condenser(_Stump(), schema=schema, random_state=3, **FAST).fit(X, y)
    assert condenser.backend_ == "host" and condenser.config_.to_dict()["model"] == "stump"
    with pytest.raises(ConfigError, match="no native kernel"):
        Condenser(_Stump(), schema=schema, backend="native", **FAST).fit(X, y)
    survival = load_dataset("gbsg2")
    with pytest.raises(ConfigError, match="classification model but the data are survival"):
        Condenser(_Stump(), rows=20, steps=2).fit(survival.frame, duration_col="time", event_col="cens")


def test_a_shared_budget_meets_the_whole_target_with_its_copies():
    prior = (GaussianEvent(5.0),)
    budget = Budget(0.5, 1e-6, SharedBudget(epsilon=1.0, delta=1e-5, prior_events=prior, copies=3))
    budget.add("initialisation", GaussianEvent(20.0), "a start")
    steps = budget.calibrate(steps=50, num_directions=4, batch_size=100, record_count=1000.0, l2_norm_clip=1.0)
    alone = Budget(1.0, 1e-5)
    alone.add("initialisation", GaussianEvent(20.0), "a start")
    alone_steps = alone.calibrate(steps=50, num_directions=4, batch_size=100, record_count=1000.0, l2_norm_clip=1.0)
    assert steps.noise_multiplier > alone_steps.noise_multiplier  # three copies and a prior event share the target
    from zodc.privacy.accounting import RdpAccountant

    check = RdpAccountant()
    check.compose(prior[0])
    for entry in budget.ledger.entries:
        check.compose(entry.event, 3)
    assert check.get_epsilon(1e-5) <= 1.0 * (1 + 1e-9)
    with pytest.raises(PrivacyBudgetError, match="exceeds"):  # the check refuses what the target cannot carry
        tight = Budget(1.0, 1e-5, SharedBudget(epsilon=0.01, delta=1e-5, prior_events=prior, copies=1))
        tight.ledger.add("zero_order_steps", GaussianEvent(1.0), "")
        tight.check()


def test_a_shared_record_count_is_reused_not_spent_again(cancer):
    X, y, schema = cancer
    shared = SharedBudget(epsilon=2.0, delta=1e-5, copies=1, record_count=412.0)
    condenser = Condenser(schema=schema, random_state=4, **FAST).fit(X, y, budget=shared)
    assert condenser.record_count_ == 412.0
    assert "record_count" not in [entry.name for entry in condenser.ledger_.entries]
    assert not hasattr(condenser, "budget") and dataclasses.is_dataclass(shared)


def test_a_cell_that_is_not_a_single_value_is_its_own_records_missing_value():
    # Neighbouring tables: D' adds one record whose cell is a dict. Every other record is unchanged,
    # the odd cell is missing, and the warning names the column only.
    import pandas as pd

    from zodc.tasks.base import features_frame

    D = pd.DataFrame({"x": pd.Series([1.5, "2", 3.0], dtype=object), "z": [0.1, 0.2, 0.3]})
    D_prime = pd.concat([D, pd.DataFrame({"x": pd.Series([{"secret": 42}], dtype=object), "z": [0.4]})],
                        ignore_index=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean, clean_prime = features_frame(D), features_frame(D_prime)
    pd.testing.assert_frame_equal(clean_prime.iloc[:3], clean)
    assert pd.isna(clean_prime.loc[3, "x"]) and clean_prime.loc[3, "z"] == 0.4
    messages = [str(w.message) for w in caught]
    assert any("column 'x'" in m for m in messages) and not any("42" in m or "secret" in m for m in messages)


@pytest.mark.parametrize("X, message", [(np.empty((12, 0)), r"0 feature\(s\) \(shape=\(12, 0\)\)"),
                                        (np.ones((12, 2)) + 1j, "Complex data not supported")])
def test_structural_input_problems_are_refused_in_sklearns_words(X, message):
    from zodc.errors import DataError

    with pytest.raises(DataError, match=message):
        Condenser(epsilon=float("inf"), **FAST).fit(X, np.array([0, 1] * 6))


def test_a_table_no_larger_than_the_synthetic_one_is_refused_with_its_classes_named():
    from zodc.errors import DataError
    from zodc.tasks.base import check_size

    check_size(171.0, 170, "rows_per_class", classes=17)  # larger: condensed
    with pytest.raises(DataError, match=r"170 rows \(17 classes x 10\).*a measurement rather than a class"):
        check_size(107.0, 170, "rows_per_class", classes=17)
    with pytest.raises(DataError, match=r"synthetic table's 20 rows \(2 classes x 10\): condensing") as caught:
        check_size(20.0, 20, "rows_per_class", classes=2)
    assert "measurement" not in str(caught.value)
    with pytest.raises(DataError, match=r"synthetic table's 50 rows: condensing"):  # survival: rows, no classes
        check_size(30.0, 50, "rows")
