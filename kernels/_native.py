"""The CPU tree builder: a C++ XLA custom call (``_tree_cpu.cc``), built on first use.

:func:`grow_tree` (``_common.py``) scores every candidate split of a level with one dense
``(m, m)`` product: what keeps an accelerator busy, but O(d m^2) work per level, and on a CPU
it lost to scikit-learn's C builder per fit. On CPU the tree (gini), forest and boosting kernels call
:func:`grow_tree_cpu` instead: the same tree (same candidates, same float32 scores in the same
order of operations, same tie-breaks) from running sums over each node's sorted samples, O(d m)
per level, as one ``jax.ffi`` call for a whole batch of tables, shared out over XLA's CPU threads.
It runs inside ``jit``, ``vmap`` (batch axes go into the one call) and ``shard_map``; on other
platforms ``lax.platform_dependent`` keeps :func:`grow_tree`.

The library is compiled once per machine with the system's C++ compiler (``$CXX``, else ``c++``)
against the XLA FFI headers that jaxlib ships, and cached under
``$ZODC_NATIVE_DIR`` (else ``$XDG_CACHE_HOME/zodc/native``, else ``~/.cache/zodc/native``), keyed
by the source, the flags, the compiler and jaxlib's version (where that directory cannot be
written, in a private temporary directory). Where it cannot be built (no
compiler), or with ``ZODC_NATIVE_CPU=0``, the kernels keep :func:`grow_tree` everywhere: the same
trees, slower; :func:`native_tree_status` says which path is in use and why. ``zodc condense``
starts the build on a background thread as it starts (:func:`build_in_background`), so a first
run compiles while it imports and prepares its data; a build still running when the process exits
is stopped and its half-written file removed.

Privacy: the builder fits the synthetic tables only. The routing call (:func:`leaf_index_cpu`)
reads the real records when zodc scores them: each row's leaf depends on that row and the tree
alone (``tests/kernels/test_tree_cpu.py::test_one_record_changes_only_its_own_leaf``). Both read
their inputs and write their outputs, nothing else; no message carries a value.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import jax
import jax.numpy as jnp

TARGET = "zodc_tree_fit"
APPLY_TARGET = "zodc_tree_apply"
DISABLE_ENV = "ZODC_NATIVE_CPU"
DIR_ENV = "ZODC_NATIVE_DIR"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_tree_cpu.cc")
# No FMA contraction and no fast math: the scores must round as grow_tree's float32 operations do.
# -O2: -O3 measured no faster here; the rank sort and the scoring carry their own AVX2 clones
# (target_clones). -fno-trapping-math lets the scoring's selects vectorise; it changes no result.
FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math",
         "-pthread")
CRITERIA = {"gini": 0, "friedman_mse": 1}

_lock = threading.Lock()
_state: dict = {}
_in_flight: dict = {}  # the compiler running now and its output file, for _stop_build at exit


@atexit.register
def _stop_build() -> None:
    """At exit, stops a build still running (a background build of a command that ended first)
    and removes its half-written output, so nothing outlives the process."""
    process, partial = _in_flight.get("process"), _in_flight.get("partial")
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()
    if partial is not None and os.path.exists(partial):
        os.unlink(partial)


def native_dir() -> str:
    """Where the compiled library is cached (see the module docstring)."""
    if os.environ.get(DIR_ENV):
        return os.environ[DIR_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "zodc", "native")


def _compiler() -> str | None:
    compiler = os.environ.get("CXX") or "c++"
    return shutil.which(compiler)


def _build(compiler: str) -> str:
    """Compile (or find in the cache) the library; returns its path. Raises on failure."""
    import jaxlib

    with open(SOURCE, "rb") as handle:
        source = handle.read()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    digest = hashlib.sha256(
        b"\0".join([source, " ".join(FLAGS).encode(), version.encode(), jaxlib.__version__.encode(),
                    sys.platform.encode()])
    ).hexdigest()[:20]
    name = f"zodc_tree_cpu_{digest}.so"
    directory, private = native_dir(), os.path.join(tempfile.gettempdir(), f"zodc-native-{os.getuid()}")
    for candidate in (directory, private):
        if os.path.exists(os.path.join(candidate, name)):
            return os.path.join(candidate, name)
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise PermissionError(directory)
    except OSError:  # a read-only home: build in a private temporary directory instead
        directory = private
        os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, name)
    _remove_stale_partials(directory)
    # Compile to a private name, then rename: concurrent builders (test workers) never load a
    # half-written library.
    handle, partial = tempfile.mkstemp(prefix="zodc_tree_cpu_", suffix=".so.partial", dir=directory)
    os.close(handle)
    try:
        command = [compiler, *FLAGS, "-I", jax.ffi.include_dir(), SOURCE, "-o", partial]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _in_flight.update(process=process, partial=partial)
        try:
            _, stderr = process.communicate()
        finally:
            _in_flight.clear()
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


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


def _remove_stale_partials(directory: str, age_seconds: float = 3600.0) -> None:
    """Deletes half-written builds older than an hour (a process that exited while compiling)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        if entry.startswith("zodc_tree_cpu_") and entry.endswith(".so.partial"):
            try:
                if time.time() - os.path.getmtime(os.path.join(directory, entry)) > age_seconds:
                    os.unlink(os.path.join(directory, entry))
            except OSError:
                pass


def build_in_background() -> threading.Thread:
    """Starts :func:`native_tree_status` (the build, or the cached library) on a daemon thread.

    The command line calls this first, so that a first run compiles the library while it imports,
    loads and prepares the data, rather than at its first tree; :func:`native_tree_status` (under
    its lock) waits for the thread's result. A warning the build gives still reaches the user once.
    """
    def status():
        try:
            native_tree_status()
        except Exception:  # noqa: BLE001 - the foreground call meets the same error and reports it
            pass

    thread = threading.Thread(target=status, name="zodc-native-build", daemon=True)
    thread.start()
    return thread


def native_tree_status() -> tuple[bool, str]:
    """``(available, reason)``: whether the CPU tree builder is in use, and why (not)."""
    with _lock:
        if "available" in _state:
            return _state["available"], _state["reason"]
        if os.environ.get(DISABLE_ENV, "1") == "0":
            available, reason = False, f"${DISABLE_ENV}=0"
        elif (compiler := _compiler()) is None:
            available, reason = False, "no C++ compiler ($CXX or c++) on PATH"
        else:
            try:
                path = _build(compiler)
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
