import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zodc.data.datasets import load_schema
from zodc.data.transform import TableEncoder
from zodc.errors import ConfigError
from zodc.models.host import HostEvaluator
from zodc.models.presets import get_preset
from zodc.models.protocol import native_available, resolve_backend
from zodc.models.survival import (EVENT_WEIGHT_FLOOR, LifelinesCoxPH, ScikitSurvivalModel, SurvivalLoss, TimeScale,
                                  accepts_sample_weight, as_survival_model, expand_soft_events, fit_score_survival,
                                  host_survival_function, host_survival_payload, native_survival_evaluator,
                                  public_time_grid, scikit_survival_available)

GRID = (10.0, 20.0, 40.0)


# --------------------------------------------------------------------------- the loss


def _hand_case():
    survival = np.array([
        [0.9, 0.6, 0.3],   # event at 15, bin 2: -log(0.9 - 0.6)
        [0.9, 0.6, 0.3],   # censored at 15, bin 2: -log(0.9) (survived to the bin's left edge)
        [0.8, 0.5, 0.4],   # event exactly at tau_1 = 10, bin 1: -log(1 - 0.8)
        [0.8, 0.5, 0.4],   # censored at 5, bin 1: -log(1) = 0
        [0.9, 0.6, 0.3],   # event at 100, beyond the grid -> last bin: -log(0.6 - 0.3)
        [0.9, 0.6, 0.3],   # censored at 100 -> last bin: -log(0.6)
        [0.9, 0.9, 0.9],   # event at 15 with no mass in its bin: floored at -log(1e-3)
        [0.5, 0.7, 0.2],   # event at 15, non-monotone (negative mass): floored
    ])
    time = np.array([15.0, 15.0, 10.0, 5.0, 100.0, 100.0, 15.0, 15.0])
    event = np.array([1, 0, 1, 0, 1, 0, 1, 1])
    expected = -np.log([0.3, 0.9, 0.2, 1.0, 0.3, 0.6, 1e-3, 1e-3])
    return survival, time, event, expected


def test_discrete_nll_matches_hand_computation():
    survival, time, event, expected = _hand_case()
    loss = SurvivalLoss("discrete_nll", GRID, probability_floor=1e-3)
    np.testing.assert_allclose(loss(survival, time, event), expected, rtol=1e-12, atol=1e-12)
    assert loss.upper_bound == pytest.approx(-math.log(1e-3))
    np.testing.assert_allclose(loss(survival, time, event)[6:], loss.upper_bound)


def test_brier_matches_hand_computation():
    survival = np.array([[0.9, 0.6, 0.3], [0.9, 0.6, 0.3], [0.9, 0.6, 0.3]])
    time = np.array([15.0, 15.0, 100.0])
    event = np.array([1, 0, 1])
    widths = np.array([10.0, 10.0, 20.0]) / 40.0
    # event at 15: alive at 10, dead by 20 and 40; censored at 15: only the tau = 10 term; t = 100: alive throughout
    expected = np.array([widths @ [0.01, 0.36, 0.09], widths[0] * 0.01, widths @ [0.01, 0.16, 0.49]])
    plain = SurvivalLoss("brier", GRID)
    np.testing.assert_allclose(plain(survival, time, event), expected, rtol=1e-12)
    assert plain.upper_bound == 1.0
    # IPCW: event in bin 2 is weighted by 1 / G(tau_1); survivors at tau_k by 1 / G(tau_k)
    weighted = SurvivalLoss("brier", GRID, censoring_survival=(0.8, 0.5, 0.25))
    expected_weighted = np.array([
        widths @ [0.01 / 0.8, 0.36 / 0.8, 0.09 / 0.8],
        widths[0] * 0.01 / 0.8,
        widths @ [0.01 / 0.8, 0.16 / 0.5, 0.49 / 0.25],
    ])
    np.testing.assert_allclose(weighted(survival, time, event), expected_weighted, rtol=1e-12)
    assert weighted.upper_bound == pytest.approx(4.0)


