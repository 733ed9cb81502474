"""An auditable record of every differentially private mechanism a run spends.

Each release that touches the private table (DP column bounds, DP class counts, the T privatised
zero-order steps, …) is added to a :class:`Ledger` under a name; the ledger composes them into
one (epsilon, delta) and serialises the whole account — per-mechanism and total — for the release
report, so a reader can re-derive the guarantee.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

from zodc.errors import ConfigError
from zodc.privacy.accounting import DEFAULT_ORDERS, NEIGHBORING_RELATION, RdpAccountant, _as_orders, epsilon_bounds
from zodc.privacy.events import (
    AdditiveDeltaEvent,
    ComposedEvent,
    Event,
    ExponentialMechanismEvent,
    GaussianEvent,
    PoissonSampledEvent,
    SelfComposedEvent,
)

__all__ = ["Ledger", "LedgerEntry", "event_from_dict", "event_to_dict"]

_EVENT_TYPES = {
    cls.__name__: cls
    for cls in (GaussianEvent, PoissonSampledEvent, SelfComposedEvent, ComposedEvent, AdditiveDeltaEvent,
                ExponentialMechanismEvent)
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-serialisable nested dict ``{"type": <class name>, <field>: <value>, …}`` of ``event``.

    Raises:
        TypeError: for an unknown event type.
    """
    if isinstance(event, GaussianEvent):
        return {"type": "GaussianEvent", "noise_multiplier": float(event.noise_multiplier)}
    if isinstance(event, PoissonSampledEvent):
        return {
            "type": "PoissonSampledEvent",
            "sampling_probability": float(event.sampling_probability),
            "event": event_to_dict(event.event),
        }
    if isinstance(event, SelfComposedEvent):
        return {"type": "SelfComposedEvent", "event": event_to_dict(event.event), "count": int(event.count)}
    if isinstance(event, ComposedEvent):
        return {"type": "ComposedEvent", "events": [event_to_dict(e) for e in event.events]}
    if isinstance(event, AdditiveDeltaEvent):
        return {"type": "AdditiveDeltaEvent", "delta": float(event.delta)}
    if isinstance(event, ExponentialMechanismEvent):
        return {"type": "ExponentialMechanismEvent", "epsilon": float(event.epsilon)}
    raise TypeError(f"Unsupported privacy event type {type(event).__name__}: {event!r}.")


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Inverse of :func:`event_to_dict`.

    Raises:
        ConfigError: if ``data`` does not describe a known event.
    """
    if not isinstance(data, Mapping) or data.get("type") not in _EVENT_TYPES:
        raise ConfigError(f"`event` must be a dict with `type` in {sorted(_EVENT_TYPES)}. Got {data!r}.")
    kind = data["type"]
    try:
        if kind == "GaussianEvent":
            return GaussianEvent(float(data["noise_multiplier"]))
        if kind == "PoissonSampledEvent":
            return PoissonSampledEvent(float(data["sampling_probability"]), event_from_dict(data["event"]))
        if kind == "SelfComposedEvent":
            return SelfComposedEvent(event_from_dict(data["event"]), int(data["count"]))
        if kind == "ComposedEvent":
            return ComposedEvent(tuple(event_from_dict(e) for e in data["events"]))
        if kind == "ExponentialMechanismEvent":
            return ExponentialMechanismEvent(float(data["epsilon"]))
        return AdditiveDeltaEvent(float(data["delta"]))
    except KeyError as error:
        raise ConfigError(f"A serialised {kind} is missing the field {error.args[0]!r}. Got {dict(data)!r}.") from None


# What ``to_dict`` writes as "accountant" (which bound gave "epsilon"); "rdp" is what it wrote before
# it also accounted by PLD. The events are re-accounted on load either way.
_REPORTED_ACCOUNTANTS = frozenset({"rdp", "RDP", "PLD"})


def _json_float(value: float) -> float | str:
    # JSON has no infinity; strict parsers reject the `Infinity` token Python would write.
    return "inf" if math.isinf(value) else float(value)


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One mechanism spent on the private data.

    Attributes:
        name: short identifier, e.g. ``"zo_steps"`` or ``"column_bounds"``.
        event: what the mechanism did, for the accountant.
        description: free text for the report (what was released, with which sensitivity).
    """

    name: str
    event: Event
    description: str = ""


