import pytest

from zodc.runtime import enable_compilation_cache


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Tests compile the same programs over different data: share compilations within the session
    (a fresh directory, so no test depends on an earlier run's cache)."""
    enable_compilation_cache(str(tmp_path_factory.mktemp("jax-cache")))