@pytest.mark.parametrize("name", ["discrete_nll", "brier"])
def test_numpy_equals_jax_with_batch_axes(name):
    rng = np.random.default_rng(301)
    grid = public_time_grid(1.0, 1000.0, 6)
    loss = SurvivalLoss(name, grid)
    n = 40
    survival = np.sort(rng.uniform(size=(3, 2, n, grid.size)), axis=-1)[..., ::-1]
    time = np.exp(rng.uniform(0.0, math.log(2000.0), size=n))
    time[:5] = grid[:5]                                              # exactly on bin edges
    event = rng.integers(0, 2, size=n)
    host = loss(survival, time, event, xp=np)
    device = loss(jnp.asarray(survival, jnp.float32), jnp.asarray(time, jnp.float32), jnp.asarray(event), xp=jnp)
    assert host.shape == (3, 2, n)
    np.testing.assert_allclose(np.asarray(device), host, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda s: loss(s, jnp.asarray(time, jnp.float32),
                                                                   jnp.asarray(event), xp=jnp))(
        jnp.asarray(survival, jnp.float32))), host, rtol=2e-5, atol=2e-5)


@settings(max_examples=40, deadline=None)
@given(survival=hnp.arrays(np.float64, (7, 4), elements=st.floats(-2.0, 3.0)),
       time=hnp.arrays(np.float64, (7,), elements=st.floats(0.01, 1e5)),
       event=hnp.arrays(np.int64, (7,), elements=st.integers(0, 1)),
       name=st.sampled_from(["discrete_nll", "brier"]))
def test_loss_is_bounded_for_any_prediction(survival, time, event, name):
    loss = SurvivalLoss(name, (1.0, 10.0, 100.0, 1000.0), censoring_survival=(0.9, 0.7, 0.4, 0.2) if name == "brier" else None)
    values = loss(survival, time, event)
    assert np.all(np.isfinite(values))
    assert np.all(values >= 0.0) and np.all(values <= loss.upper_bound + 1e-12)


def test_loss_rejects_bad_configuration():
    with pytest.raises(ConfigError, match="`loss`"):
        SurvivalLoss("cross_entropy", GRID)
    with pytest.raises(ConfigError, match="`time_grid`.*at least 1"):
        SurvivalLoss("discrete_nll")
    with pytest.raises(ConfigError, match="strictly increasing"):
        SurvivalLoss("discrete_nll", (10.0, 5.0))
    with pytest.raises(ConfigError, match="`probability_floor`"):
        SurvivalLoss("discrete_nll", GRID, probability_floor=0.0)
    with pytest.raises(ConfigError, match="`censoring_survival`"):
        SurvivalLoss("brier", GRID, censoring_survival=(1.0, 0.0, 0.5))
    with pytest.raises(ConfigError, match="`survival`"):
        SurvivalLoss("discrete_nll", GRID)(np.ones((2, 4)), np.ones(2), np.ones(2))


def test_public_time_grid():
    grid = public_time_grid(1, 3650, 8)
    assert grid.shape == (8,) and grid[-1] == 3650.0 and grid[0] > 1.0
    np.testing.assert_allclose(np.diff(np.log(grid)), math.log(3650) / 8)
    with pytest.raises(ConfigError, match="`num_bins`"):
        public_time_grid(1, 10, 0)
    with pytest.raises(ConfigError, match="`lower`"):
        public_time_grid(0, 10, 3)


# --------------------------------------------------------------------------- time scale: positivity and bounds


