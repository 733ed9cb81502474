"""The scikit-learn-compatible front door: ``Condenser(...).fit(X, y)``.

``Condenser`` wires the pieces together in the order the privacy analysis needs:

1. **Schema** (column types, public bounds, categories): given by the user (public), or estimated
   with DP from a stated share of the budget (``preprocessing_share``), accounted in the ledger.
2. **Class proportions** (for the class-balanced loss): from the schema if public, otherwise from
   the DP schema estimate (post-processing of the same noisy histogram), or, when a schema without
   proportions is given, a separate DP count from the same share of the budget.
3. **Calibration**: the noise multiplier of the zero-order steps is the smallest that keeps the
   composition of *everything* (preprocessing + ``steps`` Poisson-subsampled Gaussian steps) at or
   below ``epsilon`` for ``delta``. The target is never exceeded: the ledger's total is checked
   after the run and the run refuses to start if it cannot be met.
4. **Initialisation**: ``N(0, 0.5^2)`` in the encoded [-1, 1] space, clipped to the box — data
   independent (DESIGN §4: DP class means did not beat it at epsilon = 1). Synthetic labels are
   ``rows_per_class`` of each class: a public design choice.
5. **Condensation**: :func:`zodc.condense.zero_order_condenser` with the native kernel or the host
   model behind a batched callback.
6. **Release**: the table decoded to the original columns, units and levels (post-processing).

Public by assumption (stated in the report): the number of records ``n`` (as in DP-SGD libraries),
the column names and their storage types (numeric, integer, text) — the table's *structure*, not
its values.
"""

from __future__ import annotations

import math
import sys
import time as _time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from sklearn.base import BaseEstimator

from zodc.condense import StepParams, run, zero_order_condenser
from zodc.data.dp_schema import estimate_class_proportions, estimate_schema
from zodc.data.schema import Schema
from zodc.data.transform import TableEncoder
from zodc.data.validation import check_raw_table, validate_table
from zodc.errors import ConfigError, DataError, PrivacyBudgetError
from zodc.models.host import HostEvaluator, fit_score_classifier, resolve_n_jobs
from zodc.models.losses import ClassificationLoss, balanced_class_weights
from zodc.models.native import native_classifier_data, native_classifier_evaluator
from zodc.models.presets import Preset, get_preset, resolve_backend
from zodc.privacy.accounting import additive_delta_of_event, rdp_of_event, rdp_to_epsilon
from zodc.privacy.calibration import calibrate_noise_multiplier
from zodc.privacy.events import (AdditiveDeltaEvent, ComposedEvent, GaussianEvent, PoissonSampledEvent,
                                 SelfComposedEvent)
from zodc.privacy.ledger import Ledger

# Share of delta given to thresholded category discovery when no schema is given.
_THRESHOLD_DELTA_SHARE = 0.1
_INIT_SCALE = 0.5


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"`{name}` must be an integer >= {minimum}. Got {value!r}.")
    return int(value)


def _check_positive_float(name: str, value: Any, *, allow_inf: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"`{name}` must be a number > 0. Got {value!r}.") from None
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        raise ConfigError(f"`{name}` must be > 0{' (inf allowed)' if allow_inf else ' and finite'}. Got {value}.")
    return value


