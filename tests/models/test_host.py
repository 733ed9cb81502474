import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeClassifier

from zodc.errors import ConfigError
from zodc.models.host import HostEvaluator, fit_score_classifier, resolve_n_jobs
from zodc.models.losses import ClassificationLoss


class FailingClassifier(ClassifierMixin, BaseEstimator):
    """Fails whenever the first synthetic feature has a positive mean (a 'singular' fit)."""

    def fit(self, X, y):
        if X[:, 0].mean() > 0:
            raise np.linalg.LinAlgError("singular")
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.tile([0.25, 0.75], (X.shape[0], 1))


def _problem(seed=0, n=60, m=8, d=3, k=6):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    y = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    labels = np.repeat([0, 1], m // 2)
    tables = rng.uniform(-1, 1, size=(k, m, d))
    mask = rng.uniform(size=n) < 0.6
    return X, y, labels, tables, mask


def _payload(estimator, X, y, labels, loss):
    return {"estimator": estimator, "X": X, "y": y, "synthetic_labels": labels, "num_classes": 2, "loss": loss}


def _loop_reference(X, y, labels, tables, mask, loss):
    expected = np.zeros((tables.shape[0], X.shape[0]))
    for row, table in enumerate(tables):
        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(table, labels)
        expected[row, mask] = loss(model.predict_proba(X[mask]), y[mask])
    return expected


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_batched_callback_equals_plain_loop(n_jobs):
    X, y, labels, tables, mask = _problem()
    loss = ClassificationLoss("balanced_linear", class_weights=(1.5, 0.75))
    payload = _payload(DecisionTreeClassifier(max_depth=3, random_state=0), X, y, labels, loss)
    with HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=X.shape[0],
                       n_jobs=n_jobs) as evaluator:
        got = evaluator(tables, mask)
        jitted = jax.jit(evaluator.jax_fn())(jnp.asarray(tables, jnp.float32), jnp.asarray(mask))
    expected = _loop_reference(X, y, labels, tables, mask, loss)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # The device path carries float32 tables: same fits as a loop over the float32-rounded tables.
    expected32 = _loop_reference(X, y, labels, tables.astype(np.float32).astype(np.float64), mask, loss)
    np.testing.assert_allclose(np.asarray(jitted), expected32, atol=1e-6)
    assert np.all(got[:, ~mask] == 0)


def test_failed_fit_is_charged_the_upper_bound():
    X, y, labels, tables, mask = _problem(k=4)
    tables[0, :, 0] = 0.5   # fails
    tables[1, :, 0] = -0.5  # fits
    loss = ClassificationLoss("cross_entropy", probability_floor=0.01)
    payload = _payload(FailingClassifier(), X, y, labels, loss)
    got = HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=X.shape[0])(tables[:2], mask)
    np.testing.assert_allclose(got[0, mask], loss.upper_bound, rtol=1e-6)
    np.testing.assert_allclose(got[1, mask], loss(np.tile([0.25, 0.75], (mask.sum(), 1)), y[mask]), rtol=1e-6)
    assert np.all(np.isfinite(got))


def test_vmapped_callback_matches_per_seed_calls():
    X, y, labels, tables, mask = _problem(k=4)
    loss = ClassificationLoss()
    payload = _payload(DecisionTreeClassifier(max_depth=3, random_state=0), X, y, labels, loss)
    evaluator = HostEvaluator(fit_score_classifier, payload, upper_bound=1.0, num_records=X.shape[0])
    stacked = jnp.asarray(np.stack([tables, -tables]))
    masks = jnp.asarray(np.stack([mask, ~mask]))
    got = jax.vmap(evaluator.jax_fn())(stacked, masks)
    np.testing.assert_allclose(np.asarray(got[1]), evaluator(np.asarray(stacked[1]), np.asarray(masks[1])), atol=1e-6)


def test_n_jobs_validation():
    assert resolve_n_jobs(None) == 1 and resolve_n_jobs(3) == 3 and resolve_n_jobs(-1) >= 1
    with pytest.raises(ConfigError, match="`n_jobs`"):
        resolve_n_jobs(0)


def test_the_pool_starts_every_worker_before_the_first_step():
    # A payload above a pipe's 64 KiB made each spawn wait for its process to read it, so the first
    # workers finished the start-up tasks and the pool started with some of its workers, spawning
    # one more (seconds: imports) in each later call. The start-up barrier starts all of them.
    X, y, labels, tables, mask = _problem(n=4000, d=3)  # X alone is 96 KB
    loss = ClassificationLoss("balanced_linear")
    payload = _payload(DecisionTreeClassifier(max_depth=3, random_state=0), X, y, labels, loss)
    with HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=X.shape[0],
                       n_jobs=3) as evaluator:
        evaluator(tables, mask)
        assert len(evaluator.worker_pids) == 3 and 0 not in evaluator.worker_pids  # three workers, each with its payload
        assert {process.pid for process in evaluator._pool._processes.values()} == evaluator.worker_pids
