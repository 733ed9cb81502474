"""Bounded per-record losses of a fitted classifier on real records.

The privacy analysis needs every record's contribution bounded (it is clipped anyway), and the
zero-order estimate needs a loss that is defined for every fit, including one that failed: each
loss here has a finite ``upper_bound`` that a failed fit is charged.

All losses take predicted class probabilities ``proba`` of shape ``(..., n, K)`` and integer labels
``y`` of shape ``(n,)`` and return per-record losses of shape ``(..., n)``. They are written once
against an array namespace (``numpy`` on the host, ``jax.numpy`` on the device) so the host
callback and the native kernels compute exactly the same numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from zodc.errors import ConfigError

LOSSES = ("balanced_linear", "cross_entropy", "brier")


def balanced_class_weights(proportions: Sequence[float]) -> np.ndarray:
    """Class weights ``w_c = 1 / (K * pi_c)`` that give every class the same total weight.

    Args:
      proportions: ``(K,)`` class proportions. They must be public (a schema) or DP estimates:
        the weights multiply every record's loss, so proportions computed from the private table
        without noise would leak through the released table.

    Returns:
      ``(K,)`` float64 weights whose proportion-weighted mean is 1.
    """
    proportions = np.asarray(proportions, dtype=np.float64)
    if proportions.ndim != 1 or proportions.size < 2:
        raise ConfigError(f"`class_proportions` must list at least 2 classes. Got {proportions.tolist()}.")
    if np.any(~np.isfinite(proportions)) or np.any(proportions <= 0):
        raise ConfigError(f"`class_proportions` must all be > 0. Got {proportions.tolist()}.")
    proportions = proportions / proportions.sum()
    return 1.0 / (proportions.size * proportions)


@dataclasses.dataclass(frozen=True)
class ClassificationLoss:
    """A bounded per-record classification loss.

    Attributes:
      name: ``"balanced_linear"`` (``w_y * (1 - p_y)``, the default: DESIGN §4 found cross-entropy
        drawn to a degenerate optimum on tiny tables), ``"cross_entropy"``
        (``-w_y * log(max(p_y, probability_floor))``) or ``"brier"``
        (``w_y * sum_c (p_c - [c = y])^2``).
      class_weights: ``(K,)`` per-class weights (see :func:`balanced_class_weights`); ``None``
        means all ones.
      probability_floor: ``p_min`` that bounds cross-entropy by ``-log p_min``.
    """

    name: str = "balanced_linear"
    class_weights: tuple | None = None
    probability_floor: float = 1e-3

    def __post_init__(self):
        if self.name not in LOSSES:
            raise ConfigError(f"`loss` must be one of {list(LOSSES)}. Got {self.name!r}.")
        if not 0.0 < self.probability_floor < 1.0:
            raise ConfigError(f"`probability_floor` must be in (0, 1). Got {self.probability_floor}.")
        if self.class_weights is not None:
            object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))

    @property
    def upper_bound(self) -> float:
        """The largest value the loss can take: what a failed fit is charged per record."""
        w_max = max(self.class_weights) if self.class_weights is not None else 1.0
        if self.name == "balanced_linear":
            return w_max
        if self.name == "cross_entropy":
            return -float(np.log(self.probability_floor)) * w_max
        return 2.0 * w_max

    def __call__(self, proba: Any, y: Any, xp: Any = np) -> Any:
        """Per-record losses.

        Args:
          proba: ``(..., n, K)`` predicted class probabilities.
          y: ``(n,)`` integer labels in ``[0, K)``.
          xp: the array namespace, ``numpy`` or ``jax.numpy``.

        Returns:
          ``(..., n)`` losses, each in ``[0, upper_bound]``.
        """
        num_classes = proba.shape[-1]
        # p_y by a gather (a label outside the classes reads 0, as a one-hot row would): one read per
        # record, where a one-hot product and a sum over K cost XLA on CPU a reduction per record.
        index = xp.clip(y, 0, num_classes - 1).reshape((1,) * (proba.ndim - 2) + (-1, 1))
        p_true = xp.where((y >= 0) & (y < num_classes), xp.take_along_axis(proba, index, axis=-1)[..., 0], 0.0)
        if self.name == "balanced_linear":
            per_record = 1.0 - p_true
        elif self.name == "cross_entropy":
            per_record = -xp.log(xp.maximum(p_true, self.probability_floor))
        else:
            onehot = (y[:, None] == xp.arange(num_classes)[None, :]).astype(proba.dtype)
            per_record = xp.sum((proba - onehot) ** 2, axis=-1)
        if self.class_weights is not None:
            weights = xp.asarray(np.asarray(self.class_weights), dtype=proba.dtype)[y]
            per_record = per_record * weights
        return xp.clip(per_record, 0.0, self.upper_bound)
