"""Smoke test of benchmarks/pld_calibration.py: one seed of both calibrations, the paired summary,
and the module's rule restored after the run."""

from zodc import budget


def test_one_seed_gives_the_paired_summary_and_restores_the_rule():
    from benchmarks import pld_calibration

    summary = pld_calibration.run("breast_cancer", seeds=1,
                                  extra=("--steps", "4", "--num-directions", "4", "--backend", "host"))
    assert budget.PLD_CALIBRATION is True
    rdp, pld = summary["rules"]["rdp"], summary["rules"]["pld"]
    assert summary["metric"] == "auroc" and rdp["paired_difference"] == 0.0
    assert pld["sigma_mean"] < rdp["sigma_mean"]  # less noise for the same target
    assert rdp["epsilon_max"] <= 1.0 and pld["epsilon_max"] <= 1.0
    assert abs(pld["paired_difference"] - (pld["auroc_mean"] - rdp["auroc_mean"])) <= 2e-4
