"""Private evolution by nearest-neighbour voting (benchmarks/private_evolution.py): a valid table, the
budget checked against dp-accounting, and neighbouring tables that move one vote by one."""

import logging
import math

import numpy as np
import pytest

from benchmarks import private_evolution as pe
from benchmarks.baselines import _encoded
from tests.benchmarks.test_baselines import _check_valid
from zodc.data.datasets import load_dataset
from zodc.errors import ConfigError

DELTA = 1e-5


@pytest.fixture(scope="module")
def diabetes():
    return load_dataset("diabetes_progression")


def _oracle_epsilon(noise_multiplier: float, iterations: int, extra=()) -> float:
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    logging.disable(logging.WARNING)
    try:
        accountant = rdp_privacy_accountant.RdpAccountant()
        accountant.compose(dp_event.SelfComposedDpEvent(dp_event.GaussianDpEvent(noise_multiplier), iterations))
        for sigma in extra:
            accountant.compose(dp_event.GaussianDpEvent(sigma))
        return accountant.get_epsilon(DELTA)
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("init", ["uniform", "dp_gaussian"])
def test_valid_table_and_budget_checked_against_dp_accounting(diabetes, init):
    result = pe.private_evolution(diabetes.frame, diabetes.schema, 4, epsilon=1.0, delta=DELTA, iterations=3,
                                  init=init, random_state=0)
    _check_valid(result.table, diabetes.schema, rows_per_class=4)
    assert result.private and result.epsilon <= 1.0 * (1 + 1e-9)
    assert result.epsilon == pytest.approx(1.0, rel=2e-3)             # calibrated to the target, not below it
    z = result.details["noise_multiplier"]
    names = [entry.name for entry in result.ledger.entries]
    if init == "uniform":
        assert names == ["pe_votes"]
        assert _oracle_epsilon(z, 3) == pytest.approx(result.epsilon, rel=1e-6)
    else:
        assert names == ["pe_start_counts", "pe_start_sums", "pe_start_squares", "pe_votes"]
        start = [entry.event.noise_multiplier for entry in result.ledger.entries[:3]]
        assert _oracle_epsilon(z, 3, start) == pytest.approx(result.epsilon, rel=1e-6)
        assert _oracle_epsilon(z, 3, start) <= 1.0 * (1 + 1e-9)


def test_seeded_runs_repeat_and_seeds_differ(diabetes):
    run = lambda seed: pe.private_evolution(diabetes.frame, diabetes.schema, 3, epsilon=1.0, iterations=2,
                                            random_state=seed).table
    assert run(5).equals(run(5))
    assert not run(5).equals(run(6))


def test_one_record_moves_one_vote_by_one(diabetes):
    """Neighbouring tables D and D' (one record removed): for the same candidates, the vote histogram of
    every class differs in exactly one count, by exactly 1 (the L2 sensitivity the noise is calibrated
    to)."""
    encoder, X, y = _encoded(diabetes.frame, diabetes.schema)
    rng = np.random.default_rng(0)
    encoder_blocks = encoder.feature_blocks
    for trial in range(20):
        removed = int(rng.integers(X.shape[0]))
        keep = np.arange(X.shape[0]) != removed
        candidates = {c: pe._random_rows(encoder_blocks, 12, X.shape[1], np.random.default_rng(trial))
                      for c in range(diabetes.schema.n_classes)}
        full = np.concatenate([pe._votes(X[y == c], candidates[c]) for c in candidates])
        neighbour = np.concatenate([pe._votes(X[keep & (y == c)], candidates[c]) for c in candidates])
        difference = full - neighbour
        assert np.count_nonzero(difference) == 1 and difference.sum() == 1.0
        assert np.linalg.norm(difference) == 1.0


