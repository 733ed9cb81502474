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
class AdditiveDeltaEvent:
    """A failure probability ``delta`` with no RDP cost of its own.

    Used for thresholded releases whose candidate set is not public (a category seen in one
    neighbouring table but not the other is released with probability at most ``delta``); the
    accountant subtracts it from the target delta before converting RDP to epsilon.
    """

    delta: float


Event = Union[GaussianEvent, PoissonSampledEvent, SelfComposedEvent, ComposedEvent, AdditiveDeltaEvent]
