"""Device-native gradient-boosted trees for binary classification (jit- and vmap-able).

Follows ``sklearn.ensemble.GradientBoostingClassifier`` with the log loss: the raw score starts at
the weighted log-odds prior; every stage fits a ``friedman_mse`` regression tree to the residuals
``y - sigmoid(raw)`` and replaces each leaf's value by one Newton step,
``sum(w (y - p)) / sum(w p (1 - p))`` (0 where the denominator vanishes), added with
``learning_rate``. Stages run in a ``lax.scan``, so the program compiles one tree.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> model = GradientBoostingClassifier(n_estimators=5, max_depth=2)
    >>> X = jax.random.normal(jax.random.key(0), (32, 4))
    >>> y = (X[:, 0] > 0).astype(jnp.int32)
    >>> params = jax.jit(model.fit)(jax.random.key(1), X, y)
    >>> model.predict_proba(params, X).shape
    (32, 2)
"""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp

from ._common import FRIEDMAN_MSE, TreeParams, check_int, feature_order, grow_tree, leaf_index
from ._native import grow_tree_cpu, native_tree_status, on_platform

__all__ = ["BoostingParams", "GradientBoostingClassifier"]

# scikit-learn clips the prior probability to [eps, 1 - eps] of float64 before the logit; float32
# needs its own eps to keep the logit finite.
_PRIOR_EPS = 1e-7
# scikit-learn's `_safe_divide` threshold (float64); in float32 anything this small is zero.
_HESSIAN_EPS = 1e-30


@chex.dataclass(frozen=True)
class BoostingParams:
    """A fitted boosted ensemble.

    Attributes:
        init: ``()`` float32 initial raw score (log-odds of the weighted class-1 share).
        trees: ``TreeParams`` with a leading ``(n_estimators,)`` axis; ``value`` ``(T, N, 1)``
            holds the Newton leaf values (not yet multiplied by ``learning_rate``).
    """

    init: jax.Array
    trees: TreeParams


@dataclasses.dataclass(frozen=True)
class GradientBoostingClassifier:
    """Binary gradient boosting with the log loss and static hyperparameters.

    Attributes:
        n_estimators: number of boosting stages.
        learning_rate: shrinkage of every stage, > 0.
        max_depth: depth of every regression tree.
        min_samples_leaf: minimum number of (unweighted) samples in each child.
    """

    n_estimators: int = 100
    learning_rate: float = 0.1
    max_depth: int = 3
    min_samples_leaf: int = 1

    def __post_init__(self):
        check_int("n_estimators", self.n_estimators, 1)
        check_int("max_depth", self.max_depth, 1)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Got {rate!r}.")

    @property
    def n_classes(self) -> int:
        """Always 2: the kernel is binary."""
        return 2

    def fit(
        self,
        key: jax.Array,
        X: jax.Array,
        y: jax.Array,
        sample_weight: jax.Array | None = None,
    ) -> BoostingParams:
        """Fit ``n_estimators`` stages.

        Args:
            key: PRNG key, unused (no subsampling; kept for the shared kernel interface).
            X: ``(m, d)`` float32 features.
            y: ``(m,)`` int32 labels in ``{0, 1}``.
            sample_weight: optional ``(m,)`` non-negative weights.

        Returns:
            ``BoostingParams``.
        """
        del key
        m = X.shape[0]
        X = jnp.asarray(X, jnp.float32)
        target = jnp.asarray(y, jnp.float32)
        weight = jnp.ones(m, jnp.float32) if sample_weight is None else sample_weight
        weight = weight.astype(jnp.float32)
        prior = jnp.sum(weight * target) / jnp.sum(weight)
        prior = jnp.clip(prior, _PRIOR_EPS, 1.0 - _PRIOR_EPS)
        init = jnp.log(prior) - jnp.log1p(-prior)
        n_nodes = 2 ** (self.max_depth + 1) - 1
        raw0 = jnp.full(m, init, jnp.float32)

        def boost(grow):
            """The stages, each growing its regression tree with ``grow(stats, residual)``."""

            def stage(raw, _):
                probability = jax.nn.sigmoid(raw)
                residual = target - probability
                stats = jnp.stack([weight, weight * residual, weight * residual * residual], axis=1)
                tree, leaf = grow(stats, residual)
                numerator = jax.ops.segment_sum(weight * residual, leaf, n_nodes)
                denominator = jax.ops.segment_sum(weight * probability * (1.0 - probability), leaf, n_nodes)
                safe = jnp.abs(denominator) >= _HESSIAN_EPS
                newton = jnp.where(safe, numerator / jnp.where(safe, denominator, 1.0), 0.0)
                tree = tree.replace(value=newton[:, None])
                return raw + self.learning_rate * newton[leaf], tree

            _, trees = jax.lax.scan(stage, raw0, None, length=self.n_estimators)
            return trees

        def portable(X):
            order = feature_order(X)  # every stage grows on the same X: sort once, not per stage
            return boost(lambda stats, residual: grow_tree(X, stats, FRIEDMAN_MSE, self.max_depth,
                                                           self.min_samples_leaf, pure=residual, base_order=order))

        def native(X):  # the C++ builder (_native.py): the same trees from running sums, its own sort
            def grow(stats, residual):
                tree = grow_tree_cpu(X, stats, "friedman_mse", self.max_depth, self.min_samples_leaf, pure=residual)
                return tree, leaf_index(tree, X, self.max_depth)

            return boost(grow)

        trees = on_platform(X, cpu=native, default=portable) if native_tree_status()[0] else portable(X)
        return BoostingParams(init=init, trees=trees)

    def decision_function(self, params: BoostingParams, X: jax.Array) -> jax.Array:
        """Raw log-odds scores ``(n,)`` for ``X`` ``(n, d)``."""

        def tree_value(tree):
            return tree.value[leaf_index(tree, X, self.max_depth), 0]

        values = jax.vmap(tree_value)(params.trees)  # (T, n)
        return params.init + self.learning_rate * jnp.sum(values, axis=0)

    def predict_proba(self, params: BoostingParams, X: jax.Array) -> jax.Array:
        """Class probabilities ``(n, 2)`` for ``X`` ``(n, d)``."""
        probability = jax.nn.sigmoid(self.decision_function(params, X))
        return jnp.stack([1.0 - probability, probability], axis=-1)
