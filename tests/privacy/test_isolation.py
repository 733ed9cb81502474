"""Neighbouring datasets: one record's failure is charged to that record alone.

The privacy of a step rests on each real record's loss depending only on that record and the
synthetic table. Here ``D`` and ``D'`` differ in one added record, an outlier the fitted model
cannot predict (or predicts as NaN). On the same perturbed tables and the same mask (plus the
outlier's entry), every other record's losses must be identical bit for bit, and the clipped sum of
the per-record difference vectors must move by at most ``C``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from zodc.tasks import get_task
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import RadiusNeighborsClassifier

from zodc import zo
from zodc.data.schema import CategoricalColumn, NumericColumn, Schema
from zodc.evaluate.utility import fit_predict_proba
from zodc.models.host import HostEvaluator, fit_score_classifier, predict_rows
from zodc.models.losses import ClassificationLoss
from zodc.models.survival import (SurvivalLoss, TimeScale, fit_score_survival, host_survival_payload,
                                  native_survival_data, native_survival_evaluate_fn, native_survival_evaluator,
                                  public_time_grid)
from zodc.privacy.mechanisms import clip_rows
from zodc.tuning import PrivateSearch, classification_record_scores, survival_record_scores

CLIP = 1.0
NUM_DIRECTIONS = 4
SMOOTHING = 0.05
OUTLIER = np.array([1.0, 1.0, 1.0])   # far (> 1) from every synthetic row: no neighbour within 0.6


# --------------------------------------------------------------------------- helpers


def _clipped_sum(losses: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The step's clipped sum: per-record differences (zo), clipped to C, summed over the sampled."""
    differences = zo.per_record_differences(jnp.asarray(losses), NUM_DIRECTIONS, "central")
    clipped = clip_rows(differences, CLIP)
    return np.asarray(jnp.sum(jnp.where(jnp.asarray(mask)[:, None], clipped, 0.0), axis=0), np.float64)


def _perturbed(rng: np.random.Generator, table: np.ndarray) -> np.ndarray:
    directions = rng.normal(size=(NUM_DIRECTIONS,) + table.shape)
    return np.asarray(zo.perturb(jnp.asarray(table, jnp.float32), jnp.asarray(directions, jnp.float32), SMOOTHING))


def _assert_neighbours_isolated(losses: np.ndarray, losses_prime: np.ndarray, mask: np.ndarray,
                                mask_prime: np.ndarray, bound: float, outlier_sampled: bool = True) -> float:
    n = losses.shape[1]
    assert np.array_equal(losses, losses_prime[:, :n])                 # every other record: bit for bit
    outlier = losses_prime[:, n]
    np.testing.assert_array_equal(outlier, np.float32(bound) if outlier_sampled else 0.0)
    moved = np.linalg.norm(_clipped_sum(losses_prime, mask_prime) - _clipped_sum(losses, mask))
    assert moved <= CLIP * (1 + 1e-6)
    return float(moved)


# --------------------------------------------------------------------------- host classifier


def _classification_problem(seed: int = 0, n: int = 60, m: int = 8, d: int = 3):
    rng = np.random.default_rng(seed)
    synthetic = rng.uniform(-0.8, 0.2, size=(m, d))
    labels = np.repeat([0, 1], m // 2)
    X = synthetic[rng.integers(0, m, size=n)] + rng.uniform(-0.1, 0.1, size=(n, d))  # each near a synthetic row
    y = rng.integers(0, 2, size=n)
    mask = rng.uniform(size=n) < 0.7
    return X, y, synthetic, labels, _perturbed(rng, synthetic), mask


def _classifier_losses(estimator, X, y, labels, tables, mask, loss, n_jobs=1):
    payload = {"estimator": estimator, "X": X, "y": y, "synthetic_labels": labels, "num_classes": 2,
               "loss": loss, "soft_labels": False}
    with HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=X.shape[0],
                       n_jobs=n_jobs) as evaluator:
        return evaluator(tables, mask)


