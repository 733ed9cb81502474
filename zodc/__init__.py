"""zodc: differentially private zero-order dataset condensation for classical clinical models.

The public API, re-exported (see the README):

- :class:`Condenser` — the scikit-learn-compatible front door;
- :func:`zero_order_condenser`, :class:`StepParams`, :class:`CondenseState`, :func:`run` — the
  functional core (``init`` / ``step`` over explicit state);
- :func:`load_dataset`, :func:`list_datasets`, :class:`Schema` — bundled cohorts and schemas;
- :class:`PrivateSearch` — hyperparameters chosen on the private data, every candidate accounted;
- :class:`DPMeans`, :class:`NoiseStart` — where the table starts (``Condenser(init=...)``);
- :class:`SharedBudget` — the hook that composes several fits into one release.

``docs/architecture.md`` maps the modules.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("zodc")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from zodc.errors import ConfigError, DataError, PrivacyBudgetError, SchemaError, ZodcError

__all__ = [
    "__version__", "Condenser", "CondenseState", "StepInfo", "StepParams", "ZeroOrderCondenser", "run",
    "zero_order_condenser", "load_dataset", "list_datasets", "Schema", "PrivateSearch", "ConfigError", "DataError",
    "PrivacyBudgetError", "SchemaError", "ZodcError", "DPMeans", "NoiseStart", "SharedBudget",
]


_CORE = ("CondenseState", "StepInfo", "StepParams", "ZeroOrderCondenser", "run", "zero_order_condenser")


def __getattr__(name):
    # Everything but the errors loads on first use: the core imports JAX, the front door and the data
    # registry scikit-learn, lifelines and pandas. `import zodc` stays light, so that the command line
    # starts the C++ build before JAX loads (zodc.kernels._build) and host-callback workers start fast.
    if name in _CORE:
        from zodc import condense

        return getattr(condense, name)
    if name == "Condenser":
        from zodc.estimator import Condenser

        return Condenser
    if name in ("load_dataset", "list_datasets"):
        from zodc.data import datasets

        return getattr(datasets, name)
    if name == "Schema":
        from zodc.data.schema import Schema

        return Schema
    if name in ("DPMeans", "NoiseStart"):
        from zodc import start

        return getattr(start, name)
    if name == "SharedBudget":
        from zodc.budget import SharedBudget

        return SharedBudget
    if name == "PrivateSearch":
        from zodc.tuning import PrivateSearch

        return PrivateSearch
    raise AttributeError(f"module 'zodc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
