"""Smoke test of benchmarks/missing_rate.py: one seed of both rules with the paired summary, and the
module's rule restored after the run."""

from zodc.data import transform


def test_one_seed_gives_the_paired_summary_and_restores_the_rule():
    from benchmarks import missing_rate

    summary = missing_rate.run("kidney_transplant", seeds=1, holes=0.1,
                               extra=("--steps", "4", "--num-directions", "4", "--backend", "host"))
    assert transform.USE_MISSING_RATE is True
    rules = summary["rules"]
    assert summary["metric"] == "c_index" and set(rules) == {"indicator", "rate"}
    assert rules["indicator"]["paired_difference"] == 0.0
    for rule in rules.values():  # a share of empty cells against the real one, when a column is marked
        assert rule["empty_share_gap_mean"] is None or 0.0 <= rule["empty_share_gap_mean"] <= 1.0
