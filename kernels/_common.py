"""Level-wise CART growth shared by the tree, forest and boosting kernels.

A tree of depth ``max_depth`` is stored as a complete binary tree in heap order (root 0, children
of node ``g`` at ``2g + 1`` and ``2g + 2``), so every array has a static shape and the fit can be
jitted and vmapped over a batch of tables. A node that does not split is marked a leaf; its
samples are still routed (to the left child) so the next level keeps its shapes, but the children
are dead: they never split and are never reached at prediction time.

The split rules follow scikit-learn's ``BestSplitter`` (``sklearn/tree/_splitter.pyx``) and its
criteria (``_criterion.pyx``): every feature, every midpoint between consecutive distinct sorted
values of the node (distinct meaning a gap larger than ``FEATURE_THRESHOLD``), both children with
at least ``min_samples_leaf`` (unweighted) samples, the split with the largest proxy impurity
improvement; a node with zero impurity stops. Different from scikit-learn, ties between splits of
equal improvement go to the lowest feature index and then the lowest threshold (scikit-learn
visits features in a random order), and the arithmetic is float32 (scikit-learn uses float64).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import chex
import jax
import jax.numpy as jnp

# scikit-learn's `FEATURE_THRESHOLD` (_splitter.pyx): values closer than this are one value.
FEATURE_THRESHOLD = 1e-7
# scikit-learn's `EPSILON` (_tree.pyx): a node with impurity at or below it is pure.
IMPURITY_EPSILON = 10 * 2.220446049250313e-16


@chex.dataclass(frozen=True)
class TreeParams:
    """A fitted complete binary tree of depth ``max_depth`` in heap order.

    ``N = 2 ** (max_depth + 1) - 1`` nodes. Batched fits (vmap over tables or trees) add leading
    axes to every field.

    Attributes:
        feature: ``(N,)`` int32, feature index tested at the node (0 at leaves).
        threshold: ``(N,)`` float32, go left if ``x[feature] <= threshold``, right otherwise.
        is_leaf: ``(N,)`` bool, prediction stops here (also True for unreachable nodes).
        value: ``(N, k)`` float32, the node's prediction: the weighted class distribution for a
            classification tree (``k = n_classes``), the leaf value for a boosting stage
            (``k = 1``).
    """

    feature: jax.Array
    threshold: jax.Array
    is_leaf: jax.Array
    value: jax.Array


@dataclasses.dataclass(frozen=True)
class Criterion:
    """How node statistics turn into an impurity and a split score.

    Attributes:
        weight_fn: ``(..., K) -> (...)`` weighted number of samples from the statistics.
        impurity_fn: ``(..., K) -> (...)`` node impurity (only compared with the pure threshold).
        proxy_fn: ``((..., K), (..., K)) -> (...)`` proxy impurity improvement of a split from the
            left and right statistics; larger is better; only differences within a node matter.
    """

    weight_fn: Callable[[jax.Array], jax.Array]
    impurity_fn: Callable[[jax.Array], jax.Array]
    proxy_fn: Callable[[jax.Array, jax.Array], jax.Array]


def _safe(weight: jax.Array) -> jax.Array:
    # Empty sides are masked out by the caller; dividing by 1 there keeps the values finite.
    return jnp.where(weight > 0, weight, 1.0)


def _class_weight(stats):
    return jnp.sum(stats, axis=-1)


def _gini_impurity(stats):
    weight = _class_weight(stats)
    share = stats / _safe(weight)[..., None]
    return jnp.where(weight > 0, 1.0 - jnp.sum(share * share, axis=-1), 0.0)


def _gini_proxy(left, right):
    # scikit-learn's -w_l * gini_l - w_r * gini_r equals sum_k c_lk^2 / w_l + sum_k c_rk^2 / w_r
    # minus the node weight, a constant within the node; the constant-free form loses less
    # precision in float32.
    return jnp.sum(left * left, axis=-1) / _safe(_class_weight(left)) + jnp.sum(
        right * right, axis=-1
    ) / _safe(_class_weight(right))


def _neg_weighted_entropy(stats):
    # sum_k c_k log2(c_k / w) = -w * entropy, with 0 log 0 = 0.
    weight = _class_weight(stats)
    positive = stats > 0
    safe_counts = jnp.where(positive, stats, 1.0)
    terms = jnp.where(positive, safe_counts * jnp.log2(safe_counts / _safe(weight)[..., None]), 0.0)
    return jnp.sum(terms, axis=-1)


def _entropy_impurity(stats):
    weight = _class_weight(stats)
    return jnp.where(weight > 0, -_neg_weighted_entropy(stats) / _safe(weight), 0.0)


def _entropy_proxy(left, right):
    return _neg_weighted_entropy(left) + _neg_weighted_entropy(right)


GINI = Criterion(_class_weight, _gini_impurity, _gini_proxy)
ENTROPY = Criterion(_class_weight, _entropy_impurity, _entropy_proxy)


def _regression_weight(stats):
    return stats[..., 0]


def _mse_impurity(stats):
    weight = _safe(stats[..., 0])
    mean = stats[..., 1] / weight
    return jnp.maximum(stats[..., 2] / weight - mean * mean, 0.0)


def _friedman_proxy(left, right):
    # scikit-learn's FriedmanMSE.proxy_impurity_improvement:
    # (w_r * s_l - w_l * s_r)^2 / (w_l * w_r) = w_l * w_r * (mean_l - mean_r)^2.
    weight_left, weight_right = _safe(left[..., 0]), _safe(right[..., 0])
    diff = left[..., 1] / weight_left - right[..., 1] / weight_right
    return weight_left * weight_right * diff * diff


# Statistics per sample: (w, w * r, w * r^2) for a regression target r.
FRIEDMAN_MSE = Criterion(_regression_weight, _mse_impurity, _friedman_proxy)

CLASSIFICATION_CRITERIA = {"gini": GINI, "entropy": ENTROPY}


def grow_tree(
    X: jax.Array,
    stats: jax.Array,
    criterion: Criterion,
    max_depth: int,
    min_samples_leaf: int,
    *,
    pure: jax.Array | None = None,
    feature_key: jax.Array | None = None,
    max_features: int | None = None,
) -> tuple[TreeParams, jax.Array]:
    """Grow a CART tree level by level over all nodes of a level at once.

    Each feature is sorted once; at every level the samples are regrouped by node (a stable
    sort on ``node * m + rank``) so the left and right statistics of every candidate split of
    every node come from two masked matrix products.

    Args:
        X: ``(m, d)`` float32 features.
        stats: ``(m, K)`` float32 additive per-sample statistics of the criterion (weighted class
            one-hots, or ``(w, w r, w r^2)``).
        criterion: how statistics score splits.
        max_depth: static depth of the complete tree.
        min_samples_leaf: static minimum number of samples (unweighted, as scikit-learn counts
            them, zero-weight samples included) in each child.
        pure: optional ``(m,)`` target whose node-wise constancy (over positive-weight samples,
            weight taken from ``criterion``) marks a node pure; default: impurity <= epsilon.
            Regression passes its target because float32 variances of constant targets are not
            exactly zero.
        feature_key: optional PRNG key; with ``max_features`` draws, per node, a random subset of
            ``max_features`` features to search (random forests). If all drawn features are
            constant in the node, the first non-constant feature in the random order is searched
            too, as scikit-learn keeps drawing until one non-constant feature is found.
        max_features: number of features per node, used with ``feature_key``.

    Returns:
        ``(params, node_stats)``: the tree with ``value`` holding the raw node statistics
        ``(N, K)`` (callers normalise them), and the final leaf index ``(m,)`` of each training
        sample in heap order.
    """
    m, d = X.shape
    X = jnp.asarray(X, jnp.float32)  # numpy inputs cannot be indexed by tracers
    stats = jnp.asarray(stats, jnp.float32)
    sample_weight = criterion.weight_fn(stats)
    X_by_feature = X.T  # (d, m)
    base_order = jnp.argsort(X_by_feature, axis=1, stable=True)  # (d, m) sample ids by value
    rank = jnp.arange(m, dtype=jnp.int32)
    flat_index = jnp.arange(d * m, dtype=jnp.int32)

    subsample = feature_key is not None and max_features is not None and max_features < d
    if subsample:
        # One flat draw of raw bits for all levels: each random call inlines a threefry kernel,
        # and multi-dimensional float draws were measured several times costlier to compile.
        half = 2 ** (max_depth - 1)
        draws = jax.random.bits(feature_key, (max_depth * half * d,)).reshape(max_depth, half, d)
    node = jnp.zeros(m, jnp.int32)  # index of each sample's node within the current level
    alive = jnp.ones(1, bool)
    features, thresholds, leaves, values = [], [], [], []
    for level in range(max_depth + 1):
        n_level = 2**level
        node_stats = jax.ops.segment_sum(stats, node, n_level)
        values.append(node_stats)
        if level == max_depth:
            features.append(jnp.zeros(n_level, jnp.int32))
            thresholds.append(jnp.zeros(n_level, jnp.float32))
            leaves.append(jnp.ones(n_level, bool))
            break
        node_count = jax.ops.segment_sum(jnp.ones(m, jnp.int32), node, n_level)
        node_weight = criterion.weight_fn(node_stats)
        if pure is None:
            is_pure = criterion.impurity_fn(node_stats) <= IMPURITY_EPSILON
        else:
            positive = sample_weight > 0
            high = jax.ops.segment_max(jnp.where(positive, pure, -jnp.inf), node, n_level)
            low = jax.ops.segment_min(jnp.where(positive, pure, jnp.inf), node, n_level)
            is_pure = high <= low
        can_split = (
            alive & ~is_pure & (node_count >= 2 * min_samples_leaf) & (node_weight > 0)
        )

        # Regroup every feature's sorted order by node, keeping the value order inside a node.
        node_sorted = node[base_order]
        regroup = jnp.argsort(node_sorted * m + rank[None, :], axis=1, stable=True)
        order = jnp.take_along_axis(base_order, regroup, axis=1)
        group = jnp.take_along_axis(node_sorted, regroup, axis=1)  # (d, m) node ids
        value = jnp.take_along_axis(X_by_feature, order, axis=1)  # (d, m)
        boundary = group[:, 1:] != group[:, :-1]
        starts = jnp.concatenate([jnp.ones((d, 1), bool), boundary], axis=1)
        ends = jnp.concatenate([boundary, jnp.ones((d, 1), bool)], axis=1)

        # Grouping by node puts node n at the same position range in every feature, so one
        # (m, m) mask "same node, at or before" serves all features: the left and right sums of
        # every candidate are two matrix products (no float32 cancellation, as a cumsum minus
        # offsets would have; far cheaper to compile than segmented scans).
        segment = group[0]
        same_node = segment[:, None] == segment[None, :]
        before = rank[None, :] <= rank[:, None]
        left_mask = (same_node & before).astype(jnp.float32)
        right_mask = (same_node & ~before).astype(jnp.float32)
        grouped_stats = stats[order]  # (d, m, K)
        left = jnp.einsum("ik,jkc->jic", left_mask, grouped_stats, precision="highest")
        right = jnp.einsum("ik,jkc->jic", right_mask, grouped_stats, precision="highest")
        left_count = jnp.sum(left_mask, axis=1).astype(jnp.int32)[None, :]  # (1, m)
        right_count = jnp.sum(right_mask, axis=1).astype(jnp.int32)[None, :]

        next_value = jnp.concatenate([value[:, 1:], value[:, -1:]], axis=1)
        distinct = ~ends & (next_value - value > FEATURE_THRESHOLD)
        # scikit-learn's midpoint, falling back to the lower value if rounding reaches the upper.
        midpoint = value / 2.0 + next_value / 2.0
        midpoint = jnp.where((midpoint == next_value) | jnp.isinf(midpoint), value, midpoint)

        # Zero-weight children: scikit-learn's gini and Friedman proxies are NaN there and never
        # win; excluding them everywhere keeps every reachable leaf's distribution defined.
        valid = (
            distinct
            & can_split[group]
            & (left_count >= min_samples_leaf)
            & (right_count >= min_samples_leaf)
            & (criterion.weight_fn(left) > 0)
            & (criterion.weight_fn(right) > 0)
        )
        if subsample:
            # Group positions are shared by all features, so one segment reduction over the
            # transposed mask gives every (node, feature) pair.
            non_constant = jax.ops.segment_max(distinct.T.astype(jnp.int32), segment, n_level) > 0
            draw = draws[level, :n_level]
            # The max_features largest draws form a uniform random subset; the largest draw among
            # the non-constant features is the first non-constant one in the random order.
            # (Ranks by pairwise comparison: a sort here costs more to compile than it saves.)
            above = jnp.sum(draw[:, None, :] > draw[:, :, None], axis=2)  # (n_level, d)
            first_non_constant = jnp.max(jnp.where(non_constant, draw, 0), axis=1)
            allowed = (above < max_features) | (non_constant & (draw == first_non_constant[:, None]))
            valid = valid & allowed.T[:, segment]

        score = jnp.where(valid, criterion.proxy_fn(left, right), -jnp.inf).reshape(-1)
        group_flat = group.reshape(-1)
        best_score = jax.ops.segment_max(score, group_flat, n_level)
        is_best = valid.reshape(-1) & (score == best_score[group_flat])
        # Ties: the lowest feature, then the lowest position (threshold) wins.
        best = jax.ops.segment_min(jnp.where(is_best, flat_index, d * m), group_flat, n_level)
        has_split = can_split & (best < d * m)
        best = jnp.minimum(best, d * m - 1)
        split_feature = jnp.where(has_split, best // m, 0).astype(jnp.int32)
        split_threshold = jnp.where(has_split, midpoint.reshape(-1)[best], 0.0)

        features.append(split_feature)
        thresholds.append(split_threshold.astype(jnp.float32))
        leaves.append(~has_split)

        go_right = (X[jnp.arange(m), split_feature[node]] > split_threshold[node]) & has_split[node]
        node = 2 * node + go_right.astype(jnp.int32)
        alive = jnp.repeat(has_split, 2)

    params = TreeParams(
        feature=jnp.concatenate(features),
        threshold=jnp.concatenate(thresholds),
        is_leaf=jnp.concatenate(leaves),
        value=jnp.concatenate(values, axis=0),
    )
    return params, leaf_index(params, X, max_depth)


def leaf_index(params: TreeParams, X: jax.Array, max_depth: int) -> jax.Array:
    """Heap index of the leaf each row of ``X`` ends in.

    Args:
        params: one tree (no batch axes).
        X: ``(n, d)`` features.
        max_depth: the tree's static depth.

    Returns:
        ``(n,)`` int32 node indices.
    """
    X = jnp.asarray(X)
    n = X.shape[0]
    node = jnp.zeros(n, jnp.int32)
    rows = jnp.arange(n)
    for _ in range(max_depth):
        x = X[rows, params.feature[node]]
        child = 2 * node + 1 + (x > params.threshold[node]).astype(jnp.int32)
        node = jnp.where(params.is_leaf[node], node, child)
    return node


def check_int(name: str, value, minimum: int) -> None:
    """Raise ValueError unless ``value`` is an int (not bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Got {value!r}.")


def check_choice(name: str, value, choices) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}. Got {value!r}.")
