"""Private hyperparameter search: condense with every candidate, release the best, pay for all.

The defaults were tuned on the bundled public cohorts. When they do not fit a user's cohort, the
honest way to choose on the private data itself is to treat every candidate as a release and the
choice as one more mechanism (docs/results.md, "Choosing hyperparameters privately"). :class:`PrivateSearch`
does exactly that:

1. the budget is composed by RDP, not split: ``epsilon_s = selection_share * epsilon`` is reserved
   for the choice; without a public schema, one DP schema is released before the candidates (at
   the condenser's ``preprocessing_share`` of epsilon, ``ledger_``: ``prerelease.*``, as random
   stopping does) and every candidate uses it as post-processing: K schemas of their own would cost
   about as much under RDP, each ``sqrt(K)`` times noisier, and would differ between the
   candidates (a grid that sets ``schema`` or ``preprocessing_share`` keeps them); each of the ``K`` candidates calibrates its standalone mechanisms (class
   proportions where the schema has none, the DP-means start) at a nominal share ``(epsilon - epsilon_s) / sqrt(K)``
   and ``delta / K`` (about what each of ``K`` alike Gaussian mechanisms can have when RDP composes
   them to ``epsilon - epsilon_s``; a ``1/K`` share would leave the start twice as noisy as the
   steps need for ``K = 2``), and its steps **jointly**: candidate ``i``'s noise is the smallest for which
   everything the candidates before it spent, the reserved choice and ``K - i`` copies of its own
   ledger compose to ``(epsilon, delta)``. The last candidate meets the target exactly; the earlier
   ones leave room for the later ones as if these were alike (a later one that is not adapts its
   own noise to what is left). Under RDP, ``K`` alike candidates cost about ``sqrt(K)`` times one,
   not ``K`` times, so each gets more than ``1/K`` of the budget. All of this is at **one RDP order**,
   fixed before any data are read (:func:`zodc.privacy.calibration.filter_order`): a candidate's
   sampling probability ``B / n_hat`` comes from a DP count and its noise from what the candidates
   before it spent, and RDP composes mechanisms whose parameters depend on earlier outputs only at
   an order fixed in advance (a Rényi filter, Feldman & Zrnic 2021, arXiv:2008.11193). Each branch
   converting at its own best order, as the search did before, is not covered by any theorem;
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

How the candidates run: each is *prepared* in turn (``Condenser._prepare``: its DP preprocessing, its
steps calibrated and their exact noise drawn, so its ledger is complete before the next is
calibrated), then the steps of up to ``zodc.estimator.BATCH`` prepared candidates with a native model
run as one compiled program (:func:`zodc.estimator.fit_prepared`, a ``vmap`` of the loop over the
candidates: their own seeds, noise, DP class weights, clip, smoothing and step size). What must be
equal to share a program — the table's shape, the number of directions and of steps, the model, the
record blocks — is public or DP, so one record cannot change how the candidates are grouped
(``tests/test_tuning.py``); a host model's candidates, and a sharded run, run alone. Each candidate
releases its separate fit's table within float32 rounding (its masks, integer sums and ledger are
the same), so batching changes nothing in the guarantee.

Random stopping (``selection="random_stopping"``; Papernot & Steinke 2022, arXiv:2110.03620, after
Liu & Talwar 2019, arXiv:1811.07971): the cost does not grow with the number of candidates.

1. **Once, before the runs**: the DP schema (when none is given; its histograms give the record
   count too) or a DP record count, at the condenser's ``preprocessing_share`` of epsilon
   (``ledger_``: ``prerelease.*``). Every run uses it: the same ``n_hat``, hence the same sampling
   probability, so each candidate's run has one fixed RDP curve (the theorem needs one).
2. **The base mechanism** ``M``: draw a candidate uniformly from the grid, condense with it (its own
   seed), score its table on the real records (the sum of per-record scores above) and release
   ``(candidate, table, noisy score)``, the score with Gaussian noise of sensitivity 1 (exactly
   drawn on a grid, :func:`_noisy_score`). ``M`` as a whole is one composed event per candidate —
   the candidate's mechanisms before its steps, its steps, the score's Gaussian — and, as the
   candidate is drawn independently of the data, its RDP at each order is at most the largest of
   the candidates' (a mixture with data-independent weights; joint quasi-convexity of Rényi
   divergence). The score must be noised inside ``M``: Papernot & Steinke's theorem is for a base
   mechanism whose whole output, the score by which runs are compared included, is DP.
3. **``J`` runs** of ``M`` with ``J`` drawn exactly (:func:`draw_num_runs`) from a secret generator:
   truncated negative binomial of ``stopping_shape`` (0 logarithmic, 1 geometric — the default) or
   Poisson (``inf``), mean ``mean_repeats``; the run with the best noisy score (ties broken by a
   secret uniform) is released, **and nothing else**: not ``J``, not which candidates ran, not the
   other runs' tables or scores (``num_runs_``, ``run_candidates_``, ``noisy_scores_`` are kept for
   the data owner, like ``private_scores_``: never publish them). The running time grows with ``J``:
   keep it private too.
4. **Accounting**: the pre-release composed with random stopping of ``M``, by RDP converted at one
   order fixed before the pre-release (``M``'s RDP curve depends on ``n_hat`` through its steps, so
   the composition holds at a fixed order, as in a Rényi filter; :meth:`PrivateSearch._plan_stopping`)
   (:func:`repeat_and_select_rdp`: Theorem 2, Theorem 6 for Poisson; the same numbers as
   ``dp_accounting``'s ``RepeatAndSelectDpEvent``, which the tests use as the oracle), plus the
   exact samplers' slack (``E[J]`` runs' total variation, and ``J``'s own). The steps are
   calibrated for this total (:meth:`PrivateSearch._plan_stopping`): a fit's ``SharedBudget`` hook
   composes copies of its ledger linearly and cannot express random stopping, so the search
   previews each candidate's mechanisms before its steps (a replay of the fit's first part whose
   outputs are discarded: a run's ledger is a function of public settings and the DP
   pre-release), calibrates the steps itself, and hands each fit a target that lands its own
   calibration on (or just above) that noise; every run is checked against its plan.

Its price is a fixed factor, whatever the number of candidates: at epsilon 1 a run's steps are
about 2 times noisier than one condensation's at ``mean_repeats=10`` (1.7 logarithmic, 2.05
geometric, 2.2 Poisson), where the exponential mechanism's K candidates are about ``sqrt(K)`` times
noisier (1.4 for two, 2.8 for eight; docs/results.md). It pays off from about five candidates, or
for a best-of-many of one setting; but each run tries a random candidate, so ``mean_repeats`` should
grow with the grid (the cost grows like its logarithm).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ParameterGrid

from zodc.errors import ConfigError, PrivacyBudgetError
from zodc.privacy.accounting import RdpAccountant, additive_delta_of_event
from zodc.privacy.calibration import filter_order
from zodc.privacy.events import ComposedEvent, ExponentialMechanismEvent, GaussianEvent
from zodc.privacy.ledger import Ledger
from zodc.privacy.noise import GRID_BITS
from zodc.budget import NEAR_NON_PRIVATE, SharedBudget
from zodc.tasks import get_task

__all__ = ["PrivateSearch", "classification_record_scores", "draw_num_runs", "random_stopping_epsilon",
           "repeat_and_select_rdp", "report_noisy_max", "survival_record_scores"]

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


def _candidate_condensers(base, candidates: list[dict]) -> list:
    """A clone of ``base`` per candidate, with its parameters set; a bad one is named."""
    unfitted = []
    for i, params in enumerate(candidates):
        candidate = clone(base)
        try:
            candidate.set_params(**params)
        except ValueError as error:
            raise ConfigError(f"candidate {i} {params}: {error}") from None
        unfitted.append(candidate)
    return unfitted


def _candidate_seeds(seed: int, count: int) -> list[int]:
    """Independent 128-bit secret seeds for the candidates and one for the selection (never shared)."""
    from zodc.privacy.keys import PATHS, child_seeds

    return child_seeds(seed, PATHS["search"], count + 1)


# ------------------------------------------------------------------ random stopping (Papernot & Steinke 2022)

SELECTIONS = ("exponential", "random_stopping")
DEFAULT_MEAN_REPEATS = 10.0  # random stopping's expected number of runs when `mean_repeats` is None
DEFAULT_STOPPING_SHAPE = 1.0  # geometric: the distribution of Liu & Talwar (2019)
# Streams under the search's seed (PATHS["search"]), apart from the exponential selection's (1 and the
# candidates' seeds, which use the path (PATHS["search"],) itself).
PATHS_SEARCH_STOPPING = 2    # the number of runs, each run's candidate and its tie-break
PATHS_SEARCH_PRERELEASE = 3  # the schema or record count released once, before the runs
PATHS_SEARCH_RUNS = 4        # (4, run, 0): a run's condenser seed; (4, run, 1): its score's noise
PATHS_SEARCH_PREVIEW = 5     # (5, candidate): a candidate's preview (its noise is drawn and discarded)
#: Total-variation distance of :func:`draw_num_runs` from the ideal distribution (see there).
STOPPING_SAMPLER_TV = 2.0 ** -198
_STOPPING_PRECISION = 320  # mpmath bits for the number of runs' CDF
_STOPPING_TAIL = 2.0 ** -200  # the sampler stops where less than this mass is left
_MAX_MEAN_REPEATS = 2.0 ** 20  # keeps the outcomes the sampler can reach below 2^40
# A step's noise multiplier is at most 1e8 < 2^27 (zodc.privacy.calibration refuses beyond): the
# largest scale, in grid units, of a step's exact Gaussian draw, for the samplers' slack.
_MAX_STEP_SCALE = 2.0 ** 27 * 2.0 ** 10
_SELECTION_DRAW_TV = 2.0 ** -48  # feature selection's slack per candidate and draw (zodc.budget)


def _check_stopping(mean: float, shape: float) -> tuple[float, float]:
    try:
        mean, shape = float(mean), float(shape)
    except (TypeError, ValueError):
        raise ConfigError(f"`mean_repeats` and `stopping_shape` must be numbers. Got {mean!r}, {shape!r}.") from None
    if not (math.isfinite(mean) and 1.0 < mean <= _MAX_MEAN_REPEATS):
        raise ConfigError(f"`mean_repeats` must be a number > 1 and at most 2^20 (the expected number of runs). "
                          f"Got {mean!r}.")
    if math.isnan(shape) or shape < 0.0:
        raise ConfigError(f"`stopping_shape` must be >= 0 (0 logarithmic, 1 geometric, inf Poisson). Got {shape!r}.")
    return mean, shape


def stopping_mean(gamma: float, shape: float) -> float:
    """Mean of the truncated negative binomial distribution ``TNB(gamma, shape)`` (``shape = 0``:
    logarithmic; ``1``: geometric), ``P[J = j] ∝ C(j + shape - 1, j) (1 - gamma)^j`` for ``j >= 1``."""
    if gamma >= 1.0:
        return 1.0
    if shape == 1.0:
        return 1.0 / gamma
    if shape == 0.0:
        return (1.0 - gamma) / (gamma * -math.log(gamma))
    return shape * (1.0 - gamma) / (gamma * -math.expm1(shape * math.log(gamma)))


def stopping_gamma(mean: float, shape: float) -> float:
    """The parameter ``gamma`` of ``TNB(gamma, shape)`` whose mean is ``mean`` (a finite ``shape``).

    The same bisection as ``dp_accounting``'s (to a relative 1e-9, its lower end), then lowered by
    a relative 4e-9: a smaller ``gamma`` makes the Theorem-2 bound larger and the distribution's
    mean (:func:`stopping_mean`, which the accounting uses) at least ``mean``, so this accounting is
    never below ``dp_accounting``'s for the same ``mean``. Public inputs only.
    """
    mean, shape = _check_stopping(mean, shape)
    if math.isinf(shape):
        raise ConfigError("`stopping_shape` inf is the Poisson distribution: it has no gamma.")
    if shape == 1.0:
        gamma = 1.0 / mean
    else:
        low, high = 0.0, min(1.0, 2.0 * (shape + 1.0) / mean)
        while high > low * (1.0 + 1e-9):
            middle = (low + high) / 2.0
            if stopping_mean(middle, shape) < mean:
                high = middle
            else:
                low = middle
        gamma = low
    return gamma * (1.0 - 4e-9)


def _delta_at(rdp: np.ndarray, orders: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
    """``delta`` of the RDP curve at each epsilon of ``epsilons``: the tight conversion and the KL bound,
    exactly as ``dp_accounting.rdp.compute_delta`` (and :func:`zodc.privacy.accounting.rdp_to_delta`)."""
    r, a, e = rdp[None, :], orders[None, :], np.asarray(epsilons, np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        kl = np.where(r == 0.0, -np.inf, 0.5 * np.log(-np.expm1(-np.where(r == 0.0, 1.0, r))))
        tight = (a - 1.0) * (r - e + np.log1p(-1.0 / a)) - np.log(a)
        log_delta = np.where(a > 1.01, np.minimum(kl, tight), kl)
    log_delta = np.where(r < 0.0, -np.inf, log_delta)
    return np.minimum(np.exp(np.min(log_delta, axis=1)), 1.0)


def repeat_and_select_rdp(rdp: Sequence[float], orders: Sequence[float], mean: float, shape: float) -> np.ndarray:
    """RDP of running a mechanism a random number ``J`` of times and releasing only the best run.

    Papernot & Steinke 2022 (arXiv:2110.03620): ``rdp`` is one run's RDP curve; ``J`` is
    truncated negative binomial with ``shape`` (Theorem 2; ``0`` logarithmic, ``1`` geometric) or
    Poisson (``shape = inf``, Theorem 6; ``J = 0`` releases nothing) with mean ``mean``. Theorem 2:
    ``rdp'(l) = rdp(l) + (1 + shape) min_m [(1 - 1/m) rdp(m) + log(1/gamma) / m] + log(E[J]) / (l - 1)``,
    then made non-decreasing in the order; Theorem 6: ``rdp'(l) = rdp(l) + E[J] delta(log(1 + 1/(l -
    1))) + log(E[J]) / (l - 1)``. The same computation as ``dp_accounting``'s
    ``RepeatAndSelectDpEvent`` in its RDP accountant (the tests' oracle), with ``gamma`` from
    :func:`stopping_gamma` (never below it). Neither the number of runs nor any other run's output
    may be released: the bound is for the best run alone.

    Returns:
      float64 array, one value per order.
    """
    mean, shape = _check_stopping(mean, shape)
    rdp = np.asarray(rdp, np.float64).reshape(-1)
    orders = np.asarray(orders, np.float64).reshape(-1)
    if rdp.shape != orders.shape or np.any(orders <= 1.0):
        raise ConfigError("`rdp` and `orders` must have the same length, every order > 1.")
    if math.isinf(shape):
        delta_hat = _delta_at(rdp, orders, np.log1p(1.0 / (orders - 1.0)))
        return rdp + mean * delta_hat + math.log(mean) / (orders - 1.0)
    gamma = stopping_gamma(mean, shape)
    expected = max(mean, stopping_mean(gamma, shape))
    with np.errstate(invalid="ignore"):
        constant = (1.0 + shape) * np.min((1.0 - 1.0 / orders) * rdp - math.log(gamma) / orders)
    out = rdp + math.log(expected) / (orders - 1.0) + constant
    # RDP is non-decreasing in the order: a higher order's bound holds at every lower one.
    order = np.argsort(orders)
    out[order] = np.minimum.accumulate(out[order][::-1])[::-1]
    return out


def random_stopping_epsilon(base_rdp: Sequence[float], mean: float, shape: float, delta: float, *,
                            prior_events: Sequence = (), additive_delta: float = 0.0, orders=None) -> float:
    """Epsilon at ``delta`` of ``prior_events`` composed with random stopping of a base mechanism
    whose RDP curve is ``base_rdp`` (:func:`repeat_and_select_rdp`), an ``additive_delta`` (the
    samplers' slack) subtracted from ``delta`` first, like the ledger's ``AdditiveDeltaEvent``\\ s.

    Raises:
      PrivacyBudgetError: the additive deltas reach ``delta``.
    """
    from zodc.privacy.accounting import DEFAULT_ORDERS, RdpAccountant

    orders = np.asarray(DEFAULT_ORDERS if orders is None else orders, np.float64)
    prior = RdpAccountant(orders)
    for event in prior_events:
        prior.compose(event)
    return _stopping_epsilon(prior.rdp, prior.additive_delta, np.asarray(base_rdp, np.float64), orders, mean, shape,
                             delta, additive_delta)


def _stopping_epsilon(prior_rdp, prior_additive, base_rdp, orders, mean, shape, delta, additive_delta,
                      at: int | None = None, with_order: bool = False):
    """Epsilon of the pre-release composed with random stopping; ``at``: converted at ``orders[at]``
    alone (the search's fixed order) instead of the best order; ``with_order``: ``(epsilon, order)``."""
    from zodc.privacy.accounting import rdp_to_epsilon

    remaining = float(delta) - float(prior_additive) - float(additive_delta)
    if not remaining > 0.0:
        raise PrivacyBudgetError(f"the additive deltas ({prior_additive + additive_delta:.3g}) reach "
                                 f"delta = {delta:g}.")
    total = prior_rdp + repeat_and_select_rdp(base_rdp, orders, mean, shape)  # every order: Theorem 2's min
    if at is not None:
        total, orders = total[at:at + 1], orders[at:at + 1]
    epsilon, order = rdp_to_epsilon(total, orders, remaining)
    return (epsilon, order) if with_order else epsilon


def _check_preprocessing_share(share: Any) -> None:
    """The condenser's ``preprocessing_share``, which a search's pre-release spends: in (0, 1) or 'auto'."""
    if share != "auto" and (isinstance(share, bool) or not isinstance(share, (int, float, np.floating))
                            or not 0.0 < float(share) < 1.0):
        raise ConfigError(f"`preprocessing_share` of the condenser must be in (0, 1) or 'auto'. Got {share!r}.")


def _path_seed(seed: int, *path: int) -> int:
    """A 128-bit seed on ``(PATHS["search"], *path)`` under the search's secret ``seed`` (never shared)."""
    from zodc.privacy.keys import PATHS, words_to_int

    words = np.random.SeedSequence(int(seed), spawn_key=(PATHS["search"],) + tuple(path)).generate_state(4, np.uint32)
    return words_to_int(words)


def _noisy_score(score: float, noise_multiplier: float, rng: np.random.Generator) -> float:
    """A run's released score: ``(floor(S 2^b) + round(Y)) / 2^b``, ``Y ~ N(0, (sigma (2^b + 2))^2)``,
    ``b = GRID_BITS``, drawn exactly (:func:`zodc.privacy.noise.rounded_gaussian`).

    Could one record change this? Through ``S`` only, the sum of per-record scores in ``[0, 1]``
    (given the run's table and public context, which are the run's own DP outputs): adding or
    removing a record moves ``S`` by at most 1 plus float64 round-off (numpy's pairwise sum of ``n``
    terms in ``[0, 1]``: below ``n log2(n) 2^-53``, far under ``2^-b`` for any table that fits in
    memory), so ``floor(S 2^b)`` moves by at most ``2^b + 2`` grid units (one for the floor, one for
    round-off). ``a + round(Y) = round(a + Y)`` for an integer ``a``: the release is post-processing
    of the Gaussian mechanism of sensitivity ``2^b + 2`` and noise ``sigma (2^b + 2)``, i.e.
    ``GaussianEvent(sigma)`` in the run's base mechanism. ``sigma = 0`` (non-private): exact, to the grid.
    """
    from zodc.privacy.noise import rounded_gaussian

    scale = 2.0**GRID_BITS
    grid = math.floor(float(score) * scale)
    noise = int(rounded_gaussian(rng, float(noise_multiplier) * (scale + 2.0), (1,))[0]) if noise_multiplier > 0 else 0
    return (grid + noise) / scale


def _smallest(f, target: float, *, low: float | None = None, tolerance: float = 1e-4) -> float:
    """Smallest ``x`` (the upper end of a bracket of relative width ``tolerance``) with ``f(x) <= target``,
    ``f`` non-increasing, by bisection in ``log x`` as :func:`zodc.privacy.calibration.calibrate_noise_multiplier`;
    ``low``: a known ``x`` with ``f(low) > target`` (``None``: searched, down to 1e-12).

    Raises:
      PrivacyBudgetError: no ``x`` up to 1e8 meets ``target``.
    """
    high = 1.0 if low is None else 2.0 * low
    while f(high) > target:
        low, high = high, 2.0 * high
        if high > 1e8:
            raise PrivacyBudgetError(f"no noise multiplier up to 1e8 meets epsilon {target:g}.")
    if low is None:
        low = high / 2.0
        while f(low) <= target:
            high, low = low, low / 2.0
            if low < 1e-12:
                return high
    while math.log(high / low) > math.log1p(tolerance):
        middle = math.sqrt(low * high)
        if f(middle) <= target:
            high = middle
        else:
            low = middle
    return float(high)


@dataclasses.dataclass(frozen=True, eq=False)
class _RunPlan:
    """One candidate's run, as planned: its mechanisms before the steps (``own``: (name, event)), their
    RDP plus the noisy score's (``fixed_rdp``), the steps' shape, the samplers' total variation of its
    own and step draws (``sampler_tv``), all of its TV-like slack (``tv``: that, the score's draw and
    the mechanisms' additive deltas), and the planned steps noise and the fit's target."""

    own: tuple
    fixed_rdp: np.ndarray
    sampling_probability: float
    steps: int
    num_directions: int
    sampler_tv: float
    tv: float
    noise_multiplier: float = math.nan
    fit_epsilon: float = math.nan

    @property
    def signature(self) -> tuple:
        return self.own, self.sampling_probability, self.steps

    def steps_event(self, noise_multiplier: float):
        from zodc.privacy.events import PoissonSampledEvent, SelfComposedEvent

        return SelfComposedEvent(PoissonSampledEvent(self.sampling_probability, GaussianEvent(noise_multiplier)),
                                 self.steps)


@dataclasses.dataclass(frozen=True)
class _StoppingPlan:
    """The runs' nominal epsilon, the score's noise, each candidate's run, and the accounted total."""

    run_epsilon: float
    score_noise_multiplier: float
    score_tv: float
    runs: tuple
    epsilon: float
    order: float = math.nan

    def base_event(self, k: int) -> ComposedEvent:
        """Candidate ``k``'s base mechanism: its mechanisms, its steps at the planned noise, the noisy score."""
        run = self.runs[k]
        return ComposedEvent(tuple(event for _, event in run.own)
                             + (run.steps_event(run.noise_multiplier), GaussianEvent(self.score_noise_multiplier)))


def draw_num_runs(rng: np.random.Generator, mean: float, shape: float) -> int:
    """The number of runs ``J``, drawn exactly from the distribution random stopping is accounted for.

    ``TNB(gamma, shape)`` on ``{1, 2, ...}`` (``gamma`` from :func:`stopping_gamma`: ``P[J = 1] =
    gamma`` for ``shape = 1``; ``P[J = j] ∝ (1 - gamma)^j / j`` for ``shape = 0``) or ``Poisson(mean)``
    on ``{0, 1, ...}`` (``shape = inf``), by inverting its CDF at a 256-bit uniform ``U = (k + 1/2) /
    2^256`` from ``rng``, the CDF summed with mpmath at 320 bits by the pmf's recurrence, stopping where
    less than ``2^-200`` of the mass is left. Each outcome's probability is then within ``2^-256``
    plus mpmath's error (``< 2^-280``) of the ideal one; with ``mean <= 2^20`` fewer than ``2^40``
    outcomes come before the tail, which holds less than ``2^-200`` (given to the last outcome): the
    total-variation distance from the ideal ``J`` is below
    :data:`STOPPING_SAMPLER_TV` = ``2^-198``, which the search accounts (as it accounts the Gaussian
    samplers' slack).

    Could one record change this? No: ``J`` depends on ``rng`` and public parameters only. It must
    stay **secret** (the guarantee is for the best run without ``J``): ``rng`` must be a secret
    generator (:func:`zodc.privacy.noise.secret_generator`).
    """
    import mpmath

    mean, shape = _check_stopping(mean, shape)
    words = rng.integers(0, 2**64, size=4, dtype=np.uint64, endpoint=False)
    k = 0
    for word in words:
        k = (k << 64) | int(word)
    with mpmath.workprec(_STOPPING_PRECISION):
        u = (mpmath.mpf(k) + mpmath.mpf(0.5)) / mpmath.mpf(2) ** 256
        if math.isinf(shape):
            ratio = lambda j: mpmath.mpf(mean) / (j + 1)
            j, p = 0, mpmath.exp(-mpmath.mpf(mean))
        else:
            gamma = mpmath.mpf(stopping_gamma(mean, shape))
            if shape == 0.0:
                p = (1 - gamma) / -mpmath.log(gamma)
                ratio = lambda j: (1 - gamma) * j / (j + 1)
            else:
                s = mpmath.mpf(shape)
                p = s * (1 - gamma) * gamma**s / (1 - gamma**s)
                ratio = lambda j: (1 - gamma) * (j + s) / (j + 1)
            j = 1
        cdf, tail = p, mpmath.mpf(_STOPPING_TAIL)
        while cdf < u and 1 - cdf > tail:
            p = p * ratio(j)
            j += 1
            cdf += p
    return int(j)


class PrivateSearch(BaseEstimator):
    """Chooses a condenser's hyperparameters on the private data, with every step accounted.

    Each candidate condenses the whole table, its table is scored on the real records (a sum of
    per-record scores in ``[0, 1]``: Brier for classification, Brier over public times for
    survival), and the exponential mechanism at ``epsilon * selection_share`` picks one. The
    candidates' steps are calibrated jointly so that every mechanism, composed by RDP in
    ``ledger_`` at one order fixed before the data are read (``rdp_order_``), meets ``(epsilon,
    delta)``. See the module docstring for the privacy argument.

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
      selection: ``"exponential"`` (the default: every candidate condenses once, the exponential
        mechanism chooses) or ``"random_stopping"`` (a random number of runs, each of a random
        candidate, the best by noisy score released; the cost does not grow with the number of
        candidates: module docstring). Under random stopping ``repeats`` must be 1, ``param_grid``
        ``None`` means the condenser's own settings (best of a random number of runs), and
        ``selection_share`` is the noisy score's share of each run's budget.
      mean_repeats: random stopping's expected number of runs (> 1; default 10). The privacy cost
        grows like ``log(mean_repeats)``, the running time like ``mean_repeats``.
      stopping_shape: the distribution of the number of runs (default 1, geometric): 0
        logarithmic, ``0 < shape < inf`` truncated negative binomial, ``inf`` Poisson (which may
        draw 0 runs, then nothing is released). Smaller shapes cost less privacy and more often run
        few times.

    Attributes:
      candidates_: the parameter dicts, in order.
      condensers_: the fitted condensers, in order (only ``best_condenser_``'s table is meant for
        release; the guarantee covers all).
      best_index_, best_params_, best_condenser_: the chosen candidate.
      synthetic_: the chosen candidate's released table.
      ledger_: the DP schema released before the candidates when none was given
        (``prerelease.<name>``), every candidate's mechanisms (``candidate_<i>.<name>``) and the selection.
      prerelease_schema_: that DP schema, which every candidate used (None when a schema was given,
        with one candidate, or without privacy).
      epsilon_: total epsilon spent at ``delta_`` (<= ``epsilon``): ``ledger_`` composed by RDP at
        ``rdp_order_``; with one candidate, its fit's own guarantee.
      rdp_order_: the one RDP order the candidates and the choice are held at, fixed before any data
        are read (:func:`~zodc.privacy.calibration.filter_order`); ``None`` with one candidate or
        without privacy.
      delta_: ``delta``.
      candidate_epsilon_, candidate_delta_: each candidate's nominal share (``(epsilon - epsilon *
        selection_share) / sqrt(K)``, ``delta / K``), at which its standalone
        mechanisms are calibrated (its steps are calibrated jointly, so a candidate's own
        ``epsilon_`` exceeds the share).
      selection_epsilon_: the exponential mechanism's epsilon (0 with one candidate).
      score_times_: survival: the times the score used (classification: None).
      private_scores_: ``(K,)`` exact scores, computed on real records — **not private**: for the
        data owner's review only; never publish them.
      selection_: ``"exponential"`` or ``"random_stopping"``.

    Random stopping sets instead: ``candidates_`` (the grid's points), ``best_index_`` /
    ``best_params_`` / ``best_condenser_`` / ``synthetic_`` (the released run), ``best_score_`` (its
    noisy score, released with it), ``ledger_`` (what was released once before the runs:
    ``prerelease.*``), ``epsilon_`` (that composed with random stopping of one run, by RDP),
    ``candidate_epsilon_`` (the runs' nominal epsilon, at which their standalone mechanisms are
    calibrated), ``score_noise_multiplier_``, ``run_noise_multipliers_`` (each candidate's planned
    steps noise), ``base_events_`` (each candidate's run as one composed event), ``mean_repeats_``,
    ``stopping_shape_``, ``record_count_`` (the shared DP count), ``prerelease_schema_`` (the DP
    schema, when none was given), ``selection_epsilon_`` 0; and, **secret** — the guarantee covers the
    released run only if these stay hidden, never publish them —: ``num_runs_`` (``J``),
    ``run_candidates_`` (the candidate of each run), ``noisy_scores_`` and ``private_scores_`` (each
    run's noisy and exact score). There is no ``condensers_``: the other runs are not released.
    """

    def __init__(self, condenser=None, param_grid=None, *, repeats=1, epsilon=1.0, delta=1e-5, selection_share=0.1,
                 scoring_model=None, horizon=None, random_state=None, verbose=0, selection="exponential",
                 mean_repeats=None, stopping_shape=None):
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
        self.selection = selection
        self.mean_repeats = mean_repeats
        self.stopping_shape = stopping_shape

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

    def _verbose(self) -> int:
        try:
            return int(self.verbose)
        except (TypeError, ValueError):
            raise ConfigError(f"`verbose` must be 0 or 1. Got {self.verbose!r}.") from None

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

    def _selection(self) -> str:
        """``selection``, checked; the random-stopping options are refused with the exponential mechanism."""
        selection = self.selection
        if not isinstance(selection, str) or selection not in SELECTIONS:
            raise ConfigError(f"`selection` must be one of {list(SELECTIONS)}. Got {selection!r}.")
        if selection == "exponential":
            for name in ("mean_repeats", "stopping_shape"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"`{name}` is for selection='random_stopping' (the exponential mechanism runs "
                                      f"every candidate once). Got {name}={getattr(self, name)!r}.")
        return selection

    def _stopping(self) -> tuple[float, float]:
        """(mean_repeats, stopping_shape), checked, defaults filled in."""
        mean = DEFAULT_MEAN_REPEATS if self.mean_repeats is None else self.mean_repeats
        shape = DEFAULT_STOPPING_SHAPE if self.stopping_shape is None else self.stopping_shape
        for name, value in (("mean_repeats", mean), ("stopping_shape", shape)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(f"`{name}` must be a number. Got {value!r}.")
        return _check_stopping(mean, shape)

    def _grid_points(self) -> list[dict]:
        """Random stopping's candidates: the grid's points (each run draws one), or the condenser's own settings."""
        repeats = self.repeats
        if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats != 1:
            raise ConfigError(f"`repeats` must be 1 with selection='random_stopping': each run draws a candidate and "
                              f"its own seed, `mean_repeats` runs on average. Got {repeats!r}.")
        candidates = [{}] if self.param_grid is None else self._candidates()
        if any("schema" in params for params in candidates):
            raise ConfigError("`param_grid` may not set 'schema' with selection='random_stopping': the runs share one "
                              "schema and one DP record count, released once before them.")
        return candidates

    # ------------------------------------------------------------------ random stopping
    def _fit_random_stopping(self, X, y, *, duration_col=None, event_col=None) -> "PrivateSearch":
        """Random stopping (Papernot & Steinke 2022): ``J`` runs, each of a random candidate, the best
        released. See the module docstring, "Random stopping", for the privacy argument.

        Order: every check; ``J``, each run's candidate and tie-break (secret, data independent); the
        schema or record count released once; each candidate's preview and the calibration (nothing
        data dependent is kept from the previews); the runs, each checked against its plan, scored
        and its score noised; the best released. A plan that cannot meet the target refuses before
        any run."""
        from zodc.estimator import BATCH, fit_prepared
        from zodc.privacy.keys import PATHS, resolve_seed
        from zodc.privacy.noise import secret_generator

        candidates = self._grid_points()
        base = self._base()
        epsilon, delta, _, _ = self._budget(1)  # checks epsilon, delta and selection_share
        mean, shape = self._stopping()
        verbose = self._verbose()
        _check_preprocessing_share(base.preprocessing_share)
        unfitted = _candidate_condensers(base, candidates)
        given_schema = base._given_schema()
        if self.horizon is not None:  # checked before anything is condensed (bounds too, if public)
            public_times = given_schema is not None and given_schema.time is not None
            self._score_times(None, given_schema if public_times else None)
        if self.scoring_model is None and len({repr(c.model) for c in unfitted}) > 1:
            raise ConfigError("the candidates condense for different models; pass `scoring_model` (the model the "
                              "release is for), so that they are scored alike.")
        seed = resolve_seed(self.random_state)

        # J, each run's candidate and its tie-break: from the search's secret stream, before any data is
        # read. Could one record change them? No: they depend on the seed and public numbers only.
        stopping = secret_generator(seed, (PATHS["search"], PATHS_SEARCH_STOPPING))
        num_runs = draw_num_runs(stopping, mean, shape)
        run_candidates = [int(k) for k in stopping.integers(0, len(candidates), size=num_runs)]
        tiebreaks = [int(t) for t in stopping.integers(0, 2**63, size=num_runs)]
        if num_runs == 0:
            raise PrivacyBudgetError("random stopping drew 0 runs (Poisson: probability exp(-mean_repeats)). Nothing "
                                     "is released; that outcome is part of the guarantee, and another search is "
                                     "another release, with its own budget.")

        fit_args = {"duration_col": duration_col, "event_col": event_col}
        private = math.isfinite(epsilon)
        if private:
            run_schema, count, prerelease = self._prerelease(base, X, y, fit_args, epsilon, delta, seed)
            plan = self._plan_stopping(unfitted, X, y, fit_args, run_schema, count, prerelease, epsilon, delta, mean,
                                       shape, seed)
        else:
            run_schema, count, prerelease, plan = given_schema, None, Ledger(), None

        task = frame = roles = None
        best, exact_scores, noisy_scores, pending = None, [], [], []
        for run, k in enumerate(run_candidates):
            candidate = clone(unfitted[k])
            budget = None
            candidate.set_params(random_state=_path_seed(seed, PATHS_SEARCH_RUNS, run, 0), delta=delta,
                                 epsilon=plan.run_epsilon if private else epsilon,
                                 # A progress bar per run would count the runs on the terminal: only in
                                 # the search's own verbose log, which says it is private.
                                 verbose=candidate.verbose if verbose else 0)
            if private:
                candidate.set_params(schema=run_schema)
                budget = SharedBudget(plan.runs[k].fit_epsilon, delta, (), 1, count, plan.order)
            # One run: a condensation on the real records. Could one record change it? Only through its
            # mechanisms, each in its ledger, which must be the one planned for its candidate (checked
            # below, before its steps run, or nothing is released): the shared DP count (post-processing),
            # the run's own mechanisms at the nominal epsilon, its steps at the planned noise or more.
            try:
                prepared = candidate._prepare(X, y, duration_col=duration_col, event_col=event_col, budget=budget)
            except PrivacyBudgetError as error:
                raise PrivacyBudgetError(f"run {run} (candidate {k} {candidates[k]}): {error} Nothing is "
                                         "released.") from None
            if private:
                self._check_run(prepared.spend.ledger.entries, plan, k)
            pending.append((run, k, candidate, prepared))
            if len(pending) < BATCH and run < num_runs - 1 and prepared.batch_key() is not None:
                continue
            # The steps of up to BATCH runs as one batched program (fit_prepared), then their scores in order.
            fit_prepared([(candidate, prepared) for _, _, candidate, prepared in pending])
            for done, j, fitted_run, _ in pending:
                if task is None:
                    task = get_task(fitted_run.task_)
                    frame, roles = task.frame(X, y, fit_args, run_schema)
                # The score: a sum over the real records of per-record scores in [0, 1] (moves by at most 1
                # when one record is added or removed, given this run's table and public context), released
                # only with Gaussian noise accounted in the run's mechanism (`_noisy_score`).
                context = task.search_context(self, fitted_run)
                exact = task.score(self._scorer(fitted_run, task.name, task.num_classes(fitted_run.schema_)),
                                   fitted_run, frame, roles, context)
                noisy = _noisy_score(exact, plan.score_noise_multiplier if private else 0.0,
                                     secret_generator(seed, (PATHS["search"], PATHS_SEARCH_RUNS, done, 1)))
                exact_scores.append(float(exact))
                noisy_scores.append(float(noisy))
                # The choice: post-processing of the runs' noisy scores, ties broken by a secret uniform.
                key = (noisy, tiebreaks[done])
                if best is None or key > best[0]:
                    best = (key, j, fitted_run, context)
                if verbose:
                    import sys

                    print(f"[PrivateSearch] run {done + 1} (candidate {j} {candidates[j]}) done: the number of runs "
                          "is secret, keep this log private", file=sys.stderr)
            pending = []

        (noisy, _), index, chosen, context = best
        self.__dict__.pop("condensers_", None)  # a previous exponential fit's: the other runs are not released
        ledger = Ledger()
        for entry in prerelease.entries:
            ledger.add(f"prerelease.{entry.name}", entry.event, entry.description)
        self.candidates_ = candidates
        self.best_index_ = int(index)
        self.best_params_ = dict(candidates[index])
        self.best_condenser_ = chosen
        self.synthetic_ = chosen.synthetic_
        self.best_score_ = float(noisy)
        self.ledger_ = ledger
        self.epsilon_ = float(plan.epsilon) if private else math.inf
        self.rdp_order_ = plan.order if private else None
        self.delta_ = delta
        self.candidate_epsilon_ = float(plan.run_epsilon) if private else math.inf
        self.candidate_delta_ = delta
        self.selection_epsilon_ = 0.0
        self.score_times_ = context if task.name == "survival" else None
        self.selection_ = "random_stopping"
        self.mean_repeats_, self.stopping_shape_ = mean, shape
        self.score_noise_multiplier_ = float(plan.score_noise_multiplier) if private else 0.0
        self.run_noise_multipliers_ = ([float(r.noise_multiplier) for r in plan.runs] if private
                                       else [0.0] * len(candidates))
        self.base_events_ = [plan.base_event(k) for k in range(len(candidates))] if private else None
        self.record_count_ = count
        self.prerelease_schema_ = run_schema if private and given_schema is None else None
        # Secret: the guarantee is for the best run alone, with J and the other runs hidden.
        self.num_runs_ = num_runs
        self.run_candidates_ = run_candidates
        self.noisy_scores_ = np.asarray(noisy_scores)
        self.private_scores_ = np.asarray(exact_scores)
        return self

    def _prerelease(self, base, X, y, fit_args, epsilon, delta, seed):
        """What every run shares, released once before them: the DP schema (when none is given; its
        histograms also give the record count) or the DP record count. Returns ``(the runs' schema,
        n_hat, the ledger of what was spent)``.

        Could one record change this? Only through these mechanisms, at the condenser's
        ``preprocessing_share`` of epsilon: the DP schema's noisy histograms and thresholded
        categories (:func:`zodc.tasks.base.estimate_schema`), or one Gaussian count of sensitivity 1;
        plus the exact samplers' slack. All in ``ledger_`` (``prerelease.*``), composed with the runs.
        The runs use them as post-processing: a run's sampling probability is ``batch_size / n_hat``,
        the same in every run, which gives every run of a candidate the same RDP curve (random
        stopping needs one curve per candidate; a count of each run's own would make it random)."""
        from zodc.budget import Budget
        from zodc.privacy.keys import RunKeys
        from zodc.tasks import infer_task
        from zodc.tasks.base import estimate_schema, record_count
        from zodc.data.dp_schema import count_share

        given = base._given_schema()
        task = infer_task(y, fit_args["duration_col"], fit_args["event_col"], given)
        frame, roles = task.frame(X, y, fit_args, given)
        spend = Budget(epsilon, delta)
        keys = RunKeys(_path_seed(seed, PATHS_SEARCH_PRERELEASE))
        share = base.preprocessing_share
        if given is None:
            schema, count = estimate_schema(frame, keys, spend, share, **roles)
        else:
            schema, count = given, record_count(len(frame), keys, spend, spend.share_noise(count_share(share), 1))
        spend.account_sampling()
        return schema, float(count), spend.ledger

    @staticmethod
    def _preview(candidate, X, y, fit_args, shared: SharedBudget) -> tuple[tuple, float, int, int, float]:
        """What one run of ``candidate`` spends before its steps: ``(its mechanisms as (name, event),
        the steps' sampling probability, steps, directions, its samplers' total variation before the
        steps)``, by replaying the first part of :meth:`Condenser.fit` (configuration, task, the
        schema's statistics with the shared DP count, the start) on a throwaway budget.

        Could one record change this? No. A run's ledger (what this returns) is a function of public
        settings, the public or pre-released schema and the shared DP count ``n_hat`` only: every
        noise multiplier is calibrated from the nominal budget and the sampling probability is
        ``batch_size / n_hat`` (which is why a release report may publish its ledger). The replay does
        read the real records and draws its mechanisms' noise (proportions, the start), but those
        outputs are discarded unread; only the ledger's events and the draws' counts and scales are
        kept. Every run that is made is checked against its preview (:meth:`_check_run`) and refused
        if its ledger differs, so a replay that drifts from :meth:`Condenser.fit` shows at the first
        run rather than passing silently."""
        from zodc.budget import Budget
        from zodc.privacy.keys import RunKeys, resolve_seed
        from zodc.privacy.noise import sampling_tv_bound
        from zodc.tasks import infer_task

        schema = candidate._given_schema()
        task = infer_task(y, fit_args["duration_col"], fit_args["event_col"], schema)
        config = candidate._configure(task)
        keys = RunKeys(resolve_seed(candidate.random_state))
        spend = Budget(config.epsilon, config.delta, shared)
        with warnings.catch_warnings():  # the data's warnings come once, from the runs
            warnings.simplefilter("ignore")
            frame, roles = task.frame(X, y, fit_args, schema)
            problem = task.prepare(frame, roles, config, keys, spend, schema)
            config = dataclasses.replace(config, soft_labels=task.soft_events(problem, config, spend))
            task.start(problem, config, keys, spend)
        own = tuple((entry.name, entry.event) for entry in spend.ledger.entries)
        sampling_probability = min(1.0, config.batch_size / problem.record_count)  # as Budget.calibrate
        tv = sum(count * sampling_tv_bound(scale) for scale, count in spend.draws)
        tv += spend.selection_draws * _SELECTION_DRAW_TV
        return own, sampling_probability, int(config.steps), int(config.num_directions), tv

    def _plan_stopping(self, unfitted, X, y, fit_args, run_schema, count, prerelease, epsilon, delta, mean, shape,
                       seed) -> "_StoppingPlan":
        """Calibrates the runs so that the pre-release composed with random stopping of the base
        mechanism meets ``(epsilon, delta)`` by RDP, converted at one order: the best order of the
        Gaussian plan of 1. below (public settings and the pre-release's events only). A run's RDP
        curve depends on the DP count ``n_hat`` (its sampling probability and noise), so the
        composition holds at an order fixed before the count, not at each curve's own best (a Rényi
        filter, Feldman & Zrnic 2021; random stopping's own bound still takes its inner minimum over
        every order, per curve).

        1. The runs' nominal budget ``run_epsilon``: the epsilon at ``delta`` of the one Gaussian
           mechanism whose random stopping, after the pre-release, meets the target. Each run's
           standalone mechanisms (class proportions or event rate, the DP-means start, feature
           selection) are calibrated at it, as a condenser at that epsilon would be; the score's
           Gaussian noise is that mechanism's at ``selection_share`` of its RDP (``sigma /
           sqrt(selection_share)``).
        2. Each candidate's preview (:meth:`_preview`) gives its mechanisms before the steps.
        3. Each candidate's steps noise: the smallest for which random stopping of its base mechanism
           (its mechanisms, the steps, the noisy score) after the pre-release meets the target; then,
           as a run draws its candidate at random, one run is the mixture of the candidates, whose RDP
           at each order is at most the largest candidate's (joint quasi-convexity of Rényi
           divergence): all the candidates' noise is scaled by the smallest common factor ``>= 1`` for
           which random stopping of that pointwise maximum meets the target (1 when the candidates'
           ledgers are alike, e.g. a grid over the learning rate).
        4. Each candidate's fit gets ``SharedBudget(fit_epsilon, delta)`` with ``fit_epsilon`` its
           planned ledger's epsilon at a noise ``1 + 1e-6`` times the plan's, so that the fit's own
           calibration lands at or above the planned noise (checked after the run).

        Could one record change this? No: public settings, the pre-release (DP) and the previews'
        ledgers (public, see :meth:`_preview`).

        Raises:
          PrivacyBudgetError: the target cannot be met (before any run).
        """
        from zodc.privacy.accounting import DEFAULT_ORDERS, rdp_of_event
        from zodc.privacy.noise import sampling_tv_bound

        orders = np.asarray(DEFAULT_ORDERS, np.float64)
        prior = prerelease.accountant()
        prior_rdp, prior_additive = prior.rdp, prior.additive_delta
        expected = mean if math.isinf(shape) else max(mean, stopping_mean(stopping_gamma(mean, shape), shape))
        # The samplers' slack: the implementation is within TV E[J] max_k tau_k + tau_J of the ideal
        # random stopping (each run's draws coupled to the ideal ones), which adds (1 + e^eps) times that to
        # delta (zodc.privacy.noise.noise_sampling_delta). Above NEAR_NON_PRIVATE Budget skips it: so do we.
        slack = 0.0 if epsilon > NEAR_NON_PRIVATE else 1.0 + math.exp(epsilon)

        def total(base_rdp, tv, at=None):
            return _stopping_epsilon(prior_rdp, prior_additive, base_rdp, orders, mean, shape, delta,
                                     slack * (expected * tv + STOPPING_SAMPLER_TV), at=at)

        try:
            gaussian = _smallest(lambda s: total(rdp_of_event(GaussianEvent(s), orders), 0.0), epsilon)
        except PrivacyBudgetError as error:
            raise PrivacyBudgetError(f"random stopping cannot meet the target after the pre-release: {error} Give "
                                     "more epsilon, or a smaller `mean_repeats`. Nothing is released.") from None
        run_epsilon = RdpAccountant(orders).compose(GaussianEvent(gaussian)).get_epsilon(delta)
        # The one order everything below is converted at: the best of that Gaussian plan, a function of
        # public settings and the pre-release's events only (the runs' RDP curves depend on n_hat).
        order = _stopping_epsilon(prior_rdp, prior_additive, rdp_of_event(GaussianEvent(gaussian), orders), orders,
                                  mean, shape, delta, slack * STOPPING_SAMPLER_TV, with_order=True)[1]
        at = int(np.flatnonzero(orders == order)[0])
        held = lambda base_rdp, tv: total(base_rdp, tv, at)
        # The score's share of that mechanism in RDP's currency (rho = 1 / (2 sigma^2) adds up), as the
        # zCDP budgets of AIM and MST are split: a share of epsilon would cost a small-epsilon Gaussian's
        # delta conversion (sigma 55 instead of 24 at epsilon 1, mean_repeats 2).
        score_sigma = gaussian / math.sqrt(float(self.selection_share))
        score_rdp = rdp_of_event(GaussianEvent(score_sigma), orders)
        score_tv = sampling_tv_bound(score_sigma * (2.0**GRID_BITS + 2.0))

        shared = SharedBudget(run_epsilon, delta, (), 1, count)
        runs = []
        for k, candidate in enumerate(unfitted):
            preview = clone(candidate).set_params(schema=run_schema, epsilon=run_epsilon, delta=delta,
                                                  random_state=_path_seed(seed, PATHS_SEARCH_PREVIEW, k))
            own, probability, steps, directions, own_tv = self._preview(preview, X, y, fit_args, shared)
            own_rdp = np.zeros_like(orders)
            for _, event in own:
                own_rdp = own_rdp + rdp_of_event(event, orders)
            additive = sum(additive_delta_of_event(event) for _, event in own)
            run_tv = own_tv + steps * directions * sampling_tv_bound(_MAX_STEP_SCALE)
            runs.append(_RunPlan(own, own_rdp + score_rdp, probability, steps, directions, run_tv,
                                 additive + run_tv + score_tv))  # per run: TV-like slack, all of it

        def curve(plan: _RunPlan, sigma: float) -> np.ndarray:
            return plan.fixed_rdp + rdp_of_event(plan.steps_event(sigma), orders)

        alone: dict = {}  # one calibration per distinct ledger
        for plan in runs:
            if plan.signature not in alone:
                try:
                    alone[plan.signature] = _smallest(lambda s, p=plan: held(curve(p, s), p.tv), epsilon)
                except PrivacyBudgetError as error:
                    raise PrivacyBudgetError(f"random stopping cannot meet the target: {error} Nothing is "
                                             "released.") from None
        tv = max(plan.tv for plan in runs)
        distinct = {plan.signature: plan for plan in runs}
        mixture = lambda t: held(np.max([curve(p, t * alone[key]) for key, p in distinct.items()], axis=0), tv)
        factor = 1.0 if mixture(1.0) <= epsilon else _smallest(mixture, epsilon, low=1.0)
        for index, plan in enumerate(runs):
            sigma = factor * alone[plan.signature]
            fit = RdpAccountant((order,))  # the fit calibrates at the same order (SharedBudget.order)
            for _, event in plan.own:
                fit.compose(event)
            fit.compose(plan.steps_event(sigma * (1.0 + 1e-6)))
            runs[index] = dataclasses.replace(plan, noise_multiplier=sigma, fit_epsilon=fit.get_epsilon(delta))
        spent = held(np.max([curve(plan, plan.noise_multiplier) for plan in runs], axis=0), tv)
        if spent > epsilon * (1.0 + 1e-9):  # cannot happen by construction; refuse rather than release
            raise PrivacyBudgetError(f"the random-stopping plan spends epsilon {spent:.6g} > target {epsilon}.")
        return _StoppingPlan(run_epsilon, score_sigma, score_tv, tuple(runs), float(spent), float(order))

    @staticmethod
    def _check_run(entries, plan: "_StoppingPlan", k: int) -> None:
        """Refuses (PrivacyBudgetError) a run whose ledger ``entries`` are not the ones planned for its
        candidate: the same mechanisms before the steps, the planned steps at a noise at least the
        planned one, and the samplers' slack within the planned bound. Public inputs only (ledgers)."""
        from zodc.privacy.events import PoissonSampledEvent, SelfComposedEvent

        run = plan.runs[k]
        own = tuple((entry.name, entry.event) for entry in entries if entry.name not in ("zero_order_steps",
                                                                                          "noise_sampling"))
        steps = [entry.event for entry in entries if entry.name == "zero_order_steps"]
        ok = own == run.own and len(steps) == 1
        if ok:
            event = steps[0]
            ok = (isinstance(event, SelfComposedEvent) and event.count == run.steps
                  and isinstance(event.event, PoissonSampledEvent)
                  and event.event.sampling_probability == run.sampling_probability
                  and isinstance(event.event.event, GaussianEvent)
                  and event.event.event.noise_multiplier >= run.noise_multiplier)
        factor = 1.0 + math.exp(min(plan.run_epsilon, 700.0))
        for entry in entries:
            if entry.name == "noise_sampling" and entry.event.delta > factor * run.sampler_tv * (1 + 1e-9):
                ok = False
        if not ok:
            raise PrivacyBudgetError(f"a run of candidate {k} spent other mechanisms than planned for it (its preview "
                                     "and the calibration): nothing is released.")

    def _report_random_stopping(self) -> dict[str, Any]:
        from zodc.privacy.ledger import event_to_dict

        best = self.best_condenser_
        finite = math.isfinite(self.epsilon_)
        task = get_task(best.task_)
        assumptions = self._public_assumptions()
        if self.score_times_ is not None:
            assumptions.append("the times of the survival score: " + ", ".join(f"{t:.6g}" for t in self.score_times_))
        shape = self.stopping_shape_
        distribution = ("Poisson" if math.isinf(shape) else "logarithmic" if shape == 0 else "geometric" if shape == 1
                        else f"truncated negative binomial (shape {shape:g})")
        candidates = [{"params": params, "steps_noise_multiplier": sigma,
                       "base_mechanism": event_to_dict(event) if event is not None else None}
                      for params, sigma, event in zip(self.candidates_, self.run_noise_multipliers_,
                                                      self.base_events_ or [None] * len(self.candidates_))]
        return {
            "epsilon": self.epsilon_, "epsilon_rdp": self.epsilon_, "epsilon_pld": None, "delta": self.delta_,
            "rdp_order": self.rdp_order_,
            "accountant": ("RDP at one order fixed before the pre-release (a Rényi filter: a run's curve depends on "
                           "the DP count): what was released once before the runs (ledger) composed with random "
                           "stopping of one run (Papernot & Steinke 2022, arXiv:2110.03620, Theorem 2; Theorem 6 for "
                           "Poisson), one run bounded at every order by the largest of its candidates' base mechanisms"
                           if finite else "non-private (epsilon = inf)"),
            "neighbouring_relation": ("add or remove one record: n is private; every run uses one DP record count "
                                      "(or one DP schema), released once before the runs"),
            "search": {
                "selection": "random stopping: a random number of runs, each of a random candidate, the best by noisy "
                             "score released",
                "distribution": distribution, "mean_repeats": self.mean_repeats_, "stopping_shape": shape,
                "candidates": candidates, "run_epsilon": self.candidate_epsilon_,
                "score_noise_multiplier": self.score_noise_multiplier_,
                "chosen": self.best_index_, "chosen_params": self.best_params_, "chosen_noisy_score": self.best_score_,
                "score": task.score_description + ", released with Gaussian noise (part of each run's mechanism)",
                "not_released": "the number of runs, which candidates ran, and every other run's table and score (the "
                                "guarantee is for the best run alone: publishing any of them, or the search's running "
                                "time, which grows with the number of runs, voids it)",
            },
            "public_assumptions": assumptions,
            "ledger": self.ledger_.to_dict(self.delta_) if finite else None,
        }

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
        from zodc.estimator import BATCH, fit_prepared
        from zodc.privacy.keys import resolve_seed

        if self._selection() == "random_stopping":
            return self._fit_random_stopping(X, y, duration_col=duration_col, event_col=event_col)
        candidates = self._candidates()
        base = self._base()
        epsilon, delta, per_candidate, selection_epsilon = self._budget(len(candidates))
        verbose = self._verbose()
        seed = resolve_seed(self.random_state)
        seeds = _candidate_seeds(seed, len(candidates))
        unfitted = _candidate_condensers(base, candidates)
        for i, candidate in enumerate(unfitted):
            candidate.set_params(epsilon=per_candidate, delta=delta / len(candidates), random_state=seeds[i])
        given_schema = unfitted[0]._given_schema()
        if self.horizon is not None:  # checked before anything is condensed (bounds too, if public)
            self._score_times(None, given_schema if given_schema is not None and given_schema.time is not None else None)
        models = {repr(c.model) for c in unfitted}
        if self.scoring_model is None and len(models) > 1:
            raise ConfigError("the candidates condense for different models; pass `scoring_model` (the model the "
                              "release is for), so that they are scored alike.")

        fitted, ledgers, pending = [], [], []
        shared_count = None  # one DP record count for every candidate (post-processing after the first's)
        joint = len(unfitted) > 1 and math.isfinite(epsilon)
        prerelease, prerelease_schema = Ledger(), None
        # A grid that sets the schema or its share per candidate keeps each candidate's own estimate.
        own_schemas = any("schema" in params or "preprocessing_share" in params for params in candidates)
        if joint and given_schema is None and not own_schemas:
            # No public schema: one DP schema (its histograms give the record count too), released once
            # before the candidates at the condenser's preprocessing share of epsilon, which every
            # candidate then uses as post-processing, instead of each estimating its own (K schemas).
            _check_preprocessing_share(base.preprocessing_share)
            prerelease_schema, shared_count, prerelease = self._prerelease(
                base, X, y, {"duration_col": duration_col, "event_col": event_col}, epsilon, delta, seed)
            for candidate in unfitted:
                candidate.set_params(schema=prerelease_schema)
        reserved = [entry.event for entry in prerelease.entries] + (
            [ExponentialMechanismEvent(selection_epsilon)] if joint else [])
        # Every candidate is held at one RDP order, fixed here before any data are read: a candidate's
        # sampling probability comes from a DP count and its noise from what the ones before it spent.
        order = filter_order(epsilon, delta) if joint else None
        for i, candidate in enumerate(unfitted):
            # Its steps: calibrated so that all so far, the choice and K - i copies of it meet the target.
            # A candidate's ledger is complete once it is prepared (its steps' noise is drawn then), so the
            # steps of up to BATCH candidates run afterwards as one batched program (fit_prepared).
            spent_before = tuple(entry.event for ledger in ledgers for entry in ledger.entries) + tuple(reserved)
            budget = SharedBudget(epsilon, delta, spent_before, len(unfitted) - i, shared_count, order) if joint else None
            try:
                prepared = candidate._prepare(X, y, duration_col=duration_col, event_col=event_col, budget=budget)
            except PrivacyBudgetError as error:
                raise PrivacyBudgetError(f"candidate {i} {candidates[i]}: {error} The candidates before it and the "
                                         "choice leave too little: search fewer candidates, or give more epsilon. "
                                         "Nothing is released.") from None
            ledgers.append(prepared.spend.ledger)
            if shared_count is None and any(entry.name == "record_count" for entry in prepared.spend.ledger.entries):
                shared_count = float(prepared.problem.record_count)
            fitted.append(candidate)
            pending.append((candidate, prepared))
            if len(pending) == BATCH or i == len(unfitted) - 1 or prepared.batch_key() is None:
                fit_prepared(pending)
                pending = []
            if verbose:
                import sys

                print(f"[PrivateSearch] candidate {i + 1}/{len(unfitted)} {candidates[i]}: epsilon "
                      f"{prepared.spend.spent():.4g} spent", file=sys.stderr)

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
        for entry in prerelease.entries:
            ledger.add(f"prerelease.{entry.name}", entry.event, entry.description)
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
            if len(fitted) == 1:  # one fit alone: the whole ledger is its own, and so is the guarantee (its
                spent = fitted[0].epsilon_  # steps held under a reference Gaussian: the larger of two bounds)
            else:  # the Rényi filter's guarantee: the whole ledger at the one order fixed before the data
                filtered = RdpAccountant((order,))
                for entry in ledger.entries:
                    filtered.compose(entry.event)
                spent = filtered.get_epsilon(delta)
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
        self.rdp_order_ = order
        self.score_times_ = score_times
        self.private_scores_ = scores
        self.selection_ = "exponential"
        self.prerelease_schema_ = prerelease_schema
        return self

    def _public_assumptions(self) -> list[str]:
        """The chosen candidate's public assumptions; a schema pre-released before the candidates was
        estimated with DP, though they were given it."""
        prereleased = getattr(self, "prerelease_schema_", None) is not None
        return self.best_condenser_.public_assumptions(schema_given=False if prereleased else None)

    def report(self) -> dict[str, Any]:
        """The privacy part of a search's release report (JSON-serialisable): the total, how it was
        split, every candidate's share and what it spent, the choice, and the combined ledger."""
        if getattr(self, "selection_", "exponential") == "random_stopping":
            return self._report_random_stopping()
        best = self.best_condenser_
        finite = math.isfinite(self.epsilon_)
        candidates = [{"params": params, "epsilon_target": c.epsilon, "delta_target": c.delta,
                       "epsilon_spent": c.epsilon_, "noise_multiplier": c.noise_multiplier_}
                      for params, c in zip(self.candidates_, self.condensers_)]
        assumptions = self._public_assumptions()
        ledger = self.ledger_.to_dict(self.delta_)
        if self.score_times_ is not None and len(self.candidates_) > 1:
            assumptions.append("the times of the survival score: " + ", ".join(f"{t:.6g}" for t in self.score_times_))
        order = getattr(self, "rdp_order_", None)
        if not finite:
            accountant = "non-private (epsilon = inf)"
        elif order is None:
            accountant = ledger["accountant"]
        else:
            accountant = (f"RDP at order {order:g} alone, fixed before the data were read (a Rényi filter, Feldman & "
                          "Zrnic 2021: a candidate's sampling probability comes from a DP count and its noise from "
                          "what the ones before it spent): every candidate's mechanisms and the choice, each "
                          "candidate's steps calibrated so that what came before, the choice and K - i copies of "
                          "itself meet the target at that order")
        return {
            "epsilon": self.epsilon_,
            # Held at one order, the release has no other bound: a branch's own best order or its PLD
            # is not a guarantee when the candidates were chosen adaptively.
            "epsilon_rdp": ledger["epsilon_rdp"] if finite and order is None else self.epsilon_,
            "epsilon_pld": ledger["epsilon_pld"] if finite and order is None else None, "delta": self.delta_,
            "rdp_order": order,
            "accountant": accountant,
            "neighbouring_relation": ("add or remove one record: n is private; the candidates share one DP record "
                                      "count (or one DP schema, released once before them)"),
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
