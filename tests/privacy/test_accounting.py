"""Accountant, calibration and ledger, golden-tested against dp_accounting's RdpAccountant."""

import json
import logging
import math
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import gammaln, logsumexp

dp_event = pytest.importorskip("dp_accounting.dp_event")
rdp_reference = pytest.importorskip("dp_accounting.rdp.rdp_privacy_accountant")

from zodc.errors import ConfigError, PrivacyBudgetError  # noqa: E402
from zodc.privacy.accounting import epsilon_bounds  # noqa: E402
from zodc.privacy.events import ExponentialMechanismEvent  # noqa: E402
from zodc.privacy import (  # noqa: E402
    DEFAULT_ORDERS,
    AdditiveDeltaEvent,
    ComposedEvent,
    GaussianEvent,
    Ledger,
    PoissonSampledEvent,
    RdpAccountant,
    SelfComposedEvent,
    calibrate_dpsgd_noise,
    calibrate_noise_multiplier,
    event_to_dict,
    gaussian_noise_for_epsilon,
    pld_epsilon,
    rdp_of_event,
    rdp_poisson_subsampled_gaussian,
    rdp_to_delta,
    rdp_to_epsilon,
)

ORDERS = np.array(DEFAULT_ORDERS)


@pytest.fixture(autouse=True)
def _quiet_reference():
    # dp_accounting logs a warning per non-converging fractional order; the tests check those too.
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def reference_accountant(event, count=1):
    accountant = rdp_reference.RdpAccountant()
    accountant.compose(event, count)
    return accountant


def test_default_orders_are_dp_accountings():
    np.testing.assert_array_equal(ORDERS, np.array(rdp_reference.DEFAULT_RDP_ORDERS, dtype=float))
    assert np.any(ORDERS != np.floor(ORDERS)) and np.any(ORDERS == np.floor(ORDERS))


# p = 1 (closed form), large p where low fractional orders do not converge (both give inf), small p.
@pytest.mark.parametrize("sampling_probability", [1.0, 0.5, 0.05, 1e-3])
@pytest.mark.parametrize("noise_multiplier", [0.8, 2.0, 30.0])
def test_rdp_and_epsilon_match_dp_accounting(sampling_probability, noise_multiplier):
    ours = rdp_poisson_subsampled_gaussian(sampling_probability, noise_multiplier, ORDERS)
    theirs = rdp_reference._compute_rdp_poisson_subsampled_gaussian(sampling_probability, noise_multiplier, ORDERS)
    assert ours.dtype == np.float64
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    finite = np.isfinite(theirs)
    # dp_accounting sums A_alpha ~ 1 + tiny, so its RDP carries ~1e-16 / (alpha - 1) absolute round-off;
    # beyond that the two agree to 1e-6 relative (in practice ~1e-9).
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-6, atol=1e-15)

    for steps in (1, 1000):
        event = SelfComposedEvent(PoissonSampledEvent(sampling_probability, GaussianEvent(noise_multiplier)), steps)
        reference = reference_accountant(
            dp_event.SelfComposedDpEvent(
                dp_event.PoissonSampledDpEvent(sampling_probability, dp_event.GaussianDpEvent(noise_multiplier)), steps
            )
        )
        accountant = RdpAccountant().compose(event)
        for delta in (1e-5, 1e-9):
            epsilon, order = accountant.get_epsilon_and_order(delta)
            expected_epsilon, expected_order = reference.get_epsilon_and_optimal_order(delta)
            assert epsilon == pytest.approx(expected_epsilon, rel=1e-6, abs=1e-12)
            assert order == expected_order
        assert accountant.get_delta(1.0) == pytest.approx(reference.get_delta(1.0), rel=1e-6, abs=1e-300)


