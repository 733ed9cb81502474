"""Smoke test of benchmarks/time_weight.py: one seed, two weights, the paired summary; and the
module's weight is restored after the run."""

from zodc.data import dp_schema


def test_one_seed_gives_the_paired_summary_and_restores_the_weight():
    from benchmarks import time_weight

    default = dp_schema.TIME_WEIGHT
    summary = time_weight.run("kidney_transplant", [1.0, default], seeds=1,
                              extra=("--steps", "4", "--num-directions", "4", "--backend", "host"))
    assert dp_schema.TIME_WEIGHT == default
    assert summary["cohort"] == "kidney_transplant" and summary["seeds"] == 1
    first, second = summary["weights"]["1.0"], summary["weights"][str(default)]
    assert first["paired_difference"] == 0.0 and first["refused"] in (0, 1)
    assert 0.0 <= second["c_index_mean"] <= 1.0
    assert abs(second["paired_difference"] - (second["c_index_mean"] - first["c_index_mean"])) <= 2e-4
