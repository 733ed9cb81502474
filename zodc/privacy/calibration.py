"""Calibrate the noise multiplier to a target (epsilon, delta) before any data are touched.

Users of DP tools ask for a hard epsilon target, not an epsilon reported after the fact (opacus'
``make_private_with_epsilon``, dp_accounting's ``mechanism_calibration``). Epsilon of every event
zodc uses is non-increasing in the noise multiplier, so the smallest admissible sigma is found by
bisection; the bisection is done in log sigma because useful sigmas span several decades.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

from zodc.errors import ConfigError, PrivacyBudgetError
from zodc.privacy.accounting import DEFAULT_ORDERS, RdpAccountant
from zodc.privacy.events import Event, GaussianEvent, PoissonSampledEvent, SelfComposedEvent

__all__ = ["calibrate_dominated_steps", "calibrate_dpsgd_noise", "calibrate_noise_multiplier",
           "calibrate_noise_multiplier_pld", "count_half_width", "filter_order",
           "gaussian_noise_for_epsilon"]

# Beyond this sigma the composition is as good as sigma = inf; failing to meet the target there
# means the base events leave (almost) no room, which is reported instead of searching forever.
_MAX_NOISE_MULTIPLIER = 1e8


def _check_targets(target_epsilon: float, target_delta: float) -> tuple[float, float]:
    if not isinstance(target_epsilon, (int, float)) or isinstance(target_epsilon, bool) or not target_epsilon > 0:
        raise ConfigError(f"`target_epsilon` must be > 0. Got {target_epsilon}.")
    if not isinstance(target_delta, (int, float)) or isinstance(target_delta, bool) or not 0 < target_delta < 1:
        raise ConfigError(f"`target_delta` must be in (0, 1). Got {target_delta}.")
    return float(target_epsilon), float(target_delta)


def calibrate_noise_multiplier(
    target_epsilon: float,
    target_delta: float,
    event_fn: Callable[[float], Event],
    *,
    base_events: Sequence[Event] = (),
    orders: Sequence[float] = DEFAULT_ORDERS,
    tolerance: float = 1e-4,
) -> float:
    """Smallest noise multiplier sigma such that ``base_events`` + ``event_fn(sigma)`` meet the target.

    Bisection over log sigma on the RDP accountant's epsilon (Mironov, Talwar and Zhang, 2019,
    arXiv:1908.10530; tight conversion of Canonne, Kamath and Steinke, 2020, arXiv:2004.00010).
    The returned sigma is the *upper* end of the final bracket, so
    ``epsilon(sigma) <= target_epsilon`` always holds, and it is at most a factor
    ``1 + tolerance`` above the exact answer.

    Args:
        target_epsilon: epsilon > 0 the whole composition must not exceed; ``math.inf`` returns 0.
        target_delta: delta in (0, 1).
        event_fn: maps sigma to the event spent with that noise multiplier; epsilon must be
            non-increasing in sigma (true for Gaussian and Poisson-subsampled Gaussian events).
        base_events: events already spent or planned with a fixed noise (e.g. DP preprocessing).
        orders: RDP orders.
        tolerance: relative precision of sigma, in (0, 1).

    Returns:
        sigma as a Python float (0.0 when ``target_epsilon`` is infinite).

    Raises:
        ConfigError: for ``target_epsilon <= 0``, ``target_delta`` outside (0, 1) or a bad tolerance.
        PrivacyBudgetError: if ``base_events`` alone already reach ``target_epsilon``, or no sigma
            up to 1e8 meets it.

    Examples:
        >>> sigma = calibrate_noise_multiplier(
        ...     1.0, 1e-5, lambda s: SelfComposedEvent(PoissonSampledEvent(0.01, GaussianEvent(s)), 1000))
    """
    target_epsilon, target_delta = _check_targets(target_epsilon, target_delta)
    if not 0 < tolerance < 1:
        raise ConfigError(f"`tolerance` must be in (0, 1). Got {tolerance}.")
    if math.isinf(target_epsilon):
        return 0.0
    base_events = tuple(base_events)

    base = RdpAccountant(orders)
    for event in base_events:
        base.compose(event)
    base_epsilon = base.get_epsilon(target_delta)  # raises PrivacyBudgetError if base deltas exceed it
    if base_epsilon >= target_epsilon:
        raise PrivacyBudgetError(
            f"The base events alone spend epsilon = {base_epsilon:.6g} at delta = {target_delta:g}, which "
            f"already reaches target_epsilon = {target_epsilon:g}; nothing is left for the calibrated mechanism."
        )

    def epsilon(sigma: float) -> float:
        # Copy the base curve rather than recomputing it at every bisection step.
        return base.copy().compose(event_fn(sigma)).get_epsilon(target_delta)

    # Bracket: epsilon(low) > target >= epsilon(high).
    high = 1.0
    while epsilon(high) > target_epsilon:
        high *= 2.0
        if high > _MAX_NOISE_MULTIPLIER:
            raise PrivacyBudgetError(
                f"No noise multiplier up to {_MAX_NOISE_MULTIPLIER:g} meets target_epsilon = {target_epsilon:g} at "
                f"delta = {target_delta:g} (the base events spend epsilon = {base_epsilon:.6g})."
            )
    low = high / 2.0
    while epsilon(low) <= target_epsilon:
        high = low
        low /= 2.0
        if low < 1e-12:  # the target is met with (almost) no noise at all
            return high
    while math.log(high / low) > math.log1p(tolerance):
        middle = math.sqrt(low * high)
        if epsilon(middle) <= target_epsilon:
            high = middle
        else:
            low = middle
    return float(high)


@functools.lru_cache(maxsize=64)
def filter_order(target_epsilon: float, target_delta: float, orders: tuple = DEFAULT_ORDERS) -> float:
    """The one RDP order at which a release whose parts are chosen adaptively is held (a Rényi filter).

    When a mechanism's parameters depend on an earlier DP output (a private search's steps: their
    sampling probability ``B / n_hat`` and their noise come from the DP count, and each candidate's
    noise from what the candidates before it spent), RDP composes them only at an order fixed in
    advance: if at that order every branch's RDP sums to at most ``rho``, the release is
    ``(order, rho)``-RDP (Feldman & Zrnic 2021, "Individual privacy accounting via a Rényi filter",
    arXiv:2008.11193). Each branch converting at its own best order, as before, is not covered.

    The order is the best one of the single Gaussian mechanism that meets ``(target_epsilon,
    target_delta)``: public, fixed before any data are read. Gaussian mechanisms, the exponential
    mechanism (as zCDP) and their compositions have RDP linear in the order, so this is also the best
    order of any number of them calibrated to the target together. Poisson-sampled steps (300, two
    candidates) at ``p >= 0.02`` need at most 0.2 % more noise at it than at their own best order at
    epsilon 0.5-1 (2.4 % at epsilon 4); at small ``p`` their curve bends and the best order falls:
    21 % more at ``p = 0.005`` and 32 % at ``p = 0.001`` (epsilon 1; 17 % and 25 % at epsilon 4).
    No fixed order serves both ends (order 14 at epsilon 1: 5 % at ``p >= 0.1``, 16 % at 0.001).

    Cached (a pure function of public numbers): every part of a release asks for it, at its calibration
    and at its check.

    Returns:
        the order, one of ``orders``.
    """
    sigma = calibrate_noise_multiplier(target_epsilon, target_delta, GaussianEvent, orders=orders)
    return float(RdpAccountant(orders).compose(GaussianEvent(sigma)).get_epsilon_and_order(target_delta)[1])


def calibrate_noise_multiplier_pld(
    target_epsilon: float,
    target_delta: float,
    event_fn: Callable[[float], Event],
    *,
    base_events: Sequence[Event] = (),
    tolerance: float = 1e-3,
) -> float:
    """Smallest noise multiplier sigma whose composition meets the target by the tighter of two valid
    accountants: RDP (:func:`calibrate_noise_multiplier`, an upper end) and ``dp_accounting``'s PLD
    with pessimistic discretisation at
    :func:`~zodc.privacy.accounting.calibration_pld_interval` (an upper bound on epsilon:
    :func:`~zodc.privacy.accounting.pld_epsilon`), searched below RDP's answer over log sigma.

    For a schema-less fit of 660 records (300 Poisson-sampled steps at p = 0.38 after a DP schema and
    start) the steps' sigma drops from 34.2 (RDP) to 30.1, about 12 % less noise for the same (epsilon, delta): the
    PLD tracks the whole privacy-loss distribution where RDP's conversion loses about 8 % of epsilon.
    A few PLD evaluations of 0.04-0.1 s (regula falsi). Where the PLD cannot be computed
    (dp-accounting missing, an event it cannot represent) the answer is RDP's.

    Args and Raises: as :func:`calibrate_noise_multiplier` (``tolerance``: relative precision of
    sigma below RDP's answer).

    Returns:
        sigma as a Python float (0.0 when ``target_epsilon`` is infinite); ``epsilon_bounds`` of
        the composition at it is at most ``target_epsilon``.
    """
    from zodc.privacy.accounting import calibration_pld_interval, pld_epsilon

    high = calibrate_noise_multiplier(target_epsilon, target_delta, event_fn, base_events=base_events)
    if high == 0.0:
        return 0.0
    base_events, interval = tuple(base_events), calibration_pld_interval(target_epsilon)

    def gap(sigma: float) -> float:
        """log(PLD epsilon / target): <= 0 where sigma meets the target (inf without a PLD)."""
        try:
            spent = pld_epsilon(base_events + (event_fn(sigma),), target_delta, interval)
        except Exception:  # noqa: BLE001 - no PLD: RDP's answer stands
            return math.inf
        return math.log(spent / target_epsilon) if math.isfinite(spent) and spent > 0 else math.inf

    # Regula falsi (Illinois) on log sigma: epsilon is smooth and decreasing in sigma, close to a
    # power law, so 3-5 PLD evaluations reach the tolerance where bisection took 10.
    g_high = gap(high)
    if g_high > 0:
        return float(high)
    low = high * math.exp(-1.2 * g_high - 0.02)  # past the power-law guess: the target's far side
    g_low = gap(low)
    while g_low <= 0:
        high, g_high = low, g_low
        low = high * 0.8
        if low < 1e-6:
            return float(high)
        g_low = gap(low)
    side = 0
    for _ in range(60):
        if high / low <= 1 + tolerance:
            break
        x_low, x_high = math.log(low), math.log(high)
        middle = math.exp(x_high - g_high * (x_high - x_low) / (g_high - g_low))
        middle = min(max(middle, low * (1 + tolerance / 4)), high / (1 + tolerance / 4))
        g_middle = gap(middle)
        if g_middle <= 0:
            high, g_high = middle, g_middle
            g_low = g_low / 2 if side == -1 else g_low
            side = -1
        else:
            low, g_low = middle, g_middle
            g_high = g_high / 2 if side == 1 else g_high
            side = 1
    return float(high)


#: The additive delta, per unit of the target delta, that the steps' profile may exceed the reference
#: Gaussian's by (:func:`calibrate_dominated_steps`); the reference is calibrated to the target less
#: twice this (once for the excess, once kept back for the exact samplers' slack, ~1e-28).
DOMINATION_SLACK = 1e-3
#: The grid of epsilon' on which a profile is compared, per unit of the target epsilon (at least 1):
#: its step, and its end (where the steps' profile must be below the slack).
DOMINATION_STEP, DOMINATION_END = 2e-3, 4.0


def reference_noise_multiplier(target_epsilon: float, target_delta: float, base_events: Sequence[Event] = (),
                               tolerance: float = 1e-4) -> float:
    """The noise multiplier ``s`` of the Gaussian mechanism (sensitivity 1) that, composed with
    ``base_events``, meets ``(target_epsilon, target_delta * (1 - 2 * DOMINATION_SLACK))`` by
    ``dp_accounting``'s PLD (pessimistic): the largest up to ``tolerance``. Public inputs only: the
    target and the parameters of the mechanisms before the steps, none of them chosen from a DP
    output. Bisection over log ``s``.

    Raises:
        PrivacyBudgetError: if ``base_events`` leave no room at the target.
    """
    from zodc.privacy.accounting import calibration_pld_interval, pld_epsilon
    from zodc.privacy.events import AdditiveDeltaEvent

    interval = calibration_pld_interval(target_epsilon)
    events = tuple(base_events) + (AdditiveDeltaEvent(2 * DOMINATION_SLACK * target_delta),)
    meets = lambda s: pld_epsilon(events + (GaussianEvent(s),), target_delta, interval) <= target_epsilon
    low, high = 1e-3, 1.0
    while not meets(high):
        low, high = high, high * 4
        if high > _MAX_NOISE_MULTIPLIER:
            raise PrivacyBudgetError(f"the mechanisms before the steps leave no room at epsilon = {target_epsilon:g}.")
    while high / low > 1 + tolerance:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if meets(middle) else (middle, high)
    return float(high)


def _profile_gap(steps: int, sampling_probability: float, sigma: float, theirs, slack: float, grid,
                 interval: float) -> float:
    """``max`` over the grid of ``delta_steps(e_i) - delta_G(e_{i+1}) - slack`` and of
    ``delta_steps(e_last) - slack``, with ``delta_steps`` the pessimistic PLD's profile of ``steps``
    Poisson-sampled Gaussians (the larger of its two directions: add and remove) and ``delta_G`` the
    reference Gaussian's at ``grid[1:]`` (``theirs``): <= 0 means dominated at every epsilon' >= 0.
    ``interval``: the PLD's discretisation (the calibration's)."""
    import numpy as np
    from dp_accounting.pld import privacy_loss_distribution as pld_lib
    from dp_accounting.privacy_accountant import NeighboringRelation

    pld = pld_lib.from_gaussian_mechanism(
        standard_deviation=sigma, sampling_prob=sampling_probability, value_discretization_interval=interval,
        neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE).self_compose(steps)
    ours = np.asarray(pld.get_delta_for_epsilon(list(grid)), np.float64)
    return float(max(np.max(ours[:-1] - theirs - slack), ours[-1] - slack))


#: The probability, per unit of the target delta, that the DP count lands farther than the window's
#: half-width from the records it counts (:func:`count_half_width`); it is added to delta.
WINDOW_TAIL = 1e-3
#: Counts at least this many half-widths use the window rule (:func:`adaptive_step_rules`): below it,
#: inflating ``p`` by ``n_hat / (n_hat - 2 h)`` would cost more noise than the reference Gaussian does.
WINDOW_START = 50.0


def count_half_width(std: float, terms: int, tail: float) -> float:
    """The half-width ``h`` of the window in which the DP count ``n_hat`` lies, whatever the records,
    but with probability at most ``tail``: ``n_hat = max(c + Z_1 + ... + Z_terms, 1)``, with ``c`` the
    records counted and ``Z_i = round(N(0, std^2))`` independent (the record count: one term; a DP
    schema: one per class or event value, its role counts' noise). ``|sum Z_i| <= |sum N_i| + terms /
    2`` and ``sum N_i ~ N(0, terms std^2)``; the clamp at 1 moves at most 1. So ``h = k sqrt(terms) std
    + terms / 2 + 1`` with ``2 Phi(-k) = tail``. Public inputs only: the count's noise and its number
    of terms (the public class set)."""
    from scipy.stats import norm

    return float(norm.isf(tail / 2.0) * math.sqrt(terms) * std + terms / 2.0 + 1.0)


def adaptive_step_rules(record_count: float, half_width: float) -> tuple:
    """Which rules hold the steps, from the DP count ``n_hat`` and the window's half-width ``h``:
    ``("gaussian",)`` below ``N0 = WINDOW_START h``, ``("window",)`` from ``N0 + 2 h``, and both between
    (the steps' noise the larger of the two). The band is as wide as a window, so that every window
    of counts ``[n - h, n + h]`` lies where one rule holds throughout (docs/reference.md). A function
    of the DP count and public settings only."""
    start = WINDOW_START * half_width
    if record_count < start:
        return ("gaussian",)
    if record_count < start + 2.0 * half_width:
        return ("gaussian", "window")
    return ("window",)


def window_sampling_probability(batch_size: float, record_count: float, half_width: float) -> float:
    """The sampling probability the window rule calibrates the steps at: ``B / (n_hat - 2 h)``, at
    least the largest ``B / n`` of every record count ``n`` whose window holds ``n_hat``."""
    room = record_count - 2.0 * half_width
    return 1.0 if room <= batch_size else float(batch_size / room)


def calibrate_dominated_steps(target_epsilon: float, target_delta: float, steps: int, sampling_probability: float,
                              *, base_events: Sequence[Event] = (), start: float = 1.0,
                              tolerance: float = 1e-3) -> tuple:
    """The steps' noise multiplier when their sampling probability is chosen from a DP count.

    ``p = B / n_hat`` comes from an earlier output of the release, so the steps are a mechanism
    chosen adaptively. The composition theorem of f-DP (Dong, Roth & Su 2022, Theorem 3.2) covers
    that when every choice meets one trade-off function fixed in advance. Here that function is a
    Gaussian mechanism's, of noise multiplier ``s`` (:func:`reference_noise_multiplier`: it depends
    on the target and the mechanisms before the steps, never on ``n_hat``). The returned sigma is
    the smallest (to ``tolerance``) for which the privacy profile of ``steps`` Poisson-sampled
    Gaussians at ``p`` lies under the reference's plus ``eta = DOMINATION_SLACK * target_delta``
    at every epsilon' >= 0. Both neighbouring directions are compared. For epsilon' < 0,
    ``delta(e) = 1 - e^e + e^e delta_reverse(-e)`` carries the comparison over. Between grid points,
    both profiles decrease in epsilon': the steps' at ``e_i`` is compared with the reference's at
    ``e_(i+1)``. Beyond the grid, the steps' profile is below ``eta``.

    Whatever ``p`` the count gives, the release's delta at the target epsilon is then at most the
    reference composed with the mechanisms before, plus ``eta``: ``target_delta * (1 -
    DOMINATION_SLACK)``. The last ``eta`` is kept back for the exact samplers' slack. The cost is
    0.6-1 % more noise than calibrating the branch alone at 300 steps (:func:`calibrate_noise_multiplier_pld`,
    which is a good ``start``), 5 % at 2 steps. Five to ten PLD evaluations of 0.02-0.1 s each.

    Returns:
        ``(sigma, s, eta)``: the steps' noise multiplier, the reference's, and the slack.
    """
    import numpy as np

    from zodc.privacy.accounting import calibration_pld_interval

    reference = reference_noise_multiplier(target_epsilon, target_delta, base_events)
    scale = max(1.0, float(target_epsilon))
    grid = np.arange(0.0, DOMINATION_END * scale + 1e-12, DOMINATION_STEP * scale)
    slack = DOMINATION_SLACK * target_delta
    theirs = np.array([gaussian_delta(float(e), reference) for e in grid[1:]])  # once: the reference is fixed
    interval = calibration_pld_interval(target_epsilon)
    dominated = lambda sigma: _profile_gap(steps, sampling_probability, sigma, theirs, slack, grid, interval) <= 0
    # The answer is usually within 1 % above the branch's own calibration (``start``): bracket it from
    # there, the step growing geometrically, then bisect.
    step, point = 1.006, max(float(start), 1e-6)
    if dominated(point):
        high, low = point, point / step
        while dominated(low):
            high, step = low, step * step
            low = high / step
    else:
        low, high = point, point * step
        while not dominated(high):
            low, step = high, step * step
            high = low * step
            if high > _MAX_NOISE_MULTIPLIER:
                raise PrivacyBudgetError("no noise multiplier makes the steps meet the reference Gaussian.")
    while high / low > 1 + tolerance:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if dominated(middle) else (middle, high)
    return float(high), reference, slack


def calibrate_dpsgd_noise(
    target_epsilon: float,
    target_delta: float,
    sampling_probability: float,
    steps: int,
    base_events: Sequence[Event] = (),
) -> float:
    """Noise multiplier of ``steps`` Poisson-subsampled Gaussian steps meeting (epsilon, delta).

    The event is ``SelfComposedEvent(PoissonSampledEvent(p, GaussianEvent(sigma)), steps)``, i.e.
    DP-SGD (Abadi et al., 2016, arXiv:1607.00133) or zodc's privatised zero-order step.

    Args:
        target_epsilon: total epsilon > 0, including ``base_events``.
        target_delta: delta in (0, 1).
        sampling_probability: Poisson sampling probability p in (0, 1].
        steps: number of steps T >= 1.
        base_events: other events composed with the steps.

    Returns:
        sigma as a Python float.

    Raises:
        ConfigError: for out-of-range arguments.
        PrivacyBudgetError: as :func:`calibrate_noise_multiplier`.
    """
    if not isinstance(sampling_probability, (int, float)) or not 0 < sampling_probability <= 1:
        raise ConfigError(f"`sampling_probability` must be in (0, 1]. Got {sampling_probability}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"`steps` must be an integer >= 1. Got {steps}.")
    p = float(sampling_probability)
    return calibrate_noise_multiplier(
        target_epsilon,
        target_delta,
        lambda sigma: SelfComposedEvent(PoissonSampledEvent(p, GaussianEvent(sigma)), steps),
        base_events=base_events,
    )


def gaussian_noise_for_epsilon(target_epsilon: float, target_delta: float, base_events: Sequence[Event] = ()) -> float:
    """Noise multiplier of a single Gaussian release meeting (epsilon, delta) under RDP accounting.

    Args:
        target_epsilon: epsilon > 0.
        target_delta: delta in (0, 1).
        base_events: other events composed with the release.

    Returns:
        sigma as a Python float; the release adds ``N(0, (sigma * sensitivity)^2)``.

    Raises:
        ConfigError, PrivacyBudgetError: as :func:`calibrate_noise_multiplier`.
    """
    return calibrate_noise_multiplier(target_epsilon, target_delta, GaussianEvent, base_events=base_events)



def share_noise_multiplier(target_epsilon: float, target_delta: float, share: float, *,
                           additive_delta: float = 0.0) -> float:
    """Noise multiplier of a Gaussian mechanism given ``share`` of a release's privacy budget.

    The budget is split the way Gaussian mechanisms compose, in their additive currency
    ``rho = 1 / (2 sigma^2)`` (as zCDP budgets are split, e.g. AIM and MST's ``rho`` shares): let
    ``sigma_total`` be the noise multiplier of the one Gaussian mechanism that alone spends the whole
    ``(target_epsilon, target_delta)`` (exact for one Gaussian, :func:`gaussian_delta`, with
    ``additive_delta`` of the delta set aside); the share gets ``sigma_total / sqrt(share)``. The
    rest of the release, calibrated afterwards against the whole target, gets the remaining
    ``1 - share`` of ``rho``, so this mechanism adds at most about ``share`` of the target's epsilon
    to the composed total (epsilon of a Gaussian is concave in ``rho``; the CLI's tests check the
    ledger). Public inputs only.

    Args:
        target_epsilon: epsilon of the whole release (``inf``: returns 0, the non-private mode).
        target_delta: delta of the whole release, in (0, 1).
        share: the mechanism's share of ``rho``, in (0, 1].
        additive_delta: a part of ``target_delta`` the mechanism spends as an additive delta.

    Returns:
        sigma as a Python float.
    """
    if math.isinf(target_epsilon):
        return 0.0
    if not 0 < share <= 1:
        raise ConfigError(f"`share` must be in (0, 1]. Got {share!r}.")
    return _share_noise_multiplier(target_epsilon, target_delta, share, additive_delta)


def gaussian_delta(epsilon: float, sigma: float) -> float:
    """The exact ``delta(epsilon)`` of one Gaussian mechanism of sensitivity 1 and noise std ``sigma``:
    ``Phi(1/(2 sigma) - epsilon sigma) - e^epsilon Phi(-1/(2 sigma) - epsilon sigma)`` (Balle and Wang,
    2018, "Improving the Gaussian mechanism for differential privacy", Theorem 8; the privacy
    profile that dp-accounting's PLD reproduces for one Gaussian). Computed from ``log Phi``, so the
    second term does not overflow at large epsilon (its exponent is at most 0)."""
    from scipy.special import log_ndtr

    a, b = 0.5 / sigma - epsilon * sigma, -0.5 / sigma - epsilon * sigma
    return float(math.exp(log_ndtr(a)) - math.exp(epsilon + log_ndtr(b)))


#: Relative margin on the exact sigma, so that accountants' float rounding (dp-accounting's PLD
#: reads 1 + 7e-13 of the target at the exact sigma) never puts the share above its epsilon.
_EXACT_MARGIN = 1e-6


@functools.lru_cache(maxsize=64)
def _share_noise_multiplier(target_epsilon: float, target_delta: float, share: float, additive_delta: float) -> float:
    """The exact noise multiplier of the one Gaussian mechanism spending ``(target_epsilon,
    target_delta - additive_delta)`` (:func:`gaussian_delta` is decreasing in sigma: bisection over
    log sigma to float64's resolution, about 0.2 ms), times ``1 + _EXACT_MARGIN``, over
    ``sqrt(share)``. It replaced a bisection over dp-accounting's PLD (15 evaluations, about 0.6 s
    of every schema-less run) whose answer it matches to 1e-4 (its tolerance); the tests check it
    against the PLD accountant."""
    gaussian_part = target_delta - additive_delta
    if not gaussian_part > 0:
        raise PrivacyBudgetError(f"the additive delta {additive_delta:g} leaves nothing of delta = {target_delta:g} "
                                 "for the Gaussian mechanism.")
    low, high = 1e-6, _MAX_NOISE_MULTIPLIER
    if gaussian_delta(target_epsilon, high) > gaussian_part:
        raise PrivacyBudgetError(f"No noise multiplier up to {_MAX_NOISE_MULTIPLIER:g} meets target_epsilon = "
                                 f"{target_epsilon:g} at delta = {gaussian_part:g}.")
    for _ in range(200):
        middle = math.sqrt(low * high)
        if gaussian_delta(target_epsilon, middle) <= gaussian_part:
            high = middle
        else:
            low = middle
        if high / low < 1 + 1e-12:
            break
    return float(high * (1 + _EXACT_MARGIN) / math.sqrt(share))
