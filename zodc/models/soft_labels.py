"""Learnable soft labels: each synthetic row carries a class distribution, released as sample weights.

A depth-4 tree fitted on 10 rows per class has pure leaves: it predicts 0 or 1, so its AUROC is a
balanced accuracy and a small move of one synthetic row changes the loss of few real records (the
zero-order objective is flat). With soft labels each synthetic row ``i`` of class ``c_i`` has a
learnable *own-class weight* ``w_i`` in ``[0, 1]``; the table a model is fitted on holds ``K``
weighted copies of every row — class ``c_i`` with weight ``w_i`` and each other class with weight
``(1 - w_i) / (K - 1)`` — so leaves carry graded probabilities and logistic regression sees soft
targets (weighted copies are exactly soft-label cross-entropy).

``w_i`` is one extra learned column ``z_i`` in ``[-1, 1]`` of the table, ``w_i = (1 + z_i) / 2``:
it is perturbed, noised and projected with the features, so the release stays post-processing of
the private iterates (no privacy cost of its own); its start value is a public constant.

The release has ``K m`` rows and a :data:`SAMPLE_WEIGHT_COLUMN`; pass that column as
``sample_weight`` to the model (scikit-learn trees, forests, boosting, logistic regression and the
``zodc.kernels`` models accept it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE_WEIGHT_COLUMN = "sample_weight"


def split_release(frame: Any) -> tuple[Any, np.ndarray | None]:
    """A released DataFrame → ``(frame without the weight column, its weights or None)``."""
    if SAMPLE_WEIGHT_COLUMN not in frame.columns:
        return frame, None
    return frame.drop(columns=[SAMPLE_WEIGHT_COLUMN]), frame[SAMPLE_WEIGHT_COLUMN].to_numpy(np.float64)


def own_class_weight(column: Any, xp: Any = np) -> Any:
    """``w = (1 + z) / 2`` clipped to ``[0, 1]`` (a perturbed ``z`` may leave the box)."""
    return xp.clip((column + 1.0) / 2.0, 0.0, 1.0)


def weight_column(own_weight: float) -> float:
    """The learned column's value ``z = 2 w - 1`` for an own-class weight ``w`` in ``[0, 1]``."""
    return 2.0 * float(own_weight) - 1.0


def expand(table: Any, labels: Any, num_classes: int, xp: Any = np) -> tuple[Any, Any, Any]:
    """The weighted table a model is fitted on.

    Args:
      table: ``(m, d + 1)``: features, then the learned column ``z``.
      labels: ``(m,)`` integer classes ``c_i`` of the rows.
      num_classes: ``K >= 2``.
      xp: ``numpy`` or ``jax.numpy`` (works under ``jit`` and ``vmap``).

    Returns:
      ``(X (K m, d), y (K m,), sample_weight (K m,))``: block ``k`` is every row labelled ``k``,
      weighted ``w_i`` where ``k == c_i`` and ``(1 - w_i) / (K - 1)`` elsewhere.
    """
    features, own = table[:, :-1], own_class_weight(table[:, -1], xp)
    m = features.shape[0]
    X = xp.concatenate([features] * num_classes, axis=0)
    y = xp.repeat(xp.arange(num_classes, dtype=labels.dtype), m)
    tiled_labels = xp.concatenate([labels] * num_classes, axis=0)
    tiled_own = xp.concatenate([own] * num_classes, axis=0)
    weight = xp.where(y == tiled_labels, tiled_own, (1.0 - tiled_own) / (num_classes - 1))
    return X, y, weight
