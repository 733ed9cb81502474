import os

# XLA's CPU backend at LLVM optimisation level 0: compiling is most of this suite's time (a fit of
# a new shape or configuration compiles its step program, the tests' tables are tiny), and level 0
# compiles those programs 30-45 % faster with the same results (tree, Cox and survival fits were
# bit-identical in a comparison). Set before JAX starts its backend; an XLA_FLAGS that already picks
# a level is left alone (`XLA_FLAGS=--xla_backend_optimization_level=3 pytest` tests at the
# default level).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

# As `zodc condense` does: deterministic kernels where the tests run on a GPU
# (benchmarks/device_check.sh), so that seeded runs repeat there; the CPU ignores the flag.
from zodc.runtime import deterministic_gpu, enable_compilation_cache  # noqa: E402 (imports no JAX)

deterministic_gpu()

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw their examples from a fixed seed (derandomize) so CI cannot flake;
# ZODC_RANDOMISED_TESTS=1 opts in to fresh examples for a stress run, like the seeded tests.
settings.register_profile("ci", derandomize=True)
settings.register_profile("randomised", derandomize=False)
settings.load_profile("randomised" if os.environ.get("ZODC_RANDOMISED_TESTS") == "1" else "ci")


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Tests compile the same programs over different data: share compilations within the session
    (a fresh directory, so no test depends on an earlier run's cache; with pytest-xdist, one per
    worker).

    Only programs that took at least 0.1 s to compile are written. The suite compiles some 3,000
    programs, most of them single eager operations that JAX already keeps in memory for the rest
    of the process; serialising each to disk cost more than it saved (tests/test_estimator.py in
    one process: 50 s writing every program, 54 s with no cache, 40 s at 0.1 s, 42 s at 0.3 s).
    The command line keeps writing every program (`enable_compilation_cache`): its later runs on
    a machine start from a warm cache."""
    enable_compilation_cache(str(tmp_path_factory.mktemp("jax-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
