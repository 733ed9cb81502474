"""Paired utility check of two versions of zodc: breast-cancer tree at epsilon 1, public schema,
the same 30 splits (seeded ``train_test_split``), default settings otherwise.

Run once per version, the older one from a git worktree put first on ``PYTHONPATH`` (as a file, not
with ``python -m``, which would put the current checkout's ``zodc`` ahead of ``PYTHONPATH``)::

    git worktree add /tmp/old eb5453e
    PYTHONPATH=/tmp/old python benchmarks/paired_versions.py old 0 30   # writes /tmp/paired/old.json
    python benchmarks/paired_versions.py new 0 30

Recorded (issue 21, the privacy fixes against eb5453e): ``results/issue21_paired.json``.
"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from sklearn.model_selection import train_test_split
from sklearn.metrics import roc_auc_score
import zodc
from zodc import Condenser, load_dataset
from zodc.data import TableEncoder
from zodc.models.presets import PRESETS

label, seeds = sys.argv[1], range(int(sys.argv[2]), int(sys.argv[3]))
data = load_dataset("breast_cancer")
encoder = TableEncoder(data.schema)
out = []
for seed in seeds:
    train, test = train_test_split(data.frame, test_size=0.3, random_state=seed, stratify=data.frame["diagnosis"])
    c = Condenser("tree", epsilon=1.0, schema=data.schema, random_state=seed).fit(
        train.drop(columns="diagnosis"), train["diagnosis"])
    synthetic, real = encoder.encode(c.synthetic_), encoder.encode(test)
    model = PRESETS["tree"].host_factory(2).fit(synthetic.X, synthetic.y)
    proba = model.predict_proba(real.X)
    score = roc_auc_score(real.y, proba[:, list(model.classes_).index(1)] if 1 in model.classes_ else np.zeros(len(real.y)))
    out.append({"seed": seed, "auroc": float(score), "sigma": c.noise_multiplier_})
    print(label, seed, round(score, 4), round(c.noise_multiplier_, 3), zodc.__file__, flush=True)
import os

os.makedirs("/tmp/paired", exist_ok=True)
json.dump(out, open(f"/tmp/paired/{label}.json", "w"))
