"""Compiling the CPU tree builder's library (``_tree_cpu.cc``): no JAX here.

The library is compiled once per machine with the system's C++ compiler (``$CXX``, else ``c++``)
against the XLA FFI headers that jaxlib ships, and cached under ``$ZODC_NATIVE_DIR`` (else
``$XDG_CACHE_HOME/zodc/native``, else ``~/.cache/zodc/native``), keyed by the source, the flags,
the compiler and jaxlib's version (where that directory cannot be written, in a private temporary
directory). This module imports neither JAX nor the kernels, so ``zodc condense`` starts the build
(:func:`build_in_background`) before JAX loads (about 1.5 s of imports on the 2-core VM), and a
first run compiles while it imports, loads and prepares its data. A build still running when the
process exits is stopped and its half-written file removed. ``_native.py`` loads the library and
registers its handlers with JAX.

Privacy: nothing here reads data.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

DISABLE_ENV = "ZODC_NATIVE_CPU"
DIR_ENV = "ZODC_NATIVE_DIR"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_tree_cpu.cc")
# No FMA contraction and no fast math: the scores must round as grow_tree's float32 operations do.
# -O2: -O3 measured no faster here; the rank sort and the scoring carry their own AVX2 clones
# (target_clones). -fno-trapping-math lets the scoring's selects vectorise; it changes no result.
FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math",
         "-pthread")

_in_flight: dict = {}  # the compiler running now and its output file, for _stop_build at exit
_background: dict = {}  # the background build's thread and its outcome ("path" or "error")


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


def compiler() -> str | None:
    """The C++ compiler's path (``$CXX``, else ``c++``), or ``None`` where there is none."""
    return shutil.which(os.environ.get("CXX") or "c++")


def include_dir() -> str:
    """The XLA FFI headers jaxlib ships (``jax.ffi.include_dir()``, found without importing JAX)."""
    import jaxlib

    root = os.path.dirname(os.path.abspath(jaxlib.__file__)) if jaxlib.__file__ else list(jaxlib.__path__)[0]
    return os.path.join(root, "include")


def build(compiler_path: str) -> str:
    """Compile (or find in the cache) the library; returns its path. Raises on failure."""
    import jaxlib

    with open(SOURCE, "rb") as handle:
        source = handle.read()
    version = subprocess.run([compiler_path, "--version"], capture_output=True, text=True, check=False).stdout
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
        command = [compiler_path, *FLAGS, "-I", include_dir(), SOURCE, "-o", partial]
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
    """Starts :func:`build` (or finds the cached library) on a daemon thread; :func:`built` waits for it.

    The command line calls this before anything else, so that a first run compiles the library
    while it imports JAX, loads and prepares its data, rather than at its first tree. The thread only
    compiles: the library is loaded and registered with JAX by the first caller of
    ``_native.native_tree_status``, which waits here for the outcome (and reports a failure once).
    """
    def run():
        if os.environ.get(DISABLE_ENV, "1") == "0" or (path := compiler()) is None:
            return
        try:
            _background["path"] = build(path)
        except (OSError, RuntimeError) as error:  # the foreground reports it (built() re-raises it)
            _background["error"] = error

    thread = threading.Thread(target=run, name="zodc-native-build", daemon=True)
    _background.clear()
    _background["thread"] = thread
    thread.start()
    return thread


def built(compiler_path: str) -> str:
    """The library's path: the background build's outcome when one was started (its error is raised
    here), else :func:`build` now."""
    thread = _background.get("thread")
    if thread is not None and thread is not threading.current_thread():
        thread.join()
        if "error" in _background:
            raise _background["error"]
        if "path" in _background:
            return _background["path"]
    return build(compiler_path)
