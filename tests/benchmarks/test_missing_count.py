"""Smoke test of benchmarks/missing_count.py: the holed tables, one seed of both rules with the
paired summary, and the module's rule restored after the run."""

import numpy as np

from zodc.data import dp_schema


def test_holes_fall_where_asked():
    from benchmarks import missing_count

    schema, raw = missing_count.holed("nwtco", 0.1)
    features = [c for c in raw.columns if c != schema.target][:3]
    assert all(0.07 < raw[c].isna().mean() < 0.13 for c in features)
    assert raw.drop(columns=features).isna().sum().sum() == 0
    _, informative = missing_count.holed("nwtco", 0.1, informative=True)
    relapse = (informative[schema.target] == sorted(informative[schema.target].unique())[-1]).to_numpy()
    holes = informative[features[0]].isna().to_numpy()
    assert not holes[~relapse].any() and 0.07 < holes.mean() < 0.13
    assert np.array_equal(missing_count.holed("nwtco", 0.1)[1].isna(), raw.isna())  # a fixed generator


def test_one_seed_gives_the_paired_summary_and_restores_the_rule():
    from benchmarks import missing_count

    summary = missing_count.run("kidney_transplant", seeds=1, holes=0.1,
                                extra=("--steps", "4", "--num-directions", "4", "--backend", "host"))
    assert dp_schema.COMBINE_MISSING is True
    rules = summary["rules"]
    assert summary["metric"] == "c_index" and set(rules) == {"refine", "combined"}
    assert rules["refine"]["paired_difference"] == 0.0
    assert abs(rules["combined"]["paired_difference"]
               - (rules["combined"]["c_index_mean"] - rules["refine"]["c_index_mean"])) <= 2e-4
    assert all(0 <= rule["columns_marked_missing_mean"] <= 3 for rule in rules.values())
