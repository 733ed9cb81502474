"""Native (device) evaluation: fit a ``zodc.kernels`` model on every perturbed table, vmapped.

The whole evaluation — fit on each of the ``k`` tables, predict every real record, per-record
losses — is one compiled, batched computation; the real records live on the device.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from zodc.models.soft_labels import expand as soft_label_expand


def native_classifier_data(X: np.ndarray, y: np.ndarray, synthetic_labels: np.ndarray, key: jax.Array,
                           class_weights=None) -> dict:
    """The device pytree :func:`native_classifier_evaluator` reads: real records, labels, model key.

    Args:
      X: ``(n, d)`` real records (encoded).
      y: ``(n,)`` real labels.
      synthetic_labels: ``(m,)`` fixed labels of the synthetic rows.
      key: the model's randomness (forest bootstraps). The same key serves every table and every
        step — common random numbers, so a loss difference measures the table's change and not the
        forest's reshuffle (as a fixed ``random_state`` does on the host).
      class_weights: ``(K,)`` the loss's class weights (public or DP), as data rather than in the
        loss: each record carries its weight ``w_y`` (``"weights"``) and the largest, times the
        unweighted loss's bound, is the bound (``"bound"``). Weights that change from run to run
        (DP class proportions) then leave the compiled step unchanged: one program for every run
        (the persistent compilation cache). Use with an evaluator whose loss has no class weights.
    """
    data = {"X": jnp.asarray(X, jnp.float32), "y": jnp.asarray(y, jnp.int32),
            "labels": jnp.asarray(synthetic_labels, jnp.int32), "key": key}
    if class_weights is not None:
        weights = np.asarray(class_weights, np.float32)
        data["weights"] = jnp.asarray(weights[np.asarray(y, np.int64)])
        data["weight_max"] = jnp.float32(weights.max())
    return data


@dataclasses.dataclass(frozen=True)
class NativeClassifierEvaluator:
    """``evaluate_fn(tables (k, m, d), mask (n,), data) -> losses (k, n)`` for a native classifier.

    Attributes:
      model: a ``zodc.kernels`` classifier (``fit(key, X, y)`` / ``predict_proba(params, X)``).
      loss: a :class:`zodc.models.losses.ClassificationLoss`.
      soft_labels: the tables' last column is the learned own-class weight
        (:mod:`zodc.models.soft_labels`): the model is fitted on the ``num_classes`` weighted
        copies of the rows.
      num_classes: ``K``, needed with ``soft_labels``.

    ``data`` is :func:`native_classifier_data`'s pytree, an argument rather than a constant so that
    the compiled step does not depend on the data's values. Every record is predicted (static
    shapes), but the unsampled ones (mask False) are returned as 0. A record whose loss is
    non-finite is charged the loss's ``upper_bound`` alone (when the loss has one).

    Could one record change this? Only its own losses: the fit sees the synthetic table and the
    public key only, and the prediction, the loss, the finiteness check and the mask are per record.

    A value (frozen, compared by its public fields: the model's hyperparameters and the loss, whose
    class weights are public or DP), so condensers built on equal evaluators share one compiled step.
    """

    model: Any
    loss: Callable
    soft_labels: bool = False
    num_classes: int | None = None

    def __post_init__(self):
        if self.soft_labels and (self.num_classes is None or self.num_classes < 2):
            raise ValueError(f"soft labels need num_classes >= 2. Got {self.num_classes!r}.")

    def __call__(self, tables: jax.Array, mask: jax.Array, data: dict) -> jax.Array:
        model, loss, soft_labels, num_classes = self.model, self.loss, self.soft_labels, self.num_classes
        bound = getattr(loss, "upper_bound", None)
        weights = data.get("weights")  # per-record class weights as data (native_classifier_data)
        if weights is not None:
            if getattr(loss, "class_weights", None) is not None:
                raise ValueError("class weights given twice: in the loss and in the data.")
            bound = None if bound is None else bound * data["weight_max"]
        num_records = data["X"].shape[0]
        sampled = (jnp.ones(num_records, bool) if mask is None
                   else jnp.broadcast_to(jnp.asarray(mask, bool), (num_records,)))

        def one_table(table):
            if soft_labels:
                params = model.fit(data["key"], *soft_label_expand(table, data["labels"], num_classes, xp=jnp))
            else:
                params = model.fit(data["key"], table, data["labels"])
            losses = loss(model.predict_proba(params, data["X"]), data["y"], xp=jnp)
            if weights is not None:  # the weighted loss: its own weight (clipped as the loss clips, to the bound)
                losses = losses * weights
            if bound is not None:  # a non-finite loss is that record's alone: its bound
                losses = jnp.where(jnp.isfinite(losses), losses, jnp.asarray(bound, losses.dtype))
            return jnp.where(sampled, losses, jnp.zeros((), losses.dtype))

        return jax.vmap(one_table)(tables).astype(jnp.float32)


def native_classifier_evaluator(model: Any, loss: Callable, *, soft_labels: bool = False,
                                num_classes: int | None = None) -> NativeClassifierEvaluator:
    """A :class:`NativeClassifierEvaluator` (kept as the function name the core's docs use)."""
    return NativeClassifierEvaluator(model, loss, soft_labels, num_classes)
