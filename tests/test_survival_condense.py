"""Survival condensation through the front door: ``Condenser("cox", rows=...)``.

Few steps and one table shape (gbsg2, 20 rows, 6 time bins) throughout, so JAX compiles the native
Cox step once per session."""

import math

import numpy as np
import pandas as pd
import pytest

from zodc import Condenser
from zodc.data.datasets import load_dataset
from zodc.estimator import synthetic_event_count
from zodc.errors import ConfigError, DataError
from zodc.models.survival import scikit_survival_available
from zodc.privacy import RdpAccountant
from zodc.privacy.accounting import calibration_pld_interval, epsilon_bounds

ROWS = 20


@pytest.fixture(scope="module")
def gbsg2():
    data = load_dataset("gbsg2")
    return data.frame, data.schema


def small(model="cox", **overrides):
    params = dict(epsilon=1.0, rows=ROWS, steps=6, num_directions=4, num_time_bins=6, random_state=0)
    params.update(overrides)
    return Condenser(model, **params)


def structured(frame):
    y = np.empty(len(frame), dtype=[("cens", bool), ("time", float)])
    y["cens"] = frame["cens"].to_numpy() == 1
    y["time"] = frame["time"].to_numpy(dtype=float)
    return y


def assert_valid_release(fitted, schema, rows=ROWS):
    released = fitted.synthetic_
    assert list(released.columns) == list(schema.column_names)
    assert released.shape == (rows, len(schema.column_names))
    times = released[schema.time.name]
    assert (times > 0).all() and times.between(schema.time.lower, schema.time.upper).all()
    assert set(released[schema.event].unique()) <= {0, 1}
    assert released[schema.event].sum() == synthetic_event_count(fitted.event_rate_, rows)
    for column in schema.feature_columns:
        if hasattr(column, "lower"):
            assert released[column.name].between(column.lower, column.upper).all()
        else:
            assert set(released[column.name]) <= set(column.categories)
    assert fitted.table_.shape == (rows, fitted.n_features_in_ + 3)  # 10 encoded features (tgrade one-hot) + log-time


def test_synthetic_event_count_stays_within_one_and_rows_minus_one():
    assert synthetic_event_count(0.43, 50) == 22
    assert synthetic_event_count(0.001, 50) == 1
    assert synthetic_event_count(0.999, 50) == 49