def test_fractional_orders_match_dp_accounting_to_float64_rounding_where_the_rdp_is_tiny():
    # At q = 1e-4, sigma = 200 the fractional orders' RDP is ~1e-13: log A_alpha is that small a
    # difference between terms near 1, so a term rounded differently moves it by ~1e-6 relative
    # (the JAX accountant before issue 25 differed by 2e-6). Grouping the terms as dp_accounting
    # does gives its numbers to a few float64 roundings.
    fractional = ORDERS[ORDERS != np.floor(ORDERS)]
    for sampling_probability, noise_multiplier in ((1e-4, 200.0), (1e-6, 0.8)):
        ours = rdp_poisson_subsampled_gaussian(sampling_probability, noise_multiplier, fractional)
        theirs = rdp_reference._compute_rdp_poisson_subsampled_gaussian(sampling_probability, noise_multiplier,
                                                                          fractional)
        assert np.all(np.isfinite(theirs)) and np.max(theirs) < 1e-9
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)


def test_accounting_compiles_no_program():
    # The accountant is NumPy on the host: a fresh (q, sigma), its conversion and a calibration
    # compile nothing (the JAX accountant before issue 25 compiled for ~1 s in every process).
    import jax.monitoring

    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    # Orders of a length and a largest integer order no other test uses: a jitted accountant would
    # compile for them here whatever ran before in this process.
    orders = np.array([1.37, 2.5, 3.75, 77.0, 99.0])
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        rdp = rdp_poisson_subsampled_gaussian(0.0123457, 1.234567, orders)
        rdp_to_epsilon(rdp * 100, orders, 1e-5)
        rdp_to_delta(rdp * 100, orders, 1.0)
        RdpAccountant(orders).compose(PoissonSampledEvent(0.0123457, GaussianEvent(0.987)), 321).get_epsilon(1e-5)
        calibrate_dpsgd_noise(0.987, 1e-5, 0.0123457, 321)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []


def test_conversions_match_dp_accounting_on_random_curves():
    rng = np.random.default_rng(0)
    for trial in range(20):
        rdp = rng.lognormal(mean=rng.uniform(-6, 2), sigma=1.0, size=ORDERS.size) * ORDERS
        if trial % 5 == 0:
            rdp[rng.integers(ORDERS.size, size=10)] = np.inf  # non-converged orders
        delta = 10.0 ** rng.uniform(-12, -2)
        expected = rdp_reference.compute_epsilon(ORDERS, rdp, delta)
        assert rdp_to_epsilon(rdp, ORDERS, delta) == pytest.approx(expected, rel=1e-9)
        epsilon = rng.uniform(0.1, 8.0)
        expected_delta, expected_order = rdp_reference.compute_delta(ORDERS, rdp, epsilon)
        ours_delta, ours_order = rdp_to_delta(rdp, ORDERS, epsilon)
        assert ours_delta == pytest.approx(expected_delta, rel=1e-9, abs=1e-300)
        assert ours_order == expected_order
    assert rdp_to_epsilon(np.zeros(3), [2, 3, 4], 0.0) == (0.0, 0.0)
    assert rdp_to_epsilon(np.ones(3), [2, 3, 4], 0.0)[0] == math.inf


def test_special_cases():
    sigma = 1.7
    np.testing.assert_array_equal(rdp_poisson_subsampled_gaussian(0.0, sigma, ORDERS), 0.0)
    np.testing.assert_allclose(rdp_poisson_subsampled_gaussian(1.0, sigma, ORDERS), ORDERS / (2 * sigma**2), rtol=1e-15)
    assert np.all(np.isinf(rdp_poisson_subsampled_gaussian(0.3, 0.0, ORDERS)))
    np.testing.assert_allclose(rdp_of_event(GaussianEvent(sigma)), ORDERS / (2 * sigma**2), rtol=1e-15)


def test_small_sampling_probability_is_accurate_where_naive_summation_is_not():
    # At alpha = 2 the RDP has a closed form, log1p(q^2 expm1(1/sigma^2)), exact in float64.
    # Summing A_alpha ~ 1 + 2.5e-17 (as dp_accounting does) leaves only round-off; we keep precision.
    q, sigma = 1e-6, 200.0
    exact = math.log1p(q * q * math.expm1(1.0 / sigma**2))
    ours = rdp_poisson_subsampled_gaussian(q, sigma, [2.0])[0]
    theirs = rdp_reference._compute_rdp_poisson_subsampled_gaussian(q, sigma, [2.0])[0]
    assert ours == pytest.approx(exact, rel=1e-12)
    assert abs(theirs - exact) / exact > 1e-6


