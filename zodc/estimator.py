"""The scikit-learn-compatible front door: ``Condenser(...).fit(X, y)``.

``Condenser`` wires the pieces together in the order the privacy analysis needs:

1. **Schema** (column types, public bounds, categories): given by the user (public), or estimated
   with DP from a stated share of the budget (``preprocessing_share``), accounted in the ledger.
2. **Class proportions** (for the class-balanced loss and the DP-means start): from the schema if public, otherwise from
   the DP schema estimate (post-processing of the same noisy histogram), or, when a schema without
   proportions is given, a separate DP count from the same share of the budget.
3. **Initialisation**: classification starts each synthetic row at its class's DP mean (one
   Gaussian mechanism from ``init_share`` of epsilon, in the ledger; ``init="dp_means"``), survival
   from data-independent ``N(0, 0.5^2)`` noise (``init="noise"``). The DESIGN §4 prototype saw DP
   class means not beat the noise start at epsilon = 1; here, with half the budget calibrated
   standalone and composed under RDP, they won by +0.03 to +0.09 AUROC over 30 paired seeds
   (``benchmarks/results/ABLATION.md``). Synthetic labels are ``rows_per_class`` of each class: a
   public design choice.
4. **Calibration**: the noise multiplier of the zero-order steps is the smallest that keeps the
   composition of *everything* (preprocessing + initialisation + ``steps`` Poisson-subsampled
   Gaussian steps) at or below ``epsilon`` for ``delta``. The target is never exceeded: the
   ledger's total is checked after the run and the run refuses to start if it cannot be met.
5. **Condensation**: :func:`zodc.condense.zero_order_condenser` with the native kernel or the host
   model behind a batched callback.
6. **Release**: the table decoded to the original columns, units and levels (post-processing).

Survival (``Condenser("cox", rows=50).fit(frame, duration_col=..., event_col=...)`` or ``fit(X, y)``
with a scikit-survival structured ``(event, time)`` target): the learnable table is ``(m, d + 1)``,
the encoded features then the encoded log-time (public :class:`~zodc.models.survival.TimeScale`);
the ``m`` events are fixed, ``round(event_rate * m)`` ones, from the schema's public event rate or a
DP estimate (accounted). The loss is the discrete-time NLL (or unweighted Brier) on a public log-time
grid of ``num_time_bins`` bins between the schema's time bounds.

The neighbouring relation is **add or remove one record**, so the number of records ``n`` is
private: everything derived from the table's size (the sampling probability ``p = min(1, B / n_hat)``,
the divisor ``p n_hat`` of the noisy sum, the start's group sizes, the decisions that depend on size)
uses a DP count ``n_hat`` — post-processing of the DP schema's histogram, or its own Gaussian count
(``record_count`` in the ledger). Public by assumption (stated in the report): the column names and
their declared kinds — the table's *structure*, not its values.

Randomness (:mod:`zodc.privacy.keys`): ``random_state=None`` draws 128 bits of OS entropy; a seed
is a secret (never stored on the estimator or written to the report); every mechanism has its own
stream. All Gaussian noise is exact (:mod:`zodc.privacy.noise`).
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
import time as _time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import has_fit_parameter

from zodc import zo
from zodc.condense import StepParams, run, zero_order_condenser
from zodc.data.dp_schema import estimate_class_proportions, estimate_event_rate
from zodc.data.schema import Schema
from zodc.data.transform import TableEncoder
from zodc.data.validation import check_raw_table, validate_table
from zodc.errors import ConfigError, DataError, PrivacyBudgetError
from zodc.models.host import HostEvaluator, fit_score_classifier, resolve_n_jobs
from zodc.models.losses import ClassificationLoss, balanced_class_weights
from zodc.models.native import native_classifier_data, native_classifier_evaluator
from zodc.models.presets import Preset, get_preset, resolve_backend
from zodc.models import soft_labels as soft
from zodc.models.survival import (SURVIVAL_LOSSES, SurvivalLoss, TimeScale, accepts_sample_weight, as_survival_model,
                                  expand_soft_events, fit_score_survival,
                                  host_survival_payload, native_survival_data, native_survival_evaluate_fn,
                                  public_time_grid)
from zodc.data.dp_schema import N_BINS, estimate_record_count, estimate_schema_and_count, schema_noise_multiplier
from zodc.privacy.accounting import RdpAccountant, additive_delta_of_event, rdp_of_event, rdp_to_epsilon
from zodc.privacy.keys import RunKeys, resolve_seed
from zodc.privacy.noise import GRID_BITS, noise_sampling_delta, rounded_gaussian
from zodc.privacy.calibration import calibrate_noise_multiplier
from zodc.privacy.events import (AdditiveDeltaEvent, ComposedEvent, GaussianEvent, PoissonSampledEvent,
                                 SelfComposedEvent)
from zodc.privacy.ledger import Ledger
from zodc.privacy.moments import dp_group_means
from zodc.privacy.selection import calibrate_selection_epsilon, select_features

# Share of delta given to thresholded category discovery when no schema is given.
_THRESHOLD_DELTA_SHARE = 0.1
_INIT_SCALE = 0.5  # spread of the "noise" initialisation, in encoded [-1, 1] units (public)
# Spread of the "dp_means" rows around their group's DP mean, per task (public; ablation rounds 12-13).
_MEANS_INIT_SCALE = {"classification": 0.1, "survival": 0.2}
_INIT_CLIP_PER_SQRT_D = 0.5  # "dp_means" clips each encoded row to L2 norm 0.5 sqrt(d) (public)
# soft_labels="auto" on survival data: soft events where the noise on the DP per-event-status means'
# difference exceeds this, per encoded coordinate (public; ablation rounds 20-21: lung 0.36 and larynx
# 0.44 at epsilon 1 gained, gbsg2 and kidney transplant at 0.08 were level).
_SOFT_EVENTS_START_NOISE = 0.2
INITS = ("auto", "noise", "dp_means")
DEFAULT_ROWS_PER_CLASS = 10
DEFAULT_SURVIVAL_ROWS = 50
# Adam's step size when ``learning_rate=None``: per task (ablation rounds 9-14, benchmarks/results/ABLATION.md).
DEFAULT_LEARNING_RATE = {"classification": 0.05, "survival": 0.02}
CLASSIFICATION_LOSSES = ("balanced_linear", "cross_entropy", "brier")


def synthetic_event_count(event_rate: float, rows: int) -> int:
    """Events among the ``rows`` synthetic rows: ``round(event_rate * rows)``, kept in ``[1, rows - 1]``
    (at least one event, or no survival model is identified; at least one censored row, as in any
    real cohort). Post-processing of a public or DP event rate."""
    return int(min(max(int(round(event_rate * rows)), 1), rows - 1))


def _require_features(encoder: TableEncoder) -> None:
    """Refuse a schema that leaves nothing to learn (every feature constant). A decision on the schema
    (public, or DP: post-processing), never on a record."""
    if encoder.n_encoded == 0:
        raise DataError("the schema leaves no feature to learn: every feature column is constant (one level, or "
                        "none). Give a schema with at least one informative column (zodc schema draft), or a larger "
                        "cohort.")


def _is_structured_survival(y: Any) -> bool:
    dtype = getattr(y, "dtype", None)
    return dtype is not None and getattr(dtype, "names", None) is not None


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


@functools.lru_cache(maxsize=16)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    # One optimiser object per learning rate: the compiled step closes over it, so equal fits can
    # share one compiled program (see ``_cached_condenser``).
    return optax.adam(learning_rate)


class _FreezeState(NamedTuple):
    count: jax.Array


@functools.lru_cache(maxsize=16)
def _freeze_last_column(optimizer: optax.GradientTransformation, after: int) -> optax.GradientTransformation:
    """``optimizer``, then the updates of the table's last column (the soft-label / soft-event
    weight) zeroed from step ``after`` on: the weights are learned for ``after`` steps, then frozen.
    One object per (optimizer, after), so equal fits share a compiled step."""

    def init(params):
        return _FreezeState(count=jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        keep = (state.count < after).astype(updates.dtype)
        return updates.at[:, -1].multiply(keep), _FreezeState(count=state.count + 1)

    return optax.chain(optimizer, optax.GradientTransformation(init, update))


def _build_condenser(evaluate_fn, optimizer, num_records: int, num_directions: int, scheme: str, average_from,
                     directions: str = "gaussian", bounded: bool = True):
    box = (-1.0, 1.0) if bounded else (-math.inf, math.inf)
    return zero_order_condenser(evaluate_fn, optimizer, num_records=num_records, num_directions=num_directions,
                                scheme=scheme, average_from=average_from, directions=directions, lower=box[0],
                                upper=box[1])


# Fits with the same (hashable) configuration get the same condenser object, so ``run(reuse=True)``
# finds their compiled steps: a second seed or cohort of the same shapes neither traces nor compiles.
_cached_condenser = functools.lru_cache(maxsize=32)(_build_condenser)


def _embedding_evaluator(evaluate_fn, num_features: int, trailing: int = 0):
    """Wraps ``evaluate_fn`` so it takes tables of the selected columns only: they are placed into
    full-width tables whose other columns sit at 0, the middle of their public bounds. ``data`` is
    ``(inner data, selected column indices)`` — an argument, so the program does not depend on which
    columns were chosen. The last ``trailing`` columns (the soft-label weight) pass through."""

    def evaluate(tables, mask, data):
        inner, columns = data
        learned = tables[..., :tables.shape[-1] - trailing]
        full = jnp.zeros(tables.shape[:-1] + (num_features,), tables.dtype).at[..., columns].set(learned)
        full = jnp.concatenate([full, tables[..., tables.shape[-1] - trailing:]], axis=-1)
        return evaluate_fn(full, mask, inner)

    return evaluate


# Native evaluators are cached, so their embeddings can be too (a host one would keep its pool alive).
_cached_embedding_evaluator = functools.lru_cache(maxsize=16)(_embedding_evaluator)


def subspace_basis(key: jax.Array, dimension: int, size: int) -> jax.Array:
    """``(r, size)`` public random basis: orthonormal rows scaled by ``sqrt(size / r)``.

    A Gaussian direction ``z`` of the ``r`` coordinates then moves each of the ``size`` cells by
    ``N(0, 1)`` on average, as a Gaussian direction over every cell does, so ``smoothing`` and
    ``learning_rate`` keep their meaning. Data independent (drawn from the run's seed): no privacy cost.
    """
    return zo.orthonormal_rows(jax.random.normal(key, (size, dimension)).T) * math.sqrt(size / dimension)


def subspace_tables(coordinates: jax.Array, anchor: jax.Array, basis: jax.Array) -> jax.Array:
    """Tables ``clip(anchor + reshape(theta @ basis), -1, 1)`` from coordinates ``(..., 1, r)``."""
    offsets = jnp.tensordot(coordinates[..., 0, :], basis, axes=1)
    return jnp.clip(anchor + offsets.reshape(coordinates.shape[:-2] + anchor.shape), -1.0, 1.0)


def _subspace_evaluator(evaluate_fn):
    """Wraps ``evaluate_fn`` so it takes ``(k, 1, r)`` subspace coordinates instead of tables.
    ``data`` is ``(inner data, anchor (m, w), basis (r, m w))`` — arguments, so one compiled program
    serves every start and basis of the same shapes."""

    def evaluate(coordinates, mask, data):
        inner, anchor, basis = data
        return evaluate_fn(subspace_tables(coordinates, anchor, basis), mask, inner)

    return evaluate


_cached_subspace_evaluator = functools.lru_cache(maxsize=16)(_subspace_evaluator)


class _Progress:
    """A progress line on stderr: step and epsilon spent — public quantities only (the loss on the
    private batch is a statistic of the data: it stays in ``history_``, for the owner's eyes).

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
                f"eps {self.epsilon_fn(step):.3f} {now - self.start:5.1f}s")
        self.stream.write(("\r" + line + ("\n" if done else "")) if self.interactive else line + "\n")
        self.stream.flush()


class Condenser(BaseEstimator):
    """Learns a small differentially private synthetic table for a classical classifier or survival model.

    Private zero-order dataset condensation (DESIGN §1; after "Democratising Clinical AI through
    Dataset Condensation for Classical Clinical Models", arXiv:2603.09356): the synthetic rows are
    optimised so that ``model`` trained on them scores well on the real records, with gradients
    estimated from model fits on randomly perturbed copies, clipped per record and noised.

    Args:
      model: a preset name — classification ``"tree"``, ``"forest"``, ``"boosting"``, ``"logistic"``;
        survival ``"cox"``, ``"survival_forest"`` (host only, needs scikit-survival) — or an unfitted
        scikit-learn classifier with ``fit`` / ``predict_proba``, or a survival model (lifelines
        ``CoxPHFitter``, a scikit-survival estimator, or ``fit(X, time, event)`` /
        ``predict_survival(X, times)``); custom models run on the host.
      epsilon: target epsilon of the *whole* release (preprocessing included); ``inf`` runs the
        non-private method (no clipping, no noise) for comparison.
      delta: target delta in (0, 1); choose ``delta << 1 / n``.
      rows_per_class: classification: synthetic rows per class ``k`` (the table has ``k * K`` rows);
        ``None``: 10. Refused for survival (use ``rows``).
      rows: survival: synthetic rows ``m``; ``None``: 50. Refused for classification (use
        ``rows_per_class``).
      steps: zero-order steps ``T``.
      num_directions: random directions per step ``q``.
      smoothing: perturbation radius ``mu`` in the encoded [-1, 1] units.
      learning_rate: Adam's step size (ignored when ``optimizer`` is given). ``None`` (default):
        0.05 for classification, 0.02 for survival. From a DP-means start Cox needs to move
        little: faster or longer loops lost at epsilon 1 (learning rate 0.1: -0.031, 1000 steps:
        -0.029 on gbsg2), and the DP-means start won only with 0.02
        (``benchmarks/results/ABLATION.md``, rounds 9-14).
      optimizer: an optax transformation to use instead of Adam.
      l2_norm_clip: per-record clip ``C`` of the ``(q,)`` vector of loss differences.
      batch_size: expected Poisson batch size; the sampling probability is ``min(1, batch_size / n)``.
      loss: classification ``"balanced_linear"`` (the default), ``"cross_entropy"`` or ``"brier"``;
        survival ``"discrete_nll"`` (the default) or ``"brier"`` (integrated Brier score *without*
        IPCW weights: no public or DP censoring distribution is available, see
        :class:`~zodc.models.survival.SurvivalLoss`). ``None``: the task's default.
      num_time_bins: survival: bins of the public time grid the loss is evaluated on, between
        the schema's time bounds (:func:`~zodc.models.survival.public_time_grid`).
      time_grid: survival: ``"log"`` or ``"linear"`` spacing of that grid.
      time_init: survival: initial synthetic times — ``"center"`` (the log-scale middle of the
        public bounds, spread like the features) or ``"uniform"`` (log-uniform over the bounds).
        Data independent either way. Applies to the noise start; with ``init="dp_means"`` the
        times start at their event group's DP mean log-time like the features.
      class_weight: ``"balanced"`` (weights ``1 / (K pi_c)`` from public or DP proportions) or ``None``.
        Classification only.
      scheme: ``"central"`` or ``"forward"`` differences.
      directions: the random directions' kind (:func:`zodc.zo.sample_directions`): ``"gaussian"``
        (the default: i.i.d. over every learnable cell), ``"orthogonal"`` (the same marginals,
        mutually orthogonal), ``"rows"`` / ``"columns"`` (each direction on one synthetic row /
        one column). Data independent, so every kind has the same privacy cost. Round 16 of
        ``benchmarks/results/ABLATION.md`` measured the others against the default.
      subspace: ``None`` (default): learn every cell of the table. An int ``r``: learn only ``r``
        coordinates of the table's offset from its start, along a public random basis of the
        table (a low-dimensional parametrisation: the zero-order estimate's dimension shrinks from
        ``m x w`` to ``r``; the start holds the rest, so use it with ``init="dp_means"``). Same
        privacy cost. Round 17 of ``benchmarks/results/ABLATION.md``.
      average_tail: release the uniform average of the last ``average_tail`` share of the iterates
        (0: the last iterate). Post-processing of the private iterates: no privacy cost.
      select_features: classification: learn only this many encoded columns, chosen privately by
        the exponential mechanism on class separation (``zodc.privacy.selection``) from
        ``selection_share`` of epsilon; the other columns stay at the middle of their public
        bounds. ``None``: learn all columns.
      selection_share: share of ``epsilon`` for that selection.
      soft_labels: classification: learn a class distribution per synthetic row
        (:mod:`zodc.models.soft_labels`). Each row gets a learned own-class weight ``w`` in
        ``[0, 1]``; the release holds ``K`` weighted copies of every row (its class with weight
        ``w``, each other class ``(1 - w) / (K - 1)``) and a ``sample_weight`` column to pass to the
        model's ``fit``. The weights are learned with the features, so they cost no privacy of
        their own. The model must accept ``sample_weight``. ``"auto"`` (default): on for the
        ``"boosting"`` preset, off otherwise — over 30 paired seeds at epsilon 1 they raised boosting's
        AUROC by +0.040 to +0.044 on each bundled cohort (a boosted ensemble fitted to
        well-separated hard-labelled rows outputs near-certain probabilities), and cost the tree
        and logistic model up to 0.05 on diabetes (``benchmarks/results/ABLATION.md``, rounds 5, 7 and 8).
        Survival: *soft events* — each row keeps its nominal event status and learns an own-status
        weight ``w``; it is released as an event copy and a censored copy (weights ``w`` and
        ``1 - w``, each kept in ``[0.001, 0.999]``: lifelines rejects a weight of 0) at the same
        features and time, so Cox sees fractional event indicators
        (:func:`zodc.models.survival.expand_soft_events`). Pass the ``sample_weight`` column as
        lifelines' ``weights_col``. ``"auto"`` turns them on where the DP start is noisy: when the
        noise on the difference of the DP per-event-status means exceeds 0.2 per encoded coordinate
        (small cohorts at small epsilon: lung and larynx at epsilon 1, where they raised the C-index;
        not gbsg2 or kidney transplant, where they were level; rounds 20-21 in ``ABLATION.md``), and
        never without noise. ``soft_labels_`` says what ran.
      soft_label_start: the own-class (survival: own-status) weight every row starts at (a public
        constant in ``(0, 1]``).
      soft_label_steps: with soft labels or soft events, learn the weights for the first this many
        steps only, then freeze them (their Adam updates are zeroed; the features keep moving); ``0``:
        fixed at ``soft_label_start`` throughout. ``None`` (default): learned at every step. Public
        design, no privacy cost. Not with ``subspace``.
      init: the starting table: ``"auto"`` (default) is ``"dp_means"``. ``"dp_means"``: each
        synthetic row starts at its class's (survival: its event status's) DP mean of the encoded real rows, plus ``N(0, init_scale^2)``
        — one Gaussian mechanism (rows clipped to L2 norm ``0.5 sqrt(d)``) calibrated to
        ``init_share`` of epsilon, in the ledger; with ``epsilon=inf`` the exact means. ``"noise"``:
        ``N(0, init_scale^2)``, data independent. Why the default: a noise start often sits where
        no real record is (skewed columns crowd one end of their public bounds), so the fitted model
        sends every record the same way and the zero-order loss is flat; over 30 paired seeds at
        epsilon 1 the DP-means start raised tree AUROC by +0.06 on breast cancer and +0.03 on
        diabetes, logistic by +0.09 on diabetes (``benchmarks/results/ABLATION.md``). For Cox it
        wins together with the survival learning rate 0.02 and spread 0.2 (C-index at epsilon 1,
        against the noise start: gbsg2 +0.060 and kidney transplant +0.046 on each of two sets of
        30 seeds, lung level, larynx -0.020 ± 0.028; rounds 10-14); with learning rate 0.05 it
        did not (gbsg2 +0.020 ± 0.011, lung -0.011 ± 0.019).
      init_share: share of ``epsilon`` for the ``"dp_means"`` start (the loop is calibrated to what
        is left, so the whole release still meets ``epsilon``); 0.5 beat 0.1, 0.3, 0.7 and 0.9.
      init_scale: spread of the starting rows in encoded units (``None``: around DP means 0.1 for
        classification and 0.2 for survival, 0.5 for noise). Cox fitted on 50 rows piled at two
        group means is ill-determined: without noise, spread 0.1 lost 0.087 C-index on gbsg2
        while 0.2 gained 0.017 (rounds 11-13).
      init_clip: ``"dp_means"`` clips each encoded row to L2 norm ``init_clip * sqrt(d)`` before
        summing (``None``: 0.5). Larger: less bias towards the centre, more noise (1 never clips,
        as every encoded value lies in [-1, 1]).
      init_centre: share of the ``"dp_means"`` start's budget spent first on a DP mean of all rows
        (rows clipped to ``0.5 sqrt(d)`` around the origin), around which the group means' rows are
        then clipped to ``init_clip * sqrt(d)``; 0 (default): clip around the origin, one mechanism.
        The two Gaussian mechanisms' noise multipliers ``sigma / sqrt(share)`` and
        ``sigma / sqrt(1 - share)`` compose (RDP) to exactly the one mechanism's ``sigma`` at
        ``init_share`` of epsilon, so the start costs the same. Meant for rows far from the origin
        but close to their own mean (breast cancer: offset norms a third of the rows'), with a
        smaller ``init_clip``. Measured (30 paired seeds, epsilon 1): at the default budget it
        bought nothing (round 24); with ``init_share=0.95, steps=30, init_clip=0.3`` it lifted the
        breast-cancer tree by +0.012 over 60 seeds and boosting by +0.009, but cost the diabetes tree
        0.038 (rounds 25-26), so it is off by default.
      schema: a :class:`zodc.data.Schema`, a path to a schema JSON, or ``None`` to estimate one
        with DP from ``preprocessing_share`` of the budget.
      preprocessing_share: without a schema, the DP schema's share of the budget, split in rho as
        Gaussian mechanisms compose (it adds at most this share to epsilon;
        :func:`zodc.data.dp_schema.schema_noise_multiplier`); with a public schema, the DP record
        count (and class proportions or event rate if the schema has none) are calibrated to
        ``epsilon * preprocessing_share`` on their own. The rest goes to the start and the steps.
      on_out_of_bounds: ``"clip"`` (warn and clip values outside the schema's bounds, record by
        record) or ``"raise"`` (refuse: a refusal one record can trigger, so a check of the data
        before a release, not a setting for the release itself).
      backend: ``"auto"`` (native kernel where one exists), ``"native"`` or ``"host"``.
      n_jobs: host worker processes (``-1``: all cores).
      random_state: ``None`` (default, what a release should use): 128 bits of fresh OS entropy. An
        int seeds every draw for reproducible research: it is then a **secret** — anyone who knows
        it and the other records can tell whether a record was in the cohort — and is never stored
        on the estimator or written anywhere.
      verbose: 0 silent, 1 progress bar on stderr.

    Attributes:
      synthetic_: the released table, a DataFrame in the original columns, units and levels
        (survival: features, then the time and event columns).
      task_: ``"classification"`` or ``"survival"``.
      schema_: the schema used (public or DP-estimated).
      ledger_: :class:`zodc.privacy.Ledger` of every mechanism that touched the data.
      epsilon_, delta_: the guarantee of the release (``epsilon_ <= epsilon``).
      noise_multiplier_, sampling_probability_, l2_norm_clip_: the step mechanism.
      table_: the synthetic table in encoded units ``(m, d)`` (survival: ``(m, d + 1)``, the last
        column the encoded log-time); with soft labels or soft events, the released copies
        (``K m`` / ``2 m`` rows).
      labels_: classification: the synthetic labels ``(m,)`` (with ``soft_labels``: ``(K m,)``, one
        block per class).
      soft_labels_: whether the release has soft labels or soft events (``soft_labels`` resolved).
      init_: the start used (``init`` resolved: ``"dp_means"`` or ``"noise"``).
      init_scale_: the start's spread used (``init_scale`` resolved).
      learning_rate_: Adam's step size used (``learning_rate`` resolved; ``None`` with a custom
        ``optimizer``).
      sample_weight_: with ``soft_labels``: the ``(K m,)`` (survival: ``(2 m,)``, censored copies
        first) weights of the released rows (also the ``sample_weight`` column of ``synthetic_``);
        otherwise ``None``.
      events_, event_rate_, time_grid_: survival: the fixed (with soft events: nominal) synthetic
        events ``(m,)``, the public or DP event rate they come from, the public loss grid ``(G,)``.
      loss_: the loss's name; num_rows_: ``m``.
      history_: per-step diagnostics (``loss``, ``clipped_fraction``, ``batch_size``) — computed
        from private data, NOT covered by the guarantee: for the owner's eyes, never to publish.
      record_count_: the DP count ``n_hat`` of the records (in the ledger, or exact without noise).
      backend_: the backend that ran; classes_: the target's levels (classification);
        n_features_in_, feature_names_in_: as in scikit-learn.

    Examples:
      >>> from zodc import Condenser, load_dataset                        # doctest: +SKIP
      >>> data = load_dataset("breast_cancer")                            # doctest: +SKIP
      >>> X, y = data.frame.drop(columns="diagnosis"), data.frame["diagnosis"]  # doctest: +SKIP
      >>> Condenser(epsilon=1.0, schema=data.schema).fit(X, y).synthetic_  # doctest: +SKIP
      >>> gbsg2 = load_dataset("gbsg2")                                   # doctest: +SKIP
      >>> Condenser("cox", rows=50, schema=gbsg2.schema).fit(             # doctest: +SKIP
      ...     gbsg2.frame, duration_col="time", event_col="cens").synthetic_
    """

    def __init__(self, model="tree", *, epsilon=1.0, delta=1e-5, rows_per_class=None, rows=None, steps=300,
                 num_directions=16, smoothing=0.2, learning_rate=None, optimizer=None, l2_norm_clip=1.0,
                 batch_size=256, loss=None, num_time_bins=10, time_grid="log", time_init="center",
                 class_weight="balanced", scheme="central", directions="gaussian", subspace=None, average_tail=0.0,
                 select_features=None,
                 selection_share=0.1, soft_labels="auto", soft_label_start=0.9, soft_label_steps=None, init="auto", init_share=0.5, init_scale=None, init_clip=None, init_centre=0.0, schema=None,
                 preprocessing_share=0.1, on_out_of_bounds="clip", backend="auto", n_jobs=1, random_state=None,
                 verbose=0):
        self.model = model
        self.epsilon = epsilon
        self.delta = delta
        self.rows_per_class = rows_per_class
        self.rows = rows
        self.steps = steps
        self.num_directions = num_directions
        self.smoothing = smoothing
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.l2_norm_clip = l2_norm_clip
        self.batch_size = batch_size
        self.loss = loss
        self.num_time_bins = num_time_bins
        self.time_grid = time_grid
        self.time_init = time_init
        self.class_weight = class_weight
        self.scheme = scheme
        self.directions = directions
        self.subspace = subspace
        self.average_tail = average_tail
        self.select_features = select_features
        self.selection_share = selection_share
        self.soft_labels = soft_labels
        self.soft_label_start = soft_label_start
        self.soft_label_steps = soft_label_steps
        self.init = init
        self.init_share = init_share
        self.init_scale = init_scale
        self.init_clip = init_clip
        self.init_centre = init_centre
        self.schema = schema
        self.preprocessing_share = preprocessing_share
        self.on_out_of_bounds = on_out_of_bounds
        self.backend = backend
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _model_task(self) -> str | None:
        """The task the model is for (``None``: a custom object of no recognisable kind)."""
        if isinstance(self.model, str):
            return get_preset(self.model).task
        if hasattr(self.model, "fit") and hasattr(self.model, "predict_proba"):
            return "classification"
        try:
            as_survival_model(self.model)
        except ConfigError:
            return None
        return "survival"

    def _validate_params(self, task: str) -> None:
        self._task = task
        self._epsilon = _check_positive_float("epsilon", self.epsilon, allow_inf=True)
        try:
            delta = float(self.delta)
        except (TypeError, ValueError):
            raise ConfigError(f"`delta` must be in (0, 1). Got {self.delta!r}.") from None
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"`delta` must be in (0, 1). Got {self.delta}.")
        self._delta = delta
        auto_soft = isinstance(self.soft_labels, str) and self.soft_labels == "auto"
        if not (isinstance(self.soft_labels, (bool, np.bool_)) or auto_soft):
            raise ConfigError(f"`soft_labels` must be True, False or 'auto'. Got {self.soft_labels!r}.")
        # "auto": soft labels for the boosting preset only (ablation rounds 7-8, benchmarks/results/ABLATION.md);
        # on survival data soft events where the start is noisy, resolved once n and the event rate are
        # known (`_resolve_soft_events`, rounds 20-21).
        self._soft_events_auto = auto_soft and task == "survival"
        self._soft_labels = (task == "classification" and isinstance(self.model, str) and self.model == "boosting"
                             if auto_soft else bool(self.soft_labels))
        if task == "classification":
            if self.rows is not None:
                raise ConfigError(f"`rows` is for survival data; for classification set `rows_per_class` "
                                  f"(the table has rows_per_class x classes rows). Got rows={self.rows!r}.")
            self._rows_per_class = _check_positive_int(
                "rows_per_class", DEFAULT_ROWS_PER_CLASS if self.rows_per_class is None else self.rows_per_class)
        else:
            if self.rows_per_class is not None:
                raise ConfigError("`rows_per_class` is for classification; for survival set `rows` (the synthetic "
                                  f"table's size). Got rows_per_class={self.rows_per_class!r}.")
            self._rows = _check_positive_int("rows", DEFAULT_SURVIVAL_ROWS if self.rows is None else self.rows,
                                             minimum=2)
            self._num_time_bins = _check_positive_int("num_time_bins", self.num_time_bins)
            if self.time_grid not in ("log", "linear"):
                raise ConfigError(f"`time_grid` must be 'log' or 'linear'. Got {self.time_grid!r}.")
            if self.time_init not in ("center", "uniform"):
                raise ConfigError(f"`time_init` must be 'center' or 'uniform'. Got {self.time_init!r}.")
            if self.select_features is not None:
                raise ConfigError("`select_features` is for classification (it scores class separation). "
                                  f"Got select_features={self.select_features!r} with survival data.")
        start = self.soft_label_start
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0.0 < start <= 1.0:
            raise ConfigError(f"`soft_label_start` must be in (0, 1]. Got {start!r}.")
        self._soft_label_steps = (None if self.soft_label_steps is None else
                                  _check_positive_int("soft_label_steps", self.soft_label_steps, minimum=0))
        self._steps = _check_positive_int("steps", self.steps)
        self._num_directions = _check_positive_int("num_directions", self.num_directions)
        zo.check_scheme(self.scheme)
        zo.check_directions(self.directions)
        self._subspace = None if self.subspace is None else _check_positive_int("subspace", self.subspace)
        if self._soft_label_steps is not None and self._subspace is not None:
            raise ConfigError("`soft_label_steps` cannot be combined with `subspace`: the learned coordinates are "
                              "then not the table's weight column.")
        self._smoothing = _check_positive_float("smoothing", self.smoothing)
        self._l2_norm_clip = _check_positive_float("l2_norm_clip", self.l2_norm_clip, allow_inf=True)
        self._batch_size = _check_positive_int("batch_size", self.batch_size)
        if self.optimizer is None:
            self._learning_rate = _check_positive_float(
                "learning_rate", DEFAULT_LEARNING_RATE[task] if self.learning_rate is None else self.learning_rate)
            self._optimizer = _adam(self._learning_rate)
        elif isinstance(self.optimizer, optax.GradientTransformation):
            self._learning_rate = None
            self._optimizer = self.optimizer
        else:
            raise ConfigError(f"`optimizer` must be an optax.GradientTransformation or None. Got {self.optimizer!r}.")
        if self.class_weight not in ("balanced", None):
            raise ConfigError(f"`class_weight` must be 'balanced' or None. Got {self.class_weight!r}.")
        tail = self.average_tail
        if isinstance(tail, bool) or not isinstance(tail, (int, float)) or not 0.0 <= tail < 1.0:
            raise ConfigError(f"`average_tail` must be in [0, 1). Got {tail!r}.")
        if self.init not in INITS:
            raise ConfigError(f"`init` must be one of {list(INITS)}. Got {self.init!r}.")
        self._init = "dp_means" if self.init == "auto" else self.init
        if self.init_scale is not None:
            _check_positive_float("init_scale", self.init_scale)
            self._init_scale = float(self.init_scale)
        else:
            self._init_scale = _INIT_SCALE if self._init == "noise" else _MEANS_INIT_SCALE[task]
        if self.init_clip is not None:
            _check_positive_float("init_clip", self.init_clip)
        centre = self.init_centre
        if isinstance(centre, bool) or not isinstance(centre, (int, float)) or not 0.0 <= centre < 1.0:
            raise ConfigError(f"`init_centre` must be in [0, 1). Got {centre!r}.")
        for name in ("preprocessing_share", "selection_share", "init_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
                raise ConfigError(f"`{name}` must be in (0, 1). Got {value!r}.")
        if self.select_features is not None:
            _check_positive_int("select_features", self.select_features)
        share = self.preprocessing_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < share < 1.0:
            raise ConfigError(f"`preprocessing_share` must be in (0, 1). Got {share!r}.")
        if self.on_out_of_bounds not in ("clip", "raise"):
            raise ConfigError(f"`on_out_of_bounds` must be 'clip' or 'raise'. Got {self.on_out_of_bounds!r}.")
        if self.verbose not in (0, 1, False, True):
            raise ConfigError(f"`verbose` must be 0 or 1. Got {self.verbose!r}.")
        resolve_n_jobs(self.n_jobs)
        if task == "classification":
            self._loss_name = "balanced_linear" if self.loss is None else self.loss
            ClassificationLoss(self._loss_name)  # validates the name
        else:
            self._loss_name = "discrete_nll" if self.loss is None else self.loss
            if self._loss_name not in SURVIVAL_LOSSES:
                raise ConfigError(f"`loss` must be one of {list(SURVIVAL_LOSSES)} for survival data. Got {self.loss!r}.")
        if isinstance(self.model, str):
            self._preset: Preset | None = get_preset(self.model, task=task)
            self._host_estimator = None
            self._backend = resolve_backend(self._preset, self.backend)
            if self._backend == "host" or (self._soft_labels and task == "survival"):
                host = self._preset.host_factory(2)  # a missing optional dependency is named now, before any work
                if self._soft_labels and task == "survival" and not accepts_sample_weight(as_survival_model(host)):
                    raise ConfigError(f"`soft_labels` (soft events) needs a survival model whose fit accepts "
                                      f"`sample_weight`; the {self.model!r} preset's does not.")
            return
        self._preset = None
        model_task = self._model_task()
        if model_task is None:
            raise ConfigError("`model` must be a preset name, an estimator with fit/predict_proba, or a survival model "
                              f"(fit(X, time, event) / predict_survival). Got {self.model!r}.")
        if model_task != task:
            raise ConfigError(f"`model` {type(self.model).__name__} is a {model_task} model but the data are {task}.")
        self._host_estimator = self.model if task == "classification" else as_survival_model(self.model)
        self._backend = resolve_backend(None, self.backend)
        weighted = (has_fit_parameter(self.model, "sample_weight") if task == "classification"
                    else accepts_sample_weight(self._host_estimator))
        if self._soft_labels and not weighted:
            raise ConfigError(f"`soft_labels` needs a model whose fit accepts `sample_weight`; "
                              f"{type(self.model).__name__}.fit does not.")

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _as_frame(X, y) -> tuple[pd.DataFrame, str]:
        if y is None:
            raise DataError("`y` is required: pass the class labels (one per row of X), or for survival a structured "
                            "(event, time) array, or `duration_col` and `event_col` naming columns of X.")
        frame = Condenser._features_frame(X)
        target = getattr(y, "name", None) or "target"
        if target in frame.columns:
            raise DataError(f"`y` is named {target!r} but X already has a column of that name.")
        y_values = np.asarray(y)
        if y_values.ndim != 1 or y_values.shape[0] != len(frame):
            raise DataError(f"`y` must be 1-dimensional with one label per row of X ({len(frame)}). Got shape {y_values.shape}.")
        # A pandas categorical `y` keeps its categories: they are the task's public classes.
        frame[target] = y.array if isinstance(y, pd.Series) else y_values
        return frame, target

    @staticmethod
    def _features_frame(X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X.copy()
        array = np.asarray(X)
        if array.ndim != 2:
            raise DataError(f"`X` must be 2-dimensional (n_rows, n_columns). Got shape {array.shape}.")
        return pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])

    def _as_survival_frame(self, X, y, duration_col, event_col) -> tuple[pd.DataFrame, str, str]:
        """(frame with time and event columns, time name, event name) from either survival API."""
        schema = self._given_schema()
        if y is not None:
            if duration_col is not None or event_col is not None:
                raise DataError("give either a structured `y` (event, time) or `duration_col` / `event_col`, not both.")
            names = y.dtype.names
            if len(names) != 2:
                raise DataError(f"a structured survival `y` must have two fields (event: bool, time: float), as "
                                f"scikit-survival's Surv.from_arrays makes. Got fields {list(names)}.")
            kinds = {name: y.dtype[name].kind for name in names}
            bool_fields = [name for name in names if kinds[name] == "b"]
            if len(bool_fields) != 1 or kinds[names[1 - names.index(bool_fields[0])]] not in "iuf":
                raise DataError(f"a structured survival `y` needs one boolean event field and one numeric time field. "
                                f"Got dtype {y.dtype}.")
            event_field = bool_fields[0]
            time_field = names[1 - names.index(event_field)]
            # With a schema, the fields take the schema's column names (matched by role, not by name).
            time_name = schema.time.name if schema is not None and schema.time is not None else time_field
            event_name = schema.event if schema is not None and schema.event is not None else event_field
            frame = self._features_frame(X)
            if len(y) != len(frame):
                raise DataError(f"`y` must have one (event, time) per row of X ({len(frame)}). Got {len(y)}.")
            for name in (time_name, event_name):
                if name in frame.columns:
                    raise DataError(f"`y`'s field {name!r} is also a column of X; drop it from X.")
            frame[time_name] = np.asarray(y[time_field])
            frame[event_name] = np.asarray(y[event_field]).astype(np.int64)
            return frame, time_name, event_name
        if not isinstance(X, pd.DataFrame):
            raise DataError("`duration_col` / `event_col` name columns of a DataFrame `X` (lifelines style). "
                            f"Got {type(X).__name__}.")
        if schema is not None and schema.time is not None:
            duration_col = schema.time.name if duration_col is None else duration_col
            event_col = schema.event if event_col is None else event_col
        if duration_col is None or event_col is None:
            raise DataError(f"survival needs both `duration_col` and `event_col`. Got duration_col={duration_col!r}, "
                            f"event_col={event_col!r}.")
        for role, name in (("duration_col", duration_col), ("event_col", event_col)):
            if name not in X.columns:
                raise DataError(f"`{role}` {name!r} not found; columns are: {', '.join(map(str, X.columns))}.")
        if schema is not None and (schema.time.name, schema.event) != (duration_col, event_col):
            raise DataError(f"the schema's time and event columns are {schema.time.name!r} and {schema.event!r}; "
                            f"got duration_col={duration_col!r}, event_col={event_col!r}.")
        return X.copy(), duration_col, event_col

    def _given_schema(self) -> Schema | None:
        if self.schema is None:
            return None
        return self.schema if isinstance(self.schema, Schema) else Schema.from_json(self.schema)

    def _schema_noise(self) -> tuple[float, float]:
        """(noise multiplier, threshold delta) of a DP schema estimate given the preprocessing share of the
        budget, split in rho (:func:`~zodc.data.dp_schema.schema_noise_multiplier`)."""
        threshold_delta = _THRESHOLD_DELTA_SHARE * self._delta
        return schema_noise_multiplier(self._epsilon, self._delta, threshold_delta, self.preprocessing_share), \
            threshold_delta

    def _estimate_schema(self, frame, keys: RunKeys, ledger: Ledger, **roles):
        """The DP schema and the DP record count (post-processing of its histograms), accounted; with
        ``epsilon=inf`` the exact schema (non-private mode, nothing in the ledger)."""
        check_raw_table(frame, **roles)
        noise, threshold_delta = self._schema_noise()
        schema, events, count = estimate_schema_and_count(keys.generator("schema"), frame, noise_multiplier=noise,
                                                          threshold_delta=threshold_delta, name="estimated", **roles)
        if noise > 0:
            # Every count's noise std is at least `noise` (each part's share of the budget is < 1); a
            # column has at most 1 + N_BINS + 2^30 scan bins and as many refinement bins.
            self._draws.append((noise, 1 + 2 * (len(frame.columns) + 1) * (1 + N_BINS + 2**30)))
        for event in events:
            ledger.add("schema", event, "DP column kinds and bounds (public log-scale bins, refined), category "
                       "levels (thresholded), missingness, class proportions or event rate and the record count")
        return schema, count

    def _record_count(self, num_records: int, keys: RunKeys, ledger: Ledger, noise: float) -> float:
        """A DP count of the records (``n`` is private under add/remove), accounted; exact without noise.
        Inside a private search, the candidates after the first reuse its count (set by
        :class:`~zodc.tuning.PrivateSearch`, post-processing of a mechanism already in the search's ledger)."""
        if not math.isfinite(self._epsilon):
            return float(num_records)
        shared = getattr(self, "_shared_record_count", None)
        if shared is not None:
            return float(shared)
        count, event = estimate_record_count(keys.generator("record_count"), num_records, noise)
        self._draws.append((noise, 1))
        ledger.add("record_count", event, "DP count of the records: sets the sampling probability and the start's "
                   "group sizes (n is private under add/remove)")
        return count

    def _preprocessing_noise(self, mechanisms: int) -> float:
        """Noise multiplier of each of ``mechanisms`` Gaussian preprocessing mechanisms (unit
        sensitivity) that together spend ``preprocessing_share`` of epsilon. Public inputs only."""
        if not math.isfinite(self._epsilon):
            return 0.0
        return calibrate_noise_multiplier(self._epsilon * self.preprocessing_share, self._delta,
                                          lambda s: ComposedEvent(tuple(GaussianEvent(s) for _ in range(mechanisms))))

    def _resolve_schema(self, frame: pd.DataFrame, target: str, keys: RunKeys, ledger: Ledger):
        """Returns (schema, class proportions, record count) — public or DP, all accounted."""
        if self.schema is None:
            schema, count = self._estimate_schema(frame, keys, ledger, target=target)
            return schema, schema.class_proportions, count
        schema = self._given_schema()
        if schema.task != "classification":
            raise DataError(f"schema {schema.name!r} is for {schema.task}; the data given are for classification.")
        if schema.target != target:
            raise DataError(f"the schema's target is {schema.target!r} but `y` is named {target!r}; "
                            f"pass y as a Series named {schema.target!r}.")
        proportions = schema.class_proportions
        # Needed by the class-balanced loss and by the DP-means start (its divisors n_hat * proportions).
        needed = proportions is None and (self.class_weight == "balanced" or self._init == "dp_means")
        noise = self._preprocessing_noise(2 if needed else 1)
        if needed:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # reported once, by the fit's own validation
                encoded_y = TableEncoder(schema).encode(validate_table(frame, schema, on_out_of_bounds="clip",
                                                                       require_variation=False)).y
            if not math.isfinite(self._epsilon):  # non-private mode: the exact proportions
                counts = np.bincount(encoded_y, minlength=schema.n_classes).astype(np.float64)
                return schema, tuple(np.maximum(counts, 1.0) / max(counts.sum(), 1.0)), float(len(frame))
            proportions, event = estimate_class_proportions(keys.generator("class_proportions"), encoded_y,
                                                            schema.n_classes, noise)
            self._draws.append((noise, schema.n_classes))
            ledger.add("class_proportions", event, "DP class counts (class-balanced loss, DP-means start)")
        return schema, proportions, self._record_count(len(frame), keys, ledger, noise)

    def _resolve_survival_schema(self, frame: pd.DataFrame, time: str, event: str, keys: RunKeys, ledger: Ledger):
        """Returns (schema, event rate, record count) — public or DP, accounted in ``ledger``."""
        if self.schema is None:
            schema, count = self._estimate_schema(frame, keys, ledger, time=time, event=event)
            return schema, float(schema.event_rate), count
        schema = self._given_schema()
        if schema.task != "survival":
            raise DataError(f"schema {schema.name!r} is for {schema.task}; the data given are for survival.")
        if schema.event_rate is not None:
            return schema, float(schema.event_rate), self._record_count(len(frame), keys, ledger,
                                                                        self._preprocessing_noise(1))
        noise = self._preprocessing_noise(2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported once, by the fit's own validation
            events = validate_table(frame, schema, on_out_of_bounds="clip", require_variation=False)[schema.event].to_numpy()
        if math.isfinite(self._epsilon):
            rate, mechanism = estimate_event_rate(keys.generator("event_rate"), events, noise)
            self._draws.append((noise, 2))
            ledger.add("event_rate", mechanism, "DP count of events and censorings: the synthetic rows' event share")
        else:
            rate = float(np.mean(events))  # non-private mode: the exact rate
        return schema, rate, self._record_count(len(frame), keys, ledger, noise)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, duration_col=None, event_col=None) -> "Condenser":
        """Condenses the private table into ``synthetic_``.

        Classification: ``fit(X, y)`` with class labels. Survival, either
        ``fit(frame, duration_col="time", event_col="cens")`` (lifelines style; the two columns are
        in ``frame``, and may be omitted when the schema names them) or ``fit(X, y)`` with ``y`` a
        structured array of a boolean event field and a numeric time field (scikit-survival's
        ``Surv.from_arrays``; with a schema, the fields take its time / event names).

        Args:
          X: ``(n, d)`` DataFrame (or array: columns named ``x0..``) of features.
          y: ``(n,)`` class labels (a Series' name is the target column's name), or the structured
            survival target.
          duration_col, event_col: survival columns of ``X``.

        Returns:
          self.

        Raises:
          ConfigError: a hyperparameter out of range (named), or a model for the other task.
          DataError: unusable data (named column and problem).
          PrivacyBudgetError: the target (epsilon, delta) cannot be met.
        """
        survival_data = (duration_col is not None or event_col is not None or _is_structured_survival(y)
                         or (y is None and self._given_schema() is not None and self._given_schema().task == "survival"))
        task = "survival" if survival_data else "classification"
        if y is None and not survival_data:
            self._as_frame(X, y)  # raises: names what is missing for either task
        self._validate_params(task)
        keys = RunKeys(resolve_seed(self.random_state))  # the seed is a secret: it is not kept
        self._draws = []  # (scale, count) of every exact-noise draw: the sampler's delta (zodc.privacy.noise)
        self._selection_draws = 0  # exponential-mechanism candidates drawn (feature selection)
        ledger = Ledger()
        if task == "survival":
            return self._fit_survival(X, y, duration_col, event_col, keys, ledger)

        frame, target = self._as_frame(X, y)
        if self._soft_labels and soft.SAMPLE_WEIGHT_COLUMN in frame.columns:
            raise DataError(f"the table has a column named {soft.SAMPLE_WEIGHT_COLUMN!r}, the soft-label release's "
                            "weight column: rename it, or condense without `soft_labels`.")
        schema, proportions, record_count = self._resolve_schema(frame, target, keys, ledger)
        clean = validate_table(frame, schema, on_out_of_bounds=self.on_out_of_bounds, require_variation=False)
        encoder = TableEncoder(schema)
        _require_features(encoder)
        encoded = encoder.encode(clean)
        X_real = np.asarray(encoded.X, np.float32)
        y_real = np.asarray(encoded.y, np.int32)
        num_records, num_features = X_real.shape
        num_classes = schema.n_classes
        num_rows = self._rows_per_class * num_classes
        self._check_size(record_count, num_rows, "rows_per_class")

        weights = tuple(balanced_class_weights(proportions)) if self.class_weight == "balanced" else None
        loss = ClassificationLoss(self._loss_name, class_weights=weights)

        selected = self._select_features(keys, X_real, y_real, proportions, num_classes, record_count, ledger)
        labels = np.repeat(np.arange(num_classes, dtype=np.int32), self._rows_per_class)
        learned_X = X_real if selected is None else X_real[:, selected]
        init_table = self._initial_table(keys, learned_X, y_real, labels, num_classes,
                                         lambda: record_count * np.asarray(proportions, np.float64), ledger, "per-class")
        if self._soft_labels:  # the learned own-class weight column
            init_table = self._with_weight_column(init_table)
        noise_multiplier, clip, sampling_probability, epsilon_spent, private = self._calibrate(ledger, record_count)
        model_key = keys.jax_keys("model")[0]

        evaluator = None
        if self._backend == "native":
            evaluate_fn = native_classifier_evaluator(self._preset.native_factory(num_classes), loss,
                                                      soft_labels=self._soft_labels, num_classes=num_classes)
            data = native_classifier_data(X_real, y_real, labels, model_key)
        else:
            estimator = self._host_estimator if self._preset is None else self._preset.host_factory(num_classes)
            payload = {"estimator": estimator, "X": X_real.astype(np.float64), "y": y_real,
                       "synthetic_labels": labels, "num_classes": num_classes, "loss": loss,
                       "soft_labels": self._soft_labels}
            evaluator = HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound,
                                      num_records=num_records, n_jobs=self.n_jobs)
            evaluate_fn = evaluator.jax_fn()
            data = None
        if selected is not None:
            embed = _cached_embedding_evaluator if evaluator is None else _embedding_evaluator
            evaluate_fn = embed(evaluate_fn, num_features, int(self._soft_labels))
            data = (data, jnp.asarray(selected))
        learned, infos = self._condense(evaluate_fn, evaluator, data, init_table, keys, ledger, num_records,
                                        record_count, noise_multiplier, clip, sampling_probability, private)

        own = learned[:, -1:] if self._soft_labels else None  # the last learned column: the own-class weight
        table = learned[:, :-1] if self._soft_labels else learned
        if selected is not None:
            table = np.zeros((num_rows, num_features))
            table[:, selected] = learned[:, :selected.size]
        sample_weight = None
        if own is not None:
            table, labels, sample_weight = soft.expand(np.hstack([table, own]), labels, num_classes)
        released = encoder.decode(table, y=labels, rng=keys.generator("release"))
        self.table_ = np.asarray(encoder.encode(released).X, np.float64)
        if sample_weight is not None:
            released[soft.SAMPLE_WEIGHT_COLUMN] = sample_weight
        self.labels_ = labels
        self.sample_weight_ = sample_weight
        self.class_weights_ = weights
        self.selected_features_ = None if selected is None else selected
        self.classes_ = np.asarray(schema.target_column.categories, dtype=object)
        self._set_common(released, schema, ledger, noise_multiplier, sampling_probability, clip,
                         record_count, num_rows, infos)
        return self

    def _check_size(self, record_count: float, num_rows: int, parameter: str) -> None:
        """Refuses a table not larger than the synthetic one — decided on the DP count ``n_hat``
        (already in the ledger), never on ``n``: one record cannot decide it beyond what the noise allows."""
        if record_count <= num_rows:
            raise DataError(f"the table's DP record count ({record_count:.0f}) is not more than the synthetic table's "
                            f"{num_rows} rows: condensing would not make it smaller. Lower `{parameter}`. (The DP "
                            "preprocessing already run is accounted; nothing was released.)")

    def _fit_survival(self, X, y, duration_col, event_col, keys, ledger) -> "Condenser":
        frame, time_name, event_name = self._as_survival_frame(X, y, duration_col, event_col)
        if self._soft_labels and soft.SAMPLE_WEIGHT_COLUMN in frame.columns:
            raise DataError(f"the table has a column named {soft.SAMPLE_WEIGHT_COLUMN!r}, the soft-event release's "
                            "weight column: rename it, or condense without `soft_labels`.")
        schema, event_rate, record_count = self._resolve_survival_schema(frame, time_name, event_name, keys, ledger)
        clean = validate_table(frame, schema, on_out_of_bounds=self.on_out_of_bounds, require_variation=False)
        encoder = TableEncoder(schema)
        _require_features(encoder)
        encoded = encoder.encode(clean)
        X_real = np.asarray(encoded.X, np.float32)
        time_real = np.asarray(clean[schema.time.name], np.float64)
        event_real = np.asarray(encoded.event, np.int64)
        num_records, num_features = X_real.shape
        if self._soft_events_auto:
            self._soft_labels = self._resolve_soft_events(record_count, event_rate, num_features + 1,
                                                          soft.SAMPLE_WEIGHT_COLUMN in frame.columns)
        num_rows = self._rows
        self._check_size(record_count, num_rows, "rows")
        num_events = synthetic_event_count(event_rate, num_rows)
        events = (np.arange(num_rows) < num_events).astype(np.int64)
        time_scale = TimeScale.from_schema(schema)
        grid = public_time_grid(schema.time.lower, schema.time.upper, self._num_time_bins, self.time_grid)
        # Brier: no IPCW weights — the censoring distribution would have to be public or DP (see SurvivalLoss).
        loss = SurvivalLoss(self._loss_name, grid)
        values = np.concatenate([X_real, np.asarray(time_scale.encode(time_real), np.float32)[:, None]], axis=1)
        sizes = lambda: record_count * np.array([1.0 - event_rate, event_rate])
        init_table = self._initial_table(keys, values, event_real, events, 2, sizes, ledger,
                                         "per-event-status (censored / event)")
        if self._init == "noise" and self.time_init == "uniform":
            time_column = jax.random.uniform(jax.random.fold_in(self._spread_key, 1), (num_rows,), minval=-1.0,
                                             maxval=1.0)
            init_table = init_table.at[:, -1].set(time_column)
        if self._soft_labels:  # soft events: the learned own-status weight column
            init_table = self._with_weight_column(init_table)
        noise_multiplier, clip, sampling_probability, epsilon_spent, private = self._calibrate(ledger, record_count)
        model_key = keys.jax_keys("model")[0]
        evaluator = None
        if self._backend == "native":
            evaluate_fn = native_survival_evaluate_fn(self._preset.native_factory(2), loss, time_scale,
                                                      self._soft_labels)
            data = native_survival_data(X_real, time_real, event_real, events, model_key)
        else:
            estimator = self._host_estimator if self._preset is None else self._preset.host_factory(2)
            payload = host_survival_payload(estimator, loss, X_real.astype(np.float64), time_real, event_real,
                                            events, time_scale, soft_events=self._soft_labels)
            evaluator = HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound,
                                      num_records=num_records, n_jobs=self.n_jobs)
            evaluate_fn = evaluator.jax_fn()
            data = None
        table, infos = self._condense(evaluate_fn, evaluator, data, init_table, keys, ledger, num_records,
                                      record_count, noise_multiplier, clip, sampling_probability, private)

        released_events, sample_weight = events, None
        if self._soft_labels:  # every row as an event copy and a censored copy, weighted
            table, released_events, sample_weight = expand_soft_events(np.asarray(table, np.float64), events)
            released_events = np.asarray(released_events, np.int64)
        released = encoder.decode(table[:, :-1], time=time_scale.decode(table[:, -1]), event=released_events,
                                  rng=keys.generator("release"))
        self.table_ = np.concatenate([np.asarray(encoder.encode(released).X, np.float64),
                                      np.asarray(time_scale.encode(released[schema.time.name].to_numpy(np.float64)))[:, None]],
                                     axis=1)
        if sample_weight is not None:
            released[soft.SAMPLE_WEIGHT_COLUMN] = sample_weight
        self.sample_weight_ = sample_weight
        self.events_ = events
        self.event_rate_ = float(event_rate)
        self.time_grid_ = grid
        self._set_common(released, schema, ledger, noise_multiplier, sampling_probability, clip,
                         record_count, num_rows, infos)
        return self

    def _with_weight_column(self, init_table):
        """The start with the soft-label / soft-event weight column appended, every row at the public
        ``soft_label_start`` (data independent)."""
        column = jnp.full((init_table.shape[0], 1), soft.weight_column(self.soft_label_start), init_table.dtype)
        return jnp.concatenate([init_table, column], axis=1)

    def _start_noise(self, num_records: int, event_rate: float, width: int) -> float:
        """Standard deviation, per encoded coordinate, of the DP noise on the difference between the
        start's event and censored means: ``sigma * init_clip * sqrt(d) * sqrt(1/n_1^2 + 1/n_0^2)``,
        ``sigma`` the group means' noise multiplier (:meth:`_start_sigmas`), ``n_1, n_0`` the group
        sizes from ``n`` and the event rate (0 without noise).

        Could this leak? No: epsilon, delta, the shares, the clip, ``d`` and ``n`` are public and the
        event rate is public or already DP (in the ledger) — post-processing.
        """
        if not math.isfinite(self._epsilon):
            return 0.0
        sigma = self._start_sigmas()[1]
        clip = self._start_row_clip(width)
        events = max(num_records * event_rate, 1.0)
        censored = max(num_records * (1.0 - event_rate), 1.0)
        return sigma * clip * math.sqrt(1.0 / events ** 2 + 1.0 / censored ** 2)

    def _start_row_clip(self, width: int) -> float:
        """L2 clip of each row (or its offset from the DP centre) in the ``"dp_means"`` start:
        ``init_clip * sqrt(width)`` (``init_clip=None``: 0.5). Public."""
        return (_INIT_CLIP_PER_SQRT_D if self.init_clip is None else float(self.init_clip)) * math.sqrt(width)

    def _start_sigmas(self) -> tuple:
        """Noise multipliers ``(centre, group means)`` of the ``"dp_means"`` start: one Gaussian
        mechanism's ``sigma`` at ``init_share`` of epsilon split as ``sigma / sqrt(c)`` and
        ``sigma / sqrt(1 - c)``, ``c = init_centre`` (``(inf, sigma)`` when ``c = 0``: no centre is
        released). Their RDP curves add up to the single mechanism's at every order, so the split
        costs nothing extra. Public inputs only."""
        sigma = calibrate_noise_multiplier(self._epsilon * self.init_share, self._delta, GaussianEvent)
        share = float(self.init_centre)
        if share == 0.0:
            return math.inf, sigma
        return sigma / math.sqrt(share), sigma / math.sqrt(1.0 - share)

    def _resolve_soft_events(self, num_records: int, event_rate: float, width: int, clashing_column: bool) -> bool:
        """``soft_labels="auto"`` on survival data: soft events when :meth:`_start_noise` exceeds 0.2
        (ablation rounds 20-21: at epsilon 1 soft events raised Cox's C-index on lung, +0.022 over 60
        seeds, and larynx, where the start's noise is 0.36 and 0.44, and were level on gbsg2 and kidney
        transplant at 0.08), if the model accepts ``sample_weight`` and no column is named
        ``sample_weight``; otherwise fixed events. Public inputs only (see :meth:`_start_noise`)."""
        if clashing_column:
            return False
        model = as_survival_model(self._preset.host_factory(2)) if self._preset is not None else self._host_estimator
        if not accepts_sample_weight(model):
            return False
        return self._start_noise(num_records, event_rate, width) > _SOFT_EVENTS_START_NOISE

    def _initial_table(self, keys, values, groups, row_groups, num_groups, group_sizes, ledger, what):
        """The starting synthetic table ``(m, width)`` in encoded units.

        ``"noise"``: ``N(0, init_scale^2)`` clamped to [-1, 1] — data independent. ``"dp_means"``:
        each row starts at its group's DP mean (class, or event status for survival) plus
        ``N(0, init_scale^2)``, clamped to [-1, 1].

        Could this leak? ``"noise"`` no. ``"dp_means"`` only through one Gaussian mechanism
        (:func:`~zodc.privacy.moments.dp_group_means`, rows clipped to L2 norm ``init_clip sqrt(width)``)
        whose noise is calibrated to ``init_share`` of epsilon and which goes in the ledger; the
        group sizes it divides by (``group_sizes()``, called only for a private start) are public
        ``n`` times public or DP proportions, already in the ledger. With ``epsilon=inf`` the exact
        means, over the exact group sizes, are used (the non-private reference). With
        ``init_centre > 0`` the rows are clipped around a DP mean of all rows (a second Gaussian
        mechanism, also in the ledger, dividing by the public ``n``); the two are calibrated so that
        together they cost what the one would (:meth:`_start_sigmas`).
        """
        num_rows, width, scale = len(row_groups), values.shape[1], self._init_scale
        init_key = self._spread_key = keys.jax_keys("start_spread")[0]  # post-processing noise, data independent
        if self._init == "noise":
            return jnp.clip(scale * jax.random.normal(init_key, (num_rows, width)), -1.0, 1.0)
        groups = np.asarray(groups, np.int64)
        centre = None
        if math.isfinite(self._epsilon):
            centre_sigma, sigma = self._start_sigmas()
            row_clip = self._start_row_clip(width)
            sizes = group_sizes()
            if math.isfinite(centre_sigma):
                centre_clip = _INIT_CLIP_PER_SQRT_D * math.sqrt(width)
                centre, centre_event = dp_group_means(
                    keys.generator("start_centre"), values, np.zeros(len(groups), np.int64), 1,
                    [float(group_sizes().sum())], centre_clip, centre_sigma)
                self._draws.append((centre_sigma * 2.0**GRID_BITS, width))
                centre = centre[0]
                ledger.add("initialisation_centre", centre_event, f"DP mean of all encoded rows (clipped to L2 "
                           f"norm {centre_clip:.3g}), the centre the start's {what} means clip around")
        else:  # the non-private reference: exact means, exact group sizes
            sigma, row_clip = 0.0, math.inf
            sizes = np.maximum(np.bincount(groups, minlength=num_groups), 1).astype(np.float64)
        means, event = dp_group_means(keys.generator("start_means"), values, groups, num_groups, sizes, row_clip,
                                      sigma, centre=centre)
        self._draws.append((sigma * 2.0**GRID_BITS, num_groups * width))
        if event is not None:
            ledger.add("initialisation", event, f"DP {what} means of the encoded rows (clipped to L2 norm "
                       f"{row_clip:.3g} around {'the DP centre' if centre is not None else 'the origin'}), the "
                       "synthetic table's starting point")
        start = jnp.asarray(means[np.asarray(row_groups)], jnp.float32)
        return jnp.clip(start + scale * jax.random.normal(init_key, (num_rows, width)), -1.0, 1.0)

    def _select_features(self, keys, X_real, y_real, proportions, num_classes, num_records, ledger):
        """Private feature selection (or ``None``); the mechanism goes in the ledger.

        Could this leak? Only through the exponential mechanism's choice, accounted at its epsilon;
        the class proportions it scores with are public or DP, and ``n`` is public.
        """
        if self.select_features is None:
            return None
        num_selected = int(self.select_features)
        if num_selected >= X_real.shape[1]:
            return None  # every column is learned: nothing to select, nothing spent
        if math.isfinite(self._epsilon):
            per_selection = calibrate_selection_epsilon(self._epsilon * self.selection_share, self._delta, num_selected)
        else:
            per_selection = math.inf
        weights = proportions if proportions is not None else np.full(num_classes, 1.0 / num_classes)
        selected, event = select_features(keys.generator("feature_selection"), X_real, y_real, num_selected, weights,
                                          num_records, per_selection)
        self._selection_draws = num_selected * X_real.shape[1]  # candidates over the k draws
        ledger.add("feature_selection", event, f"exponential mechanism, {num_selected} of {X_real.shape[1]} encoded "
                   f"columns by class separation, epsilon {per_selection:.4g} each")
        return np.asarray(selected)

    def _calibrate(self, ledger: Ledger, num_records: float):
        """Calibrates the steps so that everything composed meets the target; adds them to the ledger.

        ``num_records`` is the DP count ``n_hat`` (public after its mechanism), so ``p`` reveals
        nothing beyond the ledger. Returns (noise multiplier, clip, sampling probability, epsilon
        spent, private)."""
        sampling_probability = min(1.0, self._batch_size / num_records)
        base_events = [entry.event for entry in ledger.entries]
        private = math.isfinite(self._epsilon)
        step_event = lambda sigma: SelfComposedEvent(PoissonSampledEvent(sampling_probability, GaussianEvent(sigma)), self._steps)
        # Set only by zodc.tuning.PrivateSearch (never a constructor parameter, so `clone` drops it):
        # (target epsilon, target delta, events spent or reserved before this fit, copies) — the steps
        # are calibrated so that those events plus `copies` copies of this fit's whole ledger meet
        # the search's target, instead of this fit's own `epsilon`.
        joint = getattr(self, "_joint_budget", None) if private else None
        if joint is not None:
            joint_epsilon, joint_delta, prior_events, copies = joint
            # The search shares the first candidate's record count with the others: it is spent once.
            once = tuple(entry.event for entry in ledger.entries if entry.name == "record_count")
            own = tuple(entry.event for entry in ledger.entries if entry.name != "record_count")
            prior_events = tuple(prior_events) + once
            noise_multiplier = calibrate_noise_multiplier(
                joint_epsilon, joint_delta, lambda s: SelfComposedEvent(ComposedEvent(own + (step_event(s),)), copies),
                base_events=tuple(prior_events))
        elif private:
            noise_multiplier = calibrate_noise_multiplier(self._epsilon, self._delta, step_event, base_events=base_events)
        else:
            noise_multiplier = 0.0
        clip = self._l2_norm_clip if private else math.inf
        ledger.add("zero_order_steps", step_event(noise_multiplier),
                   f"{self._steps} Poisson-sampled Gaussian steps: per-record ({self._num_directions},) loss "
                   f"differences clipped to L2 norm {clip}, noise std {noise_multiplier:.4g} x clip")
        epsilon_spent = ledger.epsilon(self._delta) if private else math.inf
        if joint is not None:  # the search's target is what must hold, with this fit counted `copies` times
            check = RdpAccountant()
            for event in prior_events:
                check.compose(event)
            for entry in ledger.entries:
                if entry.name != "record_count":
                    check.compose(entry.event, copies)
            joint_spent = check.get_epsilon(joint_delta)
            if joint_spent > joint_epsilon * (1 + 1e-9):
                raise PrivacyBudgetError(f"the search's epsilon {joint_spent:.6f} exceeds its target {joint_epsilon}.")
        elif private and epsilon_spent > self._epsilon * (1 + 1e-9):
            raise PrivacyBudgetError(f"the ledger's epsilon {epsilon_spent:.6f} exceeds the target {self._epsilon}.")
        return noise_multiplier, clip, sampling_probability, epsilon_spent, private

    def _condense(self, evaluate_fn, evaluator, data, init_table, keys, ledger, num_records, record_count,
                  noise_multiplier, clip, sampling_probability, private):
        """Runs the loop; returns the learned table ``(m, w)`` (the last or averaged iterate) and the infos.

        With ``subspace=r`` the loop learns ``r`` coordinates ``theta`` of the table's offset from
        its start, ``S = clip(S_0 + reshape(theta B))``, ``B`` a public random basis
        (:func:`subspace_basis`). Could this leak? ``S_0`` is the private start already in the
        ledger, ``B`` is data independent, and the steps are the same accounted mechanism on a
        shorter vector; the released table is post-processing of ``theta``.
        """
        average_from = None if self.average_tail == 0 else int(round(self._steps * (1 - self.average_tail)))
        # Native evaluators are cached functions of public configuration, so the condenser (and its
        # compiled step) is shared between fits of equal configuration; a host evaluator holds a
        # process pool and the real records, so its condenser is built afresh and not kept.
        reuse = evaluator is None
        decode = None
        if self._subspace is not None:
            size = int(init_table.shape[0] * init_table.shape[1])
            if self._subspace > size:
                raise ConfigError(f"`subspace` must be at most the learnable table's {size} cells "
                                  f"({init_table.shape[0]} rows x {init_table.shape[1]} columns). Got {self._subspace}.")
            basis_key = keys.jax_keys("subspace")[0]
            anchor = jnp.asarray(init_table, jnp.float32)
            basis = subspace_basis(basis_key, self._subspace, size)
            evaluate_fn = (_cached_subspace_evaluator if reuse else _subspace_evaluator)(evaluate_fn)
            data = (data, anchor, basis)
            init_table = jnp.zeros((1, self._subspace), jnp.float32)
            decode = lambda theta: subspace_tables(theta, anchor, basis)
        build = _cached_condenser if reuse else _build_condenser
        optimizer = self._optimizer
        if self._soft_labels and self._soft_label_steps is not None and self._soft_label_steps < self._steps:
            optimizer = _freeze_last_column(optimizer, self._soft_label_steps)
        condenser = build(evaluate_fn, optimizer, num_records, self._num_directions, self.scheme, average_from,
                          self.directions, decode is None)
        params = StepParams(smoothing=jnp.float32(self._smoothing), l2_norm_clip=jnp.float32(clip),
                            noise_multiplier=jnp.float32(noise_multiplier),
                            sampling_probability=jnp.float32(sampling_probability),
                            expected_batch_size=jnp.float32(sampling_probability * record_count))
        # The steps' exact noise, in grid units (zodc.privacy.noise), drawn on the host from its own stream.
        num_directions = self._num_directions
        noise = rounded_gaussian(keys.generator("step_noise"), noise_multiplier * 2.0**GRID_BITS,
                                 (self._steps, num_directions)).astype(np.int32)
        self._draws.append((noise_multiplier * 2.0**GRID_BITS, self._steps * num_directions))
        self._account_sampling(ledger)
        run_key = keys.jax_keys("steps")
        progress = _Progress(self._steps, self._epsilon_after_fn(ledger, self._delta, private), bool(self.verbose))
        chunk_size = 25 if self._backend == "native" else 1
        try:
            state = condenser.init(run_key, init_table)
            state, infos = run(condenser, state, params, self._steps, data=data, noise=noise, chunk_size=chunk_size,
                               on_chunk=progress, reuse=reuse)
        finally:
            if evaluator is not None:
                evaluator.close()
        learned = state.average if decode is None else decode(state.average)
        return np.asarray(learned, dtype=np.float64), infos

    def _account_sampling(self, ledger: Ledger) -> None:
        """Puts the exact sampler's total-variation slack in the ledger (``AdditiveDeltaEvent``,
        :func:`zodc.privacy.noise.noise_sampling_delta`; ~1e-28), then checks the target still holds.
        The counts are public (shapes, and a 2^30-level cap per categorical column), never ``n``."""
        if not math.isfinite(self._epsilon) or self._epsilon > 100:
            # (1 + e^eps) eta exceeds any delta above eps = 100, where the guarantee promises nothing
            # anyway (e^100 ~ 1e43): such runs are near-non-private references, not releases.
            return
        draws, selection = self._draws, getattr(self, "_selection_draws", 0)
        # Feature selection: TV <= 2^-48 per candidate and draw (float64 probabilities, 128-bit uniforms).
        delta = noise_sampling_delta(self._epsilon, draws) + (1.0 + math.exp(min(self._epsilon, 700.0))) * selection * 2.0**-48
        ledger.add("noise_sampling", AdditiveDeltaEvent(min(delta, 1.0)),
                   "the exact samplers' total-variation distance from the ideal mechanisms (zodc.privacy.noise)")
        joint = getattr(self, "_joint_budget", None)
        if joint is None and ledger.epsilon(self._delta) > self._epsilon * (1 + 1e-9):
            raise PrivacyBudgetError(f"the ledger's epsilon {ledger.epsilon(self._delta):.6f} exceeds the target "
                                     f"{self._epsilon}.")

    def _set_common(self, released, schema, ledger, noise_multiplier, sampling_probability, clip,
                    record_count, num_rows, infos) -> None:
        self.synthetic_ = released
        self.task_ = self._task
        self.schema_ = schema
        self.ledger_ = ledger
        self.epsilon_ = ledger.epsilon(self._delta) if math.isfinite(self._epsilon) else math.inf
        self.record_count_ = float(record_count)
        self.delta_ = self._delta
        self.noise_multiplier_ = float(noise_multiplier)
        self.sampling_probability_ = float(sampling_probability)
        self.l2_norm_clip_ = float(clip)
        self.backend_ = self._backend
        self.soft_labels_ = self._soft_labels
        self.init_ = self._init
        self.init_scale_ = self._init_scale
        self.learning_rate_ = self._learning_rate
        self.loss_ = self._loss_name
        self.num_rows_ = int(num_rows)
        self.n_features_in_ = len(schema.feature_names)
        self.feature_names_in_ = np.asarray(schema.feature_names, dtype=object)
        self.history_ = {name: np.asarray(value) for name, value in infos._asdict().items()}

    @staticmethod
    def _epsilon_after_fn(ledger: Ledger, delta: float, private: bool):
        """``t -> epsilon`` spent after ``t`` steps (for the progress bar), from precomputed RDP."""
        if not private:
            return lambda t: math.inf
        entries = list(ledger.entries)
        steps_entry = next(entry for entry in entries if entry.name == "zero_order_steps")
        pre = [entry for entry in entries if entry is not steps_entry]
        orders = np.asarray(ledger.accountant().orders)
        pre_rdp = np.zeros(len(orders))
        for entry in pre:
            pre_rdp = pre_rdp + rdp_of_event(entry.event, orders)
        remaining_delta = delta - sum(additive_delta_of_event(entry.event) for entry in pre)
        step_rdp = rdp_of_event(steps_entry.event.event, orders)
        return lambda t: rdp_to_epsilon(pre_rdp + t * step_rdp, orders, remaining_delta)[0]

    def report(self) -> dict[str, Any]:
        """The privacy part of the release report (JSON-serialisable). ``epsilon`` is the tighter of
        two valid bounds on the whole ledger, RDP (what calibration used: ``epsilon_rdp``, equal to
        ``epsilon_``) and dp-accounting's PLD where it supports the ledger; ``accountant`` says which."""
        ledger = self.ledger_.to_dict(self.delta_)
        private = math.isfinite(self.epsilon_)
        return {
            "epsilon": ledger["epsilon"] if private else self.epsilon_, "epsilon_rdp": self.epsilon_,
            "epsilon_pld": ledger["epsilon_pld"] if private else None, "delta": self.delta_,
            "noise_multiplier": self.noise_multiplier_,
            "sampling_probability": self.sampling_probability_, "steps": int(self._steps),
            "l2_norm_clip": self.l2_norm_clip_, "num_directions": int(self._num_directions),
            "directions": self.directions, "subspace": self._subspace,
            "accountant": (("PLD (dp-accounting's privacy-loss distributions)" if ledger["accountant"] == "PLD" else
                            "RDP (Poisson-subsampled Gaussian, Mironov et al. 2019), tight conversion")
                           + (f"; PLD not used: {ledger['pld_note']}" if ledger.get("pld_note") else "")
                           if private else "non-private (epsilon = inf)"),
            "noise": ("exact: integer sums on a grid plus rounded Gaussian noise from 256-bit uniforms, "
                      "post-processing of the Gaussian mechanism (zodc.privacy.noise)"),
            "randomness": ("fresh 128-bit OS entropy" if self.random_state is None else
                           "a seed the user gave: private only while it stays secret"),
            "neighbouring_relation": ("add or remove one record: the number of records n is private; the sampling "
                                      "probability comes from a DP count (ledger: schema or record_count)"),
            "public_assumptions": self._public_assumptions(),
            "ledger": ledger,
        }

    def _public_assumptions(self) -> list[str]:
        assumptions = ["column names and their declared kinds (numeric, integer, categorical); undeclared kinds are "
                       "decided with DP"]
        if self.schema is None and self.task_ == "classification":
            assumptions.append(f"the target's classes {list(self.schema_.target_column.categories)}: the task's "
                               "definition (declared, or the target's distinct labels), not a record's value")
        if self.schema is None:
            assumptions.append("a column whose name says it is an identifier is left out (a decision on the name)")
        if self.schema is not None:
            extra = (", class proportions" if self.schema_.class_proportions else "") if self.task_ == "classification" \
                else (", time bounds, event rate" if self.schema_.event_rate is not None else ", time bounds")
            assumptions.append(f"schema (bounds, categories{extra}) given as public")
        if self.task_ == "survival":
            source = "the public schema" if self.schema is not None and self.schema_.event_rate is not None else \
                "the DP event rate (ledger)"
            assumptions.append(f"synthetic events fixed: {int(self.events_.sum())} of {self.num_rows_} rows "
                               f"(round(event_rate x rows), event rate {self.event_rate_:.3f} from {source}); "
                               f"loss on a public log-time grid of {len(self.time_grid_)} bins within the time bounds")
        return assumptions
