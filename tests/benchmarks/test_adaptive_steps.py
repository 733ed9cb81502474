"""Smoke test of benchmarks/adaptive_steps.py: one count past the window rule's start, one sampling
probability for the search; the rows are consistent with what zodc does."""

import json

from benchmarks import adaptive_steps


def test_one_count_and_one_probability_give_consistent_rows(tmp_path):
    results = adaptive_steps.run(epsilons=(1.0,), counts=(100_000,), probabilities=(0.1,))
    (fit,), (search,) = results["single_fit"], results["search"]
    assert fit["rules"] == ["window"] and fit["half_width"] > 0
    # At 100,000 records the window rule needs less noise than the reference Gaussian, and both more
    # than the branch alone (which the proof does not cover).
    assert fit["sigma_alone"] < fit["sigma_zodc"] < fit["sigma_gaussian_rule"]
    assert search["order"] == results["filter_orders"]["1.0"] and 0.0 <= search["cost"] < 0.01
    json.dumps(results)  # the results file is JSON