def _naive_float32_rdp(q, sigma, orders):
    """The integer-order binomial sum, evaluated naively in float32 (what the accountant avoids)."""
    orders = jnp.asarray(orders, jnp.float32)
    i = jnp.arange(int(orders.max()) + 1, dtype=jnp.float32)[None, :]
    alpha = orders[:, None]
    valid = i <= alpha
    i = jnp.where(valid, i, 0.0)
    log_terms = (
        gammaln(alpha + 1) - gammaln(i + 1) - gammaln(alpha - i + 1)
        + i * jnp.log(jnp.float32(q)) + (alpha - i) * jnp.log1p(-jnp.float32(q))
        + (i * i - i) / (2 * jnp.float32(sigma) ** 2)
    )
    return np.asarray(logsumexp(jnp.where(valid, log_terms, -jnp.inf), axis=1) / (orders - 1), np.float64)


def test_float32_accounting_would_under_report_epsilon():
    integer_orders = ORDERS[ORDERS == np.floor(ORDERS)]
    q, sigma, steps, delta = 1e-4, 0.8, 10**6, 1e-5
    float64_epsilon = rdp_to_epsilon(steps * rdp_poisson_subsampled_gaussian(q, sigma, integer_orders), integer_orders, delta)[0]
    float32_epsilon = rdp_to_epsilon(steps * _naive_float32_rdp(q, sigma, integer_orders), integer_orders, delta)[0]
    assert float64_epsilon == pytest.approx(
        RdpAccountant(integer_orders).compose(PoissonSampledEvent(q, GaussianEvent(sigma)), steps).get_epsilon(delta)
    )
    assert float64_epsilon > 1.0
    assert float32_epsilon < 0.5 * float64_epsilon  # per-step RDP rounds to ~0 in float32


def test_composite_events_match_dp_accounting():
    ours = ComposedEvent(
        (
            GaussianEvent(3.0),
            SelfComposedEvent(PoissonSampledEvent(0.02, ComposedEvent((GaussianEvent(1.5), GaussianEvent(2.5)))), 500),
            PoissonSampledEvent(0.1, SelfComposedEvent(GaussianEvent(4.0), 3)),
            AdditiveDeltaEvent(1e-7),
        )
    )
    theirs = dp_event.ComposedDpEvent(
        [
            dp_event.GaussianDpEvent(3.0),
            dp_event.SelfComposedDpEvent(
                dp_event.PoissonSampledDpEvent(
                    0.02, dp_event.ComposedDpEvent([dp_event.GaussianDpEvent(1.5), dp_event.GaussianDpEvent(2.5)])
                ),
                500,
            ),
            dp_event.PoissonSampledDpEvent(0.1, dp_event.SelfComposedDpEvent(dp_event.GaussianDpEvent(4.0), 3)),
        ]
    )
    accountant = RdpAccountant().compose(ours, count=2)
    reference = reference_accountant(theirs, 2)
    np.testing.assert_allclose(accountant.rdp, reference.rdp, rtol=1e-9)
    assert accountant.additive_delta == pytest.approx(2e-7)
    # The additive delta is taken out of the target before converting.
    assert accountant.get_epsilon(1e-5) == pytest.approx(reference.get_epsilon(1e-5 - 2e-7), rel=1e-9)
    assert accountant.get_delta(2.0) == pytest.approx(reference.get_delta(2.0) + 2e-7, rel=1e-9)
    with pytest.raises(PrivacyBudgetError, match="1e-07"):
        accountant.get_epsilon(1e-7)


