"""Host-model fits on a real Dask cluster through joblib's dask backend (issue 25, part 2).

One local cluster (two worker processes, one thread each) serves the whole file. The cluster path
must give the in-process losses bit for bit, send the real records to each worker once per
evaluator, and leave the release of a seeded ``Condenser`` unchanged.
"""

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

distributed = pytest.importorskip("distributed")

from zodc import Condenser  # noqa: E402
from zodc.data import load_dataset  # noqa: E402
from zodc.models.host import HostEvaluator, _cluster_backend, fit_score_classifier  # noqa: E402
from zodc.models.losses import ClassificationLoss  # noqa: E402

from tests.models.test_host import _problem as host_problem  # noqa: E402

# How many times this process has unpickled a _Witness: on a worker, how often the payload arrived.
_WITNESS_LOADS = [0]


def _witness_loaded():
    _WITNESS_LOADS[0] += 1
    return _Witness()


class _Witness:
    """Rides in the payload and counts, in each process, every time the payload is unpickled."""

    def __reduce__(self):
        return (_witness_loaded, ())


def _witness_loads():
    return _WITNESS_LOADS[0]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _problem(seed=0, k=7):
    return host_problem(seed=seed, k=k)  # the host tests' seeded problem, with 7 tables (uneven chunks)


def _evaluator(X, y, labels, loss, **extra):
    payload = {"estimator": DecisionTreeClassifier(max_depth=3, random_state=0), "X": X, "y": y,
               "synthetic_labels": labels, "num_classes": 2, "loss": loss, **extra}
    return HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=X.shape[0])


def test_only_a_non_local_joblib_backend_counts_as_a_cluster(client):
    assert _cluster_backend() is None  # joblib's default: the pool (or this process)
    for local in ("threading", "sequential", "loky"):
        with joblib.parallel_config(backend=local):
            assert _cluster_backend() is None
    with joblib.parallel_config(backend="dask"):
        backend, n_jobs = _cluster_backend()
        assert backend.client is client and n_jobs is None


def test_dask_losses_equal_in_process_and_the_records_reach_each_worker_once(client):
    X, y, labels, tables, mask = _problem()
    loss = ClassificationLoss("balanced_linear", class_weights=(1.5, 0.75))
    expected = _evaluator(X, y, labels, loss)(tables, mask)
    other_mask = np.roll(mask, 5)
    expected_other = _evaluator(X, y, labels, loss)(-tables, other_mask)
    before = client.run(_witness_loads)
    with _evaluator(X, y, labels, loss, witness=_Witness()) as evaluator:
        with joblib.parallel_config(backend="dask"):
            got = evaluator(tables, mask)
            got_other = evaluator(-tables, other_mask)
        assert _evaluator(X, y, labels, loss)._cluster is None  # built outside: the pool
    with joblib.parallel_config(backend="dask"):
        built_inside = _evaluator(X, y, labels, loss, witness=_Witness())
    with built_inside, distributed.get_task_stream(client) as stream:
        # Called where the backend is not active (as from a JAX callback thread): the backend
        # active where it was built still decides.
        got_again = built_inside(tables, mask)
    assert stream.data
    np.testing.assert_array_equal(got, expected)  # bit for bit
    np.testing.assert_array_equal(got_other, expected_other)
    np.testing.assert_array_equal(got_again, expected)
    assert got.dtype == np.float32 and got.shape == (tables.shape[0], X.shape[0])
    assert np.all(got[:, ~mask] == 0) and np.all(got_other[:, ~other_mask] == 0)  # unsampled: never scored
    assert np.any(got[:, mask] > 0)
    # Two evaluators, three calls, seven tables each over two workers: each evaluator's payload was
    # unpickled once per worker.
    after = client.run(_witness_loads)
    assert sorted(after) == sorted(before) and len(after) == 2
    assert all(after[worker] - before[worker] == 2 for worker in after)


def test_a_seeded_condenser_releases_the_same_table_on_the_cluster(client):
    data = load_dataset("breast_cancer")
    target = data.schema.target
    frame = data.frame.groupby(target, observed=True).head(40).reset_index(drop=True)  # few rows: fast fits
    X, y = frame.drop(columns=[target]), frame[target]
    params = dict(epsilon=1.0, steps=3, num_directions=4, rows_per_class=3, backend="host", schema=data.schema,
                  random_state=0)
    local = Condenser("tree", **params).fit(X, y)
    with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as stream:
        clustered = Condenser("tree", **params).fit(X, y)
    assert stream.data  # the fits ran on the cluster
    pd.testing.assert_frame_equal(clustered.synthetic_, local.synthetic_, check_exact=True)
    for name, value in local.history_.items():
        np.testing.assert_array_equal(clustered.history_[name], value)


def test_one_record_changes_no_other_records_losses_on_the_cluster(client):
    # D' = D plus one record (an extreme point of the rare class), every record sampled, the fits on
    # the cluster: the other records' losses are D's, bit for bit; the added one is within the bound.
    X, y, labels, tables, _ = _problem()
    loss = ClassificationLoss("balanced_linear", class_weights=(1.5, 0.75))
    X_more, y_more = np.vstack([X, np.full((1, X.shape[1]), 5.0)]), np.append(y, 1)
    with joblib.parallel_config(backend="dask"):
        with _evaluator(X, y, labels, loss) as base, _evaluator(X_more, y_more, labels, loss) as more:
            losses = base(tables, np.ones(X.shape[0], bool))
            losses_more = more(tables, np.ones(X.shape[0] + 1, bool))
    np.testing.assert_array_equal(losses_more[:, :-1], losses)
    assert np.all((losses_more[:, -1] >= 0) & (losses_more[:, -1] <= loss.upper_bound))
