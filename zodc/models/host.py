"""Host models behind one batched callback.

A scikit-learn classifier (or lifelines fitter) cannot run inside a jitted program. zodc makes
*one* ``jax.pure_callback`` per step that receives the whole stack of perturbed tables and the
Poisson mask, fits the model on every table in a process pool, and returns the per-record losses.
The real records never travel per step: each worker receives them once, when the pool starts.

Why a process pool: on CPU, JAX runs callbacks one at a time, and scikit-learn's small fits are
dominated by Python overhead that threads do not parallelise (measured while planning: a
forkserver process pool did best, threads worse than a loop). ``forkserver`` rather than
``fork`` because forking a process that runs JAX's thread pools can deadlock.

On a cluster: under a joblib backend that is not one of joblib's own local ones (``dask``, after
``distributed.Client(...)``; ``ray``; any registered backend), the fits go through
``joblib.Parallel`` on that backend instead of the pool. With dask the real records are scattered
to every worker once per evaluator; with another backend they travel with every chunk.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

import jax
import jax.numpy as jnp
import joblib
import numpy as np
from joblib import parallel as joblib_parallel

from zodc.errors import ConfigError
from zodc.models import soft_labels

# Per-worker payload, set once by the pool initializer (or in-process for n_jobs=1).
_PAYLOAD: dict[str, Any] = {}


_START: dict[str, Any] = {}  # the pool's start-up barrier, set by the initializer


def _init_worker(payload: dict[str, Any], barrier: Any = None) -> None:
    # Workers fit tiny models: one BLAS/OpenMP thread each, or n_jobs workers oversubscribe the
    # cores. numpy is already loaded here, so environment variables would come too late.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _PAYLOAD.clear()
    _PAYLOAD.update(payload)
    _START["barrier"] = barrier


def _fit_score_tables(payload: dict[str, Any], tables: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``(k, b)`` bounded losses of the records ``indices`` for each table in ``tables``.

    Per table: ``fit_score_fn`` raising (or returning a misshapen array) charges every record the
    bound; a non-finite loss charges *that record alone* the bound.

    Could one record change this? Not another record's loss. ``fit_score_fn`` may raise only for
    what depends on the synthetic table alone (the fit: see :class:`HostEvaluator`), so charging
    every record there is data independent: the same on any neighbouring dataset. Everything a
    record can cause (a failed or non-finite prediction) reaches only its own entry.
    """
    fit_score_fn = payload["fit_score_fn"]
    upper_bound = payload["upper_bound"]
    out = np.empty((tables.shape[0], indices.size), dtype=np.float32)
    for row, table in enumerate(tables):
        try:
            losses = np.asarray(fit_score_fn(payload, table, indices), dtype=np.float64)
        except Exception:  # noqa: BLE001 - a failed fit (table only) is charged the loss's bound, by design
            out[row] = upper_bound
            continue
        if losses.shape != (indices.size,):  # a broken fit_score_fn, not a record: the bound for all
            out[row] = upper_bound
            continue
        # A non-finite loss is that record's failure: its bound, and no one else's.
        out[row] = np.where(np.isfinite(losses), np.clip(losses, 0.0, upper_bound), upper_bound)
    return out


def predict_rows(predict: Callable[[np.ndarray], Any], X: np.ndarray, row_shape: tuple[int, ...] = ()) -> np.ndarray:
    """Record-isolated predictions of a fitted model: ``(b, *row_shape)`` float64, NaN where a
    record could not be predicted.

    ``predict(X)`` is called once on the whole batch. If it raises, or returns anything but a
    ``(b, *row_shape)`` array, it is called again on each record alone; a record whose own call
    raises or misshapes gets a row of NaN. Non-finite values are passed through: the caller charges
    those records (:func:`_fit_score_tables` the loss's bound; the search and the utility chance).

    Could one record change this? Only its own row, provided ``predict`` is row-wise (a record's
    prediction depends on that record and the fitted model only, as scikit-learn's ``predict_proba``
    and the survival models' ``predict_survival`` are): a record that breaks the batch call sends
    every record to its own call, which predicts each the same row. A transductive model, whose
    prediction for one record depends on the others predicted with it, would couple records here
    and is not supported.
    """
    X = np.asarray(X)
    shape = (X.shape[0], *row_shape)
    try:
        batch = np.asarray(predict(X), dtype=np.float64)
        if batch.shape == shape:
            return batch
    except Exception:  # noqa: BLE001 - some record broke the batch: find it record by record
        pass
    out = np.full(shape, np.nan)
    for i in range(X.shape[0]):
        try:
            one = np.asarray(predict(X[i:i + 1]), dtype=np.float64)
        except Exception:  # noqa: BLE001 - this record cannot be predicted: NaN, charged to it alone
            continue
        if one.shape == (1, *row_shape):
            out[i] = one[0]
    return out


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# How long a starting pool waits for all its workers before it goes on with those it has.
_START_TIMEOUT_SECONDS = 600.0