def test_time_scale_equals_table_encoder_and_stays_in_bounds():
    schema = load_schema("gbsg2")
    encoder = TableEncoder(schema)
    scale = TimeScale.from_schema(schema)
    rng = np.random.default_rng(302)
    encoded = np.concatenate([rng.normal(scale=3.0, size=500), [-1e6, -1.0, 0.0, 1.0, 1e6]])
    decoded = scale.decode(encoded)
    np.testing.assert_array_equal(decoded, encoder.decode_time(encoded))
    assert np.all(decoded > 0) and decoded.min() >= schema.time.lower and decoded.max() <= schema.time.upper
    assert np.all(decoded == np.round(decoded))                     # gbsg2's time column is integer
    device = np.asarray(scale.decode(jnp.asarray(encoded, jnp.float32)))
    assert np.all(device >= schema.time.lower) and np.all(device <= schema.time.upper)
    times = rng.uniform(1, 3650, size=100)
    np.testing.assert_allclose(scale.encode(times), encoder.encode_time(times))
    np.testing.assert_allclose(TimeScale(1.0, 3650.0).decode(scale.encode(times)), times, rtol=1e-10)


@settings(max_examples=50, deadline=None)
@given(encoded=hnp.arrays(np.float64, (6,), elements=st.floats(-1e9, 1e9)),
       lower=st.floats(1e-3, 10.0), span=st.floats(1.5, 1e4))
def test_decoded_times_positive_within_bounds(encoded, lower, span):
    scale = TimeScale(lower, lower * span)
    decoded = scale.decode(encoded)
    assert np.all(decoded > 0) and np.all(decoded >= scale.lower) and np.all(decoded <= scale.upper)


# --------------------------------------------------------------------------- host evaluation


def _survival_problem(seed=0, n=70, m=16, d=3, k=4):
    # A fixed default seed: an unseeded generator would make CI draw new data every run.
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    hazard = np.exp(1.2 * X[:, 0] - 0.6 * X[:, 1])
    true_time = rng.exponential(200.0 / hazard)
    censor_time = rng.exponential(400.0, size=n)
    time = np.clip(np.minimum(true_time, censor_time), 1.0, 3650.0)
    event = (true_time <= censor_time).astype(np.int64)
    synthetic_events = np.array([1, 0] * (m // 2))
    tables = np.concatenate([rng.uniform(-1, 1, size=(k, m, d)), rng.uniform(-0.8, 0.8, size=(k, m, 1))], axis=-1)
    mask = rng.uniform(size=n) < 0.7
    return X, time, event, synthetic_events, tables, mask


def _lifelines_reference(table, synthetic_events, scale, X_real, grid, penalizer=0.1):
    """Independent reference: lifelines fit, S = S0(t) ** partial_hazard with a forward-filled baseline."""
    from lifelines import CoxPHFitter

    d = table.shape[1] - 1
    frame = pd.DataFrame(table[:, :d], columns=[f"c{j}" for j in range(d)])
    frame["T"] = scale.decode(table[:, d])
    frame["E"] = synthetic_events
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = CoxPHFitter(penalizer=penalizer).fit(frame, "T", "E")
    baseline = fitter.baseline_survival_.iloc[:, 0]
    s0 = baseline.reindex(baseline.index.union(grid)).ffill().fillna(1.0).loc[grid].to_numpy()
    partial = fitter.predict_partial_hazard(pd.DataFrame(X_real, columns=frame.columns[:d])).to_numpy()
    return s0[None, :] ** partial[:, None]


def test_fit_score_survival_through_host_evaluator_equals_plain_loop():
    X, time, event, synthetic_events, tables, mask = _survival_problem()
    scale = TimeScale(1.0, 3650.0, integer=True)
    loss = SurvivalLoss("discrete_nll", public_time_grid(1.0, 3650.0, 8))
    payload = host_survival_payload(get_preset("cox", task="survival").host_factory(0), loss, X, time, event,
                                    synthetic_events, scale)
    with HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=X.shape[0]) as evaluator:
        got = evaluator(tables, mask)
        jitted = np.asarray(jax.jit(evaluator.jax_fn())(jnp.asarray(tables, jnp.float32), jnp.asarray(mask)))
    grid = np.asarray(loss.time_grid)
    expected = np.zeros_like(got)
    for row, table in enumerate(tables):
        survival = _lifelines_reference(table, synthetic_events, scale, X[mask], grid)
        expected[row, mask] = loss(survival, time[mask], event[mask])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all(got[:, ~mask] == 0.0)
    assert np.all(got[:, mask].min(axis=1) < loss.upper_bound)           # fits succeeded (records may hit the floor)
    assert np.all(np.isfinite(jitted)) and jitted.shape == got.shape


def test_failed_cox_fits_are_charged_the_bound():
    X, time, event, synthetic_events, tables, mask = _survival_problem(k=3)
    scale = TimeScale(1.0, 3650.0)
    loss = SurvivalLoss("discrete_nll", public_time_grid(1.0, 3650.0, 5))
    tables[1, :, 0] = 0.25                                             # constant column: lifelines' fit fails (NaN)
    payload = host_survival_payload(LifelinesCoxPH(penalizer=0.1), loss, X, time, event, synthetic_events, scale)
    with HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=X.shape[0]) as evaluator:
        got = evaluator(tables, mask)
    np.testing.assert_allclose(got[1, mask], loss.upper_bound)
    assert np.all(got[[0, 2]][:, mask].min(axis=1) < loss.upper_bound)
    # all synthetic rows censored: refused up front, and a hand-built payload is charged the bound
    with pytest.raises(ConfigError, match="`synthetic_events`.*at least one event"):
        host_survival_payload(LifelinesCoxPH(), loss, X, time, event, np.zeros_like(synthetic_events), scale)
    censored = dict(payload, synthetic_events=np.zeros_like(synthetic_events))
    with HostEvaluator(fit_score_survival, censored, upper_bound=loss.upper_bound, num_records=X.shape[0]) as evaluator:
        np.testing.assert_allclose(evaluator(tables, mask)[:, mask], loss.upper_bound)


