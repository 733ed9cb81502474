"""A device-native CART decision-tree classifier (jit- and vmap-able).

Equal to ``sklearn.tree.DecisionTreeClassifier(max_depth, min_samples_leaf, criterion)`` on data
without ties between splits of equal impurity improvement; see ``kernels/_common.py`` for the
split rules and the departures. On CPU it grows through the C++ builder of ``kernels/_native.py``
(the same tree); elsewhere through ``grow_tree``.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> model = DecisionTreeClassifier(n_classes=2, max_depth=3)
    >>> X = jax.random.normal(jax.random.key(0), (32, 4))
    >>> y = (X[:, 0] > 0).astype(jnp.int32)
    >>> params = jax.jit(model.fit)(jax.random.key(1), X, y)
    >>> model.predict_proba(params, X).shape
    (32, 2)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ._common import CLASSIFICATION_CRITERIA, TreeParams, check_choice, check_int, grow_tree
from ._common import leaf_index
from ._native import grow_tree_cpu, native_tree_status, on_platform

__all__ = ["DecisionTreeClassifier", "TreeParams"]


def class_statistics(y: jax.Array, sample_weight: jax.Array | None, n_classes: int) -> jax.Array:
    """Weighted one-hot class counts ``(m, n_classes)``; labels outside the range count nowhere."""
    weight = jnp.ones(y.shape[0], jnp.float32) if sample_weight is None else sample_weight
    return jax.nn.one_hot(y, n_classes, dtype=jnp.float32) * weight.astype(jnp.float32)[:, None]


def normalise(value: jax.Array) -> jax.Array:
    """Rows of class weights ``(..., k)`` to distributions; all-zero rows stay zero (as sklearn)."""
    total = jnp.sum(value, axis=-1, keepdims=True)
    return value / jnp.where(total > 0, total, 1.0)


@dataclasses.dataclass(frozen=True)
class DecisionTreeClassifier:
    """CART classifier with static hyperparameters; ``fit`` and ``predict_proba`` are pure.

    Attributes:
        n_classes: number of classes; labels are ``0 .. n_classes - 1``.
        max_depth: depth of the complete tree (static shapes: ``2 ** (max_depth + 1) - 1`` nodes).
        min_samples_leaf: minimum number of (unweighted) training samples in each child.
        criterion: ``"gini"`` or ``"entropy"``.
    """

    n_classes: int = 2
    max_depth: int = 4
    min_samples_leaf: int = 1
    criterion: str = "gini"

    def __post_init__(self):
        check_int("n_classes", self.n_classes, 2)
        check_int("max_depth", self.max_depth, 1)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)
        check_choice("criterion", self.criterion, CLASSIFICATION_CRITERIA)

    @property
    def n_nodes(self) -> int:
        """Number of nodes of the complete tree."""
        return 2 ** (self.max_depth + 1) - 1

    def fit(
        self,
        key: jax.Array,
        X: jax.Array,
        y: jax.Array,
        sample_weight: jax.Array | None = None,
    ) -> TreeParams:
        """Grow the tree.

        Args:
            key: PRNG key, unused (kept for the shared kernel interface).
            X: ``(m, d)`` float32 features.
            y: ``(m,)`` int32 labels in ``[0, n_classes)``.
            sample_weight: optional ``(m,)`` non-negative weights.

        Returns:
            ``TreeParams`` with ``value`` ``(N, n_classes)`` the weighted class distribution of
            every node.
        """
        del key
        return self._grow(X, y, sample_weight)

    def fit_random_features(
        self,
        key: jax.Array,
        X: jax.Array,
        y: jax.Array,
        sample_weight: jax.Array | None,
        max_features: int,
    ) -> TreeParams:
        """Grow the tree searching ``max_features`` random features per node (forest trees).

        Args:
            key: PRNG key of the feature draws.
            X: ``(m, d)`` float32 features.
            y: ``(m,)`` int32 labels.
            sample_weight: optional ``(m,)`` non-negative weights.
            max_features: static number of features drawn per node.

        Returns:
            ``TreeParams`` as ``fit``.
        """
        return self._grow(X, y, sample_weight, feature_key=key, max_features=max_features)

    def _grow(self, X, y, sample_weight, feature_key=None, max_features=None) -> TreeParams:
        stats = class_statistics(y, sample_weight, self.n_classes)

        def portable(X, stats):
            params, _ = grow_tree(X, stats, CLASSIFICATION_CRITERIA[self.criterion], self.max_depth,
                                  self.min_samples_leaf, feature_key=feature_key, max_features=max_features)
            return params

        if self.criterion == "gini" and native_tree_status()[0]:
            # On CPU the C++ builder (the same tree, O(d m) per level); elsewhere grow_tree.
            def native(X, stats):
                return grow_tree_cpu(X, stats, "gini", self.max_depth, self.min_samples_leaf,
                                     feature_key=feature_key, max_features=max_features)

            params = on_platform(X, stats, cpu=native, default=portable)
        else:
            params = portable(X, stats)
        return params.replace(value=normalise(params.value))

    def apply(self, params: TreeParams, X: jax.Array) -> jax.Array:
        """Heap index ``(n,)`` of the leaf each row of ``X`` ``(n, d)`` falls in."""
        return leaf_index(params, X, self.max_depth)

    def predict_proba(self, params: TreeParams, X: jax.Array) -> jax.Array:
        """Class probabilities ``(n, n_classes)`` for ``X`` ``(n, d)``."""
        return params.value[self.apply(params, X)]