def _ready(_: int) -> int:
    """A start-up task: waits until every worker holds one (the barrier), then returns its pid.

    ``ProcessPoolExecutor`` (forkserver) spawns a worker for a submitted task only while no worker
    is idle. Without the barrier, workers that started first finished these tasks while the later
    ones were still being spawned (each spawn sends the payload; above a pipe's 64 KiB it waits for
    the new process to read it), so the pool started with some of its workers and spawned one more
    in each later call, each taking seconds (importing scikit-learn): the host path's "slowdown at
    B >= 1,024" on the 16-core GPU machine, reproduced here with 8 and 16 workers.
    """
    barrier = _START.get("barrier")
    if barrier is not None:
        try:
            barrier.wait(_START_TIMEOUT_SECONDS)
        except threading.BrokenBarrierError:  # a worker that never started: go on with the others
            pass
    return os.getpid() if _PAYLOAD else 0


def _fit_score_chunk(tables: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Worker entry point: the payload arrived once, through the pool initializer."""
    return _fit_score_tables(_PAYLOAD, tables, indices)


# joblib's own backends: they run on this machine, where the pool above is the better choice. Each
# is one of them both when chosen and when joblib sets it itself (a Parallel's workers run nested
# calls under threading or sequential: scikit-learn's GridSearchCV(n_jobs=...) over a condenser).
_LOCAL_JOBLIB_BACKENDS = ("loky", "multiprocessing", "threading", "sequential")


def _cluster_backend() -> tuple[Any, int | None] | None:
    """The calling thread's active joblib backend and its ``n_jobs`` (``None`` where unset), or
    ``None`` where it is one of joblib's local backends (the default included)."""
    backend, n_jobs = joblib_parallel.get_active_backend()
    local = {joblib_parallel.BACKENDS[name] for name in _LOCAL_JOBLIB_BACKENDS if name in joblib_parallel.BACKENDS}
    # The exact class: a backend that extends a local one (and is a cluster's) is not local.
    return None if type(backend) in local else (backend, n_jobs)


def _dask_client(backend: Any) -> Any:
    """The ``distributed.Client`` behind joblib's dask backend, or ``None`` for any other backend."""
    distributed = sys.modules.get("distributed")  # a dask backend has imported it already
    client = getattr(backend, "client", None)
    return client if distributed is not None and isinstance(client, distributed.Client) else None


def resolve_n_jobs(n_jobs: int | None) -> int:
    """``None`` → 1; ``-1`` → all cores; otherwise a positive integer."""
    if n_jobs is None:
        return 1
    if n_jobs == -1:
        return os.cpu_count() or 1
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ConfigError(f"`n_jobs` must be a positive integer or -1. Got {n_jobs!r}.")
    return int(n_jobs)


class HostEvaluator:
    """Fits a host model on a stack of synthetic tables and scores masked real records.

    Args:
      fit_score_fn: module-level (picklable) ``fn(payload, table (m, d), indices (b,)) -> (b,)``
        that fits the model on one synthetic table and returns the bounded losses of the real
        records ``payload["X"][indices]``. It may raise only where the synthetic table alone is to
        blame (a failed fit): every record is then charged ``upper_bound``. A record it cannot
        score (a failed or non-finite prediction) must come back as NaN, never as an exception,
        so that only that record is charged ``upper_bound`` (:func:`predict_rows` does this).
      payload: everything ``fit_score_fn`` needs (real records, synthetic labels, estimator
        template, loss). Sent to each worker once.
      upper_bound: the loss's upper bound.
      num_records: ``n``.
      n_jobs: worker processes; 1 fits in this process. Unused on a cluster (below).

    The instance is a numpy function ``(tables (k, m, d), mask (n,)) -> (k, n)`` and
    :meth:`jax_fn` wraps it as a ``jax.pure_callback`` usable inside ``jit``. Use it as a context
    manager (or call :meth:`close`) to shut the pool down.

    On a cluster: where a joblib backend other than joblib's local ones is active — in the thread
    that calls the evaluator, or else in the one that built it (a :class:`~zodc.Condenser` builds
    it inside ``fit``) — every call splits the tables into as many chunks as the backend has
    workers and fits them through ``joblib.Parallel`` on it, e.g.::

        client = distributed.Client(...)
        with joblib.parallel_config(backend="dask"):
            Condenser(..., backend="host").fit(X, y)

    The losses are the same, bit for bit, as in this process: the same :func:`_fit_score_tables`
    on each table. With dask the payload is scattered to every worker once per evaluator (and
    again only if the cluster lost it); another backend sends it with every chunk. **The cluster's
    workers receive the real records** (``payload``): the cluster, its scheduler and the links
    between them must sit inside the data owner's trust boundary, like this machine.
    """

    def __init__(self, fit_score_fn: Callable, payload: dict[str, Any], *, upper_bound: float,
                 num_records: int, n_jobs: int | None = 1):
        self.payload = dict(payload, fit_score_fn=fit_score_fn, upper_bound=float(upper_bound))
        self.num_records = int(num_records)
        self.n_jobs = resolve_n_jobs(n_jobs)
        self._pool: ProcessPoolExecutor | None = None
        # The cluster backend active where the evaluator is built: a call from another thread (a
        # JAX callback thread) does not see a parallel_config entered in this one (it is per thread).
        self._cluster = _cluster_backend()
        self._scattered: tuple[Any, Any] | None = None  # (dask client, future of the payload)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            # Workers inherit these at start-up, before their numpy loads its BLAS.
            # JAX_PLATFORMS: workers fit host models only and must never claim an accelerator.
            worker_environment = {**{name: "1" for name in _THREAD_VARIABLES}, "JAX_PLATFORMS": "cpu"}
            saved = {name: os.environ.get(name) for name in worker_environment}
            os.environ.update(worker_environment)
            try:
                barrier = context.Barrier(self.n_jobs)
                self._pool = ProcessPoolExecutor(max_workers=self.n_jobs, mp_context=context,
                                                 initializer=_init_worker, initargs=(self.payload, barrier))
                # Start every worker now (imports, payload) rather than inside the first steps: the
                # barrier holds each start-up task until all n_jobs run at once (see _ready).
                self.worker_pids = frozenset(self._pool.map(_ready, range(self.n_jobs)))
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
        return self._pool

    def __call__(self, tables: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(k, n)`` losses: the sampled records' bounded losses, 0 for the unsampled ones.

        Could one record change this? Only its own column: unsampled records are never predicted
        or checked, and each sampled record's loss depends on that record and the table only
        (:func:`_fit_score_tables`, :func:`predict_rows`).
        """
        tables = np.asarray(tables, dtype=np.float64)
        mask = np.asarray(mask, dtype=bool)
        indices = np.flatnonzero(mask)
        losses = np.zeros((tables.shape[0], self.num_records), dtype=np.float32)
        if indices.size == 0:
            return losses
        cluster = _cluster_backend() or self._cluster
        if cluster is not None:
            chunk_losses = self._fit_on_cluster(*cluster, tables, indices)
        elif self.n_jobs == 1:
            chunk_losses = [_fit_score_tables(self.payload, tables, indices)]
        else:
            pool = self._ensure_pool()
            chunks = [chunk for chunk in np.array_split(tables, self.n_jobs) if chunk.shape[0]]
            chunk_losses = list(pool.map(_fit_score_chunk, chunks, [indices] * len(chunks)))
        losses[:, indices] = np.concatenate(chunk_losses, axis=0)
        return losses

    def _remote_payload(self, backend: Any) -> Any:
        """The payload as the cluster's tasks take it: with dask, a future of the copy scattered to
        every worker (once per evaluator and client; again only if the cluster lost it); with any
        other backend, the payload itself (sent with every chunk).

        Could one record change this? Nothing is computed here: the records are moved whole, to
        every worker or with every chunk, and where they go depends on the backend alone.
        """
        client = _dask_client(backend)
        if client is None:
            return self.payload
        if self._scattered is None or self._scattered[0] is not client or self._scattered[1].status != "finished":
            # In a list: a scattered dict would be scattered value by value. hash=False: a scatter
            # from inside a dask task (a fit run as a task) may otherwise be cancelled (dask/distributed#3703).
            [future] = client.scatter([self.payload], broadcast=True, hash=False)
            self._scattered = (client, future)
        return self._scattered[1]

    def _fit_on_cluster(self, backend: Any, n_jobs: int | None, tables: np.ndarray,
                        indices: np.ndarray) -> list[np.ndarray]:
        """The chunks' ``(k_c, b)`` losses, fitted through ``joblib.Parallel`` on ``backend``: one
        chunk per worker, in order.

        Could one record change this? Only its own column, as in this process: each chunk is
        :func:`_fit_score_tables` on the same tables and records, wherever it runs. The chunking
        depends on the cluster's size alone.
        """
        n_jobs = -1 if n_jobs is None else n_jobs  # unset: every worker the backend has
        workers = max(int(backend.effective_n_jobs(n_jobs)), 1)
        chunks = [chunk for chunk in np.array_split(tables, workers) if chunk.shape[0]]
        payload = self._remote_payload(backend)
        # batch_size=1: each chunk is already a worker's share; auto-batching would merge chunks.
        run = joblib.Parallel(backend=backend, n_jobs=n_jobs, batch_size=1)
        return run(joblib.delayed(_fit_score_tables)(payload, chunk, indices) for chunk in chunks)

    def evaluate(self, tables: Any, mask: Any, data: Any = None) -> np.ndarray:
        """The evaluator with the core's ``evaluate_fn`` signature, for use outside ``jit``
        (:func:`zodc.condense.run_ask_tell`): a plain call, so a failure is a plain Python error."""
        del data
        return self(np.asarray(tables), np.asarray(mask))

    def jax_fn(self) -> Callable[..., jax.Array]:
        """The evaluator as ``(tables, mask, data=None) -> losses`` callable from jitted code
        (``data`` is unused: the workers already hold the real records)."""

        def evaluate(tables: jax.Array, mask: jax.Array, data: Any = None) -> jax.Array:
            del data
            shape = jax.ShapeDtypeStruct((tables.shape[0], self.num_records), jnp.float32)
            # "sequential": vmapping a whole run (e.g. over seeds) calls the batched callback once per seed.
            return jax.pure_callback(self, shape, tables, mask, vmap_method="sequential")

        return evaluate

    def close(self) -> None:
        self._scattered = None  # the cluster forgets the scattered payload once no future holds it
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "HostEvaluator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def fit_score_classifier(payload: dict[str, Any], table: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Fits a clone of ``payload["estimator"]`` on ``(table, payload["synthetic_labels"])`` and
    returns ``payload["loss"]`` of each real record ``indices`` (NaN for a record whose prediction
    failed: :func:`_fit_score_tables` charges it the bound).

    With ``payload["soft_labels"]`` the table's last column is the learned own-class weight: the
    estimator is fitted on :func:`zodc.models.soft_labels.expand`'s weighted copies.

    The estimator is cloned per fit (no state leaks between tables). Classes absent from the
    fitted model get probability 0. Only a failed fit raises (it sees the synthetic table only);
    predictions go through :func:`predict_rows`, record by record if the batch fails.

    Could one record change this? Only its own loss: the fit does not see the real records, the
    predictions are isolated per record (:func:`predict_rows`), and the loss is per record.
    """
    from sklearn.base import clone

    estimator = clone(payload["estimator"])
    labels = payload["synthetic_labels"]
    if payload.get("soft_labels"):
        X, y, weight = soft_labels.expand(table, labels, payload["num_classes"])
        estimator.fit(X, y, sample_weight=weight)
    else:
        estimator.fit(table, labels)
    present = np.asarray(estimator.classes_, dtype=np.int64)
    proba_present = predict_rows(estimator.predict_proba, payload["X"][indices], (present.size,))
    num_classes = payload["num_classes"]
    proba = np.zeros((indices.size, num_classes), dtype=np.float64)
    proba[:, present] = proba_present
    return payload["loss"](proba, payload["y"][indices], xp=np)