def test_host_survival_function_accepts_a_lifelines_fitter():
    from lifelines import CoxPHFitter

    X, time, event, _, _, _ = _survival_problem(n=50)
    grid = public_time_grid(1.0, 3650.0, 6)
    from_fitter = host_survival_function(CoxPHFitter(penalizer=0.2), X, time, event, X[:7], grid)
    from_wrapper = host_survival_function(LifelinesCoxPH(penalizer=0.2), X, time, event, X[:7], grid)
    np.testing.assert_array_equal(from_fitter, from_wrapper)
    assert from_fitter.shape == (7, 6)
    assert np.all(np.diff(from_fitter, axis=1) <= 1e-12) and np.all((from_fitter >= 0) & (from_fitter <= 1))
    with pytest.raises(ConfigError, match="survival `model`"):
        as_survival_model(object())
    # At the training times (the baseline's knots) the step function equals lifelines' own prediction.
    model = LifelinesCoxPH(penalizer=0.2).fit(X, np.round(time), event)
    knots = np.unique(np.round(time))
    frame = pd.DataFrame(X[:7], columns=[f"x{j}" for j in range(X.shape[1])])
    reference = model.fitter_.predict_survival_function(frame, times=knots).to_numpy().T
    np.testing.assert_allclose(model.predict_survival(X[:7], knots), reference, rtol=1e-12)


# --------------------------------------------------------------------------- native evaluation


def test_native_evaluator_equals_host_lifelines():
    cox = pytest.importorskip("zodc.kernels.cox")
    X, time, event, synthetic_events, tables, mask = _survival_problem(n=90, m=20, k=4)
    scale = TimeScale(1.0, 3650.0)                                  # continuous times: no float32 rounding ties
    loss = SurvivalLoss("discrete_nll", public_time_grid(1.0, 3650.0, 8))
    payload = host_survival_payload(LifelinesCoxPH(penalizer=0.1), loss, X, time, event, synthetic_events, scale)
    tables32 = tables.astype(np.float32)
    with HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=X.shape[0]) as evaluator:
        host = evaluator(tables32, np.ones(X.shape[0], bool))
    native = native_survival_evaluator(cox.CoxPH(penalizer=0.1, ties="efron"), loss, X, time, event,
                                       synthetic_events, scale, jax.random.key(0))
    device = np.asarray(jax.jit(native)(jnp.asarray(tables32), jnp.ones(X.shape[0], bool)))
    assert device.shape == host.shape and device.dtype == np.float32
    assert np.all(host.min(axis=1) < loss.upper_bound)
    np.testing.assert_allclose(device, host, rtol=2e-3, atol=2e-3)


