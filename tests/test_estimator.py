import json
import math
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from zodc import Condenser
from zodc.data.datasets import load_dataset
from zodc.errors import ConfigError, DataError
from zodc.privacy import RdpAccountant
from zodc.privacy.accounting import calibration_pld_interval, epsilon_bounds


@pytest.fixture(scope="module")
def cancer():
    data = load_dataset("breast_cancer")
    target = data.schema.target
    return data.frame.drop(columns=[target]), data.frame[target], data.schema


def small(**overrides):
    params = dict(epsilon=1.0, steps=12, num_directions=4, rows_per_class=3, backend="host", random_state=0)
    params.update(overrides)
    return Condenser("tree", **params)


def test_seeded_run_is_reproducible_and_within_budget(cancer):
    X, y, schema = cancer
    first = small(schema=schema).fit(X, y)
    second = small(schema=schema).fit(X, y)
    pd.testing.assert_frame_equal(first.synthetic_, second.synthetic_)
    other = small(schema=schema, random_state=1).fit(X, y)
    assert not first.synthetic_.equals(other.synthetic_)

    assert first.synthetic_.shape == (6, X.shape[1] + 1)
    assert list(first.synthetic_.columns) == list(schema.column_names)
    assert first.synthetic_[schema.target].value_counts().to_dict() == {"malignant": 3, "benign": 3}
    assert 0.99 <= first.epsilon_ <= 1.0 and first.noise_multiplier_ > 0
    # Every released value lies within the public bounds.
    for column in schema.feature_columns:
        values = first.synthetic_[column.name]
        assert values.between(column.lower, column.upper).all()
    # The ledger holds the DP-means start and the steps (schema and proportions are public), and
    # re-accounts to epsilon_.
    ledger = first.ledger_.to_dict(first.delta_)
    json.dumps(ledger)
    assert [entry.name for entry in first.ledger_.entries if entry.name not in ("record_count", "noise_sampling")] == [
        "initialisation", "adaptive_steps", "zero_order_steps"]
    accountant = RdpAccountant()
    for entry in first.ledger_.entries:
        accountant.compose(entry.event)
    # Re-accounted: the tighter of RDP and the PLD the steps were calibrated on; the guarantee is the
    # larger of that and the bound through the steps' reference Gaussian (their p came from a DP count).
    bounds = epsilon_bounds([entry.event for entry in first.ledger_.entries], 1e-5,
                            value_discretization_interval=calibration_pld_interval(1.0))
    assert first.epsilon_ == pytest.approx(max(bounds["epsilon"], first.steps_reference_["epsilon"]))
    assert bounds["epsilon"] <= first.epsilon_ <= 1.0 and bounds["epsilon"] <= accountant.get_epsilon(1e-5)
    assert first.report()["epsilon"] >= first.steps_reference_["epsilon"]


def test_non_private_mode_has_no_noise_and_no_clip(cancer):
    X, y, schema = cancer
    fitted = small(schema=schema, epsilon=math.inf).fit(X, y)
    assert fitted.noise_multiplier_ == 0.0 and math.isinf(fitted.l2_norm_clip_) and math.isinf(fitted.epsilon_)


