"""Differential privacy for zodc: mechanisms, events, RDP accounting, calibration and the ledger."""

from zodc.privacy.accounting import (
    DEFAULT_ORDERS,
    NEIGHBORING_RELATION,
    RdpAccountant,
    additive_delta_of_event,
    pld_epsilon,
    rdp_of_event,
    rdp_poisson_subsampled_gaussian,
    rdp_to_delta,
    rdp_to_epsilon,
)
from zodc.privacy.calibration import (calibrate_dpsgd_noise, calibrate_noise_multiplier, calibrate_noise_multiplier_pld,
                                      gaussian_noise_for_epsilon)
from zodc.privacy.events import (
    AdditiveDeltaEvent,
    ComposedEvent,
    Event,
    GaussianEvent,
    PoissonSampledEvent,
    SelfComposedEvent,
)
from zodc.privacy.ledger import Ledger, LedgerEntry, event_from_dict, event_to_dict
from zodc.privacy.mechanisms import clip_rows, noisy_clipped_sum, poisson_mask

__all__ = [
    "DEFAULT_ORDERS",
    "NEIGHBORING_RELATION",
    "AdditiveDeltaEvent",
    "ComposedEvent",
    "Event",
    "GaussianEvent",
    "Ledger",
    "LedgerEntry",
    "PoissonSampledEvent",
    "RdpAccountant",
    "SelfComposedEvent",
    "additive_delta_of_event",
    "calibrate_dpsgd_noise",
    "calibrate_noise_multiplier",
    "calibrate_noise_multiplier_pld",
    "clip_rows",
    "event_from_dict",
    "event_to_dict",
    "gaussian_noise_for_epsilon",
    "noisy_clipped_sum",
    "pld_epsilon",
    "poisson_mask",
    "rdp_of_event",
    "rdp_poisson_subsampled_gaussian",
    "rdp_to_delta",
    "rdp_to_epsilon",
]