def test_native_non_converged_or_non_finite_fit_is_charged_the_bound():
    cox = pytest.importorskip("zodc.kernels.cox")
    X, time, event, _, _, _ = _survival_problem(n=40)
    m = 12
    rng = np.random.default_rng(303)
    scale = TimeScale(1.0, 3650.0)
    loss = SurvivalLoss("discrete_nll", public_time_grid(1.0, 3650.0, 5))
    synthetic_events = np.ones(m, dtype=np.int64)
    # Table 0: ordinary. Table 1: time perfectly ordered by feature 0 (separation) -> with no
    # penalty the Cox maximiser is at infinity and the kernel reports converged=False.
    features = rng.uniform(-1, 1, size=(2, m, 3))
    log_time = rng.uniform(-0.8, 0.8, size=(2, m))
    log_time[1] = -0.8 * features[1, :, 0]
    tables = np.concatenate([features, log_time[..., None]], axis=-1).astype(np.float32)
    model = cox.CoxPH(penalizer=0.0)
    params = jax.jit(jax.vmap(model.fit, (None, 0, 0, None)))(jax.random.key(0), jnp.asarray(tables[..., :3]),
                                                     scale.decode(jnp.asarray(tables[..., 3])),
                                                     jnp.asarray(synthetic_events, jnp.float32))
    assert np.asarray(params.converged).tolist() == [True, False]
    evaluate = native_survival_evaluator(model, loss, X, time, event, synthetic_events, scale, jax.random.key(0))
    got = np.asarray(jax.jit(evaluate)(jnp.asarray(tables), jnp.ones(X.shape[0], bool)))
    assert np.all(np.isfinite(got))
    assert got[0].min() < loss.upper_bound
    np.testing.assert_allclose(got[1], loss.upper_bound)

    class NaNModel:
        """Converges, then predicts NaN for the second table."""

        def fit(self, key, X, time, event):
            return cox.CoxParams(coef=jnp.zeros(X.shape[1]), mean=jnp.mean(X, 0), times=jnp.sort(time),
                                 cumulative_hazard=jnp.where(X[0, 0] > 0, jnp.nan, 0.01) * jnp.arange(1.0, time.size + 1),
                                 converged=jnp.asarray(True), n_iter=jnp.asarray(1), log_likelihood=jnp.asarray(0.0))

        def predict_survival(self, params, X, times):
            return cox.CoxPH().predict_survival(params, X, times)

    tables[0, 0, 0], tables[1, 0, 0] = -0.5, 0.5
    nan_evaluate = native_survival_evaluator(NaNModel(), loss, X, time, event, synthetic_events, scale, jax.random.key(0))
    got = np.asarray(jax.jit(nan_evaluate)(jnp.asarray(tables), jnp.ones(X.shape[0], bool)))
    assert np.all(np.isfinite(got)) and got[0].min() < loss.upper_bound
    np.testing.assert_allclose(got[1], loss.upper_bound)


def test_native_evaluator_rejects_bad_inputs():
    cox = pytest.importorskip("zodc.kernels.cox")
    X, time, event, synthetic_events, tables, _ = _survival_problem()
    loss = SurvivalLoss("discrete_nll", GRID)
    with pytest.raises(ConfigError, match="`synthetic_events`"):
        native_survival_evaluator(cox.CoxPH(), loss, X, time, event, np.zeros(16), TimeScale(1, 10), jax.random.key(0))
    evaluate = native_survival_evaluator(cox.CoxPH(), loss, X, time, event, synthetic_events, TimeScale(1, 10),
                                         jax.random.key(0))
    with pytest.raises(ValueError, match="`tables`"):
        evaluate(jnp.asarray(tables[..., :-1]), None)