def test_neighbouring_tables_same_seed_release_from_the_same_public_draws(diabetes, monkeypatch):
    """Run the whole mechanism on D and D' with the same seed, recording each vote histogram before its
    noise: the first population (public draws) is the same for both, and the first histograms differ
    in one count by 1."""
    seen = {"D": [], "D'": []}
    original = pe._votes

    def recording(label):
        def votes(X, candidates, chunk=4096):
            counts = original(X, candidates, chunk)
            seen[label].append((candidates.copy(), counts))
            return counts
        return votes

    frame = diabetes.frame
    for label, table in (("D", frame), ("D'", frame.drop(index=frame.index[17]))):
        monkeypatch.setattr(pe, "_votes", recording(label))
        pe.private_evolution(table, diabetes.schema, 3, epsilon=1.0, iterations=2, random_state=11)
    first_d = [counts for _, counts in seen["D"][:2]]
    first_n = [counts for _, counts in seen["D'"][:2]]
    for (cand_d, _), (cand_n, _) in zip(seen["D"][:2], seen["D'"][:2]):
        assert np.array_equal(cand_d, cand_n)                          # public draws: identical
    difference = np.concatenate(first_d) - np.concatenate(first_n)
    assert np.count_nonzero(difference) == 1 and difference.sum() == 1.0


def test_without_noise_the_votes_find_the_classes(diabetes):
    """epsilon = inf: no noise, no ledger; the released rows are the most-voted candidates."""
    result = pe.private_evolution(diabetes.frame, diabetes.schema, 5, epsilon=math.inf, iterations=4,
                                  population=40, random_state=0)
    assert result.ledger is None and result.epsilon == math.inf and result.details["noise_multiplier"] == 0.0
    _check_valid(result.table, diabetes.schema, rows_per_class=5)


@pytest.mark.parametrize("bad, match", [({"iterations": 0}, "iterations"), ({"population": 2}, "population"),
                                        ({"final": "best"}, "final"), ({"init": "kmeans"}, "init")])
def test_bad_options_are_named(diabetes, bad, match):
    with pytest.raises(ConfigError, match=match):
        pe.private_evolution(diabetes.frame, diabetes.schema, 3, epsilon=1.0, random_state=0, **bad)


def test_the_dp_gaussian_start_moves_by_at_most_its_sensitivities(diabetes):
    """init="dp_gaussian" reads the records through benchmarks.baselines._dp_group_moments. D and D'
    (one record removed): without noise, one class count moves by exactly 1, the class sums and the
    sums of squares by at most sqrt(d) in L2 (the sensitivities the noise is calibrated to); with
    noise, the same mechanisms with the same noise are recorded for both (nothing structural moves)."""
    from benchmarks.baselines import _dp_group_moments

    _, X, y = _encoded(diabetes.frame, diabetes.schema)
    K, d = diabetes.schema.n_classes, X.shape[1]
    names = ("counts", "sums", "squares")
    keep = np.arange(X.shape[0]) != 5

    def exact(rows):
        onehot = np.eye(K)[y[rows]]
        return onehot.sum(axis=0), onehot.T @ X[rows], onehot.T @ X[rows] ** 2

    (count_d, sum_d, sq_d), (count_n, sum_n, sq_n) = exact(np.arange(X.shape[0])), exact(keep)
    assert np.abs(count_d - count_n).sum() == 1.0
    assert np.linalg.norm(sum_d - sum_n) <= np.sqrt(d) + 1e-9
    assert np.linalg.norm(sq_d - sq_n) <= np.sqrt(d) + 1e-9
    # The exact counts are what the mechanism adds its noise to: at epsilon = inf it returns them.
    moments = _dp_group_moments(X, y, K, math.inf, DELTA, "diagonal", (0.1, 0.45, 0.45), 1e-3,
                                np.random.default_rng(0), names, "class")
    assert np.array_equal(moments.counts, count_d)
    assert np.allclose(moments.means, np.clip(sum_d / count_d[:, None], -1.0, 1.0))
    ledgers = [_dp_group_moments(X[rows], y[rows], K, 1.0, DELTA, "diagonal", (0.1, 0.45, 0.45), 1e-3,
                                 np.random.default_rng(0), names, "class")
               for rows in (np.arange(X.shape[0]), keep)]
    assert ledgers[0].details == ledgers[1].details
    assert [(e.name, e.event) for e in ledgers[0].ledger.entries] == [(e.name, e.event) for e in ledgers[1].ledger.entries]