def test_invalid_inputs_raise():
    with pytest.raises(ConfigError, match="replace_one"):
        RdpAccountant(neighboring_relation="replace_one")
    with pytest.raises(ConfigError, match="sampling_probability"):
        rdp_poisson_subsampled_gaussian(1.5, 1.0, ORDERS)
    with pytest.raises(ConfigError, match="noise_multiplier"):
        rdp_poisson_subsampled_gaussian(0.5, -1.0, ORDERS)
    with pytest.raises(ConfigError, match="orders"):
        rdp_poisson_subsampled_gaussian(0.5, 1.0, [0.5, 2.0])
    with pytest.raises(TypeError, match="PoissonSampledEvent"):
        RdpAccountant().compose(PoissonSampledEvent(0.1, AdditiveDeltaEvent(1e-6)))
    with pytest.raises(TypeError, match="Unsupported"):
        RdpAccountant().compose("gaussian")


def test_pld_is_tighter_than_rdp():
    event = SelfComposedEvent(PoissonSampledEvent(0.05, GaussianEvent(1.2)), 200)
    rdp_epsilon = RdpAccountant().compose(event).get_epsilon(1e-5)
    pld = pld_epsilon(event, 1e-5)
    assert 0.6 * rdp_epsilon < pld < rdp_epsilon


# The release's shape with the default recipe: DP schema (Gaussian + threshold delta), DP-means start,
# then T = 300 Poisson-sampled steps at p = 0.6; sigma = 46.5 puts RDP's epsilon at about 1.
STEPS_SIGMA = 46.5


def _default_like_events():
    return [
        ComposedEvent((GaussianEvent(30.0), AdditiveDeltaEvent(1e-8))),
        GaussianEvent(10.0),
        SelfComposedEvent(PoissonSampledEvent(0.6, GaussianEvent(STEPS_SIGMA)), 300),
    ]


def test_pld_is_tighter_than_rdp_on_the_default_like_ledger():
    events = _default_like_events()
    rdp_epsilon = RdpAccountant().compose(ComposedEvent(tuple(events))).get_epsilon(1e-5)
    assert 0.95 < rdp_epsilon < 1.05
    pld = pld_epsilon(events, 1e-5)
    assert 0.8 * rdp_epsilon < pld < rdp_epsilon
    bounds = epsilon_bounds(events, 1e-5)
    assert bounds == {"epsilon": pld, "epsilon_rdp": rdp_epsilon, "epsilon_pld": pld, "accountant": "PLD",
                      "pld_note": None}
    # The same events through dp_accounting's own PLDAccountant (plain Gaussians are merged exactly
    # here, which only changes the discretisation).
    from dp_accounting.pld import pld_privacy_accountant

    reference = pld_privacy_accountant.PLDAccountant()
    reference.compose(dp_event.ComposedDpEvent([
        dp_event.GaussianDpEvent(30.0), dp_event.GaussianDpEvent(10.0),
        dp_event.SelfComposedDpEvent(dp_event.PoissonSampledDpEvent(0.6, dp_event.GaussianDpEvent(STEPS_SIGMA)), 300),
    ]))
    assert pld == pytest.approx(reference.get_epsilon(1e-5 - 1e-8), rel=1e-4)


def test_pld_accounts_feature_selection_by_the_exponential_mechanism():
    # Feature selection's shape: k = 5 exponential-mechanism selections between the schema and the steps.
    events = _default_like_events()
    events.insert(1, SelfComposedEvent(ExponentialMechanismEvent(0.05), 5))
    rdp_epsilon = RdpAccountant().compose(ComposedEvent(tuple(events))).get_epsilon(1e-5)
    pld = pld_epsilon(events, 1e-5)
    assert math.isfinite(pld) and pld <= rdp_epsilon
    assert pld > pld_epsilon(_default_like_events(), 1e-5)  # the selections do cost something
    # One selection alone is eps-DP: its PLD (randomised response, the dominating pair) gives eps at any delta.
    assert pld_epsilon(ExponentialMechanismEvent(0.7), 1e-5) == pytest.approx(0.7, abs=2e-4)
    # Many selections: the bounded-range RDP (eps^2/8-zCDP) beats the generic eps-DP PLD, and the
    # minimum of the two bounds keeps RDP's.
    many = [SelfComposedEvent(ExponentialMechanismEvent(0.5), 10)]
    bounds = epsilon_bounds(many, 1e-5)
    assert bounds["accountant"] == "RDP" and bounds["epsilon"] == bounds["epsilon_rdp"] < bounds["epsilon_pld"]
    assert bounds["pld_note"]


