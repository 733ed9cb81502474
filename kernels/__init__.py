"""Device-native, vmappable fits of the classical clinical models (installed as ``zodc.kernels``).

Each model is a frozen dataclass of static hyperparameters with pure ``fit(key, X, ...)`` and
``predict_*(params, X)`` methods that ``jax.jit`` and ``jax.vmap`` over a batch of tables with
static shapes, so the zero-order step fits all ``2q`` perturbed tables in one compiled program.
Each is tested against its reference (scikit-learn, lifelines) on fresh random data.
"""

from zodc.kernels.boosting import BoostingParams, GradientBoostingClassifier
from zodc.kernels.cox import CoxParams, CoxPH
from zodc.kernels.forest import RandomForestClassifier
from zodc.kernels.logistic import LogisticParams, LogisticRegression
from zodc.kernels.tree import DecisionTreeClassifier, TreeParams

__all__ = [
    "BoostingParams", "CoxParams", "CoxPH", "DecisionTreeClassifier", "GradientBoostingClassifier",
    "LogisticParams", "LogisticRegression", "RandomForestClassifier", "TreeParams",
]