@pytest.mark.parametrize("loss_name, n_jobs", [("cross_entropy", 1), ("balanced_linear", 1), ("balanced_linear", 2)])
def test_host_classifier_outlier_changes_no_other_record(loss_name, n_jobs):
    # n_jobs 2: the process pool (its start-up barrier, the payload in each worker, the tables in chunks).
    X, y, _, labels, tables, mask = _classification_problem()
    X_prime, y_prime = np.vstack([X, OUTLIER]), np.append(y, 1)
    mask_prime = np.append(mask, True)
    model = RadiusNeighborsClassifier(radius=0.6)
    # The attack: the outlier breaks predict_proba for the whole batch.
    with pytest.raises(ValueError):
        RadiusNeighborsClassifier(radius=0.6).fit(tables[0], labels).predict_proba(X_prime[mask_prime])
    loss = ClassificationLoss(loss_name, probability_floor=0.01)
    losses = _classifier_losses(model, X, y, labels, tables, mask, loss, n_jobs)
    losses_prime = _classifier_losses(model, X_prime, y_prime, labels, tables, mask_prime, loss, n_jobs)
    for table in tables:                                               # D alone: the batch is predicted
        assert np.all(np.isfinite(RadiusNeighborsClassifier(radius=0.6).fit(table, labels).predict_proba(X[mask])))
    _assert_neighbours_isolated(losses, losses_prime, mask, mask_prime, loss.upper_bound)
    # The test has teeth: charging every record the bound (the old behaviour) would move the sum by more than C.
    assert np.linalg.norm(_clipped_sum(losses, mask)) > CLIP


@pytest.mark.parametrize("model", ["tree", "forest", "boosting", "logistic"])
def test_native_tree_classifier_outlier_changes_no_other_record(model):
    # The tree kernels on CPU: fits in the C++ builder, the real records routed to leaves by its
    # second call (kernels/_native.py); logistic: each record's logit is its own row times the
    # coefficients, one full-precision product per table (kernels.logistic.matmul). D' adds one
    # record of extreme and non-finite values; every other record's losses stay bit for bit, the
    # added one's is its own and bounded, the clipped sum moves by at most C.
    from zodc.kernels._native import APPLY_TARGET, native_tree_status
    from zodc.models.native import native_classifier_data, native_classifier_evaluator
    from zodc.models.presets import get_preset

    X, y, _, labels, tables, mask = _classification_problem(seed=2)
    loss = ClassificationLoss("balanced_linear", None)
    evaluate = jax.jit(native_classifier_evaluator(get_preset(model).native_factory(2), loss))
    key = jax.random.key(0)

    def losses(X, y, mask):
        data = native_classifier_data(X, y, labels, key, class_weights=(1.0, 1.7))
        return np.asarray(evaluate(jnp.asarray(tables, jnp.float32), jnp.asarray(mask), data))

    if native_tree_status()[0] and model != "logistic":  # the path under test is the C++ routing
        data = native_classifier_data(X, y, labels, key, class_weights=(1.0, 1.7))
        assert APPLY_TARGET in evaluate.lower(jnp.asarray(tables, jnp.float32), jnp.asarray(mask), data).as_text()
    before = losses(X, y, mask)
    bound = loss.upper_bound * 1.7
    assert np.all(np.isfinite(before)) and before[:, mask].max() > 0
    outlier = np.array([1e30, -np.inf, np.nan])
    for sampled in (True, False):
        mask_prime = np.append(mask, sampled)
        after = losses(np.vstack([X, outlier]), np.append(y, 1), mask_prime)
        assert np.array_equal(before, after[:, :-1])  # every other record: bit for bit
        own = after[:, -1]
        assert np.all((own >= 0) & (own <= bound)) if sampled else np.all(own == 0)
        moved = np.linalg.norm(_clipped_sum(after, mask_prime) - _clipped_sum(before, mask))
        assert moved <= CLIP * (1 + 1e-6)


def test_host_classifier_unsampled_outlier_is_never_looked_at():
    X, y, _, labels, tables, mask = _classification_problem(seed=1)
    X_prime, y_prime = np.vstack([X, OUTLIER]), np.append(y, 0)
    mask_prime = np.append(mask, False)
    loss = ClassificationLoss("cross_entropy", probability_floor=0.01)
    losses = _classifier_losses(RadiusNeighborsClassifier(radius=0.6), X, y, labels, tables, mask, loss)
    losses_prime = _classifier_losses(RadiusNeighborsClassifier(radius=0.6), X_prime, y_prime, labels, tables,
                                      mask_prime, loss)
    assert _assert_neighbours_isolated(losses, losses_prime, mask, mask_prime, loss.upper_bound,
                                       outlier_sampled=False) < 1e-5  # summation order only


class _FailingFit(ClassifierMixin, BaseEstimator):
    """A classifier whose fit always raises (its failure depends on the synthetic table only)."""

    def fit(self, X, y, sample_weight=None):
        raise ValueError("cannot fit")

    def predict_proba(self, X):  # pragma: no cover - never reached
        raise AssertionError("predicted after a failed fit")