def test_pld_accounts_the_private_search():
    # The search's shape: K = 3 candidates (start + steps each) and the exponential-mechanism choice.
    candidate = ComposedEvent((GaussianEvent(15.0), SelfComposedEvent(PoissonSampledEvent(0.6, GaussianEvent(60.0)), 100)))
    search = ComposedEvent((SelfComposedEvent(candidate, 3), ExponentialMechanismEvent(0.1)))
    rdp_epsilon = RdpAccountant().compose(search).get_epsilon(1e-5)
    pld = pld_epsilon(search, 1e-5)
    assert math.isfinite(pld) and pld <= rdp_epsilon
    bounds = epsilon_bounds(search, 1e-5)
    assert bounds["epsilon"] == min(pld, rdp_epsilon) and bounds["accountant"] == "PLD"
    # A ComposedEvent holding a list (unhashable, so not cached) gives the same number.
    assert pld_epsilon(ComposedEvent([SelfComposedEvent(candidate, 3), ExponentialMechanismEvent(0.1)]), 1e-5) == pld


def test_epsilon_bounds_never_raise_without_dp_accounting(monkeypatch):
    ledger = Ledger()
    for name, event in zip(("schema", "feature_selection", "initialisation"),
                           (GaussianEvent(30.0), SelfComposedEvent(ExponentialMechanismEvent(0.05), 5), GaussianEvent(10.0))):
        ledger.add(name, event)
    monkeypatch.setitem(sys.modules, "dp_accounting", None)  # `import dp_accounting` now fails
    with pytest.raises(ImportError, match="dp-accounting"):
        pld_epsilon(GaussianEvent(1.0), 1e-5)
    bounds = epsilon_bounds([entry.event for entry in ledger.entries], 1e-5)
    assert bounds["accountant"] == "RDP" and bounds["epsilon_pld"] is None
    assert bounds["epsilon"] == bounds["epsilon_rdp"] == ledger.epsilon(1e-5)
    assert "dp-accounting could not be imported" in bounds["pld_note"]
    record = ledger.to_dict(1e-5)
    json.dumps(record, allow_nan=False)
    assert record["accountant"] == "RDP" and record["epsilon_pld"] is None and "dp-accounting" in record["pld_note"]


def test_epsilon_bounds_fall_back_to_rdp_where_pld_cannot_be_computed():
    # delta = 0 (PLD needs delta > 0) and additive deltas using all of delta: RDP's answer, with a reason.
    for events, delta in (([GaussianEvent(2.0)], 0.0), ([GaussianEvent(2.0), AdditiveDeltaEvent(1e-5)], 1e-5)):
        bounds = epsilon_bounds(events, delta)
        assert bounds["accountant"] == "RDP" and bounds["epsilon"] == math.inf and bounds["epsilon_pld"] is None
        assert bounds["pld_note"].startswith("PLD accounting failed")
    bounds = epsilon_bounds([GaussianEvent(0.0)], 1e-5)  # non-private: both say inf
    assert bounds["epsilon"] == bounds["epsilon_pld"] == math.inf


# --------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------


def _dpsgd_epsilon(sigma, p, steps, delta, base_events=()):
    accountant = RdpAccountant()
    for event in base_events:
        accountant.compose(event)
    return accountant.compose(SelfComposedEvent(PoissonSampledEvent(p, GaussianEvent(sigma)), steps)).get_epsilon(delta)


@pytest.mark.parametrize(
    "target_epsilon, p, steps, base_events",
    [
        (1.0, 256 / 398, 300, ()),
        (3.0, 0.01, 2000, (GaussianEvent(20.0), AdditiveDeltaEvent(1e-7))),
    ],
)
def test_calibrated_sigma_is_the_smallest_meeting_the_target(target_epsilon, p, steps, base_events):
    delta = 1e-5
    sigma = calibrate_dpsgd_noise(target_epsilon, delta, p, steps, base_events=base_events)
    assert _dpsgd_epsilon(sigma, p, steps, delta, base_events) <= target_epsilon
    assert _dpsgd_epsilon(sigma * (1 - 1e-3), p, steps, delta, base_events) > target_epsilon