def resolve_seed(random_state: Any) -> int:
    """``None`` → fresh entropy; int → itself; ``np.random.Generator`` / ``RandomState`` → a draw."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ConfigError(f"`random_state` must be >= 0. Got {random_state}.")
        return int(random_state) % (2**32)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**32))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**32, dtype=np.uint64))
    raise ConfigError(f"`random_state` must be None, an int or a numpy Generator. Got {random_state!r}.")


class _Progress:
    """A progress line on stderr: step, loss (on the private batch), epsilon spent.

    Redrawn in place at most every 0.2 s on a terminal; in a log (not a TTY) one line per 10 %.
    """

    def __init__(self, total: int, epsilon_fn, enabled: bool, stream=None):
        self.total, self.epsilon_fn, self.enabled = total, epsilon_fn, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = _time.perf_counter()
        self.next_fraction = 0.1

    def __call__(self, state, info) -> None:
        if not self.enabled:
            return
        step = int(state.step)
        now = _time.perf_counter()
        done = step >= self.total
        if self.interactive:
            if not done and now - self.last < 0.2:
                return
        elif not done and step / self.total < self.next_fraction:
            return
        else:
            self.next_fraction = (int(10 * step / self.total) + 1) / 10
        self.last = now
        width = 24
        filled = int(width * step / max(self.total, 1))
        line = (f"[{'#' * filled}{'.' * (width - filled)}] step {step}/{self.total} "
                f"loss {float(np.mean(np.asarray(info.loss))):.4f} eps {self.epsilon_fn(step):.3f} {now - self.start:5.1f}s")
        self.stream.write(("\r" + line + ("\n" if done else "")) if self.interactive else line + "\n")
        self.stream.flush()


class Condenser(BaseEstimator):
    """Learns a small differentially private synthetic table for a classical classifier.

    Private zero-order dataset condensation (DESIGN §1; after "Democratising Clinical AI through
    Dataset Condensation for Classical Clinical Models", arXiv:2603.09356): the synthetic rows are
    optimised so that ``model`` trained on them scores well on the real records, with gradients
    estimated from model fits on randomly perturbed copies, clipped per record and noised.

    Args:
      model: a preset name (``"tree"``, ``"forest"``, ``"boosting"``, ``"logistic"``) or an
        unfitted scikit-learn classifier with ``fit`` / ``predict_proba`` (cloned per fit; host only).
      epsilon: target epsilon of the *whole* release (preprocessing included); ``inf`` runs the
        non-private method (no clipping, no noise) for comparison.
      delta: target delta in (0, 1); choose ``delta << 1 / n``.
      rows_per_class: synthetic rows per class ``k`` (the table has ``k * K`` rows).
      steps: zero-order steps ``T``.
      num_directions: random directions per step ``q``.
      smoothing: perturbation radius ``mu`` in the encoded [-1, 1] units.
      learning_rate: Adam's step size (ignored when ``optimizer`` is given).
      optimizer: an optax transformation to use instead of Adam.
      l2_norm_clip: per-record clip ``C`` of the ``(q,)`` vector of loss differences.
      batch_size: expected Poisson batch size; the sampling probability is ``min(1, batch_size / n)``.
      loss: ``"balanced_linear"`` (default), ``"cross_entropy"`` or ``"brier"``.
      class_weight: ``"balanced"`` (weights ``1 / (K pi_c)`` from public or DP proportions) or ``None``.
      scheme: ``"central"`` or ``"forward"`` differences.
      average_tail: release the uniform average of the last ``average_tail`` share of the iterates
        (0: the last iterate). Post-processing of the private iterates: no privacy cost.
      schema: a :class:`zodc.data.Schema`, a path to a schema JSON, or ``None`` to estimate one
        with DP from ``preprocessing_share`` of the budget.
      preprocessing_share: share of ``epsilon`` given to DP preprocessing (schema, proportions)
        when something must be estimated; the rest goes to the steps.
      on_out_of_bounds: ``"clip"`` (warn and clip values outside the schema's bounds) or ``"raise"``.
      backend: ``"auto"`` (native kernel where one exists), ``"native"`` or ``"host"``.
      n_jobs: host worker processes (``-1``: all cores).
      random_state: seed of every random draw (``None``: fresh entropy).
      verbose: 0 silent, 1 progress bar on stderr.

    Attributes:
      synthetic_: the released table, a DataFrame in the original columns, units and levels.
      schema_: the schema used (public or DP-estimated).
      ledger_: :class:`zodc.privacy.Ledger` of every mechanism that touched the data.
      epsilon_, delta_: the guarantee of the release (``epsilon_ <= epsilon``).
      noise_multiplier_, sampling_probability_, l2_norm_clip_: the step mechanism.
      table_, labels_: the synthetic table in encoded units ``(m, d)`` and its labels ``(m,)``.
      history_: per-step diagnostics (``loss``, ``clipped_fraction``, ``batch_size``) — computed
        from private data, for the owner's eyes.
      backend_: the backend that ran; classes_: the target's levels; n_features_in_,
        feature_names_in_: as in scikit-learn.

    Examples:
      >>> from zodc import Condenser, load_dataset                        # doctest: +SKIP
      >>> data = load_dataset("breast_cancer")                            # doctest: +SKIP
      >>> X, y = data.frame.drop(columns="diagnosis"), data.frame["diagnosis"]  # doctest: +SKIP
      >>> Condenser(epsilon=1.0, schema=data.schema, random_state=0).fit(X, y).synthetic_  # doctest: +SKIP
    """

    def __init__(self, model="tree", *, epsilon=1.0, delta=1e-5, rows_per_class=10, steps=300,
                 num_directions=16, smoothing=0.2, learning_rate=0.05, optimizer=None, l2_norm_clip=1.0,
                 batch_size=256, loss="balanced_linear", class_weight="balanced", scheme="central",
                 average_tail=0.0, schema=None, preprocessing_share=0.1, on_out_of_bounds="clip",
                 backend="auto", n_jobs=1, random_state=None, verbose=0):
        self.model = model
        self.epsilon = epsilon
        self.delta = delta
        self.rows_per_class = rows_per_class
        self.steps = steps
        self.num_directions = num_directions
        self.smoothing = smoothing
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.l2_norm_clip = l2_norm_clip
        self.batch_size = batch_size
        self.loss = loss
        self.class_weight = class_weight
        self.scheme = scheme
        self.average_tail = average_tail
        self.schema = schema
        self.preprocessing_share = preprocessing_share
        self.on_out_of_bounds = on_out_of_bounds
        self.backend = backend
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        self._epsilon = _check_positive_float("epsilon", self.epsilon, allow_inf=True)
        try:
            delta = float(self.delta)
        except (TypeError, ValueError):
            raise ConfigError(f"`delta` must be in (0, 1). Got {self.delta!r}.") from None
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"`delta` must be in (0, 1). Got {self.delta}.")
        self._delta = delta
        self._rows_per_class = _check_positive_int("rows_per_class", self.rows_per_class)
        self._steps = _check_positive_int("steps", self.steps)
        self._num_directions = _check_positive_int("num_directions", self.num_directions)
        self._smoothing = _check_positive_float("smoothing", self.smoothing)
        self._l2_norm_clip = _check_positive_float("l2_norm_clip", self.l2_norm_clip, allow_inf=True)
        self._batch_size = _check_positive_int("batch_size", self.batch_size)
        if self.optimizer is None:
            self._optimizer = optax.adam(_check_positive_float("learning_rate", self.learning_rate))
        elif isinstance(self.optimizer, optax.GradientTransformation):
            self._optimizer = self.optimizer
        else:
            raise ConfigError(f"`optimizer` must be an optax.GradientTransformation or None. Got {self.optimizer!r}.")
        if self.class_weight not in ("balanced", None):
            raise ConfigError(f"`class_weight` must be 'balanced' or None. Got {self.class_weight!r}.")
        tail = self.average_tail
        if isinstance(tail, bool) or not isinstance(tail, (int, float)) or not 0.0 <= tail < 1.0:
            raise ConfigError(f"`average_tail` must be in [0, 1). Got {tail!r}.")
        share = self.preprocessing_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < share < 1.0:
            raise ConfigError(f"`preprocessing_share` must be in (0, 1). Got {share!r}.")
        if self.on_out_of_bounds not in ("clip", "raise"):
            raise ConfigError(f"`on_out_of_bounds` must be 'clip' or 'raise'. Got {self.on_out_of_bounds!r}.")
        if self.verbose not in (0, 1, False, True):
            raise ConfigError(f"`verbose` must be 0 or 1. Got {self.verbose!r}.")
        resolve_n_jobs(self.n_jobs)
        ClassificationLoss(self.loss)  # validates the name
        if isinstance(self.model, str):
            self._preset: Preset | None = get_preset(self.model, task="classification")
            self._host_estimator = None
        elif hasattr(self.model, "fit") and hasattr(self.model, "predict_proba"):
            self._preset = None
            self._host_estimator = self.model
        else:
            raise ConfigError(f"`model` must be a preset name or an estimator with fit/predict_proba. Got {self.model!r}.")
        self._backend = resolve_backend(self._preset, self.backend)

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _as_frame(X, y) -> tuple[pd.DataFrame, str]:
        if y is None:
            raise DataError("`y` is required: pass the class labels (one per row of X).")
        if isinstance(X, pd.DataFrame):
            frame = X.copy()
        else:
            array = np.asarray(X)
            if array.ndim != 2:
                raise DataError(f"`X` must be 2-dimensional (n_rows, n_columns). Got shape {array.shape}.")
            frame = pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])
        target = getattr(y, "name", None) or "target"
        if target in frame.columns:
            raise DataError(f"`y` is named {target!r} but X already has a column of that name.")
        y_values = np.asarray(y)
        if y_values.ndim != 1 or y_values.shape[0] != len(frame):
            raise DataError(f"`y` must be 1-dimensional with one label per row of X ({len(frame)}). Got shape {y_values.shape}.")
        frame[target] = y_values
        return frame, target

    def _resolve_schema(self, frame: pd.DataFrame, target: str, key: jax.Array, ledger: Ledger):
        """Returns (schema, class proportions, preprocessing events) — public or DP, all accounted."""
        share_epsilon = self._epsilon * self.preprocessing_share
        if self.schema is None:
            check_raw_table(frame, target=target)
            threshold_delta = _THRESHOLD_DELTA_SHARE * self._delta
            noise = calibrate_noise_multiplier(
                share_epsilon, self._delta,
                lambda s: ComposedEvent((GaussianEvent(s), AdditiveDeltaEvent(threshold_delta)))) \
                if math.isfinite(self._epsilon) else 0.0
            schema, events = estimate_schema(key, frame, target=target, noise_multiplier=noise,
                                             threshold_delta=threshold_delta, name="estimated")
            for event in events:
                ledger.add("schema", event, "DP column bounds (log-scale histogram), category levels "
                           "(thresholded histogram) and class proportions (same histogram)")
            return schema, schema.class_proportions
        schema = self.schema if isinstance(self.schema, Schema) else Schema.from_json(self.schema)
        if schema.task != "classification":
            raise DataError(f"schema {schema.name!r} is for {schema.task}; this Condenser is for classification.")
        if schema.target != target:
            raise DataError(f"the schema's target is {schema.target!r} but `y` is named {target!r}; "
                            f"pass y as a Series named {schema.target!r}.")
        proportions = schema.class_proportions
        if proportions is None and self.class_weight == "balanced":
            noise = calibrate_noise_multiplier(share_epsilon, self._delta, GaussianEvent) \
                if math.isfinite(self._epsilon) else 0.0
            encoded_y = TableEncoder(schema).encode(validate_table(frame, schema, on_out_of_bounds="clip")).y
            proportions, event = estimate_class_proportions(key, encoded_y, schema.n_classes, noise)
            ledger.add("class_proportions", event, "DP class counts for the class-balanced loss")
        return schema, proportions

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None) -> "Condenser":
        """Condenses ``(X, y)`` into ``synthetic_``.

        Args:
          X: ``(n, d)`` DataFrame (or array: columns named ``x0..``) of features.
          y: ``(n,)`` class labels; a Series' name is the target column's name.

        Returns:
          self.

        Raises:
          ConfigError: a hyperparameter out of range (named).
          DataError: unusable data (named column and problem).
          PrivacyBudgetError: the target (epsilon, delta) cannot be met.
        """
        self._validate_params()
        frame, target = self._as_frame(X, y)
        seed = resolve_seed(self.random_state)
        schema_key, init_key, run_key, model_key = jax.random.split(jax.random.key(seed), 4)
        ledger = Ledger()

        schema, proportions = self._resolve_schema(frame, target, schema_key, ledger)
        clean = validate_table(frame, schema, on_out_of_bounds=self.on_out_of_bounds)
        encoder = TableEncoder(schema)
        encoded = encoder.encode(clean)
        X_real = np.asarray(encoded.X, np.float32)
        y_real = np.asarray(encoded.y, np.int32)
        num_records, num_features = X_real.shape
        num_classes = schema.n_classes
        num_rows = self._rows_per_class * num_classes
        if num_records <= num_rows:
            raise DataError(f"the table has {num_records} rows, not more than the synthetic table's {num_rows}: "
                            "condensing would not make it smaller. Lower `rows_per_class`.")

        weights = tuple(balanced_class_weights(proportions)) if self.class_weight == "balanced" else None
        loss = ClassificationLoss(self.loss, class_weights=weights)

        # Calibrate the steps so that everything composed meets the target.
        sampling_probability = min(1.0, self._batch_size / num_records)
        base_events = [entry.event for entry in ledger.entries]
        private = math.isfinite(self._epsilon)
        step_event = lambda sigma: SelfComposedEvent(PoissonSampledEvent(sampling_probability, GaussianEvent(sigma)), self._steps)
        if private:
            noise_multiplier = calibrate_noise_multiplier(self._epsilon, self._delta, step_event, base_events=base_events)
            clip = self._l2_norm_clip
        else:
            noise_multiplier, clip = 0.0, math.inf
        ledger.add("zero_order_steps", step_event(noise_multiplier),
                   f"{self._steps} Poisson-sampled Gaussian steps: per-record ({self._num_directions},) loss "
                   f"differences clipped to L2 norm {clip}, noise std {noise_multiplier:.4g} x clip")
        epsilon_spent = ledger.epsilon(self._delta) if private else math.inf
        if private and epsilon_spent > self._epsilon * (1 + 1e-9):
            raise PrivacyBudgetError(f"the ledger's epsilon {epsilon_spent:.6f} exceeds the target {self._epsilon}.")

        labels = np.repeat(np.arange(num_classes, dtype=np.int32), self._rows_per_class)
        init_table = jnp.clip(_INIT_SCALE * jax.random.normal(init_key, (num_rows, num_features)), -1.0, 1.0)

        evaluator = None
        if self._backend == "native":
            evaluate_fn = native_classifier_evaluator(self._preset.native_factory(num_classes), loss)
            data = native_classifier_data(X_real, y_real, labels, model_key)
            chunk_size = 25
        else:
            estimator = self._host_estimator if self._preset is None else self._preset.host_factory(num_classes)
            payload = {"estimator": estimator, "X": X_real.astype(np.float64), "y": y_real,
                       "synthetic_labels": labels, "num_classes": num_classes, "loss": loss}
            evaluator = HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound,
                                      num_records=num_records, n_jobs=self.n_jobs)
            evaluate_fn = evaluator.jax_fn()
            data = None
            chunk_size = 1

        average_from = None if self.average_tail == 0 else int(round(self._steps * (1 - self.average_tail)))
        condenser = zero_order_condenser(evaluate_fn, self._optimizer, num_records=num_records,
                                         num_directions=self._num_directions, scheme=self.scheme,
                                         average_from=average_from)
        params = StepParams(smoothing=jnp.float32(self._smoothing), l2_norm_clip=jnp.float32(clip),
                            noise_multiplier=jnp.float32(noise_multiplier),
                            sampling_probability=jnp.float32(sampling_probability))
        progress = _Progress(self._steps, self._epsilon_after_fn(ledger, self._delta, private), bool(self.verbose))
        try:
            state = condenser.init(run_key, init_table)
            state, infos = run(condenser, state, params, self._steps, data=data, chunk_size=chunk_size,
                               on_chunk=progress)
        finally:
            if evaluator is not None:
                evaluator.close()

        table = np.asarray(state.average, dtype=np.float64)
        released = encoder.decode(table, y=labels)
        self.table_ = np.asarray(encoder.encode(released).X, np.float64)
        self.labels_ = labels
        self.synthetic_ = released
        self.schema_ = schema
        self.ledger_ = ledger
        self.epsilon_ = epsilon_spent
        self.delta_ = self._delta
        self.noise_multiplier_ = float(noise_multiplier)
        self.sampling_probability_ = float(sampling_probability)
        self.l2_norm_clip_ = float(clip)
        self.class_weights_ = weights
        self.backend_ = self._backend
        self.seed_ = seed
        self.classes_ = np.asarray(schema.target_column.categories, dtype=object)
        self.n_features_in_ = len(schema.feature_names)
        self.feature_names_in_ = np.asarray(schema.feature_names, dtype=object)
        self.history_ = {name: np.asarray(value) for name, value in infos._asdict().items()}
        return self

    @staticmethod
    def _epsilon_after_fn(ledger: Ledger, delta: float, private: bool):
        """``t -> epsilon`` spent after ``t`` steps (for the progress bar), from precomputed RDP."""
        if not private:
            return lambda t: math.inf
        *pre, steps_entry = ledger.entries
        orders = np.asarray(ledger.accountant().orders)
        pre_rdp = np.zeros(len(orders))
        for entry in pre:
            pre_rdp = pre_rdp + rdp_of_event(entry.event, orders)
        remaining_delta = delta - sum(additive_delta_of_event(entry.event) for entry in pre)
        step_rdp = rdp_of_event(steps_entry.event.event, orders)
        return lambda t: rdp_to_epsilon(pre_rdp + t * step_rdp, orders, remaining_delta)[0]

    def report(self) -> dict[str, Any]:
        """The privacy part of the release report (JSON-serialisable)."""
        ledger = self.ledger_.to_dict(self.delta_)
        return {
            "epsilon": self.epsilon_, "delta": self.delta_, "noise_multiplier": self.noise_multiplier_,
            "sampling_probability": self.sampling_probability_, "steps": int(self._steps),
            "l2_norm_clip": self.l2_norm_clip_, "num_directions": int(self._num_directions),
            "accountant": "RDP (Poisson-subsampled Gaussian, Mironov et al. 2019), tight conversion",
            "neighbouring_relation": "add or remove one record",
            "public_assumptions": ["number of records n", "column names and storage types",
                                   *(["schema (bounds, categories" + (", class proportions" if self.schema_.class_proportions else "") + ") given as public"] if self.schema is not None else [])],
            "ledger": ledger,
        }
