"""Bundled clinical cohorts with public schemas.

The tables come from data files shipped inside scikit-learn and lifelines (installed from the
package index, no download at run time); the public schemas are JSON files in
``zodc/data/schemas/``, whose ``source`` field says where each bound comes from.

============================ ============== ===== ========================================================
name                         task           rows  what
============================ ============== ===== ========================================================
``breast_cancer`` (default)  classification  569  Wisconsin diagnostic breast cancer, 30 nuclear features
``diabetes_progression``     classification  442  diabetes, disease progression after 1 year > 140
``gbsg2_recurrence_3y``      classification  555  GBSG2, recurrence within 3 years (1095 days)
``gbsg2``                    survival        686  German Breast Cancer Study Group 2, recurrence-free time
``lung``                     survival        168  NCCTG advanced lung cancer, overall survival
``kidney_transplant``        survival        863  kidney transplant recipients, time to death
``larynx``                   survival         90  larynx cancer, time to death (years)
============================ ============== ===== ========================================================

Derivations (all with public constants, none chosen from the data):

* ``breast_cancer``: target column ``diagnosis`` with labels ``"malignant"`` / ``"benign"``
  (scikit-learn's 0 / 1), in that order, so class index 0 is malignant.
* ``diabetes_progression``: target ``progression_high`` = ``"yes"`` when the one-year progression
  score exceeds the fixed threshold 140 (a round number near the middle of the score's documented
  25–346 scale), else ``"no"``. Serum columns renamed from ``s1``…``s6`` to the names in
  scikit-learn's documentation (``tc, ldl, hdl, tch, ltg, glu``); ``sex`` kept as its codes 1 / 2
  (the source does not say which is which).
* ``gbsg2_recurrence_3y``: target ``recurrence_3y`` = ``"yes"`` for recurrence (``cens == 1``) at
  ``time <= 1095`` days, ``"no"`` for ``time > 1095``; the 131 women censored before 3 years have
  an unknown label and are dropped. ``time`` and ``cens`` are then dropped (they define the label).
* ``lung``: the institution code ``inst`` (an identifier) is dropped, then the 60 rows with a
  missing value; ``status`` is already 0 = censored / 1 = dead in lifelines; ``sex`` 1 / 2 is
  recoded ``"male"`` / ``"female"`` (R ``survival`` documentation).
* ``kidney_transplant``: the three indicators ``black_male, white_male, black_female`` are recoded
  into ``sex`` (``"male"/"female"``) and ``race`` (``"white"/"black"``); no row has two of them.
* ``larynx``: the indicators ``Stage_II..IV`` are recoded into ``stage`` (``"I"``…``"IV"``).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import NamedTuple

import numpy as np
import pandas as pd

from zodc.errors import DataError
from zodc.data.schema import Schema
from zodc.data.validation import validate_table

DEFAULT_DATASET = "breast_cancer"
GBSG2_HORIZON_DAYS = 1095
DIABETES_THRESHOLD = 140.0


class DatasetInfo(NamedTuple):
    """What a bundled dataset is. ``n_features`` excludes the target / time / event columns."""

    name: str
    task: str
    n_rows: int
    n_features: int
    description: str
    source: str
    license: str


class Dataset(NamedTuple):
    """A bundled dataset: the table (schema column order and dtypes), its public schema, its info."""

    frame: pd.DataFrame
    schema: Schema
    info: DatasetInfo


# ----------------------------------------------------------------------------- raw loaders


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.copy()
    frame["diagnosis"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    return frame


def _diabetes_progression() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True, scaled=False)
    frame = bunch.data.rename(columns={"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"})
    frame["sex"] = frame["sex"].round().astype(np.int64)
    frame["age"] = frame["age"].round().astype(np.int64)
    frame["progression_high"] = np.where(bunch.target.to_numpy() > DIABETES_THRESHOLD, "yes", "no")
    return frame


def _gbsg2() -> pd.DataFrame:
    from lifelines.datasets import load_gbsg2

    return load_gbsg2()


def _gbsg2_recurrence_3y() -> pd.DataFrame:
    frame = _gbsg2()
    known = (frame["time"] > GBSG2_HORIZON_DAYS) | (frame["cens"] == 1)
    frame = frame[known].copy()
    recurred = (frame["cens"] == 1) & (frame["time"] <= GBSG2_HORIZON_DAYS)
    frame["recurrence_3y"] = np.where(recurred, "yes", "no")
    return frame.drop(columns=["time", "cens"]).reset_index(drop=True)


def _lung() -> pd.DataFrame:
    from lifelines.datasets import load_lung

    frame = load_lung().drop(columns=["inst"]).dropna().reset_index(drop=True)
    frame["sex"] = frame["sex"].map({1: "male", 2: "female"})
    for column in ("ph.ecog", "ph.karno", "pat.karno", "meal.cal", "wt.loss"):
        frame[column] = frame[column].round().astype(np.int64)
    return frame


def _kidney_transplant() -> pd.DataFrame:
    from lifelines.datasets import load_kidney_transplant

    raw = load_kidney_transplant()
    male = (raw["black_male"] == 1) | (raw["white_male"] == 1)
    black = (raw["black_male"] == 1) | (raw["black_female"] == 1)
    return pd.DataFrame({
        "age": raw["age"],
        "sex": np.where(male, "male", "female"),
        "race": np.where(black, "black", "white"),
        "time": raw["time"],
        "death": raw["death"],
    })


def _larynx() -> pd.DataFrame:
    from lifelines.datasets import load_larynx

    raw = load_larynx()
    stage = np.select(
        [raw["Stage_IV"] == 1, raw["Stage_III"] == 1, raw["Stage_II"] == 1], ["IV", "III", "II"], default="I"
    )
    return pd.DataFrame({"age": raw["age"], "stage": stage, "time": raw["time"], "death": raw["death"]})


_LIFELINES = "distributed with lifelines (MIT licence)"
_REGISTRY: dict = {
    "breast_cancer": (
        _breast_cancer,
        DatasetInfo(
            "breast_cancer", "classification", 569, 30,
            "Wisconsin diagnostic breast cancer: 30 features of cell nuclei from fine-needle aspirates; "
            "target 'diagnosis' (malignant / benign).",
            "sklearn.datasets.load_breast_cancer (UCI ML repository; Street, Wolberg & Mangasarian 1993)",
            "CC BY 4.0 (UCI); distributed with scikit-learn (BSD-3-Clause)",
        ),
    ),
    "diabetes_progression": (
        _diabetes_progression,
        DatasetInfo(
            "diabetes_progression", "classification", 442, 10,
            "Diabetes patients: age, sex, BMI, blood pressure, six serum measurements; target "
            "'progression_high' = progression score one year after baseline > 140.",
            "sklearn.datasets.load_diabetes(scaled=False) (Efron, Hastie, Johnstone & Tibshirani 2004)",
            "distributed with scikit-learn (BSD-3-Clause); original data published with Efron et al. 2004",
        ),
    ),
    "gbsg2_recurrence_3y": (
        _gbsg2_recurrence_3y,
        DatasetInfo(
            "gbsg2_recurrence_3y", "classification", 555, 8,
            "GBSG2 node-positive breast cancer; target 'recurrence_3y' = recurrence within 1095 days "
            "(women censored before 3 years dropped).",
            "lifelines.datasets.load_gbsg2 (Schumacher et al. 1994; R package TH.data)",
            f"{_LIFELINES}; originally R package TH.data (GPL-2)",
        ),
    ),
    "gbsg2": (
        _gbsg2,
        DatasetInfo(
            "gbsg2", "survival", 686, 8,
            "German Breast Cancer Study Group 2: recurrence-free survival of 686 node-positive women "
            "(time in days, cens = 1 for recurrence).",
            "lifelines.datasets.load_gbsg2 (Schumacher et al. 1994; R package TH.data)",
            f"{_LIFELINES}; originally R package TH.data (GPL-2)",
        ),
    ),
    "lung": (
        _lung,
        DatasetInfo(
            "lung", "survival", 168, 7,
            "NCCTG advanced lung cancer: overall survival (days) with performance scores; complete cases.",
            "lifelines.datasets.load_lung (Loprinzi et al. 1994; R package survival)",
            f"{_LIFELINES}; originally R package survival (LGPL-2 or later)",
        ),
    ),
    "kidney_transplant": (
        _kidney_transplant,
        DatasetInfo(
            "kidney_transplant", "survival", 863, 3,
            "Kidney transplant recipients: time to death (days) by age, sex and race.",
            "lifelines.datasets.load_kidney_transplant (Klein & Moeschberger 1997, data set D.3)",
            f"{_LIFELINES}; originally R package KMsurv (GPL-3 or later)",
        ),
    ),
    "larynx": (
        _larynx,
        DatasetInfo(
            "larynx", "survival", 90, 2,
            "Larynx cancer: time to death (years) by age and stage.",
            "lifelines.datasets.load_larynx (Klein & Moeschberger 1997, section 1.8)",
            f"{_LIFELINES}; originally R package KMsurv (GPL-3 or later)",
        ),
    ),
}


def list_datasets() -> list:
    """All bundled datasets.

    Returns:
        List of :class:`DatasetInfo`, the default (``breast_cancer``) first.
    """
    return [info for _, info in _REGISTRY.values()]


def _lookup(name: str) -> tuple:
    if name not in _REGISTRY:
        raise DataError(f"unknown dataset {name!r}; available: {list(_REGISTRY)}.")
    return _REGISTRY[name]


@functools.lru_cache(maxsize=None)
def load_schema(name: str = DEFAULT_DATASET) -> Schema:
    """The public schema of a bundled dataset (reads only the JSON file, not the data).

    Raises:
        DataError: Unknown name (the message lists the available names).
    """
    _lookup(name)
    text = importlib.resources.files("zodc.data").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    return Schema.from_json(json.loads(text))


def load_dataset(name: str = DEFAULT_DATASET) -> Dataset:
    """Load a bundled dataset with its public schema.

    Args:
        name: One of the names in :func:`list_datasets`.

    Returns:
        :class:`Dataset` whose ``frame`` (shape ``(n_rows, n_features + 1)`` for classification,
        ``+ 2`` for survival) has the schema's column order and dtypes and lies within its bounds.

    Raises:
        DataError: Unknown name (the message lists the available names), or the table does not fit
            its schema (a packaging bug).
    """
    loader, info = _lookup(name)
    schema = load_schema(name)
    frame = validate_table(loader(), schema, on_out_of_bounds="raise")
    return Dataset(frame.reset_index(drop=True), schema, info)
