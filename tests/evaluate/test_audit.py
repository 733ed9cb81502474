"""zodc.evaluate.audit: the one-run lower bound, the canary audit of the step mechanism, the MIA, the CLI."""

import argparse
import json
import math
import os

import numpy as np
import pytest
from scipy import stats

from zodc.errors import ConfigError
from zodc.evaluate import audit


# ----------------------------------------------------------------------------- the bound


def test_p_value_without_delta_is_the_binomial_tail():
    # delta = 0: Theorem 3.1's P[Binomial(r, e^eps / (1 + e^eps)) >= v].
    for r, v, eps in [(100, 70, 0.5), (50, 50, 2.0), (1000, 520, 0.1)]:
        q = math.exp(eps) / (1 + math.exp(eps))
        assert audit.p_value(1000, r, v, eps, 0.0) == pytest.approx(stats.binom.sf(v - 1, r, q), rel=1e-12)


def test_p_value_delta_term_matches_the_papers_loop():
    m, r, v, eps, delta = 2000, 300, 260, 1.5, 1e-5
    q = 1 / (1 + math.exp(-eps))
    alpha, running = 0.0, 0.0
    for i in range(1, v + 1):  # the appendix's loop, written out
        running += stats.binom.pmf(v - i, r, q)
        alpha = max(alpha, running / i)
    expected = stats.binom.sf(v - 1, r, q) + 2 * m * delta * alpha
    assert audit.p_value(m, r, v, eps, delta) == pytest.approx(expected, rel=1e-10)


def test_all_correct_gives_a_positive_bound_growing_with_the_guesses():
    bounds = [audit.epsilon_lower_bound(10_000, r, r, 1e-5, 0.95) for r in (20, 100, 1000, 5000)]
    assert bounds[0] > 0
    assert all(a < b for a, b in zip(bounds, bounds[1:]))
    # Without delta, all r right: (e^eps / (1 + e^eps))^r = 0.05 exactly at the bound.
    eps = audit.epsilon_lower_bound(10_000, 100, 100, 0.0, 0.95)
    assert (1 / (1 + math.exp(-eps))) ** 100 == pytest.approx(0.05, rel=1e-4)


def test_random_guesses_give_bound_zero():
    rng = np.random.default_rng(0)
    for _ in range(5):
        r = 1000
        correct = int(rng.binomial(r, 0.5))
        assert audit.epsilon_lower_bound(2000, r, correct, 1e-5, 0.95) == 0.0
    assert audit.epsilon_lower_bound(100, 0, 0, 1e-5) == 0.0


def test_the_bound_is_rejected_just_below_and_not_above():
    m, r, v, delta = 5000, 600, 560, 1e-5
    eps = audit.epsilon_lower_bound(m, r, v, delta, 0.95)
    assert eps > 0
    assert audit.p_value(m, r, v, eps, delta) < 0.05 <= audit.p_value(m, r, v, eps + 1e-4, delta)


def test_bad_counts_raise():
    with pytest.raises(ConfigError):
        audit.p_value(10, 5, 6, 1.0, 1e-5)
    with pytest.raises(ConfigError):
        audit.epsilon_lower_bound(10, 5, 5, 1e-5, confidence=1.0)


def test_guess_grid():
    assert audit.guess_grid(1000) == [500, 250, 125, 62, 31]
    assert audit.guess_grid(10) == [5]


# ----------------------------------------------------------------------------- the canary audit


def test_step_noisy_sums_is_the_gaussian_mechanism_on_the_clipped_sum():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(6, 4)).astype(np.float32) * 3
    inclusion = np.array([1, 0, 1, 1, 0, 1], bool)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    clipped = values * np.minimum(1.0, 1.0 / norms)
    exact = clipped[inclusion].sum(0)
    quiet = audit.step_noisy_sums(values, inclusion, 1.0, 0.0, 3, 1.0, seed=0)
    assert quiet.shape == (3, 4)
    np.testing.assert_allclose(quiet, np.tile(exact, (3, 1)), atol=5e-3)  # the grid: 2^-10 C per record
    noisy = audit.step_noisy_sums(values, inclusion, 1.0, 2.0, 4000, 1.0, seed=0)
    assert np.std(noisy - exact, axis=0) == pytest.approx(np.full(4, 2.0), rel=0.05)
    assert np.mean(noisy - exact) == pytest.approx(0.0, abs=0.05)


def test_canary_audit_at_eps8_has_power_and_finds_no_violation():
    result = audit.canary_audit(8.0, 1e-5, canaries=1000, steps=20, seed=0)
    assert result["epsilon_claimed"] <= 8.0
    assert result["epsilon_claimed"] == pytest.approx(8.0, rel=1e-3)
    assert 0 < result["epsilon_lower_bound"] <= result["epsilon_claimed"]
    assert result["violation"] is False
    assert result["noise_multiplier_used"] == result["noise_multiplier"] > 0
    assert result["correct"] <= result["guesses"] <= 1000
    assert result["epsilon_lower_bound"] <= result["max_certifiable"]
    # 1000 canaries at delta 1e-5 cannot certify epsilon 8 even with every guess right.
    assert result["max_certifiable"] < 8 and result["can_detect_violation"] is False