def test_failed_fit_charges_every_record_the_bound_on_both_neighbours():
    X, y, _, labels, tables, mask = _classification_problem(seed=2)
    X_prime, y_prime, mask_prime = np.vstack([X, OUTLIER]), np.append(y, 1), np.append(mask, True)
    loss = ClassificationLoss("cross_entropy", probability_floor=0.01)
    losses = _classifier_losses(_FailingFit(), X, y, labels, tables, mask, loss)
    losses_prime = _classifier_losses(_FailingFit(), X_prime, y_prime, labels, tables, mask_prime, loss)
    np.testing.assert_array_equal(losses[:, mask], np.float32(loss.upper_bound))
    np.testing.assert_array_equal(losses[:, ~mask], 0.0)
    assert _assert_neighbours_isolated(losses, losses_prime, mask, mask_prime, loss.upper_bound) < 1e-5


def test_predict_rows_isolates_a_record_that_breaks_the_batch():
    calls = []

    def predict(X):
        calls.append(len(X))
        if np.any(X[:, 0] > 0.9):
            raise ValueError("no neighbour")
        return np.stack([X[:, 0], -X[:, 0]], axis=1)

    X = np.array([[0.1], [0.95], [0.3]])
    got = predict_rows(predict, X, (2,))
    np.testing.assert_array_equal(got[[0, 2]], [[0.1, -0.1], [0.3, -0.3]])
    assert np.all(np.isnan(got[1])) and calls == [3, 1, 1, 1]
    np.testing.assert_array_equal(predict_rows(predict, X[[0, 2]], (2,)), got[[0, 2]])  # one call, same rows
    np.testing.assert_array_equal(predict_rows(lambda X: np.ones((len(X), 3)), X, (2,)), np.full((3, 2), np.nan))


# --------------------------------------------------------------------------- host survival


class _PickySurvival:
    """A constant-hazard survival model that cannot predict a record with feature 0 above 0.9:
    it raises for the batch (``nan=False``) or predicts NaN for that record (``nan=True``)."""

    def __init__(self, nan: bool = False):
        self.nan = nan

    def fit(self, X, time, event, sample_weight=None):
        X, time, event = np.asarray(X, np.float64), np.asarray(time, np.float64), np.asarray(event)
        self.coef_ = 0.5 * X.mean(axis=0)
        self.rate_ = max(float(np.sum(event > 0)), 1.0) / float(np.sum(time))
        return self

    def predict_risk(self, X):
        return np.asarray(X, np.float64) @ self.coef_

    def predict_survival(self, X, times):
        X = np.asarray(X, np.float64)
        bad = X[:, 0] > 0.9
        if np.any(bad) and not self.nan:
            raise ValueError("cannot predict")
        survival = np.exp(-self.rate_ * np.asarray(times, np.float64)[None, :] * np.exp(self.predict_risk(X))[:, None])
        survival[bad] = np.nan
        return survival


SCALE = TimeScale(1.0, 3650.0)
GRID = public_time_grid(1.0, 3650.0, 6)


def _survival_problem(seed: int = 0, n: int = 50, m: int = 10, d: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 0.8, size=(n, d))
    time = rng.uniform(5.0, 3000.0, size=n)
    event = rng.integers(0, 2, size=n)
    synthetic_events = (np.arange(m) < m // 2).astype(np.int64)
    table = np.concatenate([rng.uniform(-1, 0.8, size=(m, d)), rng.uniform(-0.8, 0.8, size=(m, 1))], axis=1)
    mask = rng.uniform(size=n) < 0.7
    return X, time, event, synthetic_events, _perturbed(rng, table), mask


def _survival_losses(model, loss, X, time, event, synthetic_events, tables, mask):
    payload = host_survival_payload(model, loss, X, time, event, synthetic_events, SCALE)
    with HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=X.shape[0],
                       n_jobs=1) as evaluator:
        return evaluator(tables, mask)


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("loss_name", ["discrete_nll", "brier"])
def test_host_survival_outlier_changes_no_other_record(nan, loss_name):
    X, time, event, synthetic_events, tables, mask = _survival_problem()
    X_prime, time_prime, event_prime = np.vstack([X, OUTLIER]), np.append(time, 100.0), np.append(event, 1)
    mask_prime = np.append(mask, True)
    loss = SurvivalLoss(loss_name, GRID)
    losses = _survival_losses(_PickySurvival(nan), loss, X, time, event, synthetic_events, tables, mask)
    losses_prime = _survival_losses(_PickySurvival(nan), loss, X_prime, time_prime, event_prime, synthetic_events,
                                    tables, mask_prime)
    assert np.all(losses[:, mask] < loss.upper_bound)
    _assert_neighbours_isolated(losses, losses_prime, mask, mask_prime, loss.upper_bound)
    unsampled = _survival_losses(_PickySurvival(nan), loss, X_prime, time_prime, event_prime, synthetic_events,
                                 tables, np.append(mask, False))
    _assert_neighbours_isolated(losses, unsampled, mask, np.append(mask, False), loss.upper_bound,
                                outlier_sampled=False)


