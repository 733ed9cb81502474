"""Process-wide JAX settings zodc's entry points opt into.

The persistent compilation cache stores compiled XLA programs on disk, keyed by the program
itself. Because the real data enter the compiled step as arguments (not constants), runs over
different data or seeds of the same shapes reuse one compilation: the second ``zodc condense`` of
a cohort skips most of its start-up. Only compiled programs are cached — never data.
"""

from __future__ import annotations

import math
import os

CACHE_ENV = "ZODC_CACHE_DIR"
DISABLE_ENV = "ZODC_NO_COMPILATION_CACHE"


def default_cache_dir() -> str:
    """``$ZODC_CACHE_DIR``, else ``$XDG_CACHE_HOME/zodc/jax``, else ``~/.cache/zodc/jax``."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "zodc", "jax")


def enable_compilation_cache(directory: str | None = None) -> str | None:
    """Turns JAX's persistent compilation cache on (unless ``$ZODC_NO_COMPILATION_CACHE`` is set).

    Returns:
      The cache directory, or ``None`` when disabled or the directory cannot be created.
    """
    import jax  # here, not at the top: `zodc condense` imports this module before JAX (deterministic_gpu)

    if os.environ.get(DISABLE_ENV):
        return None
    directory = directory or default_cache_dir()
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


DETERMINISTIC_GPU_FLAG = "--xla_gpu_exclude_nondeterministic_ops=true"


def deterministic_gpu() -> None:
    """Asks XLA for deterministic GPU kernels: adds ``--xla_gpu_exclude_nondeterministic_ops=true``
    to ``$XLA_FLAGS`` unless that flag is already set there.

    On a GPU, XLA computes scatter-adds (``jax.ops.segment_sum``: a tree's node statistics, class
    weights) and some matrix products with atomic additions by default, whose float32 rounding
    follows the threads' order: two runs of one seed could release different tables, and a
    resumed run would not equal the uninterrupted one. The flag selects deterministic kernels. It
    takes effect only if set before JAX starts its backends, so ``zodc condense`` calls this first;
    a Python user who needs bit-for-bit repeatable runs on a GPU sets it the same way before the
    first computation. The CPU backend ignores it. It changes no privacy property: the noise does
    not depend on it.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_exclude_nondeterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_GPU_FLAG}".strip()


def shape_bucket(count: int, minimum: int = 256) -> int:
    """The shape bucket of ``count`` rows: the next power of two, at least ``minimum``.

    Arrays of real records are padded to it before they enter a compiled program, so that runs over
    cohorts of nearby size (another holdout, another DP split, a fresh seed) reuse the program from
    the persistent cache instead of compiling their own. Could one record change this? It can move
    ``count`` across a power of two, and so a compiled program's shapes: never a released value
    (padding rows are masked out wherever they enter; each caller's tests check the release is the
    unpadded one)."""
    return max(int(minimum), 1 << max(0, math.ceil(math.log2(max(int(count), 1)))))
