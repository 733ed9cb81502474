"""The scikit-learn-compatible front door: ``Condenser(...).fit(X, y)``.

``fit`` reads as the privacy analysis runs: **task** (:mod:`zodc.tasks`: the frame, the schema —
public, or estimated with DP from ``preprocessing_share`` —, its public statistics and the DP record
count ``n_hat``) → **budget** (:mod:`zodc.budget`: the ledger; the steps calibrated so that
*everything* composed meets ``(epsilon, delta)``) → **start** (:mod:`zodc.start`) → **core**
(:mod:`zodc.condense`: clipped, noised zero-order steps on a native kernel or a host model) →
**release** (decoded to the original columns: post-processing). The neighbouring relation is add or
remove one record, so ``n`` is private: every size-dependent decision uses ``n_hat``. Seeds are
secrets (never stored); all noise is exact (:mod:`zodc.privacy.noise`). Why each default won:
``docs/ablation.md``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.base import BaseEstimator

from zodc._params import InstanceOf, Interval, Options, validate_params
from zodc.budget import Budget, SharedBudget
from zodc.condense import (StepParams, Subspace, adam, freeze_last_column, noise_calibrated_rate, run, run_ask_tell,
                           run_batch, sgd, stack_params, subspace_basis, subspace_tables)
from zodc.condense import StepInfo, ZeroOrderCondenser, pad_records
from zodc.config import RunConfig
from zodc.data.schema import Schema
from zodc.errors import ConfigError
from zodc.models.host import resolve_n_jobs
from zodc.models.presets import get_preset
from zodc.models.protocol import Model, accepts_weights, as_model, model_task, resolve_backend
from zodc.models.soft_labels import weight_column
from zodc.checkpoint import EVERY as CHECKPOINT_EVERY, Checkpoint, fingerprint
from zodc.privacy.keys import FreshEntropy, RunKeys, resolve_seed
from zodc.sharding import Sharded, device_mesh
from zodc.privacy.noise import GRID_BITS, rounded_gaussian
from zodc.progress import Progress
from zodc.runtime import shape_bucket
from zodc import start as start_module
from zodc.start import DPMeans, NoiseStart
from zodc.tasks import infer_task
from zodc.tasks.survival import synthetic_event_count  # noqa: F401 - public helper, kept importable here

_unit = Interval(float, 0, 1, closed="neither")
_positive = Interval(float, 0, None, closed="neither")
_count = Interval(int, 1, None)
# Retired research options (they lost their ablations): kept for one release with a FutureWarning.
_DEPRECATED = {"subspace": "round 17", "soft_label_steps": "rounds 22-23", "init_centre": "rounds 24-26",
               "init_share": "use init=DPMeans(share=...)", "init_scale": "use init=DPMeans(scale=...) or NoiseStart",
               "init_clip": "use init=DPMeans(clip=...)"}


# The loop's units and steps (rounds 28-29, docs/ablation.md). Research settings, not options: the
# ablation scripts set them (benchmarks.ablation's "@module.NAME" keys). In the data's units
# (zodc.start.SPREAD_SHARE > 0: lost, round 28) ``smoothing``, the start's spread, the step size and a
# trust region are multiples of each column's DP spread; in the bounds' units (the default) the encoded [-1, 1].
TRUST_RADIUS = 1.0     # data units: each cell stays within this many column spreads of its start
STEP_RULE = "adam"     # "adam", or "sgd": plain steps sized from the public noise (noise_calibrated_rate)
NOISE_WALK = 0.5       # "sgd": the random walk pure noise would make over all steps, in column spreads
SHRINK = False         # scale each update by the signal share of the noisy differences (condense.signal_fraction)
WEIGHTED_CLIP = True   # clip weighted records on the unweighted scale (zodc.condense.StepParams.clip_shares; round 29)


def _float_or_none(value):
    return None if value is None else float(value)


def _share_or_auto(value):
    return "auto" if isinstance(value, str) and value == "auto" else float(value)


def _int_or_none(value):
    return None if value is None else int(value)


class Condenser(BaseEstimator):
    """Learns a small differentially private synthetic table for a classical classifier or survival model.

    Private zero-order dataset condensation (after arXiv:2603.09356): the synthetic rows are
    optimised so that ``model`` trained on them scores well on the real records, with gradients
    estimated from fits on randomly perturbed copies, clipped per record and noised.

    Args:
      model: a preset — ``"tree"``, ``"forest"``, ``"boosting"``, ``"logistic"``; survival ``"cox"``,
        ``"survival_forest"`` —, a :class:`~zodc.models.protocol.Model`, or an estimator (host).
      epsilon, delta: the target guarantee of the whole release (``epsilon=inf``: non-private).
      rows_per_class: classification table size per class (default 10); rows: survival (default 50).
      steps, num_directions, smoothing: zero-order steps, directions ``q`` per step, radius ``mu``.
      learning_rate: Adam's step (``None``: 0.05 classification, 0.02 with three classes or more, 0.02 survival); optimizer: any
        optax transformation instead.
      l2_norm_clip, batch_size: per-record clip ``C``; expected Poisson batch (``p = B / n_hat``).
      loss: ``"balanced_linear"`` (default), ``"cross_entropy"``, ``"brier"``; survival
        ``"discrete_nll"`` (default) or ``"brier"`` (no IPCW weights).
      num_time_bins, time_grid, time_init: survival's public loss grid and the noise start's times.
      class_weight: ``"balanced"`` (from public or DP proportions) or ``None``.
      scheme, directions: ``"central"``/``"forward"`` differences; ``"rademacher"`` (random signs,
        the default), ``"gaussian"`` or ``"orthogonal"`` directions.
      average_tail: release the average of the last share of iterates (post-processing).
      trust_radius: each encoded cell stays within this distance of its start (a projection after
        every step: pure noise cannot carry the table away); ``"auto"``: the task's (0.5
        classification, none survival; round 29); ``None``: no trust region.
      select_features, selection_share: learn only this many encoded columns, chosen by the
        exponential mechanism from ``selection_share`` of epsilon (classification).
      soft_labels, soft_label_start: learn a class (survival: event-status) weight per row;
        ``"auto"``: for boosting, and for survival where the start is noisy.
      init: ``"auto"``/``"dp_means"`` (:class:`~zodc.start.DPMeans`), ``"noise"``
        (:class:`~zodc.start.NoiseStart`), or one of those objects with its settings.
      schema: a :class:`~zodc.data.Schema` or a path (public); ``None``: estimated with DP.
      preprocessing_share: the DP schema's (or, with a public schema, the DP record count's) share of
        the budget; ``"auto"``: without a schema, 2 % per column within 10-50 %
        (:func:`zodc.data.dp_schema.auto_share`), with one 10 %.
      on_out_of_bounds: ``"clip"`` or ``"raise"`` (a check before a release, not for a release).
      backend: ``"auto"``, ``"native"`` or ``"host"``; n_jobs: host worker processes.
      devices: a native model's devices: ``None`` every device JAX sees (all processes' after
        ``jax.distributed.initialize``), or the first this many. The perturbed tables are split
        over them and the records too (:mod:`zodc.sharding`); the release is the same on any count.
      checkpoint: a directory: the run saves its state there every few steps and, when it finds a
        checkpoint of the same data and settings, resumes from it (:mod:`zodc.checkpoint`: the same
        release as an uninterrupted run; the file holds secrets and is deleted at the end).
      random_state: ``None`` (what a release should use: OS entropy) or a **secret** int seed.
      verbose: 0 silent, 1 progress bar on stderr.
      subspace, soft_label_steps, init_share, init_scale, init_clip, init_centre: deprecated.

    Attributes:
      synthetic_: the released table (original columns, units and levels).
      config_: the :class:`~zodc.config.RunConfig` that ran; task_, schema_, ledger_, backend_.
      epsilon_, delta_: the guarantee (``epsilon_ <= epsilon``); record_count_: the DP ``n_hat``.
      noise_multiplier_, sampling_probability_, l2_norm_clip_: the step mechanism.
      steps_reference_: what holds the steps whatever the DP count gave (their rules: a reference
        Gaussian, a window of counts, or both) and the guarantee through it; ``None`` without privacy.
      table_: the table in encoded units; labels_ / events_, event_rate_, time_grid_: per task.
      soft_labels_, sample_weight_, init_, init_scale_, learning_rate_, loss_, num_rows_.
      history_: per-step diagnostics computed from private data: NOT covered by the guarantee.

    Examples:
      >>> from zodc import Condenser, load_dataset                        # doctest: +SKIP
      >>> data = load_dataset("breast_cancer")                            # doctest: +SKIP
      >>> X, y = data.frame.drop(columns="diagnosis"), data.frame["diagnosis"]  # doctest: +SKIP
      >>> Condenser(epsilon=1.0, schema=data.schema).fit(X, y).synthetic_  # doctest: +SKIP
    """

    _constraints: dict = {
        "epsilon": [Interval(float, 0, None, closed="neither", inf=True)], "delta": [_unit],
        "rows_per_class": [_count, None], "rows": [_count, None], "steps": [_count], "num_directions": [_count],
        "smoothing": [_positive], "learning_rate": [_positive, None],
        "optimizer": [InstanceOf((optax.GradientTransformation,), "an optax.GradientTransformation"), None],
        "l2_norm_clip": [Interval(float, 0, None, closed="neither", inf=True)], "batch_size": [_count],
        "loss": [InstanceOf((str,), "a loss name"), None], "num_time_bins": [_count],
        "time_grid": [Options("log", "linear")], "time_init": [Options("center", "uniform")],
        "class_weight": [Options("balanced"), None], "scheme": [Options("central", "forward")],
        "directions": [Options("gaussian", "orthogonal", "rademacher", "rows", "columns")],
        "average_tail": [Interval(float, 0, 1, closed="left")], "select_features": [_count, None],
        "trust_radius": [_positive, Options("auto"), None],
        "selection_share": [_unit], "soft_labels": [InstanceOf((bool, np.bool_), "True, False"), Options("auto")],
        "soft_label_start": [Interval(float, 0, 1, closed="right")],
        "init": [Options("auto", "noise", "dp_means"), InstanceOf((DPMeans, NoiseStart), "DPMeans(...), NoiseStart(...)")],
        "schema": [InstanceOf((Schema, str, os.PathLike), "a Schema or a path"), None],
        "preprocessing_share": [_unit, Options("auto")], "on_out_of_bounds": [Options("clip", "raise")],
        "backend": [Options("auto", "native", "host")], "verbose": [Options(0, 1, True, False)],
        "devices": [_count, None], "checkpoint": [InstanceOf((str, os.PathLike), "a directory path"), None],
        "subspace": [_count, None], "soft_label_steps": [Interval(int, 0, None), None],
        "init_share": [_unit, None], "init_scale": [_positive, None], "init_clip": [_positive, None],
        "init_centre": [Interval(float, 0, 1, closed="left"), None],
    }

    def __init__(self, model="tree", *, epsilon=1.0, delta=1e-5, rows_per_class=None, rows=None, steps=300,
                 num_directions=16, smoothing=0.2, learning_rate=None, optimizer=None, l2_norm_clip=1.0,
                 batch_size=256, loss=None, num_time_bins=10, time_grid="log", time_init="center",
                 class_weight="balanced", scheme="central", directions="rademacher", average_tail=0.0,
                 trust_radius="auto", select_features=None, selection_share=0.1, soft_labels="auto",
                 soft_label_start=0.9, init="auto", schema=None, preprocessing_share="auto", on_out_of_bounds="clip",
                 backend="auto", n_jobs=1, devices=None, checkpoint=None,
                 random_state=None, verbose=0, subspace=None, soft_label_steps=None, init_share=None,
                 init_scale=None, init_clip=None, init_centre=None):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.input_tags.string = True     # text columns are categorical levels
        tags.input_tags.allow_nan = True  # a missing cell is the schema's missingness, not an error
        return tags

    # ------------------------------------------------------------------ configuration
    def _given_schema(self) -> Schema | None:
        if self.schema is None:
            return None
        return self.schema if isinstance(self.schema, Schema) else Schema.from_json(self.schema)

    def _configure(self, task) -> RunConfig:
        """Checks every parameter (declared constraints, then the task's), resolves ``"auto"`` and
        ``None`` into what runs. Public configuration only: no data is read."""
        params = self.get_params(deep=False)
        validate_params(params, self._constraints)
        for name, why in _DEPRECATED.items():
            if params[name] is not None:
                warnings.warn(f"`{name}` is deprecated and will be removed in the next release ({why}).",
                              FutureWarning, stacklevel=4)
        if self.directions in ("rows", "columns"):
            warnings.warn(f"`directions={self.directions!r}` is deprecated and will be removed in the next release "
                          "(round 16; zodc.zero_order_condenser keeps it for ablations).", FutureWarning, stacklevel=4)
        if self.soft_label_steps is not None and self.subspace is not None:
            raise ConfigError("`soft_label_steps` cannot be combined with `subspace`: the learned coordinates are "
                              "then not the table's weight column.")
        resolve_n_jobs(self.n_jobs)
        model = get_preset(self.model, task=task.name) if isinstance(self.model, str) else as_model(self.model)
        if model.task != task.name:
            raise ConfigError(f"`model` {type(self.model).__name__} is a {model.task} model but the data are "
                              f"{task.name}.")
        backend = resolve_backend(model, self.backend)
        own = task.settings(params)
        if backend == "host" or own["soft_labels"] is True:
            model.host(2)  # a missing optional dependency is named now, before any work
        if own["soft_labels"] is True and not accepts_weights(model, 2):
            raise ConfigError(f"`soft_labels` needs a model whose fit accepts `sample_weight`; "
                              f"{getattr(model, 'name', type(model).__name__)!r}'s does not.")
        init = self._start()
        data_units = isinstance(init, DPMeans) and start_module.SPREAD_SHARE > 0 and self.subspace is None
        units = "data" if data_units else "bounds"
        data = units == "data"
        trust = (TRUST_RADIUS if data else task.trust_radius if self.trust_radius == "auto"
                 else _float_or_none(self.trust_radius))
        return RunConfig(
            task=task.name, model=model, backend=backend, epsilon=float(self.epsilon), delta=float(self.delta),
            rows=int(own["rows"]), steps=int(self.steps), num_directions=int(self.num_directions),
            smoothing=float(self.smoothing),
            learning_rate=None if self.optimizer is not None else float(
                (task.learning_rate_data if data else task.learning_rate) if self.learning_rate is None
                else self.learning_rate),
            l2_norm_clip=float(self.l2_norm_clip), batch_size=int(self.batch_size), loss=own["loss"],
            class_weight=self.class_weight, scheme=self.scheme, directions=self.directions,
            average_tail=float(self.average_tail), select_features=_int_or_none(self.select_features),
            selection_share=float(self.selection_share), soft_labels=own["soft_labels"],
            soft_label_start=float(self.soft_label_start), init=init,
            task_scale=task.start_scale_data if data else task.start_scale, units=units, trust_radius=trust,
            step_rule=STEP_RULE if self.optimizer is None else "custom",
            preprocessing_share=_share_or_auto(self.preprocessing_share), on_out_of_bounds=self.on_out_of_bounds,
            n_jobs=self.n_jobs, verbose=int(self.verbose), num_time_bins=int(self.num_time_bins),
            time_grid=self.time_grid, time_init=self.time_init, subspace=_int_or_none(self.subspace),
            soft_label_steps=_int_or_none(self.soft_label_steps))

    def _start(self) -> DPMeans | NoiseStart:
        """``init`` as an object, the deprecated flat ``init_*`` names folded in."""
        init = self.init
        if isinstance(init, str):
            init = NoiseStart() if init == "noise" else DPMeans()
        flat = {"share": self.init_share, "scale": self.init_scale, "clip": self.init_clip, "centre": self.init_centre}
        if isinstance(init, NoiseStart):
            flat = {"scale": self.init_scale}
        return dataclasses.replace(init, **{key: value for key, value in flat.items() if value is not None})

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, duration_col=None, event_col=None, budget: SharedBudget | None = None) -> "Condenser":
        """Condenses the private table into ``synthetic_``.

        Classification: ``fit(X, y)``. Survival: ``fit(frame, duration_col=..., event_col=...)``
        (lifelines style; may be omitted when the schema names them) or ``fit(X, y)`` with a
        structured ``(event, time)`` ``y`` (scikit-survival's ``Surv.from_arrays``).

        Args:
          X, y: features (a DataFrame, or an array: columns ``x0..``) and target.
          duration_col, event_col: survival columns of ``X``; the event is 1 / 0, ``True`` / ``False``,
            or a vital status word (``"dead"`` / ``"alive"``, :data:`zodc.data.io.EVENT_WORDS`),
            each cell read alone; map other codings (R's 1 = censored / 2 = event) to 1 / 0 first.
          budget: a :class:`~zodc.budget.SharedBudget` when this fit is part of a larger release
            (a private search); ``None``: this fit's own ``(epsilon, delta)``.

        Raises:
          ConfigError: a hyperparameter out of range (named), or a model for the other task.
          DataError: unusable data (named column and problem).
          PrivacyBudgetError: the target (epsilon, delta) cannot be met.
        """
        prepared = self._prepare(X, y, duration_col=duration_col, event_col=event_col, budget=budget)
        return self._finish(prepared, *self._steps(prepared))

    def _prepare(self, X, y=None, *, duration_col=None, event_col=None, budget: SharedBudget | None = None) -> "_Prepared":
        """The fit up to its steps: the task, every mechanism before the steps, the steps' calibration and
        their exact noise (all in the ledger), the start, the evaluator and the core condenser. The loop
        has not run (:meth:`_steps`, or :func:`zodc.condense.run_batch` for a private search's
        candidates), nothing is released (:meth:`_finish`)."""
        schema = self._given_schema()
        task = infer_task(y, duration_col, event_col, schema)
        if y is None and task.name == "classification":
            task.frame(X, y, {}, schema)  # raises: names what is missing for either task
        config = self._configure(task)
        frame, roles = task.frame(X, y, {"duration_col": duration_col, "event_col": event_col}, schema)
        checkpoint = self._checkpoint(frame, roles, config, budget)
        # The seed is a secret: it is not kept (only inside an owner-only checkpoint, deleted at the end).
        keys = RunKeys(resolve_seed(self.random_state) if checkpoint is None else checkpoint.seed)
        spend = Budget(config.epsilon, config.delta, budget)
        problem = task.prepare(frame, roles, config, keys, spend, schema)
        config = dataclasses.replace(config, soft_labels=task.soft_events(problem, config, spend))
        if self.learning_rate is None and self.optimizer is None:  # the task's default, once its classes are known
            config = dataclasses.replace(config, learning_rate=task.step_size(problem, config))
        start = task.start(problem, config, keys, spend)
        if config.soft_labels:  # the learned own-class / own-status weight column, at a public constant
            column = jnp.full((start.shape[0], 1), weight_column(config.soft_label_start), start.dtype)
            start = jnp.concatenate([start, column], axis=1)
        steps = spend.calibrate(steps=config.steps, num_directions=config.num_directions,
                                batch_size=config.batch_size, record_count=problem.record_count,
                                l2_norm_clip=config.l2_norm_clip)
        evaluate_fn, data, host = task.evaluator(problem, config, keys.jax_keys("model")[0], config.n_jobs)
        loop = self._loop(config, evaluate_fn, data, host, start, problem, steps, keys, spend, checkpoint)
        return _Prepared(task=task, config=config, problem=problem, keys=keys, spend=spend, steps=steps,
                         checkpoint=checkpoint, **loop)

    def _finish(self, prepared: "_Prepared", state, infos) -> "Condenser":
        """The release from the loop's final state: decoded to the original columns (post-processing)
        and the fitted attributes; a checkpoint's secrets removed."""
        task, config, problem, spend, steps = (prepared.task, prepared.config, prepared.problem, prepared.spend,
                                               prepared.steps)
        infos = StepInfo(*(jnp.concatenate(parts) for parts in zip(*prepared.earlier, infos)))
        learned = state.average if prepared.decode is None else prepared.decode(state.average)
        learned = np.asarray(learned, dtype=np.float64)
        released, attributes = task.release(problem, learned, prepared.keys, config)
        for name, value in attributes.items():
            setattr(self, name, value)
        self.synthetic_, self.config_, self.task_, self.schema_ = released, config, task.name, problem.schema
        self.ledger_, self.delta_, self.record_count_ = spend.ledger, config.delta, float(problem.record_count)
        self.epsilon_ = spend.spent()
        self.steps_reference_ = None if spend.reference is None else {
            **spend.reference, "epsilon": spend.reference_epsilon()}
        self.noise_multiplier_ = steps.noise_multiplier
        self.sampling_probability_, self.l2_norm_clip_ = steps.sampling_probability, steps.l2_norm_clip
        self.backend_, self.soft_labels_, self.loss_ = config.backend, config.soft_labels, config.loss
        self.init_ = "dp_means" if isinstance(config.init, DPMeans) else "noise"
        self.init_scale_ = config.task_scale if config.init.scale is None else config.init.scale
        self.learning_rate_, self.num_rows_ = config.learning_rate, problem.num_rows
        self.n_features_in_ = len(problem.schema.feature_names)
        self.feature_names_in_ = np.asarray(problem.schema.feature_names, dtype=object)
        self.history_ = {name: np.asarray(value) for name, value in infos._asdict().items()}
        if prepared.checkpoint is not None:  # finished: the checkpoint's secrets go
            prepared.checkpoint.remove()
        return self

    def _checkpoint(self, frame, roles, config: RunConfig, budget) -> Checkpoint | None:
        """The run's :class:`~zodc.checkpoint.Checkpoint`: loaded (same data and settings, else refused)
        or started with a fresh secret seed; ``None`` without ``checkpoint``."""
        if self.checkpoint is None:
            return None
        if budget is not None:
            raise ConfigError("`checkpoint` is for one fit, not for the candidates of a private search.")
        # Which devices and workers run the steps does not change the release: a run may resume on others.
        settings = {key: value for key, value in config.to_dict().items() if key not in ("n_jobs", "verbose")}
        marks = fingerprint(frame, {"settings": settings, "roles": {k: str(v) for k, v in roles.items()},
                                    "schema": None if self.schema is None else str(self._given_schema().to_dict())})
        checkpoint = Checkpoint(self.checkpoint)
        if checkpoint.exists():
            checkpoint.load(marks)
            if self.random_state is not None and resolve_seed(self.random_state) != checkpoint.seed:
                raise ConfigError(f"the checkpoint in {self.checkpoint!r} was made with another seed; give the same "
                                  "`random_state` (or None) to resume, or remove it to start over.")
        else:
            checkpoint.start(resolve_seed(self.random_state), marks)
        return checkpoint

    def _loop(self, config: RunConfig, evaluate_fn, data, host, start, problem, steps, keys, spend,
              checkpoint=None) -> dict[str, Any]:
        """The core loop's pieces (:mod:`zodc.condense`): the condenser, its state and parameters, the
        data, the step noise drawn exactly on the host (and spent in the ledger), the progress line.

        ``subspace`` (deprecated) learns ``r`` coordinates of the offset from the start along a public
        random basis: the start is already in the ledger, the basis is data independent, the steps are
        the same accounted mechanism on a shorter vector."""
        num_records = problem.X.shape[0]
        average_from = None if config.average_tail == 0 else int(round(config.steps * (1 - config.average_tail)))
        decode, box = None, (-1.0, 1.0)
        if config.subspace is not None:
            size = int(start.shape[0] * start.shape[1])
            if config.subspace > size:
                raise ConfigError(f"`subspace` must be at most the learnable table's {size} cells "
                                  f"({start.shape[0]} rows x {start.shape[1]} columns). Got {config.subspace}.")
            anchor = jnp.asarray(start, jnp.float32)
            basis = subspace_basis(keys.jax_keys("subspace")[0], config.subspace, size)
            evaluate_fn, data, box = Subspace(evaluate_fn), (data, anchor, basis), (-math.inf, math.inf)
            start = jnp.zeros((1, config.subspace), jnp.float32)
            decode = lambda theta: subspace_tables(theta, anchor, basis)
        sigma = steps.noise_multiplier
        expected_batch = steps.sampling_probability * problem.record_count
        # The step size travels as data (StepParams.learning_rate, the same updates bit for bit): runs and a
        # search's candidates of other step sizes share one compiled step.
        rate = None
        if self.optimizer is not None:
            optimizer = self.optimizer
        elif config.step_rule == "sgd":
            optimizer, rate = sgd(1.0), noise_calibrated_rate(sigma, steps.l2_norm_clip, expected_batch,
                                                               config.smoothing, config.num_directions, config.scheme,
                                                               config.steps, NOISE_WALK, config.learning_rate)
        else:
            optimizer, rate = adam(1.0), config.learning_rate
        if config.soft_labels and config.soft_label_steps is not None and config.soft_label_steps < config.steps:
            optimizer = freeze_last_column(optimizer, config.soft_label_steps)
        block, padded = None, None
        if host is None and decode is None:  # (the deprecated subspace's basis could pass for per-record data)
            # Pad the records to a shape bucket: a run on a cohort of nearby size (another holdout, another
            # DP split) then reuses the compiled step from the persistent cache. Padding rows are never
            # sampled and the real rows' masks are unchanged (StepParams.record_count): the release is the
            # same (tests/test_record_blocks.py). The bucket depends on n, which changes only shapes.
            padded = padded_records(num_records)
            data = pad_records(data, num_records, padded)
            num_records, padded = padded, num_records
            num_tables = 2 * config.num_directions if config.scheme == "central" else config.num_directions + 1
            mesh = device_mesh(self.devices, num_tables=num_tables)
            if mesh.devices.size > 1:  # on one device the wrapper is the identity (tests/test_sharding.py)
                evaluate_fn = Sharded(evaluate_fn, mesh)
            # Score the Poisson sample in blocks once the cohort is larger than a block: a decision on the DP
            # count and public settings (one record cannot tip it); the sums are the same either way.
            block = record_block(steps.sampling_probability * problem.record_count)
            block = block if problem.record_count > block else None
        elif num_records == 0:  # no usable record: one placeholder row that the mask never samples
            data = pad_records(data, 0, 1)
            num_records, padded = 1, 0
        condenser = ZeroOrderCondenser(evaluate_fn, optimizer, num_records=num_records,
                                       num_directions=config.num_directions, scheme=config.scheme, lower=box[0],
                                       upper=box[1], average_from=average_from, directions=config.directions,
                                       shrink=SHRINK, record_block=block)
        shares = problem.extra.get("clip_shares") if WEIGHTED_CLIP else None
        if shares is not None and padded is not None:
            shares = np.concatenate([np.asarray(shares, np.float32), np.ones(num_records - padded, np.float32)])
        scale = None
        radius = None if config.trust_radius is None or decode is not None else jnp.full(
            (start.shape[1],), config.trust_radius, jnp.float32)
        if config.units == "data":  # the DP spread (in the ledger); a learned weight column keeps its own units
            scale = np.asarray(problem.extra["spread"], np.float32)
            scale = np.concatenate([scale, np.ones(start.shape[1] - scale.size, np.float32)])
            radius = None if config.trust_radius is None else jnp.asarray(config.trust_radius * scale)
            scale = jnp.asarray(scale)
        params = StepParams(smoothing=jnp.float32(config.smoothing), l2_norm_clip=jnp.float32(steps.l2_norm_clip),
                            noise_multiplier=jnp.float32(sigma),
                            sampling_probability=jnp.float32(steps.sampling_probability),
                            expected_batch_size=jnp.float32(expected_batch), scale=scale, radius=radius,
                            clip_shares=None if shares is None else jnp.asarray(shares),
                            record_count=None if padded is None else jnp.int32(padded),
                            learning_rate=None if rate is None else jnp.float32(rate))
        noise = rounded_gaussian(keys.generator("step_noise"), sigma * 2.0**GRID_BITS,
                                 (config.steps, config.num_directions)).astype(np.int32)
        spend.draw(sigma * 2.0**GRID_BITS, config.steps * config.num_directions)
        spend.account_sampling()
        progress = Progress(config.steps, spend.epsilon_after_fn(), bool(config.verbose))
        state = condenser.init(keys.jax_keys("steps"), start)
        done, earlier = 0, []
        if checkpoint is not None and checkpoint.state is not None:  # resume: the saved state, the same noise from there
            state, done = checkpoint.state, checkpoint.step
            earlier = [StepInfo(**{name: jnp.asarray(value) for name, value in checkpoint.infos.items()})]
        return {"condenser": condenser, "state": state, "params": params, "data": data, "noise": noise,
                "host": host, "decode": decode, "done": done, "earlier": earlier, "progress": progress}

    @staticmethod
    def _steps(prepared: "_Prepared"):
        """Runs a prepared fit's steps on its own: the final state and the per-step infos."""
        condenser, state, params, data, host = (prepared.condenser, prepared.state, prepared.params, prepared.data,
                                                prepared.host)
        done, noise, progress, checkpoint = prepared.done, prepared.noise, prepared.progress, prepared.checkpoint
        steps = prepared.config.steps
        on_chunk = progress if checkpoint is None else _Saving(checkpoint, progress, prepared.earlier)
        try:
            if host is None:  # a native evaluator is a value: its compiled steps are reused across fits (jit's cache)
                return run(condenser, state, params, steps - done, data=data, noise=noise[done:],
                           chunk_size=CHECKPOINT_EVERY, on_chunk=on_chunk, reuse=True)
            # host models: ask / tell compiled, the fits called directly (no callback: the same table, plain errors)
            return run_ask_tell(condenser, state, params, steps - done,
                                lambda tables, mask: condenser.evaluate_fn(tables, mask, data), noise=noise[done:],
                                on_chunk=on_chunk)
        finally:
            if host is not None:
                host.close()

    # ------------------------------------------------------------------ report
    def report(self) -> dict[str, Any]:
        """The privacy part of the release report (JSON-serialisable). ``epsilon`` is the tighter of
        valid bounds on the whole ledger: RDP (``epsilon_rdp``) and dp-accounting's PLD where it
        supports the ledger (``epsilon_pld``, at its finer default interval; the fit checked the
        coarser one its steps were calibrated on, ``epsilon_`` — the smaller of all is reported);
        ``accountant`` says which. The steps' sampling probability comes from a DP count, so they are
        held whatever the count (``steps_reference``: the rules, a reference Gaussian or a window of
        counts, :meth:`zodc.budget.Budget._hold_adaptive_steps`); ``epsilon`` is at least the bound
        through them, the one the adaptive argument proves."""
        ledger = self.ledger_.to_dict(self.delta_)
        private = math.isfinite(self.epsilon_)
        config = self.config_
        accountant = ((("PLD (dp-accounting's privacy-loss distributions)" if ledger["accountant"] == "PLD" else
                        "RDP (Poisson-subsampled Gaussian, Mironov et al. 2019), tight conversion")
                       + (f"; PLD not used: {ledger['pld_note']}" if ledger.get("pld_note") else ""))
                      if private else "non-private (epsilon = inf)")
        return {
            "epsilon": max(min(ledger["epsilon"], self.epsilon_), (getattr(self, "steps_reference_", None) or {})
                           .get("epsilon", 0.0)) if private else self.epsilon_,
            "steps_reference": getattr(self, "steps_reference_", None),
            "epsilon_rdp": ledger["epsilon_rdp"] if private else self.epsilon_,
            "epsilon_pld": ledger["epsilon_pld"] if private else None, "delta": self.delta_,
            "noise_multiplier": self.noise_multiplier_, "sampling_probability": self.sampling_probability_,
            "steps": config.steps, "l2_norm_clip": self.l2_norm_clip_, "num_directions": config.num_directions,
            "directions": config.directions, "subspace": config.subspace, "accountant": accountant,
            "noise": ("exact: integer sums on a grid plus rounded Gaussian noise from 256-bit uniforms, "
                      "post-processing of the Gaussian mechanism (zodc.privacy.noise)"),
            "randomness": ("fresh 128-bit OS entropy" if self.random_state is None or isinstance(
                self.random_state, FreshEntropy) else
                           "a seed the user gave: private only while it stays secret"),
            "neighbouring_relation": ("add or remove one record: the number of records n is private; the sampling "
                                      "probability comes from a DP count (ledger: schema or record_count)"),
            "public_assumptions": self.public_assumptions(),
            "ledger": ledger,
        }

    def public_assumptions(self, schema_given: bool | None = None) -> list[str]:
        """What the guarantee takes as public for this fit (the report's ``public_assumptions``).
        ``schema_given``: whether its schema was public (default: whether one was passed; a private
        search passes ``False`` when the schema it gave its candidates was estimated with DP)."""
        from zodc.tasks import get_task

        given = self.schema is not None if schema_given is None else schema_given
        return ["column names and their declared kinds (numeric, integer, categorical); undeclared kinds are decided "
                "with DP"] + get_task(self.task_).assumptions(self, given)


def padded_records(num_records: int) -> int:
    """The shape bucket of ``n`` records: the next power of two (at least 256).

    Could one record change this? It can move ``n`` across a power of two, and so the shapes of the
    compiled step — never the release: the padding rows are never sampled and the real rows' mask
    and losses are the unpadded ones (``tests/test_record_blocks.py``)."""
    return shape_bucket(num_records)


def record_block(expected_batch: float) -> int:
    """The block the sampled records are scored in (:class:`~zodc.condense.ZeroOrderCondenser`'s
    ``record_block``): the power of two at least twice the expected batch (at least 256), so a
    Poisson batch almost always fits one block. From public settings and the DP count: one record
    cannot decide it beyond what the count's noise allows, and the blocks change no release."""
    return shape_bucket(math.ceil(2.0 * float(expected_batch)))


@dataclasses.dataclass
class _Prepared:
    """A fit up to its steps (:meth:`Condenser._prepare`): every mechanism is in ``spend``'s ledger and
    the steps' exact noise is drawn; the loop has not run and nothing is released."""

    task: Any
    config: RunConfig
    problem: Any
    keys: RunKeys
    spend: Budget
    steps: Any
    checkpoint: Checkpoint | None
    condenser: ZeroOrderCondenser
    state: Any
    params: StepParams
    data: Any
    noise: np.ndarray
    host: Any
    decode: Any
    done: int
    earlier: list
    progress: Progress

    def batch_key(self) -> tuple | None:
        """What must be equal for fits to run as one batched program (:func:`zodc.condense.run_batch`):
        the core condenser (a value: evaluator, optimiser, shapes) and the shapes of the state,
        parameters, data and noise. ``None``: this fit runs alone (a host model, a checkpointed or
        resumed run, the deprecated subspace). Public settings and DP outputs only: the padded record
        count is ``n``'s shape bucket, which changes only how the runs are grouped, never a release."""
        if (self.host is not None or self.checkpoint is not None or self.decode is not None or self.done
                or isinstance(self.condenser.evaluate_fn, Sharded)):  # (one program already spans the devices)
            return None
        leaves, structure = jax.tree.flatten((self.state, self.params, self.data, self.noise))
        return self.condenser, structure, tuple((tuple(jnp.shape(leaf)), str(getattr(leaf, "dtype", type(leaf))))
                                                for leaf in leaves)


# At most this many fits run as one batched program (each carries its own copy of the records).
BATCH = 8


def fit_prepared(fits: list) -> None:
    """Runs the steps of prepared fits and finishes them: ``fits`` is a list of ``(condenser,
    prepared)`` from :meth:`Condenser._prepare`. Fits with equal :meth:`_Prepared.batch_key` run
    as one program (:func:`zodc.condense.run_batch`, ``BATCH`` at a time), each with its own
    state, parameters (noise multiplier, clip, step size...), noise and data (its DP class weights,
    its model key); the others alone. Each batched fit releases its separate fit's table to within
    float32 rounding (the masks and the integer sums are the same: ``tests/test_tuning.py``).

    Could one record change the grouping? Only through the shape bucket of ``n``, which is the same
    for every fit on the same records: the grouping depends on public settings and DP outputs."""
    groups: dict = {}
    for condenser, prepared in fits:
        key = prepared.batch_key()
        if key is None:
            condenser._finish(prepared, *condenser._steps(prepared))
        else:
            groups.setdefault(key, []).append((condenser, prepared))
    for members in groups.values():
        for first in range(0, len(members), BATCH):
            part = members[first:first + BATCH]
            if len(part) == 1:
                condenser, prepared = part[0]
                condenser._finish(prepared, *condenser._steps(prepared))
                continue
            runs = [prepared for _, prepared in part]
            states, infos = run_batch(runs[0].condenser, stack_params([p.state for p in runs]),
                                      stack_params([p.params for p in runs]), runs[0].config.steps,
                                      data=stack_params([p.data for p in runs]),
                                      noise=np.stack([p.noise for p in runs]), data_axis=0)
            for r, (condenser, prepared) in enumerate(part):
                condenser._finish(prepared, jax.tree.map(lambda leaf: leaf[r], states),
                                  StepInfo(*(field[r] for field in infos)))


class _Saving:
    """``on_chunk`` that also saves a checkpoint after each chunk (every ``CHECKPOINT_EVERY`` steps
    at most), with the per-step diagnostics of the steps so far."""

    def __init__(self, checkpoint: Checkpoint, progress, earlier: list):
        self.checkpoint, self.progress, self.parts = checkpoint, progress, list(earlier)
        self.last = checkpoint.step

    def __call__(self, state, info) -> None:
        self.progress(state, info)
        self.parts.append(info)
        step = int(state.step)
        if step - self.last >= CHECKPOINT_EVERY:
            joined = {name: np.concatenate([np.asarray(getattr(part, name)) for part in self.parts])
                      for name in StepInfo._fields}
            self.parts = [StepInfo(**{name: jnp.asarray(value) for name, value in joined.items()})]
            self.checkpoint.save(state, joined)
            self.last = step


__all__ = ["Condenser", "DPMeans", "Model", "NoiseStart", "model_task"]