# --------------------------------------------------------------------------- presets


def test_survival_presets():
    cox = get_preset("cox", task="survival")
    assert cox.task == "survival" and isinstance(cox.host_factory(2), LifelinesCoxPH)
    assert cox.host_factory(2).penalizer == 0.1
    pytest.importorskip("zodc.kernels.cox")
    assert native_available(cox) and resolve_backend(cox, "auto") == "native"
    native = cox.native_factory(2)
    assert (native.penalizer, native.ties) == (0.1, "efron")
    forest = get_preset("survival_forest", task="survival")
    assert forest.native_factory is None and resolve_backend(forest, "auto") == "host"
    with pytest.raises(ConfigError, match="classification"):
        get_preset("cox", task="classification")
    if not scikit_survival_available():
        with pytest.raises(ConfigError, match=r"pip install zodc\[survival\]"):
            forest.host_factory(0)


def test_scikit_survival_adapter():
    pytest.importorskip("sksurv")
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    X, time, event, _, _, _ = _survival_problem(n=80)
    grid = public_time_grid(1.0, 3650.0, 6)
    forest = get_preset("survival_forest", task="survival").host_factory(0)
    survival = host_survival_function(forest, X, time, event, X[:10], grid)
    assert survival.shape == (10, 6) and np.all((survival >= 0) & (survival <= 1))
    model = as_survival_model(CoxPHSurvivalAnalysis(alpha=0.1))
    assert isinstance(model, ScikitSurvivalModel)
    survival = model.fit(X, time, event).predict_survival(X[:10], grid)
    assert np.all(np.diff(survival, axis=1) <= 1e-12)


# --------------------------------------------------------------------------- soft events


def test_expand_soft_events_gives_each_row_an_event_and_a_censored_copy():
    # one feature, the log-time, the learned z: own-status weights (1 + z) / 2 = 0.8, 0.3, 1.0, 0.0
    table = np.array([[0.1, 0.2, 0.6], [0.3, -0.4, -0.4], [0.5, 0.0, 1.0], [-0.2, 0.1, -1.0]])
    nominal = np.array([1, 0, 1, 0])
    rows, events, weights = expand_soft_events(table, nominal)
    np.testing.assert_array_equal(rows, np.vstack([table[:, :2], table[:, :2]]))
    np.testing.assert_array_equal(events, [0, 0, 0, 0, 1, 1, 1, 1])
    floor = EVENT_WEIGHT_FLOOR
    # censored copies: 1 - own for nominal events, own for nominal censored; event copies the rest
    np.testing.assert_allclose(weights, [0.2, 0.3, floor, floor, 0.8, 0.7, 1 - floor, 1 - floor])
    np.testing.assert_allclose(weights[:4] + weights[4:], 1.0)
    device = expand_soft_events(jnp.asarray(table, jnp.float32), jnp.asarray(nominal, jnp.float32), xp=jnp)
    for got, want in zip(device, (rows, events, weights)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-7)