def test_canary_audit_flags_a_mechanism_without_noise():
    result = audit.canary_audit(1.0, 1e-5, canaries=1000, steps=20, seed=0, no_noise=True)
    assert result["noise_multiplier_used"] == 0.0
    assert result["violation"] is True and result["can_detect_violation"] is True
    assert result["epsilon_lower_bound"] > 3 * result["epsilon_claimed"]
    best = max(result["guess_grid"], key=lambda row: row["epsilon_lower_bound"])
    assert best["correct"] == best["guesses"]  # every guess right


def test_canary_audit_with_poisson_sampled_canaries():
    result = audit.canary_audit(8.0, 1e-5, canaries=400, steps=10, sampling_probability=0.5, guesses=50, seed=2)
    assert result["guesses"] == 100 and result["bonferroni_tests"] == 1
    assert 0 <= result["epsilon_lower_bound"] <= result["epsilon_claimed"]
    assert "PoissonSampledEvent(0.5" in result["claim"]


def test_canary_audit_is_seeded():
    a = audit.canary_audit(4.0, canaries=200, steps=5, seed=3)
    b = audit.canary_audit(4.0, canaries=200, steps=5, seed=3)
    assert a["guess_grid"] == b["guess_grid"]


def test_canary_audit_rejects_bad_arguments():
    with pytest.raises(ConfigError):
        audit.canary_audit(math.inf)
    with pytest.raises(ConfigError):
        audit.canary_audit(1.0, canaries=100, steps=2, guesses=60)


# ----------------------------------------------------------------------------- membership inference and CLI


def test_mia_auc_on_a_tiny_condensation():
    result = audit.membership_inference("breast_cancer", 8.0, seeds=(0,), steps=5)
    assert 0.0 <= result["mia_auc"] <= 1.0
    assert 0.0 <= result["mia_auc_real_sample"] <= 1.0
    assert len(result["mia_auc_per_seed"]) == 1
    assert result["mia_members"] + result["mia_nonmembers"] == 569


def test_dcr_scores_prefer_the_closest_row_of_the_own_class():
    records = np.array([[0.0, 0.0], [1.0, 1.0]])
    synthetic = np.array([[0.1, 0.0], [1.0, 1.0]])
    scores = audit._dcr_scores(records, np.array([1, 1]), synthetic, np.array([0, 1]), same_class=True)
    np.testing.assert_allclose(scores, [-math.sqrt(2), 0.0])
    scores = audit._dcr_scores(records, np.array([1, 1]), synthetic, np.array([0, 1]), same_class=False)
    np.testing.assert_allclose(scores, [-0.1, 0.0])


def _parser():
    parser = argparse.ArgumentParser(prog="zodc")
    audit.add_audit_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_writes_the_json_atomically(tmp_path):
    out = tmp_path / "audit.json"
    args = _parser().parse_args(["audit", "--canaries", "400", "--steps", "5", "--mia-seeds", "1",
                                 "--mia-steps", "5", "--seed", "1", "--out", str(out)])
    assert args.command == "audit" and args.epsilon == 8.0 and args.delta == 1e-5 and args.confidence == 0.95
    result = audit.audit_command(args)
    written = json.loads(out.read_text())
    for key in ("epsilon_claimed", "epsilon_lower_bound", "confidence", "method", "mia_auc", "dataset", "epsilon",
                "delta", "canaries", "steps", "seed", "noise_multiplier", "certifies", "does_not_certify",
                "violation", "mia_auc_per_seed"):
        assert key in written, key
    assert written["epsilon_lower_bound"] == result["epsilon_lower_bound"]
    assert written["canaries"] == 400 and written["steps"] == 5 and written["seed"] == 1
    assert 0 <= written["mia_auc"] <= 1
    assert [p for p in os.listdir(tmp_path) if p != "audit.json"] == []  # no temporary left behind


def test_cli_no_noise_flags_a_violation(tmp_path):
    out = tmp_path / "broken.json"
    args = _parser().parse_args(["audit", "--epsilon", "1", "--canaries", "600", "--steps", "5", "--no-noise",
                                 "--mia-seeds", "0", "--out", str(out)])
    result = audit.audit_command(args)
    assert result["violation"] is True and result["mia_auc"] is None
    assert json.loads(out.read_text())["certifies"].startswith("VIOLATION")


def test_cli_refuses_a_missing_folder(tmp_path):
    args = _parser().parse_args(["audit", "--mia-seeds", "0", "--out", str(tmp_path / "no" / "a.json")])
    with pytest.raises(ConfigError):
        audit.audit_command(args)
