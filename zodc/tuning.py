"""Private hyperparameter search: condense with every candidate, release the best, pay for all.

The defaults were tuned on the bundled public cohorts. When they do not fit a user's cohort, the
honest way to choose on the private data itself is to treat every candidate as a release and the
choice as one more mechanism (docs/results.md, "Choosing hyperparameters privately"). :class:`PrivateSearch`
does exactly that:

1. the budget is composed by RDP, not split: ``epsilon_s = selection_share * epsilon`` is reserved
   for the choice; each of the ``K`` candidates calibrates its standalone mechanisms (a DP schema,
   class proportions, the DP-means start) at a nominal share ``(epsilon - epsilon_s) / sqrt(K)``
   and ``delta / K`` (about what each of ``K`` alike Gaussian mechanisms can have when RDP composes
   them to ``epsilon - epsilon_s``; a ``1/K`` share would leave the start twice as noisy as the
   steps need for ``K = 2``), and its steps **jointly**: candidate ``i``'s noise is the smallest for which
   everything the candidates before it spent, the reserved choice and ``K - i`` copies of its own
   ledger compose to ``(epsilon, delta)``. The last candidate meets the target exactly; the earlier
   ones leave room for the later ones as if these were alike (a later one that is not adapts its
   own noise to what is left). Under RDP, ``K`` alike candidates cost about ``sqrt(K)`` times one,
   not ``K`` times, so each gets more than ``1/K`` of the budget;
2. each candidate's released table is scored on the real records by a **sum of bounded per-record
   scores** (below), so that adding or removing one record moves every candidate's score by at
   most 1, in the same direction;
3. one candidate is chosen by the exponential mechanism (report-noisy-max with Gumbel noise) at
   ``epsilon_s``; with monotone scores the Gumbel scale is ``1 / epsilon_s`` instead of
   ``2 / epsilon_s`` (McSherry & Talwar 2007; monotone case: the privacy loss of every outcome lies
   in an interval of width ``epsilon_s``, the bounded-range property, so it is also
   ``epsilon_s^2 / 8``-zCDP, which is how the ledger accounts it).

Per-record scores (each in ``[0, 1]``):

* classification: ``w_y (1 - B / 2)`` with ``B`` the multi-class Brier score of the scoring model
  (trained on the candidate's table) on the record, and ``w`` the candidates' class weights
  (``1 / (K pi_c)`` from public or DP proportions, rescaled so the largest is 1; uniform when the
  condenser's ``class_weight`` is None). Brier is a proper scoring rule: it rewards graded,
  calibrated probabilities, which is what AUROC needs, and unlike AUROC or a C-index it is a sum of
  per-record terms, so its sensitivity does not depend on the data;
* survival: the Brier score of the predicted survival curve at public times ``t_1..t_G`` (default:
  the condenser's public log-time grid within the schema's time bounds, the grid of its loss),
  averaged: ``mean_g 1 - (S_i(t_g) - 1[T_i > t_g])^2`` over the times where record ``i``'s status is
  known, 0 where it was censored before ``t_g`` (the same for every candidate: it cannot change the
  choice). A grid rather than one horizon, so that the score says something whatever the cohort's
  follow-up (one fixed horizon past the last follow-up would see only deaths).

Could this leak? Only through the candidates' releases (each accounted in its own ledger, all
composed into ``ledger_``) and the index chosen (the exponential mechanism, in ``ledger_``). The
candidates draw **independent** randomness (one seed each, from ``random_state``): shared noise
across candidates would void the composition. The class weights the scores use are post-processing
of the candidates' DP outputs; ``n`` is public. The exact scores (``private_scores_``) are computed
on real records and are **not** covered by the guarantee: they are for the data owner's review, like
the CLI report's ``utility`` section; never publish them. Only the best candidate's table is
meant for release, but the guarantee covers every candidate's (they were all computed).

The price: every candidate's steps are noisier than one condensation's at the whole budget (the
noise multiplier grows roughly like ``sqrt(K)``), and the choice itself is noisy on small cohorts.
Search over two to four candidates that you expect to differ a lot (a learning rate, the table
size, the start), not a fine grid.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ParameterGrid

from zodc.errors import ConfigError, PrivacyBudgetError
from zodc.privacy.events import ExponentialMechanismEvent
from zodc.privacy.ledger import Ledger
from zodc.budget import SharedBudget
from zodc.tasks import get_task

__all__ = ["PrivateSearch", "classification_record_scores", "survival_record_scores", "report_noisy_max"]

# Parameters the search sets itself: a candidate may not override them.
_RESERVED = ("epsilon", "delta", "random_state")


def classification_record_scores(proba: np.ndarray, y: np.ndarray, class_weights: Sequence[float] | None = None) -> np.ndarray:
    """Per-record scores ``w_y (1 - B / 2)`` in ``[0, 1]`` (``B``: multi-class Brier score).

    Args:
      proba: ``(n, K)`` predicted class probabilities (rows sum to 1).
      y: ``(n,)`` class indices.
      class_weights: ``(K,)`` non-negative weights (public or DP), rescaled so the largest is 1;
        ``None``: all 1.

    Returns:
      ``(n,)`` float64 scores in ``[0, 1]``; their sum moves by at most 1 when one record is added
      or removed. A record whose probabilities are not all finite scores 0 (the worst), alone.

    Could one record change this? Only its own score: every operation is per record (rows of
    ``proba``, ``y``); the class weights are public or DP.
    """
    proba = np.asarray(proba, np.float64)
    finite = np.all(np.isfinite(proba), axis=1)
    proba = np.clip(np.where(finite[:, None], proba, 0.0), 0.0, 1.0)
    y = np.asarray(y, np.int64)
    num_classes = proba.shape[1]
    onehot = np.eye(num_classes)[y]
    brier = np.sum((proba - onehot) ** 2, axis=1)
    scores = np.where(finite, np.clip(1.0 - brier / 2.0, 0.0, 1.0), 0.0)
    if class_weights is not None:
        weights = np.asarray(class_weights, np.float64)
        if weights.shape != (num_classes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.max() <= 0:
            raise ConfigError(f"`class_weights` must be {num_classes} finite non-negative numbers, not all 0. Got {weights}.")
        scores = scores * (weights / weights.max())[y]
    return scores


def survival_record_scores(survival: np.ndarray, time: np.ndarray, event: np.ndarray, times) -> np.ndarray:
    """Per-record scores ``mean_g 1 - (S_i(t_g) - 1[T_i > t_g])^2`` in ``[0, 1]``, a time counting 0
    where the record was censored before it.

    Args:
      survival: ``(n, G)`` predicted survival probabilities at ``times`` (``(n,)`` for one time).
      time, event: ``(n,)`` observed times and 0/1 event indicators.
      times: ``(G,)`` public times (or one number).

    Returns:
      ``(n,)`` float64 scores; their sum moves by at most 1 when one record is added or removed. A
      record whose predicted curve is not all finite scores 0 (the worst), alone.

    Could one record change this? Only its own score: every operation is per record (rows of
    ``survival``, ``time``, ``event``); the times are public.
    """
    times = np.atleast_1d(np.asarray(times, np.float64))
    survival = np.asarray(survival, np.float64).reshape(-1, times.size)
    finite = np.all(np.isfinite(survival), axis=1)
    survival = np.clip(np.where(finite[:, None], survival, 0.0), 0.0, 1.0)
    time = np.asarray(time, np.float64)[:, None]
    event = np.asarray(event).astype(bool)[:, None]
    alive = time > times[None, :]
    known = alive | event  # died at or before t, or still at risk after t
    scores = np.where(known, np.clip(1.0 - (survival - alive.astype(np.float64)) ** 2, 0.0, 1.0), 0.0)
    return np.where(finite, scores.mean(axis=1), 0.0)


def report_noisy_max(key: jax.Array, utilities: Sequence[float], epsilon: float, sensitivity: float = 1.0,
                     monotone: bool = True) -> int:
    """Index chosen by the exponential mechanism: probability ``∝ exp(u_k epsilon / (c sensitivity))``
    with ``c = 1`` for monotone utilities (every
    ``u_k`` moves the same way when a record is added) and ``c = 2`` otherwise; ``epsilon=inf`` is the
    exact argmax (the first of ties).

    Returns:
      The chosen index.
    """
    utilities = np.asarray(utilities, np.float64)
    if utilities.ndim != 1 or utilities.size == 0 or not np.all(np.isfinite(utilities)):
        raise ConfigError(f"`utilities` must be a non-empty 1-d array of finite numbers. Got {utilities}.")
    if not sensitivity > 0:
        raise ConfigError(f"`sensitivity` must be > 0. Got {sensitivity}.")
    if math.isinf(epsilon):
        return int(np.argmax(utilities))
    if not epsilon > 0:
        raise ConfigError(f"`epsilon` must be > 0. Got {epsilon}.")
    from zodc.privacy.noise import as_generator
    from zodc.privacy.selection import exponential_mechanism

    # Exact draw from a 128-bit uniform (zodc.privacy.selection), not float32 Gumbel noise.
    return exponential_mechanism(as_generator(key), utilities, epsilon, sensitivity, monotone=monotone)


PATHS_SEARCH_CHOICE = 1  # the choice's stream under its own seed


def _candidate_seeds(seed: int, count: int) -> list[int]:
    """Independent 128-bit secret seeds for the candidates and one for the selection (never shared)."""
    from zodc.privacy.keys import PATHS, child_seeds

    return child_seeds(seed, PATHS["search"], count + 1)


class PrivateSearch(BaseEstimator):
    """Chooses a condenser's hyperparameters on the private data, with every step accounted.

    Each candidate condenses the whole table, its table is scored on the real records (a sum of
    per-record scores in ``[0, 1]``: Brier for classification, Brier over public times for
    survival), and the exponential mechanism at ``epsilon * selection_share`` picks one. The
    candidates' steps are calibrated jointly so that every mechanism, composed by RDP in
    ``ledger_``, meets ``(epsilon, delta)``. See the module docstring for the privacy argument.

    Args:
      condenser: the unfitted :class:`~zodc.estimator.Condenser` every candidate starts from (its
        ``epsilon``, ``delta`` and ``random_state`` are set by the search). Default: ``Condenser()``.
      param_grid: the candidates, as scikit-learn's ``ParameterGrid`` takes them: a dict of lists
        (every combination) or a list of such dicts. E.g. ``{"learning_rate": [0.02, 0.05]}``.
        ``None`` with ``repeats > 1``: the condenser's own settings only.
      repeats: runs per grid point, each with its own seed (best-of-``repeats``: the choice also
        picks among independent noisy runs of the same settings).
      epsilon, delta: the target for everything (all candidates and the choice).
      selection_share: share of ``epsilon`` for the choice (in (0, 1)); with one candidate nothing
        is chosen and it gets the whole budget.
      scoring_model: the model trained on each candidate's table to score it: a preset name or a
        host model. Default: the condenser's own model. Required when the candidates condense for
        different models.
      horizon: survival: the public time, or times, at which the score compares predicted survival
        with the records' status (schema time units). Default: the first candidate's public
        log-time grid (``time_grid_``, within the schema's time bounds).
      random_state: seed (int), ``np.random.Generator`` or None; candidates get independent seeds
        derived from it.
      verbose: 0 silent; 1 one line per candidate on stderr (no scores: they are not private).

    Attributes:
      candidates_: the parameter dicts, in order.
      condensers_: the fitted condensers, in order (only ``best_condenser_``'s table is meant for
        release; the guarantee covers all).
      best_index_, best_params_, best_condenser_: the chosen candidate.
      synthetic_: the chosen candidate's released table.
      ledger_: every candidate's mechanisms (named ``candidate_<i>.<name>``) and the selection.
      epsilon_: total epsilon spent at ``delta_`` (<= ``epsilon``): ``ledger_`` composed by RDP.
      delta_: ``delta``.
      candidate_epsilon_, candidate_delta_: each candidate's nominal share (``(epsilon - epsilon *
        selection_share) / sqrt(K)``, ``delta / K``), at which its standalone
        mechanisms are calibrated (its steps are calibrated jointly, so a candidate's own
        ``epsilon_`` exceeds the share).
      selection_epsilon_: the exponential mechanism's epsilon (0 with one candidate).
      score_times_: survival: the times the score used (classification: None).
      private_scores_: ``(K,)`` exact scores, computed on real records — **not private**: for the
        data owner's review only; never publish them.
    """

    def __init__(self, condenser=None, param_grid=None, *, repeats=1, epsilon=1.0, delta=1e-5, selection_share=0.1,
                 scoring_model=None, horizon=None, random_state=None, verbose=0):
        self.condenser = condenser
        self.param_grid = param_grid
        self.repeats = repeats
        self.epsilon = epsilon
        self.delta = delta
        self.selection_share = selection_share
        self.scoring_model = scoring_model
        self.horizon = horizon
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _candidates(self) -> list[dict]:
        repeats = self.repeats
        if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
            raise ConfigError(f"`repeats` must be a positive integer. Got {repeats!r}.")
        if self.param_grid is None:
            if repeats == 1:
                raise ConfigError("`param_grid` is required (a dict of lists, e.g. {'learning_rate': [0.02, 0.05]}, "
                                  "or a list of such dicts), unless `repeats` > 1 runs the condenser's own settings.")
            return [{} for _ in range(int(repeats))]
        grid = self.param_grid
        if isinstance(grid, Mapping):
            grid = [grid]
        if not isinstance(grid, (list, tuple)) or not all(isinstance(g, Mapping) for g in grid):
            raise ConfigError(f"`param_grid` must be a dict of lists or a list of dicts. Got {type(self.param_grid).__name__}.")
        for g in grid:
            for name, values in g.items():
                if name in _RESERVED:
                    raise ConfigError(f"`param_grid` may not set {name!r}: the search sets it (each candidate gets "
                                      "its share of the budget and its own seed).")
                if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
                    raise ConfigError(f"`param_grid[{name!r}]` must be a non-empty list of values. Got {values!r}.")
        try:
            candidates = [dict(c) for c in ParameterGrid(list(grid))]
        except (TypeError, ValueError) as error:
            raise ConfigError(f"`param_grid` is not a valid grid: {error}") from None
        if not candidates:
            raise ConfigError("`param_grid` has no candidates.")
        return [dict(c) for c in candidates for _ in range(int(repeats))]

    def _base(self):
        from zodc.estimator import Condenser

        base = Condenser() if self.condenser is None else self.condenser
        if not isinstance(base, Condenser):
            raise ConfigError(f"`condenser` must be a zodc Condenser. Got {type(base).__name__}.")
        return base

    def _budget(self, num_candidates: int) -> tuple[float, float, float, float]:
        """(epsilon, delta, per-candidate epsilon, selection epsilon); raises on a bad target."""
        try:
            epsilon, delta = float(self.epsilon), float(self.delta)
        except (TypeError, ValueError):
            raise ConfigError(f"`epsilon` and `delta` must be numbers. Got {self.epsilon!r}, {self.delta!r}.") from None
        if not epsilon > 0 or math.isnan(epsilon):
            raise ConfigError(f"`epsilon` must be > 0 (inf: non-private). Got {self.epsilon!r}.")
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"`delta` must be in (0, 1). Got {self.delta!r}.")
        share = self.selection_share
        if isinstance(share, bool) or not isinstance(share, (int, float, np.floating)) or not 0.0 < float(share) < 1.0:
            raise ConfigError(f"`selection_share` must be in (0, 1). Got {share!r}.")
        if num_candidates == 1:
            return epsilon, delta, epsilon, 0.0
        if math.isinf(epsilon):
            return epsilon, delta, math.inf, math.inf
        selection = float(share) * epsilon
        return epsilon, delta, (epsilon - selection) / math.sqrt(num_candidates), selection

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, duration_col=None, event_col=None) -> "PrivateSearch":
        """Condenses with every candidate, then chooses one privately.

        Takes the same data as :meth:`zodc.estimator.Condenser.fit`.

        Returns:
          self.

        Raises:
          ConfigError: a bad grid, share or target; candidates for different models without a
            ``scoring_model``; a candidate's own invalid parameter (named by the condenser).
          DataError: unusable data (as the condenser says).
          PrivacyBudgetError: a candidate's share cannot be met (fewer candidates, or more epsilon).
        """
        from zodc.privacy.keys import resolve_seed

        candidates = self._candidates()
        base = self._base()
        epsilon, delta, per_candidate, selection_epsilon = self._budget(len(candidates))
        try:
            verbose = int(self.verbose)
        except (TypeError, ValueError):
            raise ConfigError(f"`verbose` must be 0 or 1. Got {self.verbose!r}.") from None
        seed = resolve_seed(self.random_state)
        seeds = _candidate_seeds(seed, len(candidates))
        unfitted = []
        for i, params in enumerate(candidates):
            candidate = clone(base)
            try:
                candidate.set_params(**params)
            except ValueError as error:
                raise ConfigError(f"candidate {i} {params}: {error}") from None
            candidate.set_params(epsilon=per_candidate, delta=delta / len(candidates), random_state=seeds[i])
            unfitted.append(candidate)
        given_schema = unfitted[0]._given_schema()
        if self.horizon is not None:  # checked before anything is condensed (bounds too, if public)
            self._score_times(None, given_schema if given_schema is not None and given_schema.time is not None else None)
        models = {repr(c.model) for c in unfitted}
        if self.scoring_model is None and len(models) > 1:
            raise ConfigError("the candidates condense for different models; pass `scoring_model` (the model the "
                              "release is for), so that they are scored alike.")

        fitted = []
        shared_count = None  # one DP record count for every candidate (post-processing after the first's)
        joint = len(unfitted) > 1 and math.isfinite(epsilon)
        reserved = [ExponentialMechanismEvent(selection_epsilon)] if joint else []
        for i, candidate in enumerate(unfitted):
            # Its steps: calibrated so that all so far, the choice and K - i copies of it meet the target.
            spent_before = tuple(entry.event for c in fitted for entry in c.ledger_.entries) + tuple(reserved)
            budget = SharedBudget(epsilon, delta, spent_before, len(unfitted) - i, shared_count) if joint else None
            try:
                candidate.fit(X, y, duration_col=duration_col, event_col=event_col, budget=budget)
            except PrivacyBudgetError as error:
                raise PrivacyBudgetError(f"candidate {i} {candidates[i]}: {error} The candidates before it and the "
                                         "choice leave too little: search fewer candidates, or give more epsilon. "
                                         "Nothing is released.") from None
            if shared_count is None and any(entry.name == "record_count" for entry in candidate.ledger_.entries):
                shared_count = candidate.record_count_
            fitted.append(candidate)
            if verbose:
                import sys

                print(f"[PrivateSearch] candidate {i + 1}/{len(unfitted)} {candidates[i]}: epsilon "
                      f"{candidate.epsilon_:.4g} spent", file=sys.stderr)

        task = get_task(fitted[0].task_)
        frame, roles = task.frame(X, y, {"duration_col": duration_col, "event_col": event_col},
                                  unfitted[0]._given_schema())
        # The score's public context, the same for every candidate: the first's class weights (public or
        # DP), or the survival score's public times.
        context = task.search_context(self, fitted[0])
        score_times = context if task.name == "survival" else None
        scores = np.array([task.score(self._scorer(c, task.name, task.num_classes(c.schema_)), c, frame, roles, context)
                           for c in fitted])

        ledger = Ledger()
        for i, candidate in enumerate(fitted):
            for entry in candidate.ledger_.entries:
                ledger.add(f"candidate_{i}.{entry.name}", entry.event, entry.description)
        if len(fitted) > 1:
            from zodc.privacy.noise import secret_generator

            choice_key = secret_generator(seeds[-1], (PATHS_SEARCH_CHOICE,))
            best = report_noisy_max(choice_key, scores, selection_epsilon, sensitivity=1.0, monotone=True)
            if math.isfinite(selection_epsilon):
                ledger.add("selection", ExponentialMechanismEvent(selection_epsilon),
                           f"exponential mechanism (exact draw, monotone scores of sensitivity 1) choosing one of "
                           f"{len(fitted)} candidates at epsilon {selection_epsilon:.4g}")
        else:
            best = 0
        if math.isfinite(epsilon):
            spent = ledger.epsilon(delta)
            if spent > epsilon * (1.0 + 1e-9):  # cannot happen by construction; refuse rather than release
                raise PrivacyBudgetError(f"the search spent epsilon {spent:.6g} > target {epsilon}.")
        else:
            spent = math.inf

        self.candidates_ = candidates
        self.condensers_ = fitted
        self.best_index_ = int(best)
        self.best_params_ = dict(candidates[best])
        self.best_condenser_ = fitted[best]
        self.synthetic_ = fitted[best].synthetic_
        self.ledger_ = ledger
        self.epsilon_ = float(spent)
        self.delta_ = delta
        self.candidate_epsilon_ = float(per_candidate)
        self.candidate_delta_ = delta / len(candidates)
        self.selection_epsilon_ = float(selection_epsilon) if len(fitted) > 1 else 0.0
        self.score_times_ = score_times
        self.private_scores_ = scores
        return self

    def report(self) -> dict[str, Any]:
        """The privacy part of a search's release report (JSON-serialisable): the total, how it was
        split, every candidate's share and what it spent, the choice, and the combined ledger."""
        best = self.best_condenser_
        finite = math.isfinite(self.epsilon_)
        candidates = [{"params": params, "epsilon_target": c.epsilon, "delta_target": c.delta,
                       "epsilon_spent": c.epsilon_, "noise_multiplier": c.noise_multiplier_}
                      for params, c in zip(self.candidates_, self.condensers_)]
        assumptions = list(best.public_assumptions())
        ledger = self.ledger_.to_dict(self.delta_)
        if self.score_times_ is not None and len(self.candidates_) > 1:
            assumptions.append("the times of the survival score: " + ", ".join(f"{t:.6g}" for t in self.score_times_))
        return {
            "epsilon": ledger["epsilon"] if finite else self.epsilon_, "epsilon_rdp": self.epsilon_,
            "epsilon_pld": ledger["epsilon_pld"] if finite else None, "delta": self.delta_,
            "accountant": (f"{ledger['accountant']} bound on the composition of every candidate's mechanisms and "
                           "the choice (each candidate's steps calibrated jointly by RDP: what came before, the "
                           "choice and K - i copies of itself meet the target)" if finite else
                           "non-private (epsilon = inf)"),
            "neighbouring_relation": ("add or remove one record: n is private; the candidates share one DP record "
                                      "count (or each estimates a DP schema)"),
            "search": {
                "candidates": candidates, "chosen": self.best_index_, "chosen_params": self.best_params_,
                "candidate_epsilon": self.candidate_epsilon_, "candidate_delta": self.candidate_delta_,
                "selection": ("exponential mechanism (exact draw from a 128-bit uniform) on monotone scores of "
                              "sensitivity 1" if len(self.candidates_) > 1 else "none (one candidate)"),
                "selection_epsilon": self.selection_epsilon_,
                "score": get_task(best.task_).score_description,
            },
            "public_assumptions": assumptions,
            "ledger": ledger,
        }

    # ------------------------------------------------------------------ scoring
    def _scorer(self, condenser, task: str, num_classes: int):
        """An unfitted host model that scores the candidate's table."""
        from zodc.models.presets import get_preset
        from zodc.models.survival import as_survival_model

        model = condenser.model if self.scoring_model is None else self.scoring_model
        if isinstance(model, str):
            try:
                preset = get_preset(model, task=task)
            except Exception as error:  # noqa: BLE001 - re-raised with the parameter's name
                raise ConfigError(f"`scoring_model`: {error}") from None
            return preset.host_factory(num_classes)
        if task == "survival":
            return as_survival_model(model)
        if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
            raise ConfigError(f"`scoring_model` must be a preset name or a classifier with predict_proba. "
                              f"Got {type(model).__name__}.")
        return clone(model)

    def _score_times(self, condenser, schema) -> np.ndarray:
        """The survival score's public times: ``horizon`` if given, else ``condenser.time_grid_``
        (``condenser`` None: only check the given ones, against ``schema``'s bounds if it is public)."""
        if self.horizon is None:
            return np.asarray(condenser.time_grid_, np.float64)
        try:
            times = np.atleast_1d(np.asarray(self.horizon, np.float64))
        except (TypeError, ValueError):
            raise ConfigError(f"`horizon` must be a number (or numbers) in the schema's time units. Got {self.horizon!r}.") from None
        if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)) or np.any(times <= 0):
            raise ConfigError(f"`horizon` must be positive numbers in the schema's time units. Got {self.horizon!r}.")
        if schema is not None and not np.all((times > schema.time.lower) & (times < schema.time.upper)):
            raise ConfigError(f"`horizon` must lie inside the public time bounds ({schema.time.lower}, "
                              f"{schema.time.upper}). Got {self.horizon!r}.")
        return times