def test_native_run_is_reproducible_valid_and_accounts_the_event_rate(gbsg2):
    frame, schema = gbsg2
    assert schema.event_rate is None  # the bundled schema publishes no event rate: it is estimated with DP
    first = small(schema=schema).fit(frame, duration_col="time", event_col="cens")
    second = small(schema=schema).fit(frame, duration_col="time", event_col="cens")
    pd.testing.assert_frame_equal(first.synthetic_, second.synthetic_)
    other = small(schema=schema, random_state=1).fit(frame, duration_col="time", event_col="cens")
    assert not first.synthetic_.equals(other.synthetic_)

    assert first.task_ == "survival" and first.backend_ == "native" and first.loss_ == "discrete_nll"
    assert_valid_release(first, schema)
    assert [entry.name for entry in first.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["event_rate", "initialisation", "zero_order_steps"]
    assert 0.99 <= first.epsilon_ <= 1.0
    accountant = RdpAccountant()
    for entry in first.ledger_.entries:
        accountant.compose(entry.event)
    # Re-accounted: the tighter of RDP and the PLD the steps were calibrated on.
    bounds = epsilon_bounds([entry.event for entry in first.ledger_.entries], 1e-5,
                            value_discretization_interval=calibration_pld_interval(1.0))
    assert first.epsilon_ == pytest.approx(max(bounds["epsilon"], first.steps_reference_["epsilon"]))
    assert bounds["epsilon"] <= accountant.get_epsilon(1e-5)
    true_rate = frame["cens"].mean()
    assert abs(first.event_rate_ - true_rate) < 0.1  # noisy, but a count of 686 at sigma ~ 10 is close
    assert len(first.time_grid_) == 6 and first.time_grid_[-1] == schema.time.upper
    assert any("synthetic events fixed" in line for line in first.report()["public_assumptions"])


def test_structured_target_equals_dataframe_with_column_names(gbsg2):
    frame, schema = gbsg2
    X = frame.drop(columns=["time", "cens"])
    by_columns = small(schema=schema).fit(frame, duration_col="time", event_col="cens")
    by_structured = small(schema=schema).fit(X, structured(frame))
    pd.testing.assert_frame_equal(by_columns.synthetic_, by_structured.synthetic_)
    # scikit-survival's default field names ("event", "time") map onto the schema's columns by role.
    renamed = structured(frame).astype([("event", bool), ("time", float)])
    by_default_names = small(schema=schema).fit(X, renamed)
    pd.testing.assert_frame_equal(by_columns.synthetic_, by_default_names.synthetic_)
    # The schema names the columns: they may be left out.
    pd.testing.assert_frame_equal(by_columns.synthetic_, small(schema=schema).fit(frame).synthetic_)
    # A vital status in words (zodc.data.io.EVENT_WORDS, each cell read alone): the same release.
    worded = frame.assign(cens=frame["cens"].map({0: " Alive", 1: "DEAD"}))
    pd.testing.assert_frame_equal(by_columns.synthetic_, small(schema=schema).fit(
        worded, duration_col="time", event_col="cens").synthetic_)


def test_survival_defaults_are_the_dp_means_start_and_a_slower_adam(gbsg2):
    # Ablation rounds 10-14: from a DP-means start (spread 0.2) Cox does best moving little (learning rate 0.02).
    frame, schema = gbsg2
    fitted = small(schema=schema).fit(frame, duration_col="time", event_col="cens")
    assert fitted.init_ == "dp_means" and fitted.learning_rate_ == 0.02 and fitted.init_scale_ == 0.2
    assert "initialisation" in [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")]
    # Explicit values win; "noise" spends nothing on the start.
    explicit = small(schema=schema, init="noise", learning_rate=0.05).fit(frame, duration_col="time", event_col="cens")
    assert explicit.init_ == "noise" and explicit.learning_rate_ == 0.05 and explicit.init_scale_ == 0.5
    assert "initialisation" not in [entry.name for entry in explicit.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")]
    # The default learning rate is the explicit 0.02's run, to the bit.
    same = small(schema=schema, learning_rate=0.02, init_scale=0.2).fit(frame, duration_col="time", event_col="cens")
    pd.testing.assert_frame_equal(same.synthetic_, fitted.synthetic_)
    import optax
    custom = small(schema=schema, optimizer=optax.sgd(0.01)).fit(frame, duration_col="time", event_col="cens")
    assert custom.learning_rate_ is None


def test_public_event_rate_spends_nothing_on_it(gbsg2):
    frame, schema = gbsg2
    fitted = small(schema=schema.replace(event_rate=0.3)).fit(frame, duration_col="time", event_col="cens")
    assert [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["initialisation", "zero_order_steps"]
    assert fitted.events_.sum() == 6 and fitted.event_rate_ == 0.3


def test_host_backend_is_reproducible(gbsg2):
    frame, schema = gbsg2
    first = small(schema=schema, backend="host", steps=2).fit(frame, duration_col="time", event_col="cens")
    second = small(schema=schema, backend="host", steps=2).fit(frame, duration_col="time", event_col="cens")
    assert first.backend_ == "host"
    pd.testing.assert_frame_equal(first.synthetic_, second.synthetic_)
    assert_valid_release(first, schema)


def test_brier_loss_runs(gbsg2):
    frame, schema = gbsg2
    fitted = small(schema=schema, loss="brier").fit(frame, duration_col="time", event_col="cens")
    assert fitted.loss_ == "brier" and np.all(np.isfinite(fitted.history_["loss"]))


def test_subspace_and_direction_kinds_run_for_survival(gbsg2):
    # The time column is part of the learned table: a subspace basis and block directions span it too.
    frame, schema = gbsg2
    fitted = small(schema=schema).fit(frame, duration_col="time", event_col="cens")
    for options in ({"subspace": 5}, {"directions": "columns"}):
        other = small(schema=schema, **options).fit(frame, duration_col="time", event_col="cens")
        assert other.epsilon_ == fitted.epsilon_ and other.synthetic_.shape == fitted.synthetic_.shape
        assert not other.synthetic_.equals(fitted.synthetic_)
        assert other.synthetic_["time"].between(schema.time.lower, schema.time.upper).all()


@pytest.mark.filterwarnings("ignore:.* outside the schema bounds")  # DP bounds clip sparse tails
@pytest.mark.slow
def test_no_schema_estimates_bounds_and_event_rate_from_one_histogram(gbsg2):
    frame, _ = gbsg2
    cohort = frame[["age", "tsize", "time", "cens"]]
    fitted = small(epsilon=4.0).fit(cohort, duration_col="time", event_col="cens")
    assert [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["schema", "schema", "initialisation", "zero_order_steps"]
    assert fitted.epsilon_ <= 4.0
    assert fitted.event_rate_ == fitted.schema_.event_rate and 0 < fitted.schema_.time.lower
    released = fitted.synthetic_
    assert list(released.columns) == ["age", "tsize", "time", "cens"]
    assert released["time"].between(fitted.schema_.time.lower, fitted.schema_.time.upper).all()
    assert released["cens"].sum() == synthetic_event_count(fitted.event_rate_, ROWS)


@pytest.mark.filterwarnings("ignore:.* outside the schema bounds")
def test_events_written_as_text_give_the_numeric_run(gbsg2):
    # A DataFrame whose event column holds text (read with dtype=str, or "dead" / "alive") gives the
    # same release as its 0/1 column, without a schema, as `zodc condense --data` reads a CSV. Before,
    # the text "1" / "0" was missing: every record was left out and the run refused.
    frame, _ = gbsg2
    cohort = frame[["age", "tsize", "time", "cens"]]
    runs = [small(epsilon=4.0).fit(cohort.assign(cens=events), duration_col="time", event_col="cens").synthetic_
            for events in (cohort["cens"], cohort["cens"].astype(str), cohort["cens"].map({1: " 1.0", 0: "0"}),
                           cohort["cens"].map({1: "Dead", 0: "alive"}))]
    for run in runs[1:]:
        pd.testing.assert_frame_equal(run, runs[0])
    assert 0 < runs[0]["cens"].sum() < ROWS


def test_model_and_data_of_different_tasks_are_refused(gbsg2):
    frame, schema = gbsg2
    with pytest.raises(ConfigError, match="classification model but the data are survival"):
        small("tree", schema=schema).fit(frame, duration_col="time", event_col="cens")
    X = frame.drop(columns=["time", "cens"])
    with pytest.raises(ConfigError, match="survival model but the data are classification"):
        Condenser("cox").fit(X, pd.Series(np.where(frame["cens"] == 1, "yes", "no"), name="recurred"))
    with pytest.raises(ConfigError, match="`rows_per_class` is for classification"):
        small(schema=schema, rows_per_class=5).fit(frame, duration_col="time", event_col="cens")
    with pytest.raises(ConfigError, match="`rows` is for survival"):
        Condenser("tree", rows=10).fit(X, pd.Series(frame["cens"], name="c"))
    with pytest.raises(ConfigError, match="`loss` must be one of"):
        small(schema=schema, loss="cross_entropy").fit(frame, duration_col="time", event_col="cens")
    with pytest.raises(ConfigError, match="`num_time_bins`"):
        small(schema=schema, num_time_bins=0).fit(frame, duration_col="time", event_col="cens")


@pytest.mark.skipif(scikit_survival_available(), reason="scikit-survival is installed")
def test_survival_forest_without_scikit_survival_is_a_clear_error(gbsg2):
    frame, schema = gbsg2
    with pytest.raises(ConfigError, match="scikit-survival"):
        small("survival_forest", schema=schema).fit(frame, duration_col="time", event_col="cens")


@pytest.mark.parametrize("change", [
    lambda f: f.assign(cens=f["cens"].where(f.index != 3, 2)),
    lambda f: f.assign(time=f["time"].astype(float).where(f.index != 3, np.nan)),
])
def test_a_record_without_a_usable_time_or_event_is_left_out_not_refused(gbsg2, change):
    frame, schema = gbsg2
    with pytest.warns(UserWarning, match="without a usable time or event.*left out"):
        fitted = small(schema=schema).fit(change(frame.copy()), duration_col="time", event_col="cens")
    assert fitted.epsilon_ <= 1.0 and len(fitted.synthetic_) > 0


def test_dp_means_start_for_survival_is_accounted_and_valid(gbsg2):
    frame, schema = gbsg2
    fitted = small(schema=schema.replace(event_rate=0.4), init="dp_means").fit(frame, duration_col="time",
                                                                             event_col="cens")
    assert [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["initialisation", "zero_order_steps"]
    assert fitted.epsilon_ <= 1.0
    assert_valid_release(fitted, schema)
    # Non-privately the start is the exact per-event-status means: event rows and censored rows
    # start at their own group's mean encoded log-time.
    from zodc.models.survival import TimeScale

    exact = small(schema=schema.replace(event_rate=0.4), init="dp_means", epsilon=float("inf"), steps=1,
                  learning_rate=1e-6, init_scale=1e-4).fit(frame, duration_col="time", event_col="cens")
    log_time = np.asarray(TimeScale.from_schema(schema).encode(frame["time"].to_numpy(float)))
    real_events = frame["cens"].to_numpy() == 1
    released = exact.table_[:, -1]
    events = exact.events_.astype(bool)
    # integer days are rounded on release: a day is ~1e-3 in encoded log-time
    np.testing.assert_allclose(released[events], log_time[real_events].mean(), atol=2e-3)
    np.testing.assert_allclose(released[~events], log_time[~real_events].mean(), atol=2e-3)


def test_soft_events_release_weighted_event_and_censored_copies_at_the_same_cost(gbsg2):
    frame, schema = gbsg2
    hard = small(schema=schema).fit(frame, duration_col="time", event_col="cens")
    soft = small(schema=schema, soft_labels=True).fit(frame, duration_col="time", event_col="cens")
    assert soft.soft_labels_ and not hard.soft_labels_
    released = soft.synthetic_
    assert list(released.columns) == list(schema.column_names) + ["sample_weight"]
    assert len(released) == 2 * ROWS and soft.table_.shape == (2 * ROWS, hard.table_.shape[1])
    np.testing.assert_array_equal(released["cens"], np.repeat([0, 1], ROWS))   # censored copies, then events
    weights = released["sample_weight"].to_numpy().reshape(2, ROWS)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-9)
    assert weights.min() >= 1e-3 and weights.max() <= 1 - 1e-3
    # the copies of a row share its features and time
    features = released.drop(columns=["cens", "sample_weight"])
    pd.testing.assert_frame_equal(features.iloc[:ROWS].reset_index(drop=True),
                                  features.iloc[ROWS:].reset_index(drop=True))
    # nominal events as without soft events; the learned weights start at 0.9 for the row's own status
    np.testing.assert_array_equal(soft.events_, hard.events_)
    own = np.where(soft.events_ == 1, weights[1], weights[0])
    assert np.all(own > 0.5) and not np.allclose(own, 0.9)           # moved, but 6 noisy steps move little
    # The weights are learned with the features: same mechanisms, same noise, same epsilon.
    assert [e.name for e in soft.ledger_.entries] == [e.name for e in hard.ledger_.entries]
    assert soft.noise_multiplier_ == hard.noise_multiplier_ and soft.epsilon_ == pytest.approx(hard.epsilon_)
    host = small(schema=schema, soft_labels=True, backend="host", steps=2).fit(frame, duration_col="time",
                                                                             event_col="cens")
    assert len(host.synthetic_) == 2 * ROWS and host.backend_ == "host"


def test_soft_events_are_refused_for_a_model_without_weights_or_a_clashing_column(gbsg2):
    frame, schema = gbsg2

    class NoWeights:
        def fit(self, X, time, event):
            return self

        def predict_survival(self, X, times):
            return np.ones((len(X), len(times)))

    with pytest.raises(ConfigError, match="soft_labels.*sample_weight"):
        small(model=NoWeights(), schema=schema, soft_labels=True).fit(frame, duration_col="time", event_col="cens")
    with pytest.raises(DataError, match="'sample_weight'"):
        small(schema=schema, soft_labels=True).fit(frame.assign(sample_weight=1.0), duration_col="time",
                                                   event_col="cens")


@pytest.mark.slow
def test_auto_soft_events_turn_on_where_the_dp_start_is_noisy():
    larynx = load_dataset("larynx")
    frame, schema = larynx.frame, larynx.schema
    fit = lambda data=frame, **kw: small(schema=schema, **kw).fit(data, duration_col=schema.time.name,
                                                                   event_col=schema.event)
    noisy = fit()                                                     # 90 records at epsilon 1: the start is noise
    assert noisy.soft_labels_ and len(noisy.synthetic_) == 2 * ROWS and "sample_weight" in noisy.synthetic_.columns
    # The rule's input, by hand: noise sd of the difference of the two DP means, per encoded coordinate.
    from zodc.privacy import GaussianEvent
    from zodc.privacy.calibration import calibrate_noise_multiplier

    width = noisy.table_.shape[1]
    sigma = calibrate_noise_multiplier(0.5, 1e-5, GaussianEvent)
    n1, n0 = len(frame) * noisy.event_rate_, len(frame) * (1 - noisy.event_rate_)
    expected = sigma * 0.5 * math.sqrt(width) * math.sqrt(1 / n1 ** 2 + 1 / n0 ** 2)
    from zodc.budget import Budget
    from zodc.start import DPMeans

    assert DPMeans().difference_noise(Budget(1.0, 1e-5), width, len(frame), noisy.event_rate_) == pytest.approx(expected)
    assert expected > 0.2
    assert not fit(epsilon=float("inf")).soft_labels_                 # no noise: fixed events
    assert not fit(epsilon=8.0).soft_labels_                          # enough epsilon for 90 records
    assert not fit(soft_labels=False).soft_labels_                    # explicit wins
    # "auto" never fails: a clashing column or a model without weights get fixed events.
    assert not fit(frame.assign(sample_weight=1.0)).soft_labels_

    class NoWeights:
        def fit(self, X, time, event):
            from zodc.models.survival import LifelinesCoxPH

            self.model_ = LifelinesCoxPH().fit(X, time, event)
            return self

        def predict_survival(self, X, times):
            return self.model_.predict_survival(X, times)

    assert not fit(model=NoWeights(), steps=1, num_directions=1).soft_labels_
    gbsg2 = load_dataset("gbsg2")                                     # 686 records: a quiet start, fixed events
    assert not small(schema=gbsg2.schema).fit(gbsg2.frame, duration_col="time", event_col="cens").soft_labels_


def test_auto_soft_events_turn_on_where_the_table_would_hold_few_event_rows():
    # nafld1 (17,549 records, 7.8 % events) at epsilon 1: the start is quiet, but 20 synthetic rows
    # would hold 1.6 event rows (a Cox fit on them is degenerate): soft events. With 80 rows (6.2
    # event rows), or without noise, fixed events. The rule reads the DP event rate and the rows only.
    from zodc.tasks.survival import SOFT_EVENTS_MIN_ROWS

    nafld1 = load_dataset("nafld1")
    frame, schema = nafld1.frame, nafld1.schema
    fit = lambda **kw: small(schema=schema, steps=1, num_directions=1, backend="host", **kw).fit(  # noqa: E731
        frame, duration_col=schema.time.name, event_col=schema.event)
    few = fit()
    assert ROWS * few.event_rate_ < SOFT_EVENTS_MIN_ROWS and few.soft_labels_
    assert len(few.synthetic_) == 2 * ROWS and "sample_weight" in few.synthetic_.columns
    assert 80 * few.event_rate_ > SOFT_EVENTS_MIN_ROWS and not fit(rows=80).soft_labels_
    assert not fit(epsilon=float("inf")).soft_labels_
    # D' = D less one record: its DP event rate moves by the noise's share of one record, the decision
    # and the release's structure do not.
    neighbour = small(schema=schema, steps=1, num_directions=1, backend="host").fit(
        frame.iloc[1:], duration_col=schema.time.name, event_col=schema.event)
    assert neighbour.soft_labels_ and neighbour.event_rate_ != few.event_rate_
    assert list(neighbour.synthetic_.columns) == list(few.synthetic_.columns)
    assert len(neighbour.synthetic_) == len(few.synthetic_)
    assert [e.name for e in neighbour.ledger_.entries] == [e.name for e in few.ledger_.entries]


def test_runs_on_other_time_bounds_share_one_compiled_step():
    # A DP schema gives every run its own time bounds (and so its own grid): they travel as data, so the
    # second run neither traces nor compiles the step again (jit's cache of the chunk program).
    import dataclasses

    import zodc.condense as condense

    data = load_dataset("gbsg2")
    frame = data.frame
    sizes = []
    for upper in (3000.0, 4500.0):
        schema = dataclasses.replace(data.schema, time=dataclasses.replace(data.schema.time, upper=upper))
        fitted = Condenser("cox", steps=25, rows=20, num_directions=4, schema=schema, random_state=3).fit(
            frame, duration_col=schema.time.name, event_col=schema.event)
        sizes.append(condense._cached_chunk._cache_size())
        assert fitted.time_grid_[-1] <= upper
    assert sizes[1] == sizes[0]


def test_a_survival_search_runs_its_candidates_as_one_program_and_releases_their_separate_tables(monkeypatch):
    # The candidates' data carry their own grid and time scale (nested leaves, stacked per candidate).
    import zodc.estimator as estimator
    from tests.test_tuning import _batch_spy
    from zodc import PrivateSearch

    data = load_dataset("gbsg2")
    sizes = _batch_spy(monkeypatch)
    make = lambda: PrivateSearch(Condenser("cox", steps=20, rows=20, num_directions=4, schema=data.schema),  # noqa: E731
                                 {"learning_rate": [0.02, 0.05]}, random_state=1)
    batched = make().fit(data.frame, duration_col="time", event_col="cens")
    monkeypatch.setattr(estimator, "BATCH", 1)
    alone = make().fit(data.frame, duration_col="time", event_col="cens")
    assert sizes == [2] and batched.best_index_ == alone.best_index_
    for one, other in zip(batched.condensers_, alone.condensers_):
        np.testing.assert_allclose(one.table_, other.table_, rtol=0, atol=1e-4)
