"""Public generated cohorts with a known character, for tests and benchmarks.

:func:`rare_outcome` reproduces what issue 24 found on unseen cohorts: a rare outcome (about 9 %
positive) with a weak signal (a depth-4 tree on the full data scores an AUROC of about 0.7), where
the per-step mechanism used to release a table on which the tree scores 0.50 — at chance, while a
random real sample of 20 rows scores about 0.57. Generated from a fixed public recipe, so it can be
shared and rebuilt anywhere: nothing in it is anyone's data.

:func:`nwtco_three_classes` is a three-class target with two rare classes, derived from the bundled
nwtco cohort (public, installed with the ``cohorts`` extra): no relapse (86 %), a relapse at stage
1-2 (7.0 %) and one at stage 3-4 (7.2 %); :func:`nwtco_histology_classes` splits the relapses by
histology instead (9.4 % favourable, 4.8 % unfavourable: a stronger signal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def rare_outcome(num_rows: int = 3000, seed: int = 2024, strength: float = 1.5) -> pd.DataFrame:
    """A clinical-looking cohort: age, BMI, systolic pressure, creatinine, sex, smoking and a rare
    binary ``outcome`` ("yes" about 9 % of rows) from a logistic model in age, log creatinine,
    current smoking and pressure (``strength`` scales its coefficients: 1.5 gives a full-data
    depth-4 tree AUROC near 0.7). Columns a CSV would have: numbers and strings, no schema."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(62, 12, num_rows), 21, 100).round()
    bmi = np.clip(rng.lognormal(np.log(27), 0.18, num_rows), 15, 60).round(1)
    sbp = np.clip(rng.normal(132, 18, num_rows), 80, 220).round()
    creatinine = np.clip(rng.lognormal(0.0, 0.35, num_rows), 0.3, 8).round(2)
    sex = rng.choice(["female", "male"], num_rows)
    smoker = rng.choice(["never", "former", "current"], num_rows, p=[0.5, 0.3, 0.2])
    logit = strength * (0.035 * (age - 62) + 1.2 * np.log(creatinine) + 0.4 * (smoker == "current")
                        + 0.01 * (sbp - 132)) - 2.75
    outcome = rng.uniform(size=num_rows) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame({"age": age, "bmi": bmi, "sbp": sbp, "creatinine": creatinine, "sex": sex,
                         "smoker": smoker, "outcome": np.where(outcome, "yes", "no")})


def nwtco_three_classes() -> pd.DataFrame:
    """nwtco with its relapse split by stage, as a new user's table: ``outcome`` is ``"none"``,
    ``"relapse"`` (stage 1-2) or ``"relapse_late_stage"`` (stage 3-4); ``stage`` stays a feature
    (the split is learnable from it and the other features)."""
    from zodc import load_dataset

    frame = load_dataset("nwtco").frame.copy()
    relapse = frame["relapse"] == "yes"
    frame["outcome"] = np.where(relapse, np.where(frame["stage"] >= 3, "relapse_late_stage", "relapse"), "none")
    return frame.drop(columns="relapse")


def nwtco_histology_classes() -> pd.DataFrame:
    """nwtco with its relapse split by the local histology: ``outcome`` is ``"none"``,
    ``"relapse_fav"`` or ``"relapse_unfav"``; ``histol`` stays a feature."""
    from zodc import load_dataset

    frame = load_dataset("nwtco").frame.copy()
    relapse = frame["relapse"] == "yes"
    frame["outcome"] = np.where(relapse, np.where(frame["histol"] == "unfavourable", "relapse_unfav", "relapse_fav"),
                                "none")
    return frame.drop(columns="relapse")
