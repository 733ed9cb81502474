"""The steps' sampling probability comes from a DP count: every probability the count can give is
calibrated under one Gaussian trade-off function fixed before the count (zodc.privacy.calibration.
calibrate_dominated_steps), so the adaptive composition theorem of f-DP applies. Checked against
dp-accounting's PLD as the oracle, at a finer discretisation than the calibration's.

A release of several parts (a private search's candidates, zodc.budget.SharedBudget) is held at one
RDP order fixed before the count instead (a Rényi filter, zodc.privacy.calibration.filter_order):
checked against dp-accounting's RDP accountant."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from dp_accounting.privacy_accountant import NeighboringRelation
from scipy.stats import norm

from dp_accounting import dp_event
from dp_accounting.rdp import rdp_privacy_accountant as rdp_reference

from zodc import Condenser
from zodc.budget import Budget, SharedBudget
from zodc.privacy.accounting import DEFAULT_ORDERS
from zodc.privacy.calibration import (DOMINATION_SLACK, WINDOW_START, WINDOW_TAIL, adaptive_step_rules,
                                      calibrate_dominated_steps, calibrate_noise_multiplier,
                                      calibrate_noise_multiplier_pld, count_half_width, filter_order, gaussian_delta)
from zodc.privacy.events import (AdditiveDeltaEvent, ExponentialMechanismEvent, GaussianEvent, PoissonSampledEvent,
                                 SelfComposedEvent)

EPSILON, DELTA, STEPS = 1.0, 1e-5, 300
BASE = (GaussianEvent(11.872), AdditiveDeltaEvent(1e-6))  # a schema's mechanism and its threshold delta


def _profile(sigma, p, grid, steps=STEPS, interval=1e-4):
    pld = pld_lib.from_gaussian_mechanism(standard_deviation=sigma, sampling_prob=p, value_discretization_interval=interval,
                                          neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE)
    return np.asarray(pld.self_compose(steps).get_delta_for_epsilon(list(grid)))


@pytest.fixture(scope="module")
def branches():
    out = {}
    for p in (0.25, 0.5, 1.0):
        own = calibrate_noise_multiplier_pld(
            EPSILON, DELTA, lambda s: SelfComposedEvent(PoissonSampledEvent(p, GaussianEvent(s)), STEPS),
            base_events=BASE)
        out[p] = (own, *calibrate_dominated_steps(EPSILON, DELTA, STEPS, p, base_events=BASE, start=own))
    return out


def test_every_branch_lies_under_one_reference_gaussian_fixed_before_the_count(branches):
    # The reference is the same for every sampling probability (it depends on the target and the
    # mechanisms before the steps only); each branch's whole profile, both directions, lies under it
    # plus the slack, and a 1 % smaller sigma does not: the calibration is the smallest, about 1 % above
    # the branch's own calibration.
    grid = np.linspace(0.0, 6.0, 601)
    references = {reference for _, _, reference, _ in branches.values()}
    assert len(references) == 1
    reference = references.pop()
    bound = np.array([gaussian_delta(float(e), reference) for e in grid]) + DOMINATION_SLACK * DELTA
    for p, (own, sigma, _, slack) in branches.items():
        assert slack == DOMINATION_SLACK * DELTA
        assert np.all(_profile(sigma, p, grid) <= bound), p
        assert np.any(_profile(sigma / 1.01, p, grid) > bound), p
        assert 1.0 < sigma / own < 1.02, (p, sigma / own)


def test_the_adaptive_composition_meets_delta_whatever_branch_each_output_picks(branches):
    # The adaptive bound: E over the first mechanism's privacy loss L of the largest branch profile at
    # epsilon - L (the hockey-stick divergence of the joint output, with the branch chosen from the
    # first output at will), plus the additive deltas, is at most delta. The first mechanism here is
    # the schema's Gaussian (its loss L ~ N(mu^2/2, mu^2), mu = 1/sigma).
    mu = 1.0 / BASE[0].noise_multiplier
    losses = np.linspace(mu * mu / 2 - 10 * mu, mu * mu / 2 + 10 * mu, 2001)
    weights = norm.pdf(losses, mu * mu / 2, mu)
    weights /= weights.sum()
    epsilons = np.sort(EPSILON - losses)
    envelope = np.max([_profile(sigma, p, epsilons) for p, (_, sigma, _, _) in branches.items()], axis=0)
    adaptive = float(np.dot(weights, envelope[::-1])) + BASE[1].delta
    assert adaptive <= DELTA * (1 - DOMINATION_SLACK), adaptive


def _neighbour_fits(public_schema: bool, rows: int, seed: int, steps: int) -> list:
    """Fits on D (``rows`` records, two features, a binary target) and D' = D + one odd record, with
    a public schema or none: the two releases."""
    from zodc.data.schema import CategoricalColumn, NumericColumn, Schema

    schema = Schema(name="public", task="classification", target="y", source="test: public by construction",
                    columns=(NumericColumn("x", -4.0, 4.0), NumericColumn("z", -4.0, 4.0),
                             CategoricalColumn("y", ("no", "yes")))) if public_schema else None
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(0, 1, rows).round(2), "z": rng.normal(0, 1, rows).round(2)})
    frame["y"] = np.where(frame["x"] + rng.normal(0, 1, rows) > 0, "yes", "no")
    odd = pd.DataFrame([{"x": 40.0, "z": -40.0, "y": "yes"}])
    fits = []
    for table in (frame, pd.concat([frame, odd], ignore_index=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(Condenser("tree", epsilon=1.0, steps=steps, num_directions=4, backend="host", batch_size=64,
                                  schema=schema, random_state=2).fit(table[["x", "z"]], table["y"]))
    first, second = fits
    assert first.sampling_probability_ != second.sampling_probability_
    assert first.noise_multiplier_ != second.noise_multiplier_
    for fitted in fits:  # what every release holds: the slack and the tail, and its guarantee through them
        reference = fitted.steps_reference_
        assert reference["slack"] == DOMINATION_SLACK * 1e-5 and reference["tail"] == WINDOW_TAIL * 1e-5
        assert [e.event for e in fitted.ledger_.entries if e.name == "adaptive_steps"] == [
            AdditiveDeltaEvent(reference["slack"] + reference["tail"])]
        assert fitted.ledger_.bound(1e-5) <= fitted.epsilon_ == max(fitted.ledger_.bound(1e-5), reference["epsilon"])
        assert fitted.epsilon_ <= 1.0
    return fits


@pytest.mark.parametrize("public_schema", [False, True])
def test_neighbours_with_different_counts_share_the_reference_and_stay_within_the_target(public_schema):
    # D and D' = D + one record: the DP counts (the schema's, or with a public schema the record
    # count's), so p and the steps' sigma, differ; the reference Gaussian and the slack in the ledger
    # do not, and both releases state the guarantee through it.
    fits = _neighbour_fits(public_schema, rows=400, seed=8, steps=20)
    for fitted in fits:
        reference = fitted.steps_reference_
        assert reference["noise_multiplier"] == fits[0].steps_reference_["noise_multiplier"]
        assert reference["rules"] == ["gaussian"]  # 400 records: far below the window rule's start
        assert math.isclose(fitted.report()["epsilon"], fitted.epsilon_, rel_tol=0.02)


@pytest.mark.parametrize("public_schema", [False, True])
def test_neighbours_in_a_large_cohort_are_held_by_the_window_rule(public_schema):
    # 20,000 records (D) and D' = D + one odd record: past the window rule's start for either count
    # (a DP schema's role counts, or the record count). Both release; the window's half-width is the
    # same for both (public: the count's noise and the public classes), the steps' p and noise
    # differ, each calibrated at a p above its own.
    fits = _neighbour_fits(public_schema, rows=20_000, seed=9, steps=10)
    for fitted in fits:
        reference = fitted.steps_reference_
        assert reference["rules"] == ["window"] and "noise_multiplier" not in reference
        assert reference["half_width"] == fits[0].steps_reference_["half_width"]
        assert reference["sampling_probability"] > fitted.sampling_probability_


@pytest.mark.parametrize("public_schema", [False, True])
def test_neighbours_in_the_band_are_held_by_both_rules(public_schema):
    # D with a record count in the middle of the band [50 h, 52 h), D' = D + one record: both counts
    # land in the band, both releases hold both rules (the noise the larger), with the same reference
    # Gaussian and half-width. h from public settings: the count's noise and the public classes.
    from zodc.budget import THRESHOLD_DELTA_SHARE
    from zodc.data.dp_schema import SHARE_ROLE, auto_share, count_share, schema_noise_multiplier

    if public_schema:  # the schema has no class proportions: the count shares its budget with them
        spread = (Budget(1.0, 1e-5).share_noise(count_share("auto"), 2), 1)
    else:
        noise = schema_noise_multiplier(1.0, 1e-5, THRESHOLD_DELTA_SHARE * 1e-5, auto_share(2, False))
        spread = (noise / math.sqrt(SHARE_ROLE), 2)
    half_width = count_half_width(*spread, WINDOW_TAIL * 1e-5)
    fits = _neighbour_fits(public_schema, rows=int((WINDOW_START + 1) * half_width), seed=10, steps=10)
    for fitted in fits:
        reference = fitted.steps_reference_
        assert reference["rules"] == ["gaussian", "window"]
        assert reference["half_width"] == pytest.approx(half_width)
        assert reference["noise_multiplier"] == fits[0].steps_reference_["noise_multiplier"]
        assert reference["sampling_probability"] > fitted.sampling_probability_


def _search_part(p: float) -> tuple:
    """The first of two candidates of a search, its steps calibrated through ``SharedBudget`` (the
    search's code path) after a DP count of sigma 11.872, with the choice's exponential mechanism
    reserved: ``(the steps' noise multiplier, the order it was held at)``."""
    shared = SharedBudget(EPSILON, DELTA, prior_events=(ExponentialMechanismEvent(0.1),), copies=2)
    budget = Budget(EPSILON, DELTA, shared)
    budget.add("record_count", GaussianEvent(11.872), "the DP count")
    steps = budget.calibrate(steps=STEPS, num_directions=8, batch_size=256, record_count=256 / p, l2_norm_clip=1.0)
    assert steps.sampling_probability == pytest.approx(p)
    return steps.noise_multiplier, shared.orders[0]


def _oracle_rdp(events, orders):
    accountant = rdp_reference.RdpAccountant(list(orders))
    for event in events:
        accountant.compose(event)
    return accountant._rdp


def test_a_searchs_branches_are_held_at_one_order_and_their_envelope_meets_the_target():
    # Small sampling probabilities (a large cohort), where the steps' RDP curves bend: the candidates
    # calibrated at each branch's own best order (the rule before) leave the envelope of the branches
    # (what the adaptive composition has to bound, the branch picked from the count) above the target;
    # held at one order fixed before the count, it meets it. dp-accounting's RDP accountant is the oracle.
    ps = (0.005, 0.01, 0.02)
    order = filter_order(EPSILON, DELTA)
    parts = {p: _search_part(p) for p in ps}
    assert {held for _, held in parts.values()} == {order}  # one order, whatever the count

    def envelope(sigmas, orders):
        # The count, and the choice's exponential mechanism as zCDP (epsilon^2 / 8, as the ledger has it).
        base = _oracle_rdp([dp_event.GaussianDpEvent(11.872), dp_event.ZCDpEvent(0.1**2 / 8)], orders)
        steps = [_oracle_rdp([dp_event.SelfComposedDpEvent(dp_event.PoissonSampledDpEvent(
            p, dp_event.GaussianDpEvent(sigma)), STEPS)], orders) for p, sigma in sigmas.items()]
        return base + 2 * np.max(steps, axis=0)  # two alike candidates, each its branch's worst

    held = envelope({p: sigma for p, (sigma, _) in parts.items()}, [order])
    assert rdp_reference.compute_epsilon([order], held, DELTA)[0] <= EPSILON * (1 + 1e-9)
    # Each branch alone at its own best order (the rule before): the envelope exceeds the target.
    own = {p: calibrate_noise_multiplier(
        EPSILON, DELTA, lambda s, p=p: SelfComposedEvent(SelfComposedEvent(PoissonSampledEvent(p, GaussianEvent(s)),
                                                                           STEPS), 2),
        base_events=(GaussianEvent(11.872), ExponentialMechanismEvent(0.1))) for p in ps}
    loose = envelope(own, DEFAULT_ORDERS)
    assert rdp_reference.compute_epsilon(list(DEFAULT_ORDERS), loose, DELTA)[0] > 1.05 * EPSILON
    # The price of the fixed order: none at p = 0.02, about a fifth more noise at p = 0.005.
    assert parts[0.02][0] / own[0.02] < 1.01 and 1.1 < parts[0.005][0] / own[0.005] < 1.3


# ------------------------------------------------------------------ the window rule (large cohorts)

@pytest.mark.parametrize("std, terms", [(3.0, 1), (3.0, 2), (2.0, 5)])
def test_the_count_lands_outside_the_window_with_probability_at_most_the_tail(std, terms):
    # The exact law of the sum of `terms` rounded Gaussians (the count's noise, or a DP schema's role
    # counts'): beyond the half-width less the clamp's 1, at most the tail; and the bound is not loose
    # by much (two stds closer in, far more than the tail lies outside).
    tail = 1e-6
    half_width = count_half_width(std, terms, tail)
    support = np.arange(-int(60 * std), int(60 * std) + 1)
    pmf = norm.cdf(support + 0.5, scale=std) - norm.cdf(support - 0.5, scale=std)
    law = pmf
    for _ in range(terms - 1):
        law = np.convolve(law, pmf)
    values = np.arange(len(law)) - len(law) // 2
    assert law[np.abs(values) > half_width - 1].sum() <= tail
    assert law[np.abs(values) > half_width - 1 - 2 * std * math.sqrt(terms)].sum() > 100 * tail


def test_every_window_of_counts_lies_where_one_rule_holds_throughout():
    # The rules switch on the DP count with a band, as wide as a window, in which both hold: whatever
    # the records n, every count in [n - h, n + h] shares one rule, which the proof for that n uses.
    half_width = 97.3
    start = WINDOW_START * half_width
    for n in np.arange(start - 3 * half_width, start + 5 * half_width, 0.5):
        rules = [set(adaptive_step_rules(x, half_width)) for x in np.linspace(n - half_width, n + half_width, 401)]
        assert set.intersection(*rules), n
    assert adaptive_step_rules(start - 1, half_width) == ("gaussian",)
    assert adaptive_step_rules(start + half_width, half_width) == ("gaussian", "window")
    assert adaptive_step_rules(start + 2 * half_width, half_width) == ("window",)


def _held_steps(record_count: float, count_std: float):
    """A single fit's steps after a DP record count of noise ``count_std``: ``(steps, budget)``."""
    budget = Budget(EPSILON, DELTA)
    budget.add("record_count", GaussianEvent(count_std), "the DP count")
    budget.count_spread = (count_std, 1)
    steps = budget.calibrate(steps=STEPS, num_directions=8, batch_size=256, record_count=record_count,
                             l2_norm_clip=1.0)
    return steps, budget


def test_the_window_rule_meets_delta_for_every_count_the_records_can_give():
    # n = 200,000 records: the count n_hat ~ n + N(0, 11.9^2) picks the steps' p = B / n_hat and noise.
    # The adaptive bound, as in the Gaussian rule's test (the hockey-stick divergence of the joint
    # output, each count's own branch), with the window cut into four bins, each held by its worst
    # corner (its largest p and its smallest noise), in both neighbouring directions, plus the chance
    # the count leaves the window: at most delta less the slack. dp-accounting's PLD is the oracle.
    count_std, n = 11.872, 200_000
    half_width = count_half_width(count_std, 1, WINDOW_TAIL * DELTA)
    edges = np.linspace(n - half_width, n + half_width, 5)
    fits = [_held_steps(edge, count_std) for edge in edges]
    assert all(budget.reference["rules"] == ["window"] for _, budget in fits)
    # Far less noise than the reference Gaussian alone would need at this p.
    gaussian = calibrate_dominated_steps(EPSILON, DELTA, STEPS, 256 / n, base_events=(GaussianEvent(count_std),))[0]
    assert fits[2][0].noise_multiplier < 0.9 * gaussian
    adaptive = {}
    for side in (+1, -1):  # D' = D plus one record, or less one
        total = 2 * norm.sf(half_width / count_std)  # the count outside the window
        for low, high, (_, _), (steps_high, _) in zip(edges[:-1], edges[1:], fits[:-1], fits[1:]):
            x = np.linspace(low, high, 401)
            weights = norm.pdf(x, n, count_std) * (x[1] - x[0])
            loss = (-2 * side * (x - n) + 1) / (2 * count_std**2)  # log p_D(x) / p_D'(x)
            order = np.argsort(EPSILON - loss)  # the PLD takes ascending epsilons
            # Three times finer than the calibration's discretisation (1e-3), pessimistic as it is.
            worst = _profile(steps_high.noise_multiplier, 256 / low, (EPSILON - loss)[order], interval=3e-4)
            total += float(np.dot(weights[order], worst))
        adaptive[side] = total
    assert max(adaptive.values()) <= DELTA * (1 - DOMINATION_SLACK), adaptive
    assert min(adaptive.values()) > 0.5 * DELTA  # the bound is not vacuous: the target is spent


def test_a_count_in_the_band_gets_the_larger_noise_of_both_rules():
    count_std = 11.872
    half_width = count_half_width(count_std, 1, WINDOW_TAIL * DELTA)
    steps, budget = _held_steps(WINDOW_START * half_width + half_width, count_std)
    reference = budget.reference
    assert reference["rules"] == ["gaussian", "window"]
    p = steps.sampling_probability
    gaussian = calibrate_dominated_steps(EPSILON, DELTA, STEPS, p, base_events=(
        GaussianEvent(count_std), AdditiveDeltaEvent(WINDOW_TAIL * DELTA)))[0]
    assert steps.noise_multiplier >= gaussian * (1 - 2e-3)  # the Gaussian rule's (to its tolerance)
    assert reference["sampling_probability"] > p  # and the window's, calibrated at a larger p
    budget.account_sampling()
    assert budget.spent() <= EPSILON and budget.spent() == max(budget.ledger.bound(DELTA),
                                                               budget.reference_epsilon())
