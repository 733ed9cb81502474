"""Smoke test of benchmarks/refine_trim.py: one seed of both rules, paired, for the bounds and for a
condensation, and the module's rule restored after each."""

from zodc.data import dp_schema


def test_bounds_measure_both_rules_on_the_same_noise_and_restore_the_rule():
    from benchmarks import refine_trim

    summary = refine_trim.bounds(["kidney_transplant"], seeds=2)
    assert dp_schema.REFINE_TRIM == "cumulative"
    rules = summary["cohorts"]["kidney_transplant"]
    assert set(rules) == {"before", "cumulative"}
    # The same noise: the same columns are estimated under both rules (time and age, each key).
    assert rules["before"]["columns"] == rules["cumulative"]["columns"] == 4
    assert all(0.0 <= rule["clipped_mean"] <= 1.0 for rule in rules.values())


def test_one_seed_gives_the_paired_summary_and_restores_the_rule():
    from benchmarks import refine_trim

    summary = refine_trim.run("kidney_transplant", seeds=1,
                              extra=("--steps", "4", "--num-directions", "4", "--backend", "host"))
    assert dp_schema.REFINE_TRIM == "cumulative"
    rules = summary["rules"]
    assert summary["metric"] == "c_index" and set(rules) == {"before", "cumulative"}
    assert rules["before"]["paired_difference"] == 0.0
    assert abs(rules["cumulative"]["paired_difference"]
               - (rules["cumulative"]["c_index_mean"] - rules["before"]["c_index_mean"])) <= 2e-4