# --------------------------------------------------------------------------- native survival


class _Params(NamedTuple):
    coef: jax.Array
    rate: jax.Array
    converged: jax.Array


class _LogFeatureModel:
    """A native survival model whose prediction is NaN for a record with feature 0 below -2 (the
    log of a negative number): that record's loss is non-finite, no one else's."""

    def fit(self, key, X, time, event):
        del key
        return _Params(0.3 * jnp.mean(X, axis=0), jnp.maximum(jnp.sum(event), 1.0) / jnp.sum(time), jnp.asarray(True))

    def predict_survival(self, params, X, times):
        risk = jnp.sum(X * params.coef, axis=1) + jnp.log(X[:, 0] + 2.0)
        return jnp.exp(-params.rate * times[None, :] * jnp.exp(risk)[:, None])


@pytest.mark.parametrize("loss_name, bounds_as_data, model_name", [
    ("discrete_nll", False, "log_feature"), ("brier", False, "log_feature"), ("discrete_nll", True, "log_feature"),
    ("discrete_nll", True, "cox")])
def test_native_survival_nonfinite_record_changes_no_other_record(loss_name, bounds_as_data, model_name):
    # "cox": the real Cox kernel, whose risk scores of the real records are one full-precision
    # product per table (kernels.logistic.matmul): each record's its own row times the coefficients.
    from zodc.models.presets import get_preset

    X, time, event, synthetic_events, tables, mask = _survival_problem(seed=3)
    outlier = np.array([-5.0, 0.0, 0.0])
    X_prime, time_prime, event_prime = np.vstack([X, outlier]), np.append(time, 100.0), np.append(event, 0)
    loss = SurvivalLoss(loss_name, GRID)
    model = _LogFeatureModel() if model_name == "log_feature" else get_preset("cox").native_factory(2)
    key = jax.random.key(0)

    def run(X, time, event, mask):
        if bounds_as_data:  # the front door's step: the grid and the time scale travel with the records
            evaluate_fn = native_survival_evaluate_fn(model, loss, SCALE, bounds_as_data=True)
            data = native_survival_data(X, time, event, synthetic_events, key, loss, SCALE)
            return np.asarray(jax.jit(evaluate_fn)(jnp.asarray(tables), jnp.asarray(mask), data))
        evaluate = native_survival_evaluator(model, loss, X, time, event, synthetic_events, SCALE, key)
        return np.asarray(jax.jit(evaluate)(jnp.asarray(tables), jnp.asarray(mask)))

    losses = run(X, time, event, mask)
    assert np.all(np.isfinite(losses)) and np.all(losses[:, mask] <= loss.upper_bound)
    if model_name == "log_feature":
        assert np.all(losses[:, mask] < loss.upper_bound)  # none at the floor: the bound is the outlier's alone
    np.testing.assert_array_equal(losses[:, ~mask], 0.0)                # unsampled: 0, whatever they are
    for sampled in (True, False):
        mask_prime = np.append(mask, sampled)
        losses_prime = run(X_prime, time_prime, event_prime, mask_prime)
        if model_name == "log_feature":  # its outlier is non-finite there: charged the bound exactly
            _assert_neighbours_isolated(losses, losses_prime, mask, mask_prime, loss.upper_bound,
                                        outlier_sampled=sampled)
            continue
        assert np.array_equal(losses, losses_prime[:, :-1])  # every other record: bit for bit
        own = losses_prime[:, -1]
        assert np.all((own >= 0) & (own <= np.float32(loss.upper_bound))) if sampled else np.all(own == 0)
        moved = np.linalg.norm(_clipped_sum(losses_prime, mask_prime) - _clipped_sum(losses, mask))
        assert moved <= CLIP * (1 + 1e-6)


# --------------------------------------------------------------------------- the private search's scores


