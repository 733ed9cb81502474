"""Device-native, vmappable fits of the classical clinical models (installed as ``zodc.kernels``).

Each model is a frozen dataclass of static hyperparameters with pure ``fit(key, X, ...)`` and
``predict_*(params, X)`` methods that ``jax.jit`` and ``jax.vmap`` over a batch of tables with
static shapes, so the zero-order step fits all ``2q`` perturbed tables in one compiled program.
Each is tested against its reference (scikit-learn, lifelines) on fresh random data.
"""

__all__ = [
    "BoostingParams", "CoxParams", "CoxPH", "DecisionTreeClassifier", "GradientBoostingClassifier",
    "LogisticParams", "LogisticRegression", "RandomForestClassifier", "TreeParams",
]

# Loaded on first use (PEP 562), so that ``zodc.kernels._build`` imports without JAX.
_MODULES = {"BoostingParams": "boosting", "GradientBoostingClassifier": "boosting", "CoxParams": "cox",
            "CoxPH": "cox", "RandomForestClassifier": "forest", "LogisticParams": "logistic",
            "LogisticRegression": "logistic", "DecisionTreeClassifier": "tree", "TreeParams": "tree"}


def __getattr__(name):
    if name in _MODULES:
        import importlib

        return getattr(importlib.import_module(f"zodc.kernels.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'zodc.kernels' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