def test_gaussian_calibration_and_infinite_target():
    sigma = gaussian_noise_for_epsilon(1.0, 1e-5)
    assert RdpAccountant().compose(GaussianEvent(sigma)).get_epsilon(1e-5) <= 1.0
    assert RdpAccountant().compose(GaussianEvent(sigma * (1 - 1e-3))).get_epsilon(1e-5) > 1.0
    assert calibrate_noise_multiplier(math.inf, 1e-5, GaussianEvent) == 0.0


@pytest.mark.parametrize("epsilon, delta, share, additive", [
    (1.0, 1e-5, 0.1, 1e-6), (1.0, 1e-5, 1.0, 0.0), (0.1, 1e-5, 0.5, 0.0), (8.0, 1e-6, 0.25, 1e-7),
    (0.01, 1e-3, 1.0, 0.0), (50.0, 1e-5, 0.1, 0.0)])
def test_a_share_of_the_budget_is_the_exact_gaussian_by_dp_accountings_pld(epsilon, delta, share, additive):
    # The one Gaussian spending the whole target (exact, Balle and Wang 2018) meets it by the PLD
    # accountant and misses it 1e-4 below; the share gets sigma / sqrt(share).
    from zodc.privacy.calibration import _EXACT_MARGIN, gaussian_delta, share_noise_multiplier

    sigma = share_noise_multiplier(epsilon, delta, share, additive_delta=additive) * math.sqrt(share)

    def event(s):
        return ComposedEvent((GaussianEvent(s), AdditiveDeltaEvent(additive))) if additive else GaussianEvent(s)

    assert pld_epsilon(event(sigma), delta) <= epsilon
    assert pld_epsilon(event(sigma * (1 - 1e-4)), delta) > epsilon
    assert gaussian_delta(epsilon, sigma / (1 + _EXACT_MARGIN)) <= delta - additive
    with pytest.raises(PrivacyBudgetError, match="leaves nothing"):
        share_noise_multiplier(epsilon, delta, share, additive_delta=delta)
    assert share_noise_multiplier(math.inf, delta, share) == 0.0


def test_pld_calibration_is_the_smallest_sigma_the_tighter_accountant_allows(monkeypatch):
    # The default fit's ledger: a DP schema and start before 300 Poisson-sampled steps at p = 0.38.
    from zodc.privacy import accounting, calibration
    from zodc.privacy.accounting import CALIBRATION_PLD_DISCRETIZATION as interval

    base = (GaussianEvent(11.872), AdditiveDeltaEvent(1e-6), GaussianEvent(7.668))

    def steps(sigma):
        return SelfComposedEvent(PoissonSampledEvent(0.375, GaussianEvent(sigma)), 300)

    rdp = calibrate_noise_multiplier(1.0, 1e-5, steps, base_events=base)
    pld = calibration.calibrate_noise_multiplier_pld(1.0, 1e-5, steps, base_events=base)
    assert pld < 0.92 * rdp  # about 12 % less noise for the same guarantee
    assert pld_epsilon(base + (steps(pld),), 1e-5, interval) <= 1.0
    assert pld_epsilon(base + (steps(pld * (1 - 2e-3)),), 1e-5, interval) > 1.0
    assert epsilon_bounds(base + (steps(pld),), 1e-5, value_discretization_interval=interval)["epsilon"] <= 1.0
    assert RdpAccountant().compose(ComposedEvent(base + (steps(pld),))).get_epsilon(1e-5) > 1.0
    # Without a PLD (dp-accounting missing, an event it cannot represent) the answer is RDP's.
    monkeypatch.setattr(accounting, "pld_epsilon", lambda *a, **k: (_ for _ in ()).throw(ImportError("no")))
    assert calibration.calibrate_noise_multiplier_pld(0.7, 1e-5, steps, base_events=base) == \
        calibrate_noise_multiplier(0.7, 1e-5, steps, base_events=base)
    assert calibration.calibrate_noise_multiplier_pld(math.inf, 1e-5, steps) == 0.0


