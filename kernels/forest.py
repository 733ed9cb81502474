"""A device-native random-forest classifier (jit- and vmap-able).

Follows ``sklearn.ensemble.RandomForestClassifier``: every tree is a CART tree
(``kernels/tree.py``) fitted with bootstrap weights (the multiplicity of each row in ``m`` draws
with replacement, times ``sample_weight``) and a fresh random subset of ``max_features`` features
searched at every node; the forest predicts the mean of the trees' class distributions. The trees
are vmapped, so the forest is one fused program. Random streams differ from scikit-learn's, so
the two agree in distribution, not tree by tree.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> model = RandomForestClassifier(n_classes=2, n_estimators=10, max_depth=3)
    >>> X = jax.random.normal(jax.random.key(0), (32, 4))
    >>> y = (X[:, 0] > 0).astype(jnp.int32)
    >>> params = jax.jit(model.fit)(jax.random.key(1), X, y)
    >>> model.predict_proba(params, X).shape
    (32, 2)
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from ._common import CLASSIFICATION_CRITERIA, TreeParams, check_choice, check_int
from .tree import DecisionTreeClassifier

__all__ = ["RandomForestClassifier"]


@dataclasses.dataclass(frozen=True)
class RandomForestClassifier:
    """Random forest of CART classifiers with static hyperparameters.

    Attributes:
        n_classes: number of classes; labels are ``0 .. n_classes - 1``.
        n_estimators: number of trees.
        max_depth: depth of every tree (static shapes).
        min_samples_leaf: minimum number of (unweighted) samples in each child; as in
            scikit-learn, rows left out of a bootstrap sample still count (with weight zero).
        max_features: features searched per node: ``"sqrt"``, ``"log2"``, an int, a float
            fraction in ``(0, 1]`` of ``d``, or ``None`` for all ``d``.
        bootstrap: draw bootstrap weights per tree (else every tree sees ``sample_weight``).
        criterion: ``"gini"`` or ``"entropy"``.
    """

    n_classes: int = 2
    n_estimators: int = 100
    max_depth: int = 4
    min_samples_leaf: int = 1
    max_features: str | int | float | None = "sqrt"
    bootstrap: bool = True
    criterion: str = "gini"

    def __post_init__(self):
        check_int("n_classes", self.n_classes, 2)
        check_int("n_estimators", self.n_estimators, 1)
        check_int("max_depth", self.max_depth, 1)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)
        check_choice("criterion", self.criterion, CLASSIFICATION_CRITERIA)
        if not isinstance(self.bootstrap, bool):
            raise ValueError(f"`bootstrap` must be a bool. Got {self.bootstrap!r}.")
        features = self.max_features
        if features is None or features in ("sqrt", "log2"):
            return
        if isinstance(features, bool) or not isinstance(features, (int, float)):
            raise ValueError(
                "`max_features` must be 'sqrt', 'log2', None, an int >= 1 or a float in (0, 1]. "
                f"Got {features!r}."
            )
        if isinstance(features, int) and features < 1:
            raise ValueError(f"`max_features` must be an int >= 1. Got {features!r}.")
        if isinstance(features, float) and not 0.0 < features <= 1.0:
            raise ValueError(f"`max_features` must be a float in (0, 1]. Got {features!r}.")

    @property
    def tree(self) -> DecisionTreeClassifier:
        """The tree model every estimator uses."""
        return DecisionTreeClassifier(
            n_classes=self.n_classes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            criterion=self.criterion,
        )

    def n_features_per_node(self, n_features: int) -> int:
        """Resolve ``max_features`` for ``n_features`` columns, as scikit-learn does."""
        features = self.max_features
        if features is None:
            count = n_features
        elif features == "sqrt":
            count = int(math.sqrt(n_features))
        elif features == "log2":
            count = int(math.log2(n_features))
        elif isinstance(features, int):
            count = features
        else:
            count = int(features * n_features)
        return min(max(1, count), n_features)

    def fit(
        self,
        key: jax.Array,
        X: jax.Array,
        y: jax.Array,
        sample_weight: jax.Array | None = None,
    ) -> TreeParams:
        """Fit ``n_estimators`` trees at once.

        Args:
            key: PRNG key of the bootstrap draws and the per-node feature subsets.
            X: ``(m, d)`` float32 features.
            y: ``(m,)`` int32 labels in ``[0, n_classes)``.
            sample_weight: optional ``(m,)`` non-negative weights.

        Returns:
            ``TreeParams`` whose fields carry a leading ``(n_estimators,)`` axis.
        """
        m, d = X.shape
        weight = jnp.ones(m, jnp.float32) if sample_weight is None else sample_weight
        weight = weight.astype(jnp.float32)
        max_features = self.n_features_per_node(d)
        tree = self.tree

        def fit_one(tree_key):
            bootstrap_key, feature_key = jax.random.split(tree_key)
            if self.bootstrap:
                # scikit-learn draws m indices uniformly with replacement and uses their counts
                # as weights: a Multinomial(m, 1/m) vector.
                draws = jax.random.randint(bootstrap_key, (m,), 0, m)
                tree_weight = weight * jnp.zeros(m, jnp.float32).at[draws].add(1.0)
            else:
                tree_weight = weight
            return tree.fit_random_features(feature_key, X, y, tree_weight, max_features)

        return jax.vmap(fit_one)(jax.random.split(key, self.n_estimators))

    def predict_proba(self, params: TreeParams, X: jax.Array) -> jax.Array:
        """Mean of the trees' class distributions, ``(n, n_classes)`` for ``X`` ``(n, d)``."""
        tree = self.tree
        per_tree = jax.vmap(tree.predict_proba, in_axes=(0, None))(params, X)
        return jnp.mean(per_tree, axis=0)
