"""Seeded fits whose released tables must stay byte-identical across a refactor (the redesign of issue 23).

    python benchmarks/same_table.py OUT_DIR [case ...]      # writes OUT_DIR/<case>.csv and summary.json

Run it on the old and the new commit (PYTHONPATH=<old checkout> for the old) and compare with cmp.
Issue 23: all twelve cases and a CLI run (zodc condense --data diab.csv --target progression_high
--epsilon 1 --steps 10 --seed 13) were identical at 09f4621 and after the redesign.
"""
import sys, json, warnings, hashlib
warnings.simplefilter("ignore")
from zodc import Condenser, load_dataset
from sklearn.tree import DecisionTreeClassifier
out = sys.argv[1]
bc = load_dataset("breast_cancer"); X, y = bc.frame.drop(columns=bc.schema.target), bc.frame[bc.schema.target]
g = load_dataset("gbsg2"); lung = load_dataset("lung")
cases = {
 "tree_schema": lambda: Condenser(steps=20, schema=bc.schema, random_state=3).fit(X, y),
 "logistic_schemaless": lambda: Condenser("logistic", steps=20, random_state=4).fit(X, y),
 "boosting_soft": lambda: Condenser("boosting", steps=3, schema=bc.schema, random_state=5).fit(X, y),
 "tree_select_noise": lambda: Condenser(steps=10, schema=bc.schema, select_features=3, init="noise", random_state=6).fit(X, y),
 "tree_inf": lambda: Condenser(steps=10, epsilon=float("inf"), random_state=7).fit(X, y),
 "host_custom": lambda: Condenser(DecisionTreeClassifier(max_depth=3, random_state=0), steps=3, schema=bc.schema, random_state=8).fit(X, y),
 "tree_subspace": lambda: Condenser(steps=10, schema=bc.schema, subspace=8, random_state=9).fit(X, y),
 "cox_schema": lambda: Condenser("cox", rows=30, steps=15, schema=g.schema, random_state=10).fit(g.frame, duration_col=g.schema.time.name, event_col=g.schema.event),
 "cox_schemaless": lambda: Condenser("cox", rows=30, steps=15, random_state=11).fit(g.frame, duration_col=g.schema.time.name, event_col=g.schema.event),
 "host_cox": lambda: Condenser("cox", rows=20, steps=3, schema=g.schema, backend="host", random_state=14).fit(g.frame, duration_col=g.schema.time.name, event_col=g.schema.event),
 "host_select_soft": lambda: Condenser("logistic", steps=3, schema=bc.schema, backend="host", select_features=4, soft_labels=True, random_state=15).fit(X, y),
 "cox_lung_soft": lambda: Condenser("cox", rows=20, steps=10, schema=lung.schema, epsilon=4, random_state=12).fit(lung.frame, duration_col=lung.schema.time.name, event_col=lung.schema.event),
}
only = sys.argv[2:] or list(cases)
res = {}
for name in only:
    c = cases[name]()
    s = c.synthetic_
    s.to_csv(f"{out}/{name}.csv", index=False, float_format="%.17g")
    res[name] = {"sha": hashlib.sha256(s.to_csv(index=False, float_format="%.17g").encode()).hexdigest()[:16],
                 "epsilon": c.epsilon_, "sigma": c.noise_multiplier_, "n_hat": c.record_count_}
    print(name, res[name], flush=True)
json.dump(res, open(f"{out}/summary.json", "w"), indent=1)
