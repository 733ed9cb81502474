"""The privacy budget of one fit: its ledger, the preprocessing noise, the steps' calibration.

:class:`Budget` is what :class:`~zodc.Condenser` spends through: every mechanism that reads the
real records goes into its :class:`~zodc.privacy.Ledger`, every exact-noise draw is counted (the
samplers' total-variation slack, :func:`~zodc.privacy.noise.noise_sampling_delta`), and the steps'
noise multiplier is the smallest that keeps the composition of *everything* at or below the target.
The target is never exceeded: the ledger's total is checked after calibration and again after the
sampling slack, and the fit refuses rather than release.

:class:`SharedBudget` is the public hook for composing several fits into one release (what
:class:`~zodc.tuning.PrivateSearch` does): pass one to ``Condenser.fit(..., budget=...)`` and the
steps are calibrated so that the events spent before, plus ``copies`` copies of this fit's own
ledger, meet the shared target instead of the fit's own ``epsilon``.

Every quantity here is public: the target, the shares, the number of steps, the batch size, and the
DP record count ``n_hat`` (already in the ledger) — never ``n``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from zodc.errors import PrivacyBudgetError
from zodc.privacy.accounting import RdpAccountant, additive_delta_of_event, rdp_of_event, rdp_to_epsilon
from zodc.privacy.calibration import (DOMINATION_SLACK, WINDOW_TAIL, adaptive_step_rules, calibrate_dominated_steps,
                                      calibrate_noise_multiplier, calibrate_noise_multiplier_pld, count_half_width,
                                      filter_order, window_sampling_probability)
from zodc.privacy.events import (AdditiveDeltaEvent, ComposedEvent, Event, GaussianEvent, PoissonSampledEvent,
                                 SelfComposedEvent)
from zodc.privacy.ledger import Ledger
from zodc.privacy.noise import noise_sampling_delta

# Share of delta given to thresholded category discovery when no schema is given.
THRESHOLD_DELTA_SHARE = 0.1
#: Above this epsilon a run is a near-non-private reference, not a release (e^100 ~ 1e43: the guarantee
#: promises nothing): its steps keep the branch's own calibration and no samplers' slack is counted.
NEAR_NON_PRIVATE = 100.0


@dataclasses.dataclass(frozen=True)
class SharedBudget:
    """A fit that is one part of a larger release (a private search's candidate).

    Attributes:
      epsilon, delta: the whole release's target.
      prior_events: events already spent or reserved by the other parts.
      copies: the fit's steps are calibrated as if ``copies`` fits like it remained (this one
        included), so the parts after it can meet the target too.
      record_count: a DP record count another part already released (reused: post-processing),
        or ``None`` to estimate one (then spent once for all parts: it is not copied).
      order: the one RDP order every part is calibrated and checked at, the same for all parts of the
        release and fixed before any data are read (``None``: :func:`~zodc.privacy.calibration.filter_order`
        of ``epsilon`` and ``delta``, which is). A part's parameters depend on DP outputs before it (its
        sampling probability on the DP count, its noise on what the parts before it spent): RDP
        composes such parts at a fixed order (a Rényi filter), not each at its own best one.
    """

    epsilon: float
    delta: float
    prior_events: tuple = ()
    copies: int = 1
    record_count: float | None = None
    order: float | None = None

    @property
    def orders(self) -> tuple:
        """The one order the parts are held at, as a tuple for the RDP accountant."""
        return (float(self.order) if self.order is not None else filter_order(self.epsilon, self.delta),)


@dataclasses.dataclass(frozen=True)
class StepMechanism:
    """The calibrated steps: noise multiplier, clip and Poisson sampling probability."""

    noise_multiplier: float
    l2_norm_clip: float
    sampling_probability: float


class Budget:
    """Spends a fit's ``(epsilon, delta)``: the ledger, the draws, the calibration of the steps."""

    def __init__(self, epsilon: float, delta: float, shared: SharedBudget | None = None):
        self.epsilon, self.delta, self.shared = float(epsilon), float(delta), shared
        self.ledger = Ledger()
        self.draws: list[tuple[float, int]] = []  # (scale, count) of every exact-noise draw
        self.selection_draws = 0  # exponential-mechanism candidates drawn (feature selection)
        self.reference: dict | None = None  # what holds the steps whatever the count (_hold_adaptive_steps)
        #: The DP count's noise, ``(std per term, terms)``, set where the count is made (public): the
        #: window rule of the steps needs it. ``None``: the reference Gaussian alone holds them.
        self.count_spread: tuple[float, int] | None = None

    @property
    def private(self) -> bool:
        return math.isfinite(self.epsilon)

    def add(self, name: str, event: Event | None, description: str) -> None:
        if event is not None:
            self.ledger.add(name, event, description)

    def draw(self, scale: float, count: int) -> None:
        """Counts ``count`` exact Gaussian draws of std ``scale`` (grid units), for the sampler's slack."""
        self.draws.append((scale, count))

    def share_noise(self, share: float, mechanisms: int) -> float:
        """Noise multiplier of each of ``mechanisms`` unit-sensitivity Gaussian mechanisms that
        together spend ``share`` of epsilon (0 without privacy)."""
        if not self.private:
            return 0.0
        return calibrate_noise_multiplier(self.epsilon * share, self.delta,
                                          lambda s: ComposedEvent(tuple(GaussianEvent(s) for _ in range(mechanisms))))

    def calibrate(self, *, steps: int, num_directions: int, batch_size: int, record_count: float,
                  l2_norm_clip: float) -> StepMechanism:
        """Calibrates ``steps`` Poisson-subsampled Gaussian steps so that everything composed meets
        the target (or the shared target); adds them to the ledger.

        ``record_count`` is the DP count ``n_hat`` (public after its mechanism), so ``p`` reveals
        nothing beyond the ledger."""
        sampling_probability = min(1.0, batch_size / record_count)
        step_event = lambda sigma: SelfComposedEvent(PoissonSampledEvent(sampling_probability, GaussianEvent(sigma)),
                                                     steps)
        shared = self.shared if self.private else None
        if shared is not None:
            once, own = self._split_shared()
            prior = tuple(shared.prior_events) + once
            noise_multiplier = calibrate_noise_multiplier(
                shared.epsilon, shared.delta,
                lambda s: SelfComposedEvent(ComposedEvent(own + (step_event(s),)), shared.copies), base_events=prior,
                orders=shared.orders)
        elif self.private:
            base = [entry.event for entry in self.ledger.entries]
            if self.epsilon <= NEAR_NON_PRIVATE:  # p came from the DP count: held whatever the count
                noise_multiplier = self._hold_adaptive_steps(steps, batch_size, record_count, sampling_probability,
                                                             base, step_event)
            else:
                noise_multiplier = calibrate_noise_multiplier_pld(self.epsilon, self.delta, step_event,
                                                                  base_events=base)
        else:
            noise_multiplier = 0.0
        clip = l2_norm_clip if self.private else math.inf
        self.ledger.add("zero_order_steps", step_event(noise_multiplier),
                        f"{steps} Poisson-sampled Gaussian steps: per-record ({num_directions},) loss "
                        f"differences clipped to L2 norm {clip}, noise std {noise_multiplier:.4g} x clip")
        self.check()
        return StepMechanism(float(noise_multiplier), float(clip), float(sampling_probability))

    def _hold_adaptive_steps(self, steps: int, batch_size: int, record_count: float, sampling_probability: float,
                             base: list, step_event) -> float:
        """The steps' noise multiplier when ``p = B / n_hat`` and the noise come from the DP count
        ``n_hat``: the steps are chosen adaptively, and the proof needs every count to be held by one
        argument fixed in advance (docs/reference.md, "The steps' sampling probability"). Two rules:

        * **gaussian** (:func:`~zodc.privacy.calibration.calibrate_dominated_steps`): at every
          epsilon' the steps' privacy profile is at most a reference Gaussian's, fixed before the count,
          plus ``eta = DOMINATION_SLACK delta``. Cheap where the steps are nearly Gaussian (``p`` not
          small), 15-20 % more noise at ``p`` of 0.003 and below;
        * **window**: for records ``n`` the count lands within ``h`` of them but with probability
          ``tail`` (:func:`~zodc.privacy.calibration.count_half_width`); the steps are calibrated alone
          at ``B / (n_hat - 2 h)``, at least the ``p`` of every count in the window, and run at ``B /
          n_hat``, at most it. Then every branch in the window is dominated (its ``p`` smaller, its
          noise larger) by one mechanism that meets the target, and the rest costs ``tail``. Cheap
          where ``h`` is small against ``n_hat`` (large cohorts).

        Which rule holds (:func:`~zodc.privacy.calibration.adaptive_step_rules`) is decided on ``n_hat``
        with a band, as wide as a window, in which both hold. The ledger's ``adaptive_steps`` holds
        ``eta + tail``; the calibrations keep ``2 eta + tail`` back (the last ``eta`` for the exact
        samplers' slack). Could one record change this? Through ``n_hat`` only (the DP count), which
        every rule is made to be robust to."""
        slack = DOMINATION_SLACK * self.delta
        tail = WINDOW_TAIL * self.delta if self.count_spread is not None else 0.0
        rules, half_width = ("gaussian",), None
        if self.count_spread is not None:
            half_width = count_half_width(*self.count_spread, tail)
            rules = adaptive_step_rules(record_count, half_width)
        held = tuple(base) + ((AdditiveDeltaEvent(tail),) if tail else ())
        reference: dict = {"rules": list(rules), "slack": slack, "tail": tail, "half_width": half_width}
        sigmas = []
        if "gaussian" in rules:  # bracketed from the branch's own calibration, usually within 1 % below
            start = calibrate_noise_multiplier_pld(self.epsilon, self.delta, step_event, base_events=base)
            sigma, gaussian, _ = calibrate_dominated_steps(self.epsilon, self.delta, steps, sampling_probability,
                                                           base_events=held, start=start)
            reference["noise_multiplier"] = gaussian
            sigmas.append(sigma)
        if "window" in rules:  # the branch alone, at the window's largest p
            inflated = window_sampling_probability(batch_size, record_count, half_width)
            sigmas.append(calibrate_noise_multiplier_pld(
                self.epsilon, self.delta, lambda s: SelfComposedEvent(PoissonSampledEvent(inflated, GaussianEvent(s)),
                                                                      steps),
                base_events=held + (AdditiveDeltaEvent(2 * slack),)))
            reference["sampling_probability"] = inflated
        self.reference = reference
        held_by = " and ".join(
            ([f"at every epsilon' at most a Gaussian mechanism's (noise multiplier {reference['noise_multiplier']:.4g}, "
              "fixed before the count) plus a slack"] if "gaussian" in rules else [])
            + ([f"calibrated at sampling probability {reference.get('sampling_probability', 0):.4g}, at least that of "
                f"every record count within {half_width:.4g} of the DP count"] if "window" in rules else []))
        self.ledger.add("adaptive_steps", AdditiveDeltaEvent(slack + tail),
                        f"the steps' sampling probability comes from the DP count: whatever the count, they are "
                        f"{held_by}; this delta holds the slack" + (" and the chance the count lands farther than "
                                                                    "that from the records" if tail else ""))
        return max(sigmas)

    def _split_shared(self):
        """(events spent once for every part — the record count —, this part's own events)."""
        entries = self.ledger.entries
        once = tuple(entry.event for entry in entries if entry.name == "record_count")
        own = tuple(entry.event for entry in entries if entry.name != "record_count")
        return once, own

    def check(self) -> None:
        """Refuses (PrivacyBudgetError) if the ledger exceeds the target (or the shared target)."""
        if not self.private:
            return
        if self.shared is None:
            spent = self.spent()
            if spent > self.epsilon * (1 + 1e-9):
                raise PrivacyBudgetError(f"the ledger's epsilon {spent:.6f} exceeds the target {self.epsilon}.")
            return
        check = RdpAccountant(self.shared.orders)
        for event in self.shared.prior_events:
            check.compose(event)
        once, own = self._split_shared()
        for event in once:
            check.compose(event)
        for event in own:
            check.compose(event, self.shared.copies)
        spent = check.get_epsilon(self.shared.delta)
        if spent > self.shared.epsilon * (1 + 1e-9):
            raise PrivacyBudgetError(f"the search's epsilon {spent:.6f} exceeds its target {self.shared.epsilon}.")

    def account_sampling(self) -> None:
        """Puts the exact samplers' total-variation slack in the ledger (``AdditiveDeltaEvent``,
        ~1e-28), then checks the target still holds. The counts are public (shapes, and a 2^30-level
        cap per categorical column), never ``n``."""
        if not self.private or self.epsilon > NEAR_NON_PRIVATE:
            # (1 + e^eps) eta exceeds any delta above eps = 100, where the guarantee promises nothing
            # anyway (e^100 ~ 1e43): such runs are near-non-private references, not releases.
            return
        # Feature selection: TV <= 2^-48 per candidate and draw (float64 probabilities, 128-bit uniforms).
        delta = (noise_sampling_delta(self.epsilon, self.draws)
                 + (1.0 + math.exp(min(self.epsilon, 700.0))) * self.selection_draws * 2.0**-48)
        self.ledger.add("noise_sampling", AdditiveDeltaEvent(min(delta, 1.0)),
                        "the exact samplers' total-variation distance from the ideal mechanisms (zodc.privacy.noise)")
        if self.shared is None:
            self.check()

    def spent(self) -> float:
        """The guarantee at ``delta``: the tighter of the ledger's RDP and PLD bounds
        (:meth:`~zodc.privacy.Ledger.bound`; ``inf`` without privacy), or where the steps were
        calibrated against a reference Gaussian, the larger of that and :meth:`reference_epsilon`
        (the bound that holds whatever sampling probability the DP count gave). A private search's
        part composes by RDP (:meth:`check`)."""
        if not self.private:
            return math.inf
        if self.shared is not None:
            return self.ledger.epsilon(self.delta)
        bound = self.ledger.bound(self.delta, self.epsilon)
        return bound if self.reference is None else max(bound, self.reference_epsilon())

    def reference_epsilon(self) -> float:
        """Epsilon at ``delta`` of every entry but the steps, composed with what holds the steps
        whatever the count (:meth:`_hold_adaptive_steps`; the ``adaptive_steps`` entry holds the
        slack and the window's tail): the reference Gaussian, or the steps at the window's sampling
        probability, the larger where both hold; by the PLD at the calibration's interval. The
        guarantee of the release as the adaptive argument gives it."""
        from zodc.privacy.accounting import calibration_pld_interval, pld_epsilon

        events = tuple(entry.event for entry in self.ledger.entries if entry.name != "zero_order_steps")
        steps = next(entry.event for entry in self.ledger.entries if entry.name == "zero_order_steps")
        interval = calibration_pld_interval(self.epsilon)
        bounds = []
        if "noise_multiplier" in self.reference:
            bounds.append(pld_epsilon(events + (GaussianEvent(self.reference["noise_multiplier"]),), self.delta,
                                      interval))
        if "sampling_probability" in self.reference:
            inner = steps.event.event
            window = SelfComposedEvent(PoissonSampledEvent(self.reference["sampling_probability"], inner), steps.count)
            bounds.append(pld_epsilon(events + (window,), self.delta, interval))
        return float(max(bounds))

    def epsilon_after_fn(self):
        """``t -> epsilon`` spent after ``t`` steps (for the progress bar): RDP's after ``t`` steps,
        or the whole ledger's guarantee where that is smaller (epsilon grows with the steps, so the
        total bounds every prefix; the steps may be calibrated on the PLD, below RDP)."""
        if not self.private:
            return lambda t: math.inf
        total = self.spent()
        entries = list(self.ledger.entries)
        steps_entry = next(entry for entry in entries if entry.name == "zero_order_steps")
        pre = [entry for entry in entries if entry is not steps_entry]
        orders = np.asarray(self.ledger.accountant().orders)
        pre_rdp = np.zeros(len(orders))
        for entry in pre:
            pre_rdp = pre_rdp + rdp_of_event(entry.event, orders)
        remaining_delta = self.delta - sum(additive_delta_of_event(entry.event) for entry in pre)
        step_rdp = rdp_of_event(steps_entry.event.event, orders)
        return lambda t: min(rdp_to_epsilon(pre_rdp + t * step_rdp, orders, remaining_delta)[0], total)
