"""Smoke test of benchmarks/preprocessing_share.py: one seed at two shares, with the paired summary."""


def test_one_seed_gives_the_paired_summary_and_the_columns_kept():
    from benchmarks import preprocessing_share

    summary = preprocessing_share.run("breast_cancer", seeds=1, shares=["0.1", "auto"],
                                      extra=("--steps", "2", "--num-directions", "4", "--backend", "host"))
    shares = summary["shares"]
    assert summary["metric"] == "auroc" and list(shares) == ["0.1", "auto"]
    assert shares["0.1"]["paired_difference"] == 0.0
    # breast_cancer's 398 training records and 30 columns: at 10 % the noise hides most columns; the
    # auto share (50 %) shows most of them (seed 0).
    assert shares["0.1"]["features_kept_mean"] is not None and shares["0.1"]["features_kept_mean"] <= 10
    assert shares["auto"]["features_kept_mean"] >= 20
    assert abs(shares["auto"]["paired_difference"]
               - (shares["auto"]["auroc_mean"] - shares["0.1"]["auroc_mean"])) <= 2e-4
