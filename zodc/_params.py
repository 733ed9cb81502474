"""Declarative parameter constraints, as scikit-learn's ``_parameter_constraints`` (no private import).

An estimator lists, per constructor parameter, the values it accepts::

    _parameter_constraints = {"epsilon": [Interval(float, 0, None, closed="neither", inf=True)],
                              "loss": [None, Options("brier", "cross_entropy")]}

and :func:`validate_params` checks every one before ``fit`` does any work, raising a
:class:`~zodc.errors.ConfigError` that names the parameter, what it accepts and what it got. The
checks read public configuration only (never data).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Mapping, Sequence

from zodc.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``int`` or ``float``) in ``[low, high]`` (``None``: unbounded side).

    ``closed``: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``inf``: ``+inf`` allowed
    (only for ``float``, beyond ``high``)."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"
    inf: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        value = float(value)
        if math.isnan(value):
            return False
        if math.isinf(value):
            return self.inf and value > 0
        left_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        right_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return left_ok and right_ok

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            bound = f"{'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
            return (f"{noun} {bound}" if self.kind is int else bound) + (" (inf allowed)" if self.inf else "")
        if self.high is not None:
            return f"{noun} {'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        return noun


@dataclasses.dataclass(frozen=True)
class Options:
    """One of the given values (compared with ``==``; ``True``/``False`` only match booleans)."""

    values: tuple

    def __init__(self, *values: Any):
        object.__setattr__(self, "values", tuple(values))

    def accepts(self, value: Any) -> bool:
        for option in self.values:
            if isinstance(option, bool) or isinstance(value, bool):
                if isinstance(option, bool) and isinstance(value, bool) and option is value:
                    return True
            elif isinstance(value, type(option)) and value == option:
                return True
        return False

    def describe(self) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(repr(option) for option in self.values)


@dataclasses.dataclass(frozen=True)
class InstanceOf:
    """An instance of any of ``types`` (its description names them)."""

    types: tuple
    name: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return self.name


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    return constraint.accepts(value)


def _describe(constraint: Any) -> str:
    return "None" if constraint is None else constraint.describe()


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, Sequence[Any]]) -> None:
    """Checks each ``params[name]`` against ``constraints[name]`` (any one may match).

    Raises:
      ConfigError: "`name` must be <what it accepts>. Got <value>." for the first mismatch.
    """
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(_accepts(constraint, value) for constraint in allowed):
            continue
        described = [_describe(constraint) for constraint in allowed]
        what = described[0] if len(described) == 1 else ", ".join(described[:-1]) + " or " + described[-1]
        raise ConfigError(f"`{name}` must be {what}. Got {value!r}.")