def test_lifelines_case_weights_equal_duplicated_rows():
    X, time, event, _, _, _ = _survival_problem(seed=3, n=60)
    weight = np.where((event == 0) & (np.arange(60) % 3 == 0), 2.0, 1.0)  # censored rows counted twice
    twice = np.flatnonzero(weight == 2.0)
    weighted = LifelinesCoxPH(penalizer=0.0).fit(X, time, event, sample_weight=weight)
    duplicated = LifelinesCoxPH(penalizer=0.0).fit(np.vstack([X, X[twice]]), np.concatenate([time, time[twice]]),
                                                    np.concatenate([event, event[twice]]))
    np.testing.assert_allclose(weighted.coef_, duplicated.coef_, rtol=1e-5, atol=1e-7)
    unweighted = LifelinesCoxPH(penalizer=0.0).fit(X, time, event)
    assert np.max(np.abs(weighted.coef_ - unweighted.coef_)) > 1e-3  # the weights were used
    for bad in (np.zeros(60), np.ones(59), np.full(60, np.nan)):
        with pytest.raises(ValueError, match="sample_weight"):
            LifelinesCoxPH().fit(X, time, event, sample_weight=bad)
    assert accepts_sample_weight(LifelinesCoxPH())
    assert not accepts_sample_weight(_NoWeights())


class _NoWeights:
    def fit(self, X, time, event):
        return self

    def predict_survival(self, X, times):
        return np.ones((len(X), len(times)))


