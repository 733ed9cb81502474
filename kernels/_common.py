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

On CPU the tree (gini), forest and boosting kernels grow the same trees with a C++ builder instead
(``_native.py``: running sums over each node's sorted samples, O(d m) per level, where
:func:`grow_tree`'s dense search is O(d m^2)), and :func:`leaf_index` routes rows with it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import chex
import jax
import jax.numpy as jnp

from zodc import _random

from ._native import leaf_index_cpu, native_tree_status, on_platform

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
        proxy_fn: ``((..., S), (..., S)) -> (...)`` proxy impurity improvement of a split from the
            left and right statistics (their first ``S`` columns); larger is better; only
            differences within a node matter.
        split_columns: ``S``, how many leading statistics the proxy reads (``None``: all ``K``);
            the split search sums only these.
    """

    weight_fn: Callable[[jax.Array], jax.Array]
    impurity_fn: Callable[[jax.Array], jax.Array]
    proxy_fn: Callable[[jax.Array, jax.Array], jax.Array]
    split_columns: int | None = None


def _safe(weight: jax.Array) -> jax.Array:
    # Empty sides are masked out by the caller; dividing by 1 there keeps the values finite.
    return jnp.where(weight > 0, weight, 1.0)


def _sum_classes(values):
    # An unrolled sum over the (few) classes of the last axis: XLA CPU ran a reduction over a
    # trailing axis of length 2 several times slower than the elementwise adds it fuses.
    total = values[..., 0]
    for index in range(1, values.shape[-1]):
        total = total + values[..., index]
    return total


def _class_weight(stats):
    return _sum_classes(stats)


def _gini_impurity(stats):
    # scikit-learn's Gini.node_impurity, 1 - sum_k c_k^2 / w^2, with no division by a broadcast
    # weight: XLA rewrites x / broadcast(w) as x * broadcast(1 / w), and 47 * (1 / 47) is 0.99999994
    # in float32, which gave a pure node of 47 samples an impurity of 1.2e-7 and split it. Here a
    # pure node's is c^2 / (c c) = 1 exactly, and the C++ builder computes the same expression.
    weight = _class_weight(stats)
    safe = _safe(weight)
    return jnp.where(weight > 0, 1.0 - _sum_classes(stats * stats) / (safe * safe), 0.0)


def _gini_proxy(left, right):
    # scikit-learn's -w_l * gini_l - w_r * gini_r equals sum_k c_lk^2 / w_l + sum_k c_rk^2 / w_r
    # minus the node weight, a constant within the node; the constant-free form loses less
    # precision in float32.
    return _sum_classes(left * left) / _safe(_class_weight(left)) + _sum_classes(right * right) / _safe(
        _class_weight(right)
    )


def _neg_weighted_entropy(stats):
    # sum_k c_k log2(c_k / w) = -w * entropy, with 0 log 0 = 0. log2(c_k / w) as log2 c_k - log2 w,
    # never a division by the broadcast weight: XLA rewrites x / broadcast(w) as x * broadcast(1 / w)
    # (see _gini_impurity), which left a pure node's entropy above 0, and the node split.
    weight = _class_weight(stats)
    positive = stats > 0
    safe_counts = jnp.where(positive, stats, 1.0)
    log_share = jnp.log2(safe_counts) - jnp.log2(_safe(weight))[..., None]
    return _sum_classes(jnp.where(positive, safe_counts * log_share, 0.0))


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


# Statistics per sample: (w, w * r, w * r^2) for a regression target r; the split proxy needs only
# the first two (w * r^2 enters the node impurity only).
FRIEDMAN_MSE = Criterion(_regression_weight, _mse_impurity, _friedman_proxy, split_columns=2)

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
    base_order: jax.Array | None = None,
) -> tuple[TreeParams, jax.Array]:
    """Grow a CART tree level by level over all nodes of a level at once.

    Each feature is sorted once (:func:`feature_order`); the samples stay grouped by node, in
    value order inside each node, so the left and right statistics of every candidate split of
    every node come from one masked matrix product (the right ones are the node's total minus the
    left). After a level splits, each node's group is stably partitioned into its left and right
    children (:func:`_partition`): two cumulative sums and one scatter, where a stable sort of the
    level's node ids per feature cost 5-10x more on CPU and dominated forest and boosting fits.

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
        base_order: optional ``(d, m)`` :func:`feature_order` of ``X``, for callers that grow
            many trees on one ``X`` inside a loop (boosting stages), where the sort would
            otherwise run again in every iteration.

    Returns:
        ``(params, node_stats)``: the tree with ``value`` holding the raw node statistics
        ``(N, K)`` (callers normalise them), and the final leaf index ``(m,)`` of each training
        sample in heap order.
    """
    m, d = X.shape
    X = jnp.asarray(X, jnp.float32)  # numpy inputs cannot be indexed by tracers
    stats = jnp.asarray(stats, jnp.float32)
    sample_weight = criterion.weight_fn(stats)
    # What the split search sums: the statistics the proxy reads, and a positive-weight indicator.
    split_stats = jnp.concatenate(
        [stats[:, : criterion.split_columns], (sample_weight > 0).astype(jnp.float32)[:, None]], axis=1
    )
    X_by_feature = X.T  # (d, m)
    # Sample ids of each feature grouped by node, in value order inside a node (one node at first).
    order = feature_order(X) if base_order is None else base_order
    rank = jnp.arange(m, dtype=jnp.int32)
    feature_ids = jnp.arange(d, dtype=jnp.int32)

    subsample = feature_key is not None and max_features is not None and max_features < d
    if subsample:
        draws = feature_draws(feature_key, max_depth, d)
        slot_ids = jnp.arange(max_features, dtype=jnp.int32)
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

        # Grouping by node puts node n at the same position range in every feature.
        segment = node[order[0]]  # (m,) node of each position
        boundary = segment[1:] != segment[:-1]
        ends = jnp.concatenate([boundary, jnp.ones(1, bool)])  # (m,) last position of its node
        if subsample:
            # Only the drawn features of each node are searched: row r of the candidate arrays
            # holds, at each position, the r-th drawn feature of that position's node. Which
            # features are constant in a node needs every feature's values (cheap); the split
            # search below (the costly part) then runs on max_features + 1 rows instead of d.
            value_all = jnp.take_along_axis(X_by_feature, order, axis=1)  # (d, m)
            next_all = jnp.concatenate([value_all[:, 1:], value_all[:, -1:]], axis=1)
            distinct_all = ~ends[None, :] & (next_all - value_all > FEATURE_THRESHOLD)
            in_node = (segment[None, :] == jnp.arange(n_level, dtype=jnp.int32)[:, None]).astype(jnp.float32)
            # Counts of 0/1 products (exact even in TF32); HIGHEST like every product of the kernels.
            non_constant = jnp.matmul(in_node, distinct_all.T.astype(jnp.float32), precision="highest") > 0
            draw = draws[level, :n_level]  # (n_level, d)
            # The max_features largest draws form a uniform random subset (ranks by pairwise
            # comparison, ties to the lower index: a sort here costs more to compile than it
            # saves); the largest draw among the non-constant features is the first non-constant
            # one in the random order, searched too, as scikit-learn keeps drawing until it finds
            # one. (It may repeat a drawn feature: the repeat finds the same splits.)
            larger = draw[:, None, :] > draw[:, :, None]  # [n, j, k]: draw k beats draw j
            tied_before = (draw[:, None, :] == draw[:, :, None]) & (feature_ids[None, None, :] < feature_ids[None, :, None])
            draw_rank = jnp.sum(larger | tied_before, axis=2)  # (n_level, d), a permutation per node
            drawn = jnp.argmax(draw_rank[:, None, :] == slot_ids[None, :, None], axis=2)  # (n_level, F)
            fallback = jnp.argmax(jnp.where(non_constant, draw, 0), axis=1)  # (n_level,)
            slot_feature = jnp.concatenate([drawn, fallback[:, None]], axis=1).astype(jnp.int32)
            row_feature = slot_feature[segment].T  # (F + 1, m)
            row_order = jnp.take_along_axis(order, row_feature, axis=0)
            value = jnp.take_along_axis(value_all, row_feature, axis=0)
        else:
            row_feature = jnp.broadcast_to(feature_ids[:, None], (d, m))
            row_order = order
            value = jnp.take_along_axis(X_by_feature, order, axis=1)  # (d, m)

        # One (m, m) mask "same node, at or before" serves every row: the left sums of every
        # candidate are one matrix product (no float32 cancellation, as a cumsum minus offsets
        # would have; far cheaper to compile than segmented scans). The right sums are the node's
        # total minus the left, as scikit-learn's criteria compute them (`sum_right = sum_total -
        # sum_left`), which halves the product. A last column counts the positive-weight samples
        # on each side exactly (integers), so that a child of zero weight is recognised even
        # where the subtraction leaves a rounding residue.
        same_node = segment[:, None] == segment[None, :]
        before = rank[None, :] <= rank[:, None]
        left_mask = (same_node & before).astype(jnp.float32)
        grouped_split_stats = split_stats[row_order]  # (rows, m, S + 1)
        left_all = jnp.einsum("ik,jkc->jic", left_mask, grouped_split_stats, precision="highest")
        right_all = jax.ops.segment_sum(split_stats, node, n_level)[segment][None] - left_all
        left, right = left_all[..., :-1], right_all[..., :-1]
        left_count = jnp.sum(left_mask, axis=1).astype(jnp.int32)[None, :]  # (1, m)
        right_count = node_count[segment][None, :] - left_count

        next_value = jnp.concatenate([value[:, 1:], value[:, -1:]], axis=1)
        distinct = ~ends[None, :] & (next_value - value > FEATURE_THRESHOLD)
        # scikit-learn's midpoint, falling back to the lower value if rounding reaches the upper.
        midpoint = value / 2.0 + next_value / 2.0
        midpoint = jnp.where((midpoint == next_value) | jnp.isinf(midpoint), value, midpoint)

        # Zero-weight children: scikit-learn's gini and Friedman proxies are NaN there and never
        # win; excluding them everywhere keeps every reachable leaf's distribution defined.
        valid = (
            distinct
            & can_split[segment][None, :]
            & (left_count >= min_samples_leaf)
            & (right_count >= min_samples_leaf)
            & (left_all[..., -1] > 0.5)  # a positive-weight sample on each side
            & (right_all[..., -1] > 0.5)
        )

        # Per node reductions: over the rows at each position first (positions are shared),
        # then over the node's m positions, a scatter 1/rows the size of one over all candidates.
        score = jnp.where(valid, criterion.proxy_fn(left, right), -jnp.inf)
        best_score = jax.ops.segment_max(jnp.max(score, axis=0), segment, n_level)
        is_best = valid & (score == best_score[segment][None, :])
        # Ties: the lowest feature, then the lowest position (threshold) wins.
        candidate = jnp.where(is_best, row_feature * m + rank[None, :], d * m)
        best = jax.ops.segment_min(jnp.min(candidate, axis=0), segment, n_level)
        has_split = can_split & (best < d * m)
        best = jnp.minimum(best, d * m - 1)
        split_feature = jnp.where(has_split, best // m, 0).astype(jnp.int32)
        best_position = best % m
        best_row = jnp.argmax(row_feature[:, best_position] == split_feature[None, :], axis=0)
        split_threshold = jnp.where(has_split, midpoint[best_row, best_position], 0.0)

        features.append(split_feature)
        thresholds.append(split_threshold.astype(jnp.float32))
        leaves.append(~has_split)

        go_right = (X[jnp.arange(m), split_feature[node]] > split_threshold[node]) & has_split[node]
        if level + 1 < max_depth:  # the last level of splits needs no grouping after it
            order = _partition(order, go_right, segment, node_count)
        node = 2 * node + go_right.astype(jnp.int32)
        alive = jnp.repeat(has_split, 2)

    params = TreeParams(
        feature=jnp.concatenate(features),
        threshold=jnp.concatenate(thresholds),
        is_leaf=jnp.concatenate(leaves),
        value=jnp.concatenate(values, axis=0),
    )
    return params, leaf_index(params, X, max_depth)


def feature_draws(feature_key: jax.Array, max_depth: int, d: int) -> jax.Array:
    """The per-node feature draws of a random-features tree, ``(max_depth, 2 ** (max_depth - 1), d)``
    uint32: level ``l``, node ``n`` ranks its features by ``draws[l, n]`` (both builders read them)."""
    # One flat draw of raw bits for all levels: each random call inlines a threefry kernel, and
    # multi-dimensional float draws were measured several times costlier to compile.
    half = 2 ** (max_depth - 1)
    return _random.bits(feature_key, (max_depth * half * d,)).reshape(max_depth, half, d)


@jax.jit  # one dispatch outside jit (the bitonic network is hundreds of small ops); inlined inside it
def feature_order(X: jax.Array) -> jax.Array:
    """Sample ids of every feature in increasing value order, ``(d, m)`` for ``X`` ``(m, d)``.

    The stable sort :func:`grow_tree` starts from; ties keep the sample order. On CPU a bitonic
    network (:func:`_bitonic_order`) — the same order, 2.3x faster than XLA's CPU sort at m = 100,
    where the sort was 59 % of a depth-4 fit (``benchmarks/results/batched_cpu.md``); elsewhere XLA's sort.
    """
    X = jnp.asarray(X, jnp.float32)
    return on_platform(X, cpu=_bitonic_order, default=_xla_order)


def _xla_order(X: jax.Array) -> jax.Array:
    return jnp.argsort(X.T, axis=1, stable=True).astype(jnp.int32)


def _bitonic_order(X: jax.Array) -> jax.Array:
    """:func:`feature_order` by a bitonic sorting network on (value, sample id) pairs.

    Each feature's values are padded with ``+inf`` to a power of two ``N``; ``log2(N)(log2(N) + 1) / 2``
    compare-exchange stages follow, each an elementwise min/max of two halves of a reshaped array
    (no gather, no scatter). Pairs compare by value, then by sample id, a total order: the result is
    the stable argsort exactly (tested against it, ties included).
    """
    values = X.T  # (d, m)
    d, m = values.shape
    size_all = 1 << max(1, (m - 1).bit_length())
    values = jnp.concatenate([values, jnp.full((d, size_all - m), jnp.inf, values.dtype)], axis=1)
    ids = jnp.broadcast_to(jnp.arange(size_all, dtype=jnp.int32), (d, size_all))
    position = jnp.arange(size_all, dtype=jnp.int32)
    size = 2
    while size <= size_all:
        stride = size // 2
        while stride >= 1:
            shape = (d, size_all // (2 * stride), 2, stride)
            v, i = values.reshape(shape), ids.reshape(shape)
            low_v, high_v, low_i, high_i = v[:, :, 0], v[:, :, 1], i[:, :, 0], i[:, :, 1]
            ascending = (position.reshape(size_all // (2 * stride), 2, stride)[:, 0] & size) == 0
            greater = (low_v > high_v) | ((low_v == high_v) & (low_i > high_i))
            swap = jnp.where(ascending, greater, ~greater)
            values = jnp.stack([jnp.where(swap, high_v, low_v), jnp.where(swap, low_v, high_v)], axis=2).reshape(
                d, size_all)
            ids = jnp.stack([jnp.where(swap, high_i, low_i), jnp.where(swap, low_i, high_i)], axis=2).reshape(
                d, size_all)
            stride //= 2
        size *= 2
    return ids[:, :m]


def _partition(order: jax.Array, go_right: jax.Array, segment: jax.Array, node_count: jax.Array) -> jax.Array:
    """Stable partition of every node's group into its left then its right child.

    Args:
        order: ``(d, m)`` sample ids per feature, grouped by node (node ``n`` at the same
            positions in every feature), in value order inside a node.
        go_right: ``(m,)`` bool, per sample id.
        segment: ``(m,)`` node of each position (shared by the features).
        node_count: ``(L,)`` samples per node.

    Returns:
        ``(d, m)`` sample ids grouped by child node (``2n`` then ``2n + 1``), value order kept
        inside each child: what a stable sort of each feature's order by child id gives.
    """
    d, m = order.shape
    right = go_right[order].astype(jnp.int32)  # (d, m)
    rights_before = jnp.cumsum(right, axis=1) - right  # exclusive: right-goers at earlier positions
    start = (jnp.cumsum(node_count) - node_count)[segment]  # (m,) first position of each node
    position = jnp.arange(m, dtype=jnp.int32)
    rights_before_node = jnp.take_along_axis(rights_before, jnp.broadcast_to(start, (d, m)), axis=1)
    rights_in_node = rights_before - rights_before_node  # right-goers of the node before this one
    lefts_in_node = (position - start)[None, :] - rights_in_node
    # Left children keep the node's first positions; right children follow its left-goers.
    node_lefts = jax.ops.segment_sum(1 - right[0], segment, node_count.shape[0])  # (L,)
    destination = start[None, :] + jnp.where(right == 1, node_lefts[segment][None, :] + rights_in_node, lefts_in_node)
    rows = jnp.arange(d, dtype=jnp.int32)[:, None]
    return jnp.zeros_like(order).at[rows, destination].set(order, unique_indices=True)


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
    if X.dtype == jnp.float32 and native_tree_status()[0]:
        # On CPU one C++ call routes the rows (the same comparisons); elsewhere the gathers below.
        return on_platform(
            params, X, cpu=lambda params, X: leaf_index_cpu(params, X, max_depth),
            default=lambda params, X: _leaf_index(params, X, max_depth))
    return _leaf_index(params, X, max_depth)


def _leaf_index(params: TreeParams, X: jax.Array, max_depth: int) -> jax.Array:
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
