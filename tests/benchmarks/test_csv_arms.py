"""Smoke test of benchmarks/csv_arms.py: two short seeds of two arms on the derived three-class
nwtco table, read back as the benchmark records them."""


def test_two_arms_are_paired_on_each_seed_and_summarised():
    from benchmarks import cohorts, csv_arms

    table = cohorts.nwtco_three_classes()
    assert sorted(table["outcome"].unique()) == ["none", "relapse", "relapse_late_stage"]
    assert "stage" in table.columns and "relapse" not in table.columns
    result = csv_arms.run(table, ["--target", "outcome"], [[], ["--learning-rate", "0.5"]], range(1, 3),
                          base=["--steps", "4", "--num-directions", "4"])
    assert [r["seed"] for r in result["rows"]] == [1, 2]
    assert all(0.0 <= r[key] <= 1.0 for r in result["rows"] for key in ("arm0", "arm1", "random_subset"))
    assert any(r["arm0"] != r["arm1"] for r in result["rows"])  # the arm's option reached the run
    first, second = result["summary"]
    assert first["minus_arm0"] == {"mean": 0.0, "se": 0.0}
    assert second["arm"] == ["--learning-rate", "0.5"] and second["minus_arm0"]["se"] is not None