def _soft_reference(table, synthetic_events, scale, X_real, grid):
    """Independent reference for a soft-event table: the two weighted copies built by hand, lifelines' weights_col."""
    from lifelines import CoxPHFitter

    d = table.shape[1] - 2
    own = np.clip((table[:, -1] + 1) / 2, 0, 1)
    event_weight = np.where(synthetic_events == 1, own, 1 - own)
    frame = pd.DataFrame(np.vstack([table[:, :d], table[:, :d]]), columns=[f"c{j}" for j in range(d)])
    frame["T"] = scale.decode(np.concatenate([table[:, d], table[:, d]]))
    frame["E"] = np.repeat([1, 0], len(table))
    frame["W"] = np.clip(np.concatenate([event_weight, 1 - event_weight]), EVENT_WEIGHT_FLOOR, 1 - EVENT_WEIGHT_FLOOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = CoxPHFitter(penalizer=0.1).fit(frame, "T", "E", weights_col="W")
    baseline = fitter.baseline_survival_.iloc[:, 0]
    s0 = baseline.reindex(baseline.index.union(grid)).ffill().fillna(1.0).loc[grid].to_numpy()
    partial = fitter.predict_partial_hazard(pd.DataFrame(X_real, columns=frame.columns[:d])).to_numpy()
    return s0[None, :] ** partial[:, None]


def test_soft_event_tables_host_equals_lifelines_and_native_equals_host():
    cox = pytest.importorskip("zodc.kernels.cox")
    X, time, event, synthetic_events, tables, _ = _survival_problem(seed=5, n=90, m=20, k=3)
    rng = np.random.default_rng(5)
    z = rng.uniform(-1, 1, size=tables.shape[:2] + (1,))
    z[0, :4] = 1.0                                               # own weight 1: the other copy sits at the floor
    soft_tables = np.concatenate([tables, z], axis=-1).astype(np.float32)
    scale = TimeScale(1.0, 3650.0)
    loss = SurvivalLoss("discrete_nll", public_time_grid(1.0, 3650.0, 8))
    everyone = np.ones(X.shape[0], bool)
    payload = host_survival_payload(LifelinesCoxPH(penalizer=0.1), loss, X, time, event, synthetic_events, scale,
                                    soft_events=True)
    with HostEvaluator(fit_score_survival, payload, upper_bound=loss.upper_bound, num_records=X.shape[0]) as evaluator:
        host = evaluator(soft_tables, everyone)
    grid = np.asarray(loss.time_grid)
    for row, table in enumerate(soft_tables.astype(np.float64)):
        expected = loss(_soft_reference(table, synthetic_events, scale, X, grid), time, event)
        np.testing.assert_allclose(host[row], expected, rtol=1e-5, atol=1e-6)
    hard = host_survival_payload(LifelinesCoxPH(penalizer=0.1), loss, X, time, event, synthetic_events, scale)
    with HostEvaluator(fit_score_survival, hard, upper_bound=loss.upper_bound, num_records=X.shape[0]) as evaluator:
        assert np.max(np.abs(evaluator(tables.astype(np.float32), everyone) - host)) > 1e-3  # the weights matter
    native = native_survival_evaluator(cox.CoxPH(penalizer=0.1, ties="efron"), loss, X, time, event,
                                       synthetic_events, scale, jax.random.key(0), soft_events=True)
    device = np.asarray(jax.jit(native)(jnp.asarray(soft_tables), jnp.asarray(everyone)))
    assert np.all(host.min(axis=1) < loss.upper_bound)
    np.testing.assert_allclose(device, host, rtol=2e-3, atol=2e-3)
    with pytest.raises(ConfigError, match="sample_weight"):
        host_survival_payload(_NoWeights(), loss, X, time, event, synthetic_events, scale, soft_events=True)
    with pytest.raises(Exception, match=r"\(k, m, 5\).*own-status weight"):
        native(jnp.asarray(tables, jnp.float32), jnp.asarray(everyone))


# --------------------------------------------------------------------------- public bounds as data


@pytest.mark.parametrize("scale", [TimeScale(1.0, 3650.0), TimeScale(0.5, 17.3, integer=True),
                                   TimeScale(2.0, 40.0, integer=True), TimeScale(0.01, 0.9)])
def test_time_scale_read_as_data_decodes_bit_for_bit(scale):
    from zodc.models.survival import decode_from_data

    encoded = jnp.asarray(np.linspace(-1.2, 1.2, 1001), jnp.float32)
    constant = jax.jit(scale.decode)(encoded)
    as_data = jax.jit(decode_from_data, static_argnums=2)(encoded, scale.as_data(), scale.integer)
    np.testing.assert_array_equal(np.asarray(as_data), np.asarray(constant))


def test_an_evaluator_reading_the_grid_and_time_scale_as_data_gives_the_same_losses_bit_for_bit():
    # The front door's survival step: the DP grid and time bounds travel as data, so runs on other bounds
    # share one compiled step; the losses are the constants' exactly.
    from zodc.models.survival import native_survival_data, native_survival_evaluate_fn

    cox = pytest.importorskip("zodc.kernels.cox")
    X, time, event, synthetic_events, tables, mask = _survival_problem(seed=4, n=90, m=20, k=4)
    model = cox.CoxPH(penalizer=0.1, ties="efron")
    tables, mask = jnp.asarray(tables, jnp.float32), jnp.asarray(mask)
    for scale, grid in ((TimeScale(1.0, 3650.0), public_time_grid(1.0, 3650.0, 8)),
                        (TimeScale(3.0, 2000.0, integer=True), public_time_grid(3.0, 2000.0, 8))):
        loss = SurvivalLoss("discrete_nll", grid)
        constant = native_survival_evaluate_fn(model, loss, scale)
        shared = native_survival_evaluate_fn(model, loss, scale, bounds_as_data=True)
        data = native_survival_data(X, time, event, synthetic_events, jax.random.key(0))
        with_bounds = native_survival_data(X, time, event, synthetic_events, jax.random.key(0), loss, scale)
        expected = np.asarray(jax.jit(constant)(tables, mask, data))
        np.testing.assert_array_equal(np.asarray(jax.jit(shared)(tables, mask, with_bounds)), expected)
        assert np.mean(expected[:, np.asarray(mask)] < loss.upper_bound) > 0.5  # real fits, not the bound
    # One program for other bounds of the same kind: the evaluators are equal values.
    assert native_survival_evaluate_fn(model, SurvivalLoss("discrete_nll", public_time_grid(5.0, 999.0, 8)),
                                       TimeScale(5.0, 999.0, integer=True), bounds_as_data=True) == shared
    with pytest.raises(ConfigError, match="reads the grid"):
        shared(tables, mask, data)
    with pytest.raises(ConfigError, match="discrete_nll"):
        native_survival_evaluate_fn(model, SurvivalLoss("brier", public_time_grid(1.0, 3650.0, 8)),
                                    TimeScale(1.0, 3650.0), bounds_as_data=True)