def test_schema_without_proportions_spends_and_accounts_a_dp_count(cancer):
    X, y, schema = cancer
    fitted = small(schema=schema.replace(class_proportions=None)).fit(X, y)
    names = [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")]
    assert names == ["class_proportions", "initialisation", "zero_order_steps"]
    assert fitted.epsilon_ <= 1.0
    assert sum(fitted.class_weights_[i] * p for i, p in enumerate(np.bincount(fitted.labels_) / 6)) > 0


def test_non_private_mode_with_a_schema_without_proportions_uses_the_exact_ones(cancer):
    X, y, schema = cancer
    fitted = small(schema=schema.replace(class_proportions=None), epsilon=math.inf).fit(X, y)
    assert [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["zero_order_steps"]
    np.testing.assert_allclose(fitted.class_weights_, [569 / (2 * 212), 569 / (2 * 357)])


@pytest.mark.filterwarnings("ignore:column .* outside the schema bounds")  # DP bounds clip sparse tails
@pytest.mark.slow
def test_no_schema_estimates_one_with_dp_and_accounts_it(cancer):
    X, y, _ = cancer
    # Few columns, generous budget: DP bounds need enough records per column (see dp_schema).
    columns = ["mean radius", "mean texture", "mean smoothness"]
    fitted = small(epsilon=8.0, schema=None).fit(X[columns], y)
    assert [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["schema", "schema", "initialisation", "zero_order_steps"]
    assert fitted.epsilon_ <= 8.0
    estimated = fitted.schema_.column("mean radius")
    assert estimated.lower <= X["mean radius"].quantile(0.05) and estimated.upper >= X["mean radius"].quantile(0.95)


@pytest.mark.parametrize("param, value, match", [
    ("epsilon", 0, "`epsilon` must be > 0"),
    ("epsilon", -1, "`epsilon` must be > 0"),
    ("delta", 0.0, r"`delta` must be in \(0, 1\)"),
    ("delta", 1.5, r"`delta` must be in \(0, 1\)"),
    ("steps", 0, "`steps` must be an integer >= 1"),
    ("rows_per_class", 2.5, "`rows_per_class`"),
    ("loss", "hinge", "`loss` must be one of"),
    ("backend", "gpu", "`backend` must be one of"),
    ("scheme", "backward", "`scheme` must be one of"),
    ("directions", "sparse", "`directions` must be one of"),
    ("subspace", 0, "`subspace` must be an integer >= 1"),
    ("subspace", 2.5, "`subspace`"),
    ("subspace", 10_000, "`subspace` must be at most the learnable table's 180 cells"),
    ("preprocessing_share", "most", "`preprocessing_share` must be"),
    ("preprocessing_share", 1.0, "`preprocessing_share` must be"),
])
def test_bad_hyperparameters_are_named(cancer, param, value, match):
    X, y, schema = cancer
    with pytest.raises(ConfigError, match=match):
        small(schema=schema, **{param: value}).fit(X, y)


def test_unknown_model_is_named(cancer):
    X, y, schema = cancer
    with pytest.raises(ConfigError, match="`model` must be one of"):
        Condenser("svm", schema=schema).fit(X, y)


def test_bad_data_is_refused(cancer):
    X, y, schema = cancer
    # The class set is public (the task's definition): a single label is a task error, not a DP decision.
    with pytest.raises(DataError, match=r"1 distinct labels \(one class\); a target needs 2"):
        small().fit(X.iloc[:300, :1], pd.Series(["a"] * 300, name="diagnosis"))
    with_nan = X.copy()
    with_nan.iloc[3, 2] = np.nan
    with pytest.warns(UserWarning, match="has missing values"):  # that record's value, not a refusal
        small(schema=schema).fit(with_nan, y)
    with pytest.raises(DataError, match=r"not more than the synthetic table's 600 rows \(2 classes x 300\)"):
        small(schema=schema, rows_per_class=300).fit(X, y)
    text = X[["mean radius"]].copy()
    text["note"] = [f"patient {i}" for i in range(len(text))]
    # Free text is not refused (one record could tip a rule): no level passes the DP threshold, so
    # the column is left out of the estimated schema.
    with pytest.warns(UserWarning, match="'note': no value occurs often enough to be released"):
        fitted = small().fit(text, y)
    assert "note" not in fitted.schema_.column_names


def test_out_of_bounds_values_clip_with_warning_or_raise(cancer):
    X, y, schema = cancer
    shifted = X.copy()
    shifted.loc[shifted.index[0], "mean radius"] = 1e4
    with pytest.warns(UserWarning, match="mean radius"):
        small(schema=schema, steps=2).fit(shifted, y)
    with pytest.raises(DataError, match="mean radius"):
        small(schema=schema, steps=2, on_out_of_bounds="raise").fit(shifted, y)


def test_sklearn_conventions(cancer):
    estimator = Condenser("forest", epsilon=2.0, rows_per_class=5)
    assert estimator.get_params()["epsilon"] == 2.0
    cloned = clone(estimator).set_params(epsilon=0.5)
    assert cloned.epsilon == 0.5 and estimator.epsilon == 2.0
    assert not hasattr(estimator, "synthetic_")


@pytest.fixture(scope="module")
def wine():
    """A real three-class table (scikit-learn's wine data) with a test-only schema."""
    from sklearn.datasets import load_wine

    from zodc.data.schema import CategoricalColumn, NumericColumn, Schema

    data = load_wine(as_frame=True)
    X = data.data[["alcohol", "malic_acid", "flavanoids", "color_intensity", "proline"]]
    y = data.target.map({0: "cultivar_a", 1: "cultivar_b", 2: "cultivar_c"}).rename("cultivar")
    columns = [NumericColumn(name, 0.0, float(np.ceil(X[name].max() * 1.5))) for name in X.columns]
    schema = Schema(name="wine", task="classification", target="cultivar",
                    columns=tuple(columns) + (CategoricalColumn("cultivar", ("cultivar_a", "cultivar_b", "cultivar_c")),),
                    class_proportions=(59 / 178, 71 / 178, 48 / 178), source="test fixture")
    return X, y, schema


@pytest.mark.parametrize("model, backend", [("logistic", "host"), ("logistic", "native"), ("tree", "native")])
def test_multi_class(wine, model, backend):
    X, y, schema = wine
    fitted = Condenser(model, epsilon=2.0, steps=10, num_directions=4, rows_per_class=3, schema=schema,
                       backend=backend, random_state=0).fit(X, y)
    assert fitted.backend_ == backend
    assert fitted.synthetic_["cultivar"].value_counts().to_dict() == {"cultivar_a": 3, "cultivar_b": 3, "cultivar_c": 3}
    assert fitted.epsilon_ <= 2.0


def test_native_backend_is_reproducible_and_the_default(cancer):
    X, y, schema = cancer
    first = Condenser("tree", epsilon=1.0, steps=10, num_directions=4, rows_per_class=3, schema=schema, random_state=5).fit(X, y)
    second = Condenser("tree", epsilon=1.0, steps=10, num_directions=4, rows_per_class=3, schema=schema, random_state=5).fit(X, y)
    assert first.backend_ == "native"
    pd.testing.assert_frame_equal(first.synthetic_, second.synthetic_)


def test_native_fits_of_one_configuration_share_one_compiled_step(cancer):
    from zodc import condense

    X, y, schema = cancer
    make = lambda seed: Condenser("tree", epsilon=1.0, steps=10, num_directions=4, rows_per_class=3, schema=schema,
                                  random_state=seed)
    make(11).fit(X, y)
    before = condense._cached_chunk._cache_size()
    make(12).fit(X, y)  # another seed: an equal condenser, so jit's cache has the program: no new entry
    after = condense._cached_chunk._cache_size()
    assert after == before
    make(13).set_params(num_directions=5).fit(X, y)  # another shape of program: a new entry
    assert condense._cached_chunk._cache_size() > after


def test_direction_kinds_cost_the_same_privacy(cancer):
    X, y, schema = cancer
    make = lambda kind: Condenser("tree", epsilon=1.0, steps=10, num_directions=4, rows_per_class=3, schema=schema,
                                  directions=kind, random_state=2).fit(X, y)
    gaussian, rows = make("gaussian"), make("rows")
    # Directions are data independent: the same calibration and ledger, a different table.
    assert rows.noise_multiplier_ == gaussian.noise_multiplier_ and rows.epsilon_ == gaussian.epsilon_
    assert not rows.synthetic_.equals(gaussian.synthetic_)
    assert rows.report()["directions"] == "rows" and gaussian.report()["directions"] == "gaussian"


def test_subspace_basis_is_orthogonal_and_scaled():
    from zodc.condense import subspace_basis

    basis = np.asarray(subspace_basis(jax.random.key(0), 5, 40))
    np.testing.assert_allclose(basis @ basis.T, 8.0 * np.eye(5), atol=1e-4)  # size / r = 40 / 5


def test_subspace_learns_along_one_public_line(cancer):
    # With subspace=1 every step moves the table along one basis vector: tables after 25, 50 and 75
    # steps (same seed, so the same start and basis) differ by multiples of one (m x d) pattern.
    # (Multiples of the estimator's 25-step chunk: one compiled program per configuration, not three.)
    X, y, schema = cancer
    tables = [Condenser("tree", epsilon=math.inf, steps=steps, num_directions=4, rows_per_class=3, schema=schema,
                        subspace=1, random_state=6).fit(X, y).table_ for steps in (25, 50, 75)]
    inside = np.all([np.abs(t) < 0.999 for t in tables], axis=0)  # cells the box did not clip
    moves = np.stack([(tables[1] - tables[0])[inside], (tables[2] - tables[0])[inside]])
    singular = np.linalg.svd(moves, compute_uv=False)
    assert singular[0] > 1e-3 and singular[1] < 1e-4 * singular[0]
    # Without the subspace the same moves span more than one line.
    free = [Condenser("tree", epsilon=math.inf, steps=steps, num_directions=4, rows_per_class=3, schema=schema,
                      random_state=6).fit(X, y).table_ for steps in (25, 50, 75)]
    inside = np.all([np.abs(t) < 0.999 for t in free], axis=0)
    moves = np.stack([(free[1] - free[0])[inside], (free[2] - free[0])[inside]])
    singular = np.linalg.svd(moves, compute_uv=False)
    assert singular[1] > 1e-2 * singular[0]


def test_subspace_costs_the_same_privacy_and_is_reported(cancer):
    X, y, schema = cancer
    make = lambda subspace: Condenser("tree", epsilon=1.0, steps=10, num_directions=4, rows_per_class=3,
                                      schema=schema, subspace=subspace, random_state=2).fit(X, y)
    full, low = make(None), make(8)
    assert low.noise_multiplier_ == full.noise_multiplier_ and low.epsilon_ == full.epsilon_
    assert not low.synthetic_.equals(full.synthetic_) and low.synthetic_.shape == full.synthetic_.shape
    assert low.report()["subspace"] == 8 and full.report()["subspace"] is None


def test_custom_host_estimator(cancer):
    from sklearn.neighbors import KNeighborsClassifier

    X, y, schema = cancer
    fitted = small(schema=schema, steps=4).set_params(model=KNeighborsClassifier(n_neighbors=3)).fit(X, y)
    assert fitted.backend_ == "host" and fitted.synthetic_.shape == (6, 31)


def test_three_classes_or_more_default_to_a_smaller_step():
    # Round 36: with three classes or more the default learning rate is 0.02 (the class set is the
    # task's public definition, so no record decides it); two classes keep 0.05, and a given rate
    # or optimizer is kept whatever the classes.
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y3 = pd.Series(np.array(["x", "y", "z"])[rng.integers(0, 3, 300)], name="y")
    y2 = y3.where(y3 != "z", "y")
    quick = dict(steps=2, num_directions=4, epsilon=float("inf"), random_state=0, rows_per_class=2)
    assert Condenser("tree", **quick).fit(X, y3).learning_rate_ == 0.02
    assert Condenser("tree", **quick).fit(X, y2).learning_rate_ == 0.05
    assert Condenser("tree", learning_rate=0.07, **quick).fit(X, y3).learning_rate_ == 0.07
    # Neighbours with declared classes (a categorical y): D' = D plus one record holding a third
    # label. Its record is left out, the class set stays the declared one, and so does the step.
    declared = pd.Series(pd.Categorical(y2, categories=["x", "y"]), name="y")
    X_prime = pd.concat([X, pd.DataFrame({"a": [0.0], "b": [0.0]})], ignore_index=True)
    y_prime = pd.Series(pd.Categorical(list(y2) + ["z"], categories=["x", "y"]), name="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        steps = [Condenser("tree", **quick).fit(features, labels).learning_rate_
                 for features, labels in ((X, declared), (X_prime, y_prime))]
    assert steps == [0.05, 0.05]


def test_dp_means_start_is_accounted_and_the_release_still_meets_the_target(cancer):
    X, y, schema = cancer
    fitted = small(schema=schema).fit(X, y)  # classification default: init="auto" -> "dp_means"
    assert fitted.init_ == "dp_means" and fitted.learning_rate_ == 0.05 and fitted.init_scale_ == 0.1
    entries = fitted.ledger_.entries
    assert [entry.name for entry in entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["initialisation", "zero_order_steps"]
    assert 0.99 <= fitted.epsilon_ <= 1.0
    accountant = RdpAccountant()
    for entry in entries:
        accountant.compose(entry.event)
    # Re-accounted: the tighter of RDP and the PLD the steps were calibrated on, below the guarantee
    # through the steps' reference Gaussian.
    bounds = epsilon_bounds([entry.event for entry in entries], 1e-5,
                            value_discretization_interval=calibration_pld_interval(1.0))
    assert fitted.epsilon_ == pytest.approx(max(bounds["epsilon"], fitted.steps_reference_["epsilon"]))
    assert bounds["epsilon"] <= accountant.get_epsilon(1e-5)
    # Half the budget went to the start, so the steps are noisier than with a noise start.
    noise_start = small(schema=schema, init="noise").fit(X, y)
    assert [entry.name for entry in noise_start.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["zero_order_steps"]
    assert fitted.noise_multiplier_ > noise_start.noise_multiplier_


def test_non_private_dp_means_start_sits_at_the_exact_class_means(cancer):
    X, y, schema = cancer
    from zodc.data.transform import TableEncoder

    fitted = small(schema=schema, epsilon=math.inf, steps=1, learning_rate=1e-6, init_scale=1e-4,
                   rows_per_class=4).fit(X, y)
    encoded = TableEncoder(schema).encode(pd.concat([X, y], axis=1))
    real = np.asarray(encoded.X)
    for label in range(2):
        expected = real[np.asarray(encoded.y) == label].mean(axis=0)
        # decoding rounds integer columns: compare in encoded units, loosely
        np.testing.assert_allclose(fitted.table_[fitted.labels_ == label].mean(axis=0), expected, atol=0.02)
    assert [entry.name for entry in fitted.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["zero_order_steps"]


def test_bad_init_parameters_are_refused_by_name(cancer):
    X, y, schema = cancer
    with pytest.raises(ConfigError, match="`init`"):
        small(schema=schema, init="kmeans").fit(X, y)
    with pytest.raises(ConfigError, match="init_share"):
        small(schema=schema, init_share=1.0).fit(X, y)
    with pytest.raises(ConfigError, match="init_scale"):
        small(schema=schema, init_scale=-0.1).fit(X, y)
    with pytest.raises(ConfigError, match="init_clip"):
        small(schema=schema, init_clip=0.0).fit(X, y)
    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(ConfigError, match="init_centre"):
            small(schema=schema, init_centre=bad).fit(X, y)


def test_a_dp_centre_splits_the_start_at_the_same_cost(cancer):
    # init_centre spends a share of the start on a DP mean of all rows; the two Gaussian mechanisms'
    # multipliers sigma / sqrt(c), sigma / sqrt(1 - c) compose to the one mechanism's sigma, so the
    # steps get the same noise and the release the same epsilon as the one-mechanism start.
    X, y, schema = cancer
    one = small(schema=schema).fit(X, y)
    two = small(schema=schema, init_centre=0.2, init_clip=0.3).fit(X, y)
    assert [entry.name for entry in two.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["initialisation_centre", "initialisation",
                                                             "zero_order_steps"]
    named = lambda model: {entry.name: entry.event for entry in model.ledger_.entries}
    sigma = named(one)["initialisation"].noise_multiplier
    centre, means = (named(two)[name].noise_multiplier for name in ("initialisation_centre", "initialisation"))
    assert centre == pytest.approx(sigma / math.sqrt(0.2)) and means == pytest.approx(sigma / math.sqrt(0.8))
    assert two.noise_multiplier_ == pytest.approx(one.noise_multiplier_, rel=1e-6)
    assert two.epsilon_ == pytest.approx(one.epsilon_, rel=1e-6) and two.epsilon_ <= 1.0
    assert not np.allclose(two.table_, one.table_)
    # Without noise there is nothing to centre: the exact means, one entry fewer.
    exact = small(schema=schema, epsilon=math.inf, init_centre=0.2).fit(X, y)
    assert [entry.name for entry in exact.ledger_.entries if entry.name not in ("record_count", "noise_sampling", "adaptive_steps")] == ["zero_order_steps"]


def test_a_centre_lets_a_small_clip_keep_the_class_means(cancer):
    # Breast cancer's encoded rows lie about 0.6 sqrt(d) from the origin but 0.2 sqrt(d) from their
    # mean: a 0.3 sqrt(d) clip around the origin shrinks the start towards 0, around the DP centre
    # it does not. Epsilon is large so the noise does not hide the difference.
    X, y, schema = cancer
    from zodc.data.transform import TableEncoder

    encoded = TableEncoder(schema).encode(pd.concat([X, y], axis=1))
    real, labels = np.asarray(encoded.X), np.asarray(encoded.y)
    exact = np.stack([real[labels == g].mean(axis=0) for g in range(2)])
    settings = dict(schema=schema, epsilon=1e4, steps=1, learning_rate=1e-6, init_scale=1e-4, rows_per_class=4,
                    init_clip=0.3)
    errors = {}
    for centre in (0.0, 0.2):
        fitted = small(init_centre=centre, **settings).fit(X, y)
        start = np.stack([fitted.table_[fitted.labels_ == g].mean(axis=0) for g in range(2)])
        errors[centre] = np.abs(start - exact).max()
    assert errors[0.2] < 0.1 and errors[0.0] > 0.3  # measured: 0.04 and 0.49


def test_init_clip_bounds_each_row_before_the_means(cancer):
    # A tiny clip shrinks every row, hence every mean, towards the centre of the encoded box: the
    # start (and, after one negligible step, the release) sits at the centre, not at the class means.
    X, y, schema = cancer
    fitted = small(schema=schema, steps=1, learning_rate=1e-6, init_scale=1e-4, init_clip=1e-3).fit(X, y)
    assert np.abs(fitted.table_).max() < 0.05
    wide = small(schema=schema, steps=1, learning_rate=1e-6, init_scale=1e-4, init_clip=1.0).fit(X, y)
    assert np.abs(wide.table_).max() > 0.2


def test_epsilon_inf_runs_without_a_schema_on_the_exact_schema(cancer):
    # The non-private method needs no public schema: the schema is computed exactly (min, max, every
    # level), nothing enters the ledger for it, and the fit runs.
    X, y, _ = cancer
    fitted = Condenser("tree", epsilon=math.inf, steps=2, num_directions=4, random_state=1).fit(X.iloc[:, :3], y)
    assert "WITHOUT noise" in fitted.schema_.source
    for name in X.columns[:3]:
        column = fitted.schema_.column(name)
        assert column.lower <= X[name].min() and column.upper >= X[name].max()
    assert fitted.schema_.target_column.categories == ("benign", "malignant")
    assert not any(entry.name == "schema" for entry in fitted.ledger_.entries)
    assert len(fitted.synthetic_) == 20