def test_record_scores_charge_a_nonfinite_row_to_that_record_alone():
    y = np.array([0, 1, 1])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    clean = classification_record_scores(proba, y)
    broken = proba.copy()
    broken[1] = [np.nan, 0.5]
    got = classification_record_scores(broken, y)
    assert got[1] == 0.0 and np.array_equal(got[[0, 2]], clean[[0, 2]])
    time, event, times = np.array([5.0, 50.0, 500.0]), np.array([1, 0, 1]), np.array([10.0, 100.0])
    survival = np.array([[0.9, 0.5], [0.8, 0.6], [0.7, 0.2]])
    clean = survival_record_scores(survival, time, event, times)
    broken = survival.copy()
    broken[2, 1] = np.inf
    got = survival_record_scores(broken, time, event, times)
    assert got[2] == 0.0 and np.array_equal(got[:2], clean[:2])


def test_fit_predict_proba_isolates_an_unpredictable_test_record():
    X, y, synthetic, labels, _, _ = _classification_problem(seed=4)
    model = RadiusNeighborsClassifier(radius=0.6)
    proba = fit_predict_proba(model, synthetic, labels, X, 2)
    proba_prime = fit_predict_proba(model, synthetic, labels, np.vstack([X, OUTLIER]), 2)
    assert np.array_equal(proba, proba_prime[:-1])
    np.testing.assert_array_equal(proba_prime[-1], [0.5, 0.5])         # chance, for the outlier alone


def _classification_schema() -> Schema:
    return Schema(name="toy", task="classification",
                  columns=tuple(NumericColumn(f"x{j}", -1.0, 1.0) for j in range(3)) + (CategoricalColumn("y", (0, 1)),),
                  target="y", source="test: public bounds")


def test_search_classification_score_moves_by_the_outliers_term_only():
    X, y, synthetic, labels, _, _ = _classification_problem(seed=5)
    schema = _classification_schema()
    frame = lambda X, y: pd.DataFrame({**{f"x{j}": X[:, j] for j in range(3)}, "y": y})  # noqa: E731
    condenser = SimpleNamespace(schema_=schema, synthetic_=frame(synthetic, labels), model="unused")
    search = PrivateSearch(scoring_model=RadiusNeighborsClassifier(radius=0.6))
    task, scorer = get_task("classification"), search._scorer(condenser, "classification", 2)
    score = task.score(scorer, condenser, frame(X, y), {"target": "y"}, None)
    score_prime = task.score(search._scorer(condenser, "classification", 2), condenser,
                             frame(np.vstack([X, OUTLIER]), np.append(y, 1)), {"target": "y"}, None)
    assert score > 0.6 * len(y)                                        # the real records were predicted
    assert score_prime - score == pytest.approx(0.75, abs=1e-9)        # the outlier's chance term, 1 - B/2


def _survival_schema() -> Schema:
    return Schema(name="toy", task="survival", columns=tuple(NumericColumn(f"x{j}", -1.0, 1.0) for j in range(3)),
                  time=NumericColumn("time", 1.0, 3650.0), event="event", source="test: public bounds")


@pytest.mark.parametrize("nan", [False, True])
def test_search_survival_score_moves_by_the_outliers_term_only(nan):
    X, time, event, synthetic_events, tables, _ = _survival_problem(seed=6)
    table = tables[0].astype(np.float64)
    schema = _survival_schema()

    def frame(X, time, event):
        return pd.DataFrame({**{f"x{j}": X[:, j] for j in range(3)}, "time": time, "event": event})

    condenser = SimpleNamespace(schema_=schema, model="unused",
                                synthetic_=frame(table[:, :3], SCALE.decode(table[:, 3]), synthetic_events))
    search = PrivateSearch(scoring_model=_PickySurvival(nan))
    times = np.array([100.0, 1000.0])
    task, roles = get_task("survival"), {"time": "time", "event": "event"}
    score = task.score(search._scorer(condenser, "survival", 2), condenser, frame(X, time, event), roles, times)
    score_prime = task.score(search._scorer(condenser, "survival", 2), condenser,
                             frame(np.vstack([X, OUTLIER]), np.append(time, 2000.0), np.append(event, 1)), roles, times)
    # The outlier, alive at both times, gets the coin flip alone: 1 - 0.5^2 at each.
    assert score_prime - score == pytest.approx(0.75, abs=1e-9)
    coin_flip_everyone = survival_record_scores(np.full((len(time), 2), 0.5), time, event, times).sum()
    assert abs(score - coin_flip_everyone) > 1.0                       # the others keep their own predictions
