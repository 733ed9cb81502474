"""What a mechanism did, kept apart from how it is accounted.

Following ``dp_accounting``'s split between *events* and *accountants*, each differentially
private release in zodc is described by a frozen event object; an accountant composes events and
converts them to an (epsilon, delta) guarantee. All events are for the add-or-remove-one-record
neighbouring relation.
"""

from __future__ import annotations

import dataclasses
from typing import Union


@dataclasses.dataclass(frozen=True)
class GaussianEvent:
    """Gaussian mechanism with L2 sensitivity 1 and noise std ``noise_multiplier``.

    A mechanism with sensitivity ``C`` and noise std ``sigma * C`` is ``GaussianEvent(sigma)``.
    """

    noise_multiplier: float


@dataclasses.dataclass(frozen=True)
class PoissonSampledEvent:
    """``event`` run on a Poisson subsample: each record kept independently with ``sampling_probability``."""

    sampling_probability: float
    event: "Event"


@dataclasses.dataclass(frozen=True)
class SelfComposedEvent:
    """``event`` run ``count`` times (adaptively)."""

    event: "Event"
    count: int


@dataclasses.dataclass(frozen=True)
class ComposedEvent:
    """Several events run one after another (adaptively)."""

    events: tuple


@dataclasses.dataclass(frozen=True)
class ExponentialMechanismEvent:
    """One selection by the exponential mechanism (McSherry & Talwar 2007) at pure ``epsilon``.

    The score's sensitivity is folded into ``epsilon`` by the mechanism itself. The exponential
    mechanism is ``epsilon``-DP with the bounded-range property, hence ``epsilon**2 / 8``-zCDP
    (Cesar & Rogers 2021, arXiv:2004.07223): its RDP at order ``alpha`` is
    ``min(alpha * epsilon**2 / 8, epsilon)``. One-shot Gumbel top-k equals ``k`` such selections
    made one after another (Durfee & Rogers 2019, arXiv:1905.04273).
    """

    epsilon: float


@dataclasses.dataclass(frozen=True)
class AdditiveDeltaEvent:
    """A failure probability ``delta`` with no RDP cost of its own.

    Used for thresholded releases whose candidate set is not public (a category seen in one
    neighbouring table but not the other is released with probability at most ``delta``); the
    accountant subtracts it from the target delta before converting RDP to epsilon.
    """

    delta: float


Event = Union[GaussianEvent, PoissonSampledEvent, SelfComposedEvent, ComposedEvent, AdditiveDeltaEvent,
              ExponentialMechanismEvent]
