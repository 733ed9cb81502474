"""Smoke test of benchmarks/whole_numbers.py: one seed of both rules with the paired summary, and the
module's rule restored after the run."""

from zodc.data import dp_schema


def test_one_seed_gives_the_paired_summary_and_restores_the_rule():
    from benchmarks import whole_numbers

    summary = whole_numbers.run("kidney_transplant", seeds=1,
                                extra=("--steps", "4", "--num-directions", "4", "--backend", "host"))
    assert dp_schema.ESTIMATE_WHOLE is True
    rules = summary["rules"]
    assert summary["metric"] == "c_index" and set(rules) == {"before", "counted"}
    assert rules["before"]["paired_difference"] == 0.0 and rules["before"]["columns_marked_integer_mean"] == 0
    # kidney_transplant's CSV: whole-number ages and days; at seed 0 the counts mark at least one.
    assert 1 <= rules["counted"]["columns_marked_integer_mean"] <= 2
    assert abs(rules["counted"]["paired_difference"]
               - (rules["counted"]["c_index_mean"] - rules["before"]["c_index_mean"])) <= 2e-4
