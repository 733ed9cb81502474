"""The CPU tree builder: a C++ XLA custom call (``_tree_cpu.cc``), built on first use.

:func:`grow_tree` (``_common.py``) scores every candidate split of a level with one dense
``(m, m)`` product: what keeps an accelerator busy, but O(d m^2) work per level, and on a CPU
it lost to scikit-learn's C builder per fit. On CPU the tree (gini), forest and boosting kernels call
:func:`grow_tree_cpu` instead: the same tree (same candidates, same float32 scores in the same
order of operations, same tie-breaks) from running sums over each node's sorted samples, O(d m)
per level, as one ``jax.ffi`` call for a whole batch of tables, shared out over XLA's CPU threads.
It runs inside ``jit``, ``vmap`` (batch axes go into the one call) and ``shard_map``; on other
platforms :func:`on_platform` keeps :func:`grow_tree`.

The library is compiled once per machine and cached (``_build.py``: the compiler, the cache
directory, the background build the command line starts before JAX loads). Where it cannot be
built (no compiler), or with ``ZODC_NATIVE_CPU=0``, the kernels keep :func:`grow_tree` everywhere:
the same trees, slower; :func:`native_tree_status` says which path is in use and why.

Privacy: the builder fits the synthetic tables only. The routing call (:func:`leaf_index_cpu`)
reads the real records when zodc scores them: each row's leaf depends on that row and the tree
alone (``tests/kernels/test_tree_cpu.py::test_one_record_changes_only_its_own_leaf``). Both read
their inputs and write their outputs, nothing else; no message carries a value.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings

import jax
import jax.numpy as jnp

from . import _build
from ._build import DISABLE_ENV

TARGET = "zodc_tree_fit"
APPLY_TARGET = "zodc_tree_apply"
CRITERIA = {"gini": 0, "friedman_mse": 1}

_lock = threading.Lock()
_state: dict = {}


def on_platform(*operands, cpu, default):
    """``lax.platform_dependent(*operands, cpu=cpu, default=default)``, tracing ``cpu`` alone where
    the process computes on CPU only.

    ``platform_dependent`` traces every branch; tracing :func:`grow_tree`'s branch cost 1.1 s per
    new shape on the 2-core VM (a first run traces several), for a branch that can never run where
    JAX's default backend is the CPU: there no accelerator is available, so every computation lowers
    to the CPU. (To export a computation for another platform from such a process, set
    ``$ZODC_NATIVE_CPU=0``: the kernels then trace the portable branch alone.)
    """
    if jax.default_backend() == "cpu":  # the CPU is the default only where no accelerator is available
        return cpu(*operands)
    return jax.lax.platform_dependent(*operands, cpu=cpu, default=default)


def native_tree_status() -> tuple[bool, str]:
    """``(available, reason)``: whether the CPU tree builder is in use, and why (not)."""
    with _lock:
        if "available" in _state:
            return _state["available"], _state["reason"]
        if os.environ.get(DISABLE_ENV, "1") == "0":
            available, reason = False, f"${DISABLE_ENV}=0"
        elif (compiler := _build.compiler()) is None:
            available, reason = False, "no C++ compiler ($CXX or c++) on PATH"
        else:
            try:
                path = _build.built(compiler)
                library = ctypes.cdll.LoadLibrary(path)
                jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.ZodcTreeFit), platform="cpu")
                jax.ffi.register_ffi_target(APPLY_TARGET, jax.ffi.pycapsule(library.ZodcTreeApply), platform="cpu")
                _state["library"] = library  # keep it loaded
                available, reason = True, path
            except (OSError, RuntimeError, AttributeError) as error:
                available, reason = False, f"the build failed: {error}"
        if not available and os.environ.get(DISABLE_ENV, "1") != "0":
            warnings.warn(
                f"zodc: the CPU tree builder is not available ({reason}); the tree, forest and boosting kernels use "
                "the portable JAX builder (the same trees, slower on CPU).",
                RuntimeWarning,
                stacklevel=3,
            )
        _state.update(available=available, reason=reason)
        return available, reason


def _require() -> None:
    available, reason = native_tree_status()
    if not available:
        raise RuntimeError(f"The CPU tree builder is not available: {reason}.")


def grow_tree_cpu(X, stats, criterion: str, max_depth: int, min_samples_leaf: int, pure=None, *,
                  feature_key=None, max_features: int | None = None):
    """:func:`grow_tree`'s ``TreeParams`` (raw node statistics as ``value``) from the C++ builder.

    Args:
        X: ``(..., m, d)`` float32 features; leading axes are a batch of tables.
        stats: ``(..., m, K)`` float32 per-sample statistics (as :func:`grow_tree`).
        criterion: ``"gini"`` or ``"friedman_mse"`` (statistics ``(w, w r, w r^2)``).
        max_depth: static depth.
        min_samples_leaf: static minimum (unweighted) samples per child.
        pure: optional ``(..., m)`` target whose constancy marks a node pure (Friedman).
        feature_key: optional PRNG key (one tree's: no batch axes; ``vmap`` for many); with
            ``max_features < d``, each node searches ``max_features`` random features, drawn from
            the same bits as :func:`grow_tree` draws them, so the trees are the same.
        max_features: features per node, with ``feature_key``.

    The batch axes of the inputs broadcast against each other: under ``vmap`` an operand that is
    not batched enters as one copy (a forest's trees share their table), not one per tree.

    Returns:
        ``TreeParams`` with ``feature``, ``threshold``, ``is_leaf`` ``(..., N)`` and ``value``
        ``(..., N, K)``.
    """
    from ._common import TreeParams, feature_draws

    _require()
    X = jnp.asarray(X, jnp.float32)
    stats = jnp.asarray(stats, jnp.float32)
    d = X.shape[-1]
    use_pure = pure is not None
    pure = jnp.zeros((1,), jnp.float32) if pure is None else jnp.asarray(pure, jnp.float32)
    subsample = feature_key is not None and max_features is not None and max_features < d
    draws = feature_draws(feature_key, max_depth, d) if subsample else jnp.zeros((1, 1, 1), jnp.uint32)
    batch = jnp.broadcast_shapes(X.shape[:-2], stats.shape[:-2], pure.shape[:-1] if use_pure else ())
    n_nodes = 2 ** (max_depth + 1) - 1
    out_types = (
        jax.ShapeDtypeStruct(batch + (n_nodes,), jnp.int32),
        jax.ShapeDtypeStruct(batch + (n_nodes,), jnp.float32),
        jax.ShapeDtypeStruct(batch + (n_nodes,), jnp.bool_),
        jax.ShapeDtypeStruct(batch + (n_nodes, stats.shape[-1]), jnp.float32),
    )
    call = jax.ffi.ffi_call(TARGET, out_types, vmap_method="expand_dims")
    feature, threshold, is_leaf, value = call(
        X, stats, pure, draws, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
        criterion=CRITERIA[criterion], use_pure=use_pure, max_features=int(max_features) if subsample else 0,
    )
    return TreeParams(feature=feature, threshold=threshold, is_leaf=is_leaf, value=value)


def leaf_index_cpu(params, X, max_depth: int):
    """:func:`leaf_index` from the C++ builder's library: the heap index ``(..., n)`` of the leaf
    each row of ``X`` ``(..., n, d)`` falls in, for trees ``params`` with batch axes ``(...)``.

    Batch axes of the trees and of ``X`` broadcast (``vmap`` over trees with one ``X`` passes a
    size-1 axis, not a copy of ``X`` per tree). Could one record change this? Only its own leaf:
    each row is routed by its own values and the tree.
    """
    _require()
    X = jnp.asarray(X, jnp.float32)
    feature, threshold, is_leaf = params.feature, params.threshold, params.is_leaf
    batch = jnp.broadcast_shapes(feature.shape[:-1], X.shape[:-2])
    out_type = jax.ShapeDtypeStruct(batch + X.shape[-2:-1], jnp.int32)
    call = jax.ffi.ffi_call(APPLY_TARGET, out_type, vmap_method="expand_dims")
    return call(feature.astype(jnp.int32), threshold.astype(jnp.float32), is_leaf.astype(jnp.bool_), X,
                max_depth=max_depth)