class Ledger:
    """Ordered record of every mechanism spent, composed by an :class:`RdpAccountant`.

    Args:
        orders: RDP orders of the accountant.

    Examples:
        >>> ledger = Ledger()
        >>> _ = ledger.add("zo_steps", SelfComposedEvent(PoissonSampledEvent(0.1, GaussianEvent(5.0)), 300))
        >>> eps = ledger.epsilon(1e-5)
    """

    accountant_name = "rdp"

    def __init__(self, orders: Sequence[float] = DEFAULT_ORDERS):
        self._orders = _as_orders(orders)
        self._entries: list[LedgerEntry] = []

    def add(self, name: str, event: Event, description: str = "") -> LedgerEntry:
        """Records a mechanism; returns its entry.

        Raises:
            ConfigError: if ``name`` is not a non-empty string.
            TypeError / ConfigError: if the event cannot be accounted (checked now, not at report time).
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"`name` must be a non-empty string. Got {name!r}.")
        if not isinstance(description, str):
            raise ConfigError(f"`description` must be a string. Got {description!r}.")
        RdpAccountant(self._orders).compose(event)  # fail at the point of spending, not at report time
        entry = LedgerEntry(name=name, event=event, description=description)
        self._entries.append(entry)
        return entry

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        """The recorded entries, in the order they were spent."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def accountant(self) -> RdpAccountant:
        """A fresh :class:`RdpAccountant` with every entry's event composed."""
        accountant = RdpAccountant(self._orders)
        for entry in self._entries:
            accountant.compose(entry.event)
        return accountant

    def epsilon(self, delta: float) -> float:
        """Total epsilon of all entries at ``delta``, by RDP."""
        return self.accountant().get_epsilon(delta)

    def bound(self, delta: float, target_epsilon: float = 1.0) -> float:
        """The guarantee a fit checks and reports: the smaller of the RDP and PLD epsilons of all
        entries at ``delta`` (both valid upper bounds; the PLD at
        :func:`~zodc.privacy.accounting.calibration_pld_interval` of ``target_epsilon``, the
        interval the steps were calibrated on; RDP alone where the PLD cannot be computed)."""
        from zodc.privacy.accounting import calibration_pld_interval

        return float(epsilon_bounds([entry.event for entry in self._entries], delta, self._orders,
                                    calibration_pld_interval(target_epsilon))["epsilon"])

    def to_dict(self, delta: float) -> dict[str, Any]:
        """JSON-serialisable account of all entries and their composition at ``delta``.

        The total is accounted twice, by RDP and by privacy-loss distributions (PLD, through
        ``dp_accounting``; see :func:`zodc.privacy.accounting.epsilon_bounds`): both are valid
        upper bounds, so ``epsilon`` is the smaller and ``accountant`` says which one gave it. When
        PLD cannot be computed, ``epsilon`` is RDP's and ``pld_note`` says why. The PLD takes up to
        a second or so for hundreds of subsampled steps at its finer default interval; it is cached
        per (events, delta). Fitting checks :meth:`bound` (the PLD at a coarser interval).

        Returns:
            ``{"accountant": "PLD" or "RDP", "neighboring_relation", "orders", "delta", "epsilon",
            "epsilon_rdp", "epsilon_pld" (None if not computed), "pld_note" (None, or why PLD was
            not used), "optimal_order" (of RDP), "additive_delta", "entries": [{"name",
            "description", "event", "epsilon"}, …]}``; an entry's ``epsilon`` is that mechanism
            alone at ``delta``, by RDP. Infinite epsilons are written as the string ``"inf"``.

        Raises:
            ConfigError / PrivacyBudgetError: as :meth:`epsilon` (delta outside [0, 1], or the
                additive deltas exceed it); nothing from the PLD side.
        """
        total = self.accountant()
        _, order = total.get_epsilon_and_order(delta)
        bounds = epsilon_bounds([entry.event for entry in self._entries], delta, self._orders)
        entries = []
        for entry in self._entries:
            alone = RdpAccountant(self._orders).compose(entry.event)
            entries.append(
                {
                    "name": entry.name,
                    "description": entry.description,
                    "event": event_to_dict(entry.event),
                    "epsilon": _json_float(alone.get_epsilon(delta)),
                }
            )
        return {
            "accountant": bounds["accountant"],
            "neighboring_relation": NEIGHBORING_RELATION,
            "orders": [float(o) for o in self._orders],
            "delta": float(delta),
            "epsilon": _json_float(bounds["epsilon"]),
            "epsilon_rdp": _json_float(bounds["epsilon_rdp"]),
            "epsilon_pld": None if bounds["epsilon_pld"] is None else _json_float(bounds["epsilon_pld"]),
            "pld_note": bounds["pld_note"],
            "optimal_order": float(order),
            "additive_delta": float(total.additive_delta),
            "entries": entries,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Ledger":
        """Rebuilds a ledger from :meth:`to_dict`'s output (the recorded epsilons are recomputed, not trusted).

        Raises:
            ConfigError: for a different accountant or neighbouring relation, or malformed entries.
        """
        if data.get("neighboring_relation", NEIGHBORING_RELATION) != NEIGHBORING_RELATION:
            raise ConfigError(
                f"`neighboring_relation` must be '{NEIGHBORING_RELATION}'. Got {data.get('neighboring_relation')!r}."
            )
        if data.get("accountant", cls.accountant_name) not in _REPORTED_ACCOUNTANTS:
            raise ConfigError(f"`accountant` must be one of {sorted(_REPORTED_ACCOUNTANTS)}. "
                              f"Got {data.get('accountant')!r}.")
        ledger = cls(data.get("orders", DEFAULT_ORDERS))
        for entry in data.get("entries", ()):
            ledger.add(entry["name"], event_from_dict(entry["event"]), entry.get("description", ""))
        return ledger