def test_calibration_errors():
    with pytest.raises(PrivacyBudgetError, match="already reaches target_epsilon = 1"):
        calibrate_noise_multiplier(1.0, 1e-5, GaussianEvent, base_events=(GaussianEvent(0.5),))
    with pytest.raises(PrivacyBudgetError, match="delta"):
        calibrate_noise_multiplier(1.0, 1e-5, GaussianEvent, base_events=(AdditiveDeltaEvent(1e-4),))
    with pytest.raises(ConfigError, match=r"^`target_epsilon` must be > 0\. Got -1\.$"):
        calibrate_noise_multiplier(-1, 1e-5, GaussianEvent)
    for bad_delta in (0.0, 1.0, -1e-5):
        with pytest.raises(ConfigError, match="target_delta"):
            calibrate_noise_multiplier(1.0, bad_delta, GaussianEvent)


# --------------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------------


def _example_ledger():
    ledger = Ledger()
    ledger.add("column_bounds", SelfComposedEvent(GaussianEvent(40.0), 6), "DP min/max of 6 columns")
    ledger.add("category_threshold", AdditiveDeltaEvent(1e-8))
    ledger.add("zo_steps", SelfComposedEvent(PoissonSampledEvent(0.3, GaussianEvent(20.0)), 300), "T = 300 steps")
    return ledger


def test_ledger_composes_all_entries():
    ledger = _example_ledger()
    direct = RdpAccountant()
    for entry in ledger.entries:
        direct.compose(entry.event)
    assert [entry.name for entry in ledger.entries] == ["column_bounds", "category_threshold", "zo_steps"]
    np.testing.assert_array_equal(ledger.accountant().rdp, direct.rdp)
    assert ledger.epsilon(1e-5) == direct.get_epsilon(1e-5)
    alone = [RdpAccountant().compose(entry.event).get_epsilon(1e-5) for entry in ledger.entries]
    assert max(alone) < ledger.epsilon(1e-5) < sum(alone)  # RDP composition beats summing epsilons


def test_ledger_to_dict_is_json_and_round_trips():
    ledger = _example_ledger()
    record = ledger.to_dict(1e-5)
    text = json.dumps(record, allow_nan=False)
    # Both bounds are reported, the tighter is the ledger's epsilon.
    assert record["epsilon_rdp"] == pytest.approx(ledger.epsilon(1e-5))
    assert record["epsilon_pld"] == pytest.approx(pld_epsilon([e.event for e in ledger.entries], 1e-5))
    assert record["epsilon"] == min(record["epsilon_rdp"], record["epsilon_pld"]) == record["epsilon_pld"]
    assert record["accountant"] == "PLD" and record["pld_note"] is None
    assert record["neighboring_relation"] == "add_or_remove_one"
    assert record["additive_delta"] == 1e-8
    assert record["entries"][2]["event"] == event_to_dict(ledger.entries[2].event)
    assert record["entries"][2]["event"]["event"]["type"] == "PoissonSampledEvent"
    assert record["entries"][0]["description"] == "DP min/max of 6 columns"
    assert record["entries"][1]["epsilon"] == 0.0
    restored = Ledger.from_dict(json.loads(text))
    assert restored.entries == ledger.entries
    assert restored.to_dict(1e-5) == record
    legacy = json.loads(text) | {"accountant": "rdp"}  # what to_dict wrote before it also accounted by PLD
    assert Ledger.from_dict(legacy).entries == ledger.entries
    with pytest.raises(ConfigError, match="accountant"):
        Ledger.from_dict(json.loads(text) | {"accountant": "moments"})


def test_ledger_rejects_bad_entries_when_spent():
    ledger = Ledger()
    with pytest.raises(TypeError):
        ledger.add("bad", PoissonSampledEvent(0.1, AdditiveDeltaEvent(1e-6)))
    with pytest.raises(ConfigError, match="name"):
        ledger.add("", GaussianEvent(1.0))
    assert len(ledger) == 0
