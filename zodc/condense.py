"""The functional core: private zero-order condensation as ``init`` / ``ask`` / ``tell`` over explicit state.

Shaped like an optax ``GradientTransformation`` or an evosax strategy: :func:`zero_order_condenser`
returns a :class:`ZeroOrderCondenser`, a frozen dataclass of what fixes shapes (number of
directions, scheme, the evaluation function, the optimiser) with pure ``init``, ``ask``, ``tell``
and ``step`` (ask, evaluate, tell). Being a value, equal configurations share one compiled program
through ``jax.jit``'s cache. Everything one may sweep (smoothing, clip, noise, sampling
probability) lives in a :class:`StepParams` pytree, so ``jax.vmap`` over seeds or noise levels
works. The composable pieces live here too: :class:`adam` and :class:`freeze_last_column`
(optimisers as values), :class:`Embedded` and :class:`Subspace` (evaluators of a parametrised table).

One step (DESIGN §2)::

    key ─> directions U (q, m, d) ─> stacked tables S ± mu U ─> evaluate_fn ─> losses (k, n)
    ─> per-record differences (n, q) ─> Poisson mask, clip to C, sum, + N(0, (sigma C)^2 I_q)
    ─> / (p n_hat) ─> gradient (m, d) ─> optax update ─> projection onto the box [lower, upper]

The noise is an argument of ``step`` (``noise``: integer grid units from
:func:`zodc.privacy.noise.rounded_gaussian`, drawn on the host from a secret 128-bit generator),
so the released sum is exactly post-processing of the Gaussian mechanism the accountant assumes
(:func:`zodc.privacy.mechanisms.grid_noisy_sum`). Without it the step falls back to *simulated*
float32 noise from the state's key: for research and throughput runs only, never a release.

``evaluate_fn(tables, mask, data)`` fits the model on each table and returns the per-record
losses of *every* real record (records outside the mask may be returned as anything finite; they
are zeroed before use). ``data`` is any pytree the evaluator needs on the device (the real records
for a native kernel; ``None`` for a host callback whose workers hold them): passing it as an
argument rather than closing over it keeps the real data out of the compiled program, so runs on
different data of the same shapes share one compilation. It is either a native kernel
(``zodc.models.native``) or a host evaluator (``zodc.models.host``: through a callback in
:func:`run`, or called directly between ``ask`` and ``tell`` in :func:`run_ask_tell`); this module
does not care which.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from zodc import zo
from zodc.errors import ConfigError
from zodc.privacy import mechanisms

EvaluateFn = Callable[[jax.Array, jax.Array, Any], jax.Array]


@chex.dataclass(frozen=True)
class CondenseState:
    """State of a condensation run.

    Attributes:
      table: ``(m, d)`` learnable part of the synthetic table, in encoded units.
      opt_state: the optimiser's state.
      key: PRNG key, or a ``(2,)`` array of keys (their bits are XORed for the Poisson mask: 128
        bits of secret); step ``t`` uses ``fold_in(key, t)``, so a run is reproducible from its seed
        and independent of how steps are chunked.
      step: int32 scalar, steps taken.
      average: ``(m, d)`` uniform average of the iterates from step ``average_from`` on (the last
        iterate before that): post-processing of the private iterates, so free of privacy cost.
        Polyak & Juditsky 1992 averaging damps the DP noise the last iterate still carries.
      anchor: ``(m, d)`` the start, centre of the trust region ``StepParams.radius`` (public or DP).
      power: running (exponential, bias-corrected in use) mean of the squared noisy mean differences
        ``mean_k dbar_k^2``: post-processing of the released sums, the signal-plus-noise power that
        :attr:`ZeroOrderCondenser.shrink` compares with the public noise power.
    """

    table: jax.Array
    opt_state: optax.OptState
    key: jax.Array
    step: jax.Array
    average: jax.Array
    anchor: jax.Array
    power: jax.Array


@chex.dataclass(frozen=True)
class StepParams:
    """Per-step hyperparameters that may be swept (all scalars, may be traced).

    Attributes:
      smoothing: ``mu``, the perturbation radius in encoded units.
      l2_norm_clip: ``C``, per-record clip of the ``(q,)`` difference vector (``inf``: none).
      noise_multiplier: ``sigma``; the noise on the clipped sum has std ``sigma * C``.
      sampling_probability: ``p``, Poisson sampling probability of each real record.
      expected_batch_size: what the noisy sum is divided by: ``p n_hat`` with ``n_hat`` public or a
        DP count (``None``: ``p n`` with the static ``num_records``, which treats ``n`` as public).
      scale: ``(d,)`` the units of each column (a DP spread, :class:`zodc.start.DPMeans`), or
        ``None`` (the encoded units). The loop runs in ``z = x / scale``: the directions are scaled
        by it, so ``smoothing`` is in these units, and the optimiser's updates of ``z`` are scaled
        back, so its step size is too. Public or DP.
      radius: ``(d,)`` trust region: after each update every cell is projected onto ``[anchor -
        radius, anchor + radius]`` (encoded units), so pure noise cannot carry the table away
        from its start; ``None``: no trust region. Public or DP.
      clip_shares: ``(n,)`` each record's share ``s_i`` in ``(0, 1]`` of the clip, when its losses
        carry a weight (``w_y / max w`` for class weight ``w_y``): its differences are divided by
        ``s_i``, clipped to ``C`` and multiplied by ``s_i`` — the clip acts on the unweighted scale,
        alike for every class, and the weight is applied after it. Without this a weighted rare
        class is clipped far more than the others and the estimate leans towards the majority
        (round 29). A function of the record's own label and public or DP weights; its
        contribution stays within ``s_i C <= C``, so the sensitivity is unchanged. ``None``: every
        record's share is 1.
      learning_rate: a multiplier on the optimiser's updates: the front door builds ``adam(1.0)`` (or
        ``sgd(1.0)``) and passes its step size here, which gives the same updates bit for bit as
        ``adam(rate)`` (its last operation multiplies by ``-rate``; ``(-u) * rate == -(rate * u)``
        exactly) and lets runs of different step sizes share one compiled step and one batched
        program (:func:`run_batch`). Public. ``None``: the optimiser's own step size.
      record_count: int32 ``n`` when the records are padded to ``num_records`` (a shape bucket, so
        that runs on cohorts of nearby sizes share one compiled step): records ``n`` and after are
        never sampled. The Poisson mask's first ``n`` entries are the unpadded mask (JAX's
        partitionable threefry draws element ``i`` from ``i`` alone), so the padding changes no
        release. ``None``: every record is real.
    """

    smoothing: jax.Array
    l2_norm_clip: jax.Array
    noise_multiplier: jax.Array
    sampling_probability: jax.Array
    expected_batch_size: jax.Array | None = None
    scale: jax.Array | None = None
    radius: jax.Array | None = None
    clip_shares: jax.Array | None = None
    record_count: jax.Array | None = None
    learning_rate: jax.Array | None = None


class StepInfo(NamedTuple):
    """Diagnostics of one step, computed from the private batch: for the data owner's eyes (a
    progress bar), not for release."""

    loss: jax.Array
    batch_size: jax.Array
    clipped_fraction: jax.Array
    gradient_norm: jax.Array


class Asked(NamedTuple):
    """What :meth:`ZeroOrderCondenser.ask` hands out: the ``(k, m, d)`` tables to evaluate, the
    ``(n,)`` Poisson mask of the real records, and the ``(q, m, d)`` unit directions ``tell`` needs."""

    tables: jax.Array
    mask: jax.Array
    directions: jax.Array


@dataclasses.dataclass(frozen=True)
class ZeroOrderCondenser:
    """The algorithm, as a value: ``init``, ``ask`` / ``tell`` (evosax style) and ``step`` (both in one).

    A frozen dataclass of its static configuration, so two condensers built from equal
    configuration are equal and hash alike: :func:`run` compiles one program per configuration
    through ``jax.jit``'s own cache (the condenser is a static argument), with no cache of ours.
    For that, ``evaluate_fn`` and ``optimizer`` should be values too (the native evaluators,
    :class:`Embedded`, :class:`Subspace`, :func:`adam` and :func:`freeze_last_column` are); a
    closure works but compiles once per object.

    ``ask(state, params) -> Asked`` draws the step's directions and Poisson mask from
    ``fold_in(key, step)`` and perturbs the table; evaluate ``losses = evaluate_fn(asked.tables,
    asked.mask, data)`` anywhere (inside ``jit``, or on the host outside it); then
    ``tell(state, params, asked, losses, noise) -> (state, info)`` clips, noises, estimates the
    gradient and updates. ``step`` is exactly ``tell(ask(...), evaluate_fn(...))``.
    """

    evaluate_fn: EvaluateFn
    optimizer: optax.GradientTransformation
    num_records: int
    num_directions: int = 16
    scheme: str = "central"
    lower: float = -1.0
    upper: float = 1.0
    average_from: int | None = None
    directions: str = "rademacher"
    shrink: bool = False
    record_block: int | None = None

    def __post_init__(self):
        zo.check_scheme(self.scheme)
        zo.check_directions(self.directions)
        if self.num_directions < 1:
            raise ConfigError(f"`num_directions` must be >= 1. Got {self.num_directions}.")
        if self.num_records < 1:
            raise ConfigError(f"`num_records` must be >= 1. Got {self.num_records}.")
        if self.average_from is not None and self.average_from < 0:
            raise ConfigError(f"`average_from` must be >= 0 or None. Got {self.average_from}.")
        if self.record_block is not None and (isinstance(self.record_block, bool) or self.record_block < 1):
            raise ConfigError(f"`record_block` must be a positive integer or None. Got {self.record_block!r}.")

    def init(self, key: jax.Array, table: jax.Array) -> CondenseState:
        table = jnp.clip(jnp.asarray(table), self.lower, self.upper)
        return CondenseState(table=table, opt_state=self.optimizer.init(table), key=key,
                             step=jnp.zeros((), jnp.int32), average=table, anchor=table,
                             power=jnp.zeros((), table.dtype))

    def _keys(self, state: CondenseState):
        if mechanisms.is_key_pair(state.key):  # a pair of keys: directions from the first, the mask from both
            step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(state.key, state.step)
            direction_key, noise_key = jax.random.split(step_keys[0])
            mask_key = jax.vmap(lambda k: jax.random.split(k, 3)[2])(step_keys)
        else:
            step_key = jax.random.fold_in(state.key, state.step)
            direction_key, mask_key, noise_key = jax.random.split(step_key, 3)
        return direction_key, mask_key, noise_key

    def ask(self, state: CondenseState, params: StepParams) -> Asked:
        """The step's perturbed tables, Poisson mask and directions. Data independent."""
        direction_key, mask_key, _ = self._keys(state)
        table = state.table
        units = zo.sample_directions(direction_key, self.num_directions, table.shape, table.dtype, self.directions)
        moves = units if params.scale is None else units * params.scale
        tables = zo.perturb(table, moves, params.smoothing, self.scheme)
        mask = mechanisms.poisson_mask(mask_key, self.num_records, params.sampling_probability)
        if params.record_count is not None:  # padding records are never sampled
            mask = mask & (jnp.arange(self.num_records) < params.record_count)
        return Asked(tables=tables, mask=mask, directions=units)

    def tell(self, state: CondenseState, params: StepParams, asked: Asked, losses: jax.Array,
             noise: jax.Array | None = None) -> tuple[CondenseState, StepInfo]:
        """Clips the per-record differences of ``losses`` (``(k, n)``), adds the noise, updates the table.

        Could one record change this? Only its own row of differences, clipped to ``C``, in a sum
        whose noise the accountant counts (DESIGN §2)."""
        return self._update(state, params, asked, self._batch_sums(params, asked.mask, losses, params.clip_shares),
                            noise)

    def _batch_sums(self, params: StepParams, mask: jax.Array, losses: jax.Array, shares) -> "BatchSums":
        """The clipped sums and the diagnostics of the records ``losses`` scores (``(k, b)``, ``mask`` ``(b,)``,
        ``shares`` ``(b,)`` or ``None``). Blocks of one batch add up (:meth:`BatchSums.__add__`).

        Could one record change this? Only its own row's terms (:func:`mechanisms.clipped_sums`)."""
        differences = zo.per_record_differences(losses, self.num_directions, self.scheme)
        if shares is not None:  # the clip on the unweighted scale, then the weight (StepParams)
            differences = clip_weighted(differences, params.l2_norm_clip, shares)
        differences = jnp.where(mask[:, None], differences, 0.0)
        norms = jnp.linalg.norm(differences, axis=1)
        return BatchSums(sums=mechanisms.clipped_sums(differences, mask, params.l2_norm_clip),
                         loss=jnp.sum(jnp.where(mask, jnp.mean(losses, axis=0), 0.0)),
                         size=jnp.sum(mask, dtype=jnp.int32),
                         clipped=jnp.sum(mask & (norms > params.l2_norm_clip), dtype=jnp.int32))

    def _blocked_sums(self, params: StepParams, asked: Asked, data: Any) -> "BatchSums":
        """:meth:`_batch_sums` of the sampled records, ``record_block`` at a time: the sampled indices
        are gathered in order into blocks (the last padded and masked), each block's records (every
        leaf of ``data`` whose leading axis has length ``num_records``, and the clip shares) are
        gathered and scored, and the blocks' sums added. Memory grows with the block, not with n;
        time with the batch, plus an O(n) pass for the mask's indices.

        The same Poisson mask, clip and integer grid sums as the unblocked step, so the released sum
        equals it whenever each record's losses do (exactly for the tree kernels; within float
        rounding of a dot product otherwise).

        Could one record change this? Only its own row's terms: which block a record lands in moves
        no other record's value, and the sums are exact integers in any order."""
        n, block = self.num_records, self.record_block
        blocks = -(-n // block)
        count = jnp.sum(asked.mask, dtype=jnp.int32)
        order = jnp.nonzero(asked.mask, size=blocks * block, fill_value=0)[0]
        shares = params.clip_shares

        def one_block(carry):
            i, total = carry
            indices = jax.lax.dynamic_slice(order, (i * block,), (block,))
            valid = i * block + jnp.arange(block) < count
            block_data = jax.tree.map(lambda leaf: leaf[indices] if is_per_record(leaf, n) else leaf, data)
            losses = self.evaluate_fn(asked.tables, valid, block_data)
            part = self._batch_sums(params, valid, losses, None if shares is None else shares[indices])
            return i + 1, jax.tree.map(jnp.add, total, part)

        zero = BatchSums(sums=mechanisms.ClippedSums(units=jnp.zeros(self.num_directions, jnp.int32),
                                                     clipped=jnp.zeros(self.num_directions, asked.tables.dtype),
                                                     exact=jnp.zeros(self.num_directions, asked.tables.dtype)),
                         loss=jnp.zeros((), asked.tables.dtype), size=jnp.zeros((), jnp.int32),
                         clipped=jnp.zeros((), jnp.int32))
        return jax.lax.while_loop(lambda carry: carry[0] * block < count, one_block, (jnp.int32(0), zero))[1]

    def _update(self, state: CondenseState, params: StepParams, asked: Asked, batch: "BatchSums",
                noise: jax.Array | None) -> tuple[CondenseState, StepInfo]:
        """The noise on the batch's clipped sum, the gradient estimate and the optimiser's update."""
        scheme, units, table = self.scheme, asked.directions, state.table
        if noise is None:  # simulated float32 noise: research and throughput runs, never a release
            noisy_sum = mechanisms.add_simulated_noise(self._keys(state)[2], batch.sums.clipped, params.l2_norm_clip,
                                                       params.noise_multiplier)
        else:
            noisy_sum = mechanisms.release_grid_sum(batch.sums, params.l2_norm_clip, noise)
        expected_batch = (params.sampling_probability * self.num_records if params.expected_batch_size is None
                          else params.expected_batch_size)
        mean_differences = noisy_sum / expected_batch
        gradient = zo.gradient_from_differences(mean_differences, units, params.smoothing, scheme,
                                                zo.direction_scale(self.directions, table.shape))
        power = state.power
        if self.shrink:
            power = SHRINK_DECAY * power + (1.0 - SHRINK_DECAY) * jnp.mean(mean_differences**2)
            factor = signal_fraction(power / (1.0 - SHRINK_DECAY ** (state.step + 1).astype(power.dtype)),
                                     params, expected_batch)

        # ``gradient`` is the gradient in the loop's units z = x / scale (the directions moved x by
        # scale * u); the optimiser's update of z is scaled back to x.
        updates, opt_state = self.optimizer.update(gradient, state.opt_state, table)
        if params.learning_rate is not None:
            updates = updates * params.learning_rate
        if params.scale is not None:
            updates = updates * params.scale
        if self.shrink:
            updates = updates * factor
        new_table = optax.apply_updates(table, updates)
        if params.radius is not None:
            new_table = jnp.clip(new_table, state.anchor - params.radius, state.anchor + params.radius)
        new_table = jnp.clip(new_table, self.lower, self.upper)

        denominator = jnp.maximum(batch.size, 1)
        info = StepInfo(
            loss=batch.loss / denominator,
            batch_size=batch.size,
            clipped_fraction=batch.clipped / denominator,
            gradient_norm=jnp.linalg.norm(gradient),
        )
        new_step = state.step + 1
        if self.average_from is None:
            average = new_table
        else:
            # Iterates average_from .. new_step, uniformly; before that, track the last iterate.
            count = (new_step - self.average_from).astype(new_table.dtype)
            average = jnp.where(count >= 1, state.average + (new_table - state.average) / (count + 1), new_table)
        new_state = state.replace(table=new_table, opt_state=opt_state, step=new_step, average=average, power=power)
        return new_state, info

    def step(self, state: CondenseState, params: StepParams, data: Any = None,
             noise: jax.Array | None = None) -> tuple[CondenseState, StepInfo]:
        """One step: ``ask``, ``evaluate_fn`` on the tables, ``tell`` — or, with ``record_block`` below
        ``num_records``, the sampled records scored a block at a time (:meth:`_blocked_sums`)."""
        asked = self.ask(state, params)
        if self.record_block is None or self.record_block >= self.num_records:
            return self.tell(state, params, asked, self.evaluate_fn(asked.tables, asked.mask, data), noise)
        return self._update(state, params, asked, self._blocked_sums(params, asked, data), noise)


def is_per_record(leaf: Any, num_records: int) -> bool:
    """Whether ``leaf`` of an evaluator's ``data`` is a per-record field: its leading axis has length
    ``num_records`` (the contract of ``record_block``, :mod:`zodc.sharding` and the front door's padding)."""
    return hasattr(leaf, "shape") and len(leaf.shape) >= 1 and leaf.shape[0] == num_records


def pad_records(data: Any, num_records: int, size: int) -> Any:
    """``data`` with every per-record leaf padded along its first axis to ``size`` rows, copies of its
    last row (valid values: a padded record is a copy of a real one, and is never sampled or counted);
    zeros where there is no record at all (a table with no usable record still runs, never sampling).

    Could one record change this? Only its own row, and the copies of it when it is the last."""
    if size == num_records:
        return data

    def pad(leaf):
        if not is_per_record(leaf, num_records):
            return leaf
        if isinstance(leaf, jax.core.Tracer) or (isinstance(leaf, jax.Array) and not leaf.is_fully_addressable):
            return jnp.concatenate([leaf, jnp.repeat(leaf[-1:], size - num_records, axis=0)], axis=0)
        # Concrete arrays are padded in numpy: eagerly, jnp would compile programs for this n's shapes.
        host = np.asarray(leaf)
        last = host[-1:] if num_records else np.zeros((1,) + host.shape[1:], host.dtype)  # no record at all
        padded = np.concatenate([host, np.repeat(last, size - num_records, axis=0)], axis=0)
        return jnp.asarray(padded) if isinstance(leaf, jax.Array) else padded

    return jax.tree.map(pad, data)


class BatchSums(NamedTuple):
    """One batch's (or block's) clipped sums and diagnostics; a pytree, added leaf by leaf over blocks."""

    sums: mechanisms.ClippedSums
    loss: jax.Array
    size: jax.Array
    clipped: jax.Array


def clip_weighted(differences: jax.Array, l2_norm_clip, shares: jax.Array) -> jax.Array:
    """Each record's ``(q,)`` differences divided by its share ``s_i`` in ``(0, 1]``, clipped to L2
    norm ``C`` and multiplied by ``s_i`` (:class:`StepParams` ``clip_shares``). Could one record
    change this? Only its own row, whose norm stays within ``s_i C <= C``: the sum's sensitivity is
    ``C``, as with a plain clip. ``C = inf`` (the non-private reference) leaves the rows as they are."""
    shares = shares[:, None]
    return jnp.where(jnp.isfinite(l2_norm_clip), mechanisms.clip_rows(differences / shares, l2_norm_clip) * shares,
                     differences)


SHRINK_DECAY = 0.9  # the running power's decay: about the last ten steps


def signal_fraction(power: jax.Array, params: StepParams, expected_batch) -> jax.Array:
    """``max(0, 1 - noise power / power)``: the share of the noisy mean differences' power that is
    signal. The noise on each ``dbar_k`` has the public variance ``(sigma C / (p n_hat))^2``, so
    ``power - noise power`` estimates the signal's (a Wiener / James-Stein shrinkage). Pure noise
    gives about 0, a strong signal about 1, no noise exactly 1. Post-processing of released sums
    and public numbers: free of privacy cost."""
    noisy = params.noise_multiplier > 0
    noise_power = jnp.where(noisy, (params.noise_multiplier * jnp.where(noisy, params.l2_norm_clip, 0.0)
                                    / expected_batch) ** 2, 0.0)
    return jnp.where(noisy, jnp.clip(1.0 - noise_power / jnp.maximum(power, 1e-30), 0.0, 1.0), 1.0)


def zero_order_condenser(
    evaluate_fn: EvaluateFn,
    optimizer: optax.GradientTransformation,
    *,
    num_records: int,
    num_directions: int = 16,
    scheme: str = "central",
    lower: float = -1.0,
    upper: float = 1.0,
    average_from: int | None = None,
    directions: str = "rademacher",
    shrink: bool = False,
    record_block: int | None = None,
) -> ZeroOrderCondenser:
    """Builds the private zero-order condensation algorithm.

    Args:
      evaluate_fn: ``(tables (k, m, d), mask (n,) bool, data) -> losses (k, n)``.
      optimizer: any optax transformation (Adam by default in the front door).
      num_records: ``n``, number of real records ``evaluate_fn`` scores (the static shape of the
        mask; never released). Under add/remove neighbours ``n`` is private: pass
        ``StepParams.expected_batch_size`` from a DP count, as the front door does.
      num_directions: ``q``.
      scheme: ``"central"`` or ``"forward"`` differences.
      lower, upper: box the table is projected onto after each update (the encoded bounds of the
        public schema), so what is optimised is what is released.
      average_from: if given, ``state.average`` is the uniform average of the iterates from this
        step on; otherwise it tracks the last iterate.
      directions: the kind of random directions (:func:`zodc.zo.sample_directions`):
        ``"rademacher"`` (the default: every cell moved by ``+mu`` or ``-mu``; the same utility as
        ``"gaussian"`` over ten cohorts and models and a cheaper draw, ``docs/ablation.md`` round
        37), ``"gaussian"`` or ``"orthogonal"``; ``"rows"`` and ``"columns"`` stay here for
        ablations (they lost, round 16). Data independent, so any kind has
        the same privacy cost.
      shrink: scale each update by :func:`signal_fraction` of the running power of the noisy mean
        differences: where the released differences are mostly noise, the table barely moves
        (Adam alone moves each cell by about its learning rate per step whatever the gradient's
        size); with a strong signal, or no noise, the update is Adam's.
      record_block: score the sampled records this many at a time (``None``: all ``n`` records in
        one evaluation, the unsampled ones masked). Each step then gathers the Poisson sample into
        blocks, so its time grows with the batch and its memory with the block — a million-row
        cohort costs no more per step than its batch. The per-record fields of ``data`` are the
        leaves whose leading axis has length ``num_records`` (the native evaluators' ``X``, ``y``,
        ``time``, ``event``); no other leaf may have that leading length. The released sums are the
        unblocked step's (exact integer sums), given the same per-record losses.

    Returns:
      A :class:`ZeroOrderCondenser`.
    """
    return ZeroOrderCondenser(evaluate_fn, optimizer, num_records=num_records, num_directions=num_directions,
                              scheme=scheme, lower=lower, upper=upper, average_from=average_from,
                              directions=directions, shrink=shrink, record_block=record_block)


# ---------------------------------------------------------------- composable pieces (values, so jit can cache)
@dataclasses.dataclass(frozen=True)
class adam:
    """``optax.adam(learning_rate)`` as a value: equal learning rates give equal optimisers, so
    condensers built on them share one compiled step."""

    learning_rate: float

    def init(self, params):
        return optax.adam(self.learning_rate).init(params)

    def update(self, updates, state, params=None):
        return optax.adam(self.learning_rate).update(updates, state, params)


@dataclasses.dataclass(frozen=True)
class sgd:
    """``optax.sgd(learning_rate)`` as a value (see :func:`noise_calibrated_rate` for a step size
    that knows the step's noise)."""

    learning_rate: float

    def init(self, params):
        return optax.sgd(self.learning_rate).init(params)

    def update(self, updates, state, params=None):
        return optax.sgd(self.learning_rate).update(updates, state, params)


def gradient_noise_std(noise_multiplier: float, l2_norm_clip: float, expected_batch_size: float, smoothing: float,
                       num_directions: int, scheme: str = "central") -> float:
    """Standard deviation of the DP noise on each cell of the gradient estimate (in the loop's units).

    The noisy sum of the clipped ``(q,)`` differences carries ``N(0, (sigma C)^2)`` per direction;
    divided by ``p n_hat`` and spread over the cells by ``sum_k d_k u_k / (q h)`` (``h = 2 mu``
    central, ``mu`` forward) with Gaussian ``u``, each cell gets noise of std ``sigma C / (p n_hat h
    sqrt(q))``. Every input is public or DP, so this is too."""
    step = 2.0 * smoothing if zo.check_scheme(scheme) == "central" else smoothing
    return noise_multiplier * l2_norm_clip / (expected_batch_size * step * math.sqrt(num_directions))


def noise_calibrated_rate(noise_multiplier: float, l2_norm_clip: float, expected_batch_size: float, smoothing: float,
                          num_directions: int, scheme: str, steps: int, walk: float, ceiling: float) -> float:
    """An SGD step size at which pure noise moves each cell by ``walk`` (standard deviation) over
    ``steps`` steps: ``walk / (s sqrt(T))`` with ``s`` the gradient noise (:func:`gradient_noise_std`),
    at most ``ceiling`` (the non-private and low-noise case). Unlike Adam, whose steps are about its
    learning rate whatever the gradient's size, plain steps turn noise into moves as small as the
    noise allows: a signal moves the table ``sqrt(T) |g| / s`` times further than noise does."""
    noise = gradient_noise_std(noise_multiplier, l2_norm_clip, expected_batch_size, smoothing, num_directions, scheme)
    if not noise > 0 or not math.isfinite(noise):
        return float(ceiling)
    return float(min(ceiling, walk / (noise * math.sqrt(max(steps, 1)))))


class _FreezeState(NamedTuple):
    inner: Any
    count: jax.Array


@dataclasses.dataclass(frozen=True)
class freeze_last_column:
    """``optimizer``, then the updates of the table's last column zeroed from step ``after`` on (a
    learned weight column — soft labels — learned for ``after`` steps, then frozen). A value."""

    optimizer: Any
    after: int

    def init(self, params):
        return _FreezeState(inner=self.optimizer.init(params), count=jnp.zeros((), jnp.int32))

    def update(self, updates, state, params=None):
        updates, inner = self.optimizer.update(updates, state.inner, params)
        keep = (state.count < self.after).astype(updates.dtype)
        return updates.at[:, -1].multiply(keep), _FreezeState(inner=inner, count=state.count + 1)


@dataclasses.dataclass(frozen=True)
class Embedded:
    """``evaluate_fn`` on tables of selected columns only: they are placed into full-width tables
    whose other columns sit at 0, the middle of their public bounds. ``data`` is ``(inner data,
    selected column indices)`` — an argument, so the program does not depend on which columns were
    chosen. The last ``trailing`` columns (a learned weight) pass through."""

    evaluate_fn: EvaluateFn
    num_features: int
    trailing: int = 0

    def __call__(self, tables, mask, data):
        inner, columns = data
        width = tables.shape[-1] - self.trailing
        full = jnp.zeros(tables.shape[:-1] + (self.num_features,), tables.dtype).at[..., columns].set(
            tables[..., :width])
        full = jnp.concatenate([full, tables[..., width:]], axis=-1)
        return self.evaluate_fn(full, mask, inner)


def subspace_basis(key: jax.Array, dimension: int, size: int) -> jax.Array:
    """``(r, size)`` public random basis: orthonormal rows scaled by ``sqrt(size / r)``, so a
    Gaussian direction of the ``r`` coordinates moves each cell by ``N(0, 1)`` on average (smoothing
    and learning rate keep their meaning). Data independent: no privacy cost."""
    return zo.orthonormal_rows(jax.random.normal(key, (size, dimension)).T) * math.sqrt(size / dimension)


def subspace_tables(coordinates: jax.Array, anchor: jax.Array, basis: jax.Array) -> jax.Array:
    """Tables ``clip(anchor + reshape(theta @ basis), -1, 1)`` from coordinates ``(..., 1, r)``."""
    offsets = jnp.tensordot(coordinates[..., 0, :], basis, axes=1)
    return jnp.clip(anchor + offsets.reshape(coordinates.shape[:-2] + anchor.shape), -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Subspace:
    """``evaluate_fn`` on ``(k, 1, r)`` coordinates of the table's offset from an anchor along a
    public basis (an ablation: it lost, ``docs/ablation.md`` round 17). ``data`` is ``(inner data,
    anchor (m, w), basis (r, m w))`` — arguments, so one program serves every start and basis."""

    evaluate_fn: EvaluateFn

    def __call__(self, coordinates, mask, data):
        inner, anchor, basis = data
        return self.evaluate_fn(subspace_tables(coordinates, anchor, basis), mask, inner)


def _scan_chunk(condenser: ZeroOrderCondenser, length: int, state, params, data, noise):
    return jax.lax.scan(lambda carry, step_noise: condenser.step(carry, params, data, step_noise), state, noise,
                        length=length)


# One program per (condenser, chunk length) in jit's own cache: the condenser is a static argument,
# compared by value, so a later run of an equal condenser on arguments of the same shapes neither
# traces nor compiles again.
_cached_chunk = jax.jit(_scan_chunk, static_argnums=(0, 1))


def _checked_noise(noise: Any, num_steps: int):
    """``noise`` as int32 ``(num_steps, q)`` (or ``None``); a bad count of steps or shape is named."""
    if num_steps < 0:
        raise ConfigError(f"`steps` must be >= 0. Got {num_steps}.")
    if noise is None:
        return None
    noise = jnp.asarray(noise, jnp.int32)
    if noise.ndim != 2 or noise.shape[0] != num_steps:
        raise ConfigError(f"`noise` must have shape (steps, num_directions) = ({num_steps}, q). Got {noise.shape}.")
    return noise


def run(condenser: ZeroOrderCondenser, state: CondenseState, params: StepParams, num_steps: int, *,
        data: Any = None, noise: Any = None, chunk_size: int = 1,
        on_chunk: Callable[[CondenseState, StepInfo], None] | None = None,
        jit: bool = True, reuse: bool = False) -> tuple[CondenseState, StepInfo]:
    """Runs ``num_steps`` steps, ``chunk_size`` at a time under ``lax.scan``.

    With a native (device) model the whole chunk is one compiled program; with a host model use
    ``chunk_size=1`` (each step makes one batched callback either way). ``on_chunk`` receives the
    state and the stacked infos of each chunk (for progress bars). Chunking does not change the
    result: step ``t`` draws its randomness from ``fold_in(key, t)``.

    With ``reuse=True`` the chunk programs are compiled through ``jax.jit``'s own cache with the
    condenser as a static argument (compared by value), so running an *equal* condenser again —
    other seeds, other data of the same shapes — neither traces nor compiles again. Tracing the step
    costs seconds, as much as a short run itself; the persistent compilation cache
    (:mod:`zodc.runtime`) spares only XLA's compilation. Keep it off for a condenser that closes over
    something heavy (a host evaluator's pool): jit's cache would keep it alive.

    ``noise``: ``(num_steps, q)`` int32 grid-unit noise of these steps (row ``i`` for the ``i``-th step
    run here), from :func:`zodc.privacy.noise.rounded_gaussian`; ``None`` simulates it in float32.

    Returns:
      The final state and the stacked :class:`StepInfo` of all steps (each field ``(num_steps,)``).
    """
    noise = _checked_noise(noise, num_steps)
    chunk_size = max(1, min(chunk_size, max(num_steps, 1)))

    compiled = {}
    infos = []
    done = 0
    while done < num_steps:
        length = min(chunk_size, num_steps - done)
        if length not in compiled:
            if jit and reuse:
                compiled[length] = functools.partial(_cached_chunk, condenser, length)
            else:
                chunk = functools.partial(_scan_chunk, condenser, length)
                compiled[length] = jax.jit(chunk) if jit else chunk
        chunk_noise = None if noise is None else noise[done:done + length]
        state, chunk_info = compiled[length](state, params, data, chunk_noise)
        infos.append(chunk_info)
        done += length
        if on_chunk is not None:
            on_chunk(state, chunk_info)
    if infos:
        stacked = StepInfo(*(jnp.concatenate(parts) for parts in zip(*infos)))
    else:
        stacked = StepInfo(*(jnp.zeros((0,)) for _ in StepInfo._fields))
    return state, stacked


def init_batch(condenser: ZeroOrderCondenser, keys: jax.Array, tables: jax.Array) -> CondenseState:
    """The states of ``R`` independent runs: ``keys`` ``(R, ...)`` (one key, or key pair, per run) and
    ``tables`` ``(R, m, d)`` (one start per run), stacked along a leading axis."""
    return jax.vmap(condenser.init)(keys, tables)


def _batch_chunk(condenser: ZeroOrderCondenser, length: int, data_axis, states, params, data, noise):
    return jax.vmap(lambda state, run_params, run_data, run_noise: _scan_chunk(condenser, length, state, run_params,
                                                                                run_data, run_noise),
                    in_axes=(0, 0, data_axis, 0))(states, params, data, noise)


_cached_batch_chunk = jax.jit(_batch_chunk, static_argnums=(0, 1, 2))


def run_batch(condenser: ZeroOrderCondenser, states: CondenseState, params: StepParams, num_steps: int, *,
              data: Any = None, noise: Any = None, chunk_size: int | None = None,
              data_axis: int | None = None) -> tuple[CondenseState, StepInfo]:
    """Runs ``R`` independent condensations in one compiled program (``jax.vmap`` of :func:`run`'s scan).

    Every leaf of ``states`` (:func:`init_batch`), ``params`` and ``noise`` has a leading axis of the
    ``R`` runs: each run has its own seed, its own noise multiplier, smoothing, clip or sampling
    probability (a :class:`StepParams` whose scalars are ``(R,)`` arrays; :func:`stack_params`), and
    its own ``(num_steps, q)`` grid noise — ``noise`` is ``(R, num_steps, q)`` int32, or ``None`` for
    simulated noise — and its own step size when the condenser's optimiser is ``adam(1.0)`` or
    ``sgd(1.0)`` and ``params.learning_rate`` carries it. ``data_axis=None``: the real data are
    shared by every run; ``0``: every leaf of ``data`` has a leading axis of the ``R`` runs (runs
    whose data differ: a private search's candidates, each with its own DP class weights and model
    key). What fixes shapes or is static — the number of rows, of directions, the evaluator — is one
    per program. Run ``r`` equals :func:`run` of ``(states[r], params[r], noise[r])`` (tested).

    A native evaluator only: a host callback would be called once per run, in sequence.

    Returns:
      The final states and infos, each with the leading ``R`` axis.
    """
    num_runs = jax.tree.leaves(states)[0].shape[0]
    if noise is not None:
        noise = jnp.asarray(noise, jnp.int32)
        if noise.ndim != 3 or noise.shape[:2] != (num_runs, num_steps):
            raise ConfigError(f"`noise` must have shape (runs, steps, q) = ({num_runs}, {num_steps}, q). "
                              f"Got {noise.shape}.")
    chunk_size = max(1, min(chunk_size or num_steps, max(num_steps, 1)))
    infos, done = [], 0
    while done < num_steps:
        length = min(chunk_size, num_steps - done)
        chunk_noise = None if noise is None else noise[:, done:done + length]
        states, info = _cached_batch_chunk(condenser, length, data_axis, states, params, data, chunk_noise)
        infos.append(info)
        done += length
    if not infos:
        return states, StepInfo(*(jnp.zeros((num_runs, 0)) for _ in StepInfo._fields))
    return states, StepInfo(*(jnp.concatenate(parts, axis=1) for parts in zip(*infos)))


def stack_params(params: list[StepParams]) -> StepParams:
    """One :class:`StepParams` of ``R`` runs from ``R`` of them (leaves stacked on a leading axis); any
    pytrees of equal structure alike (the runs' states, their own data)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)


def run_ask_tell(condenser: ZeroOrderCondenser, state: CondenseState, params: StepParams, num_steps: int,
                 evaluate: Callable[[Any, Any], Any], *, noise: Any = None,
                 on_chunk: Callable[[CondenseState, StepInfo], None] | None = None) -> tuple[CondenseState, StepInfo]:
    """Runs ``num_steps`` steps with the evaluation outside ``jit``: ``ask`` and ``tell`` are compiled,
    ``evaluate(tables, mask) -> losses (k, n)`` is any host function (a :class:`~zodc.models.host.HostEvaluator`
    is one), called directly — no ``pure_callback``. ``condenser.evaluate_fn`` is not used.

    The same randomness as :func:`run` (``fold_in(key, step)``) and the same arithmetic: a host model
    condensed this way releases the same table as through the callback. ``ask`` and ``tell`` are
    compiled for this run only (a closure over a heavy evaluator is never cached).
    """
    noise = _checked_noise(noise, num_steps)
    ask = jax.jit(condenser.ask)
    tell = jax.jit(condenser.tell)
    infos = []
    for t in range(num_steps):
        asked = ask(state, params)
        losses = jnp.asarray(evaluate(np.asarray(asked.tables), np.asarray(asked.mask)), jnp.float32)
        state, info = tell(state, params, asked, losses, None if noise is None else noise[t])
        info = StepInfo(*(jnp.reshape(field, (1,)) for field in info))
        infos.append(info)
        if on_chunk is not None:
            on_chunk(state, info)
    if infos:
        return state, StepInfo(*(jnp.concatenate(parts) for parts in zip(*infos)))
    return state, StepInfo(*(jnp.zeros((0,)) for _ in StepInfo._fields))
