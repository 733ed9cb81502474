"""The owner's utility report never falls back silently (``on_failure="report"``): a constant column, a
failed fit and missing values are handled alike for the synthetic table, the random subsets and the full
data, and the report says what was done. Small seeded frames, no condensation."""

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from zodc.evaluate.survival import concordance_index, survival_utility
from zodc.evaluate.utility import auroc, classification_utility, short_message
from zodc.models.survival import LifelinesCoxPH

NAMES = ["a", "b", "c", "d"]


def _classification(seed: int, n: int = 240):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] - X[:, 1] + 0.4 * X[:, 2] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def _survival(seed: int, n: int = 160):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    time = rng.exponential(np.exp(-(0.8 * X[:, 0] - 0.5 * X[:, 1])))
    event = (rng.uniform(size=n) < 0.7).astype(np.int64)
    return X, time, event


@pytest.fixture(scope="module")
def classification_split():
    X, y = _classification(11)
    return (X[:160], y[:160]), (X[160:], y[160:])


@pytest.fixture(scope="module")
def survival_split():
    X, time, event = _survival(12)
    return (X[:110], time[:110], event[:110]), (X[110:], time[110:], event[110:])


def _report(estimator, synthetic, train, test, **options):
    return classification_utility(estimator, synthetic, train, test, num_classes=2, rows_per_class=6,
                                  random_state=3, num_random_subsets=3, on_failure="report",
                                  feature_names=NAMES, **options)


def test_a_column_constant_in_the_synthetic_table_is_left_out_of_its_fit_only(classification_split):
    train, test = classification_split
    X = train[0][:12].copy()
    X[:, 2] = 0.25                                            # constant in the synthetic table only
    report = _report(LogisticRegression(), (X, train[1][:12]), train, test)
    assert report["dropped_constant_columns"] == 1
    assert report["preprocessing"]["dropped_columns"] == [{"column": "c", "reason": "constant in synthetic"}]
    keep = [0, 1, 3]
    full = LogisticRegression().fit(train[0], train[1])                     # the full data keeps it
    assert report["full_data"]["auroc"] == pytest.approx(auroc(test[1], full.predict_proba(test[0])))
    synthetic = LogisticRegression().fit(X[:, keep], train[1][:12])
    assert report["synthetic"]["auroc"] == pytest.approx(auroc(test[1], synthetic.predict_proba(test[0][:, keep])))
    assert report["failures"] == [] and report["random_subset"]["num_failed"] == 0


def test_a_column_constant_in_a_random_subset_is_left_out_of_that_subsets_fit_only(survival_split):
    train, test = survival_split
    X_train = train[0].copy()
    X_train[:, 2] = 0.0
    X_train[5, 2] = 1.0                      # one record has it: constant in almost every small subset
    train = (X_train,) + train[1:]
    synthetic = (train[0][:30].copy(),) + tuple(a[:30] for a in train[1:])
    synthetic[0][:, 2] = np.linspace(0, 1, 30)                   # varies in the synthetic table
    report = survival_utility(LifelinesCoxPH(), synthetic, train, test, num_rows=20, random_state=2,
                              num_random_subsets=3, on_failure="report", feature_names=NAMES[:3])
    (dropped,) = report["preprocessing"]["dropped_columns"]
    assert dropped["column"] == "c" and dropped["reason"].startswith("constant in random_subset (")
    assert "of 3 draws)" in dropped["reason"] and "synthetic" not in dropped["reason"]
    model = LifelinesCoxPH().fit(train[0], train[1], train[2])               # the full data keeps it
    assert report["full_data"]["c_index"] == pytest.approx(
        concordance_index(test[1], model.predict_risk(test[0]), test[2]))
    model = LifelinesCoxPH().fit(synthetic[0], synthetic[1], synthetic[2])   # so does the synthetic table
    assert report["synthetic"]["c_index"] == pytest.approx(
        concordance_index(test[1], model.predict_risk(test[0]), test[2]))
    assert report["failures"] == [] and all(report[k]["c_index"] is not None for k in ("synthetic", "full_data"))


class _FailsOnSmallTables(BaseEstimator, ClassifierMixin):
    """Fits a tree, but raises on fewer than 50 rows (the message quotes a value, as real errors do)."""

    def fit(self, X, y, sample_weight=None):
        if len(X) < 50:
            raise RuntimeError(f"singular matrix at value {X[0, 0]:.5f} in column x2")
        self.model_ = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def test_a_fit_that_raises_is_null_with_its_error_never_chance(classification_split):
    train, test = classification_split
    synthetic = (train[0][:12], train[1][:12])
    report = _report(_FailsOnSmallTables(), synthetic, train, test)
    assert report["synthetic"] == {"auroc": None, "balanced_accuracy": None, "fit_failed": True}
    assert report["random_subset"]["auroc"] is None and report["random_subset"]["num_failed"] == 3
    assert report["full_data"]["fit_failed"] is False and report["full_data"]["auroc"] > 0.7
    first = report["failures"][0]
    assert first == {"table": "synthetic", "stage": "fit", "error": "RuntimeError",
                     "message": "singular matrix at value # in column x2"}        # the value is redacted
    assert [f["table"] for f in report["failures"][1:]] == [f"random_subset (draw {i} of 3)" for i in (1, 2, 3)]
    # The default keeps the previous behaviour for callers that average many tables: chance.
    legacy = classification_utility(_FailsOnSmallTables(), synthetic, train, test, num_classes=2, rows_per_class=6)
    assert legacy["synthetic"]["auroc"] == 0.5 and "failures" not in legacy


def test_a_survival_fit_that_fails_is_null_with_its_error(survival_split):
    train, test = survival_split
    synthetic = (train[0][:20], train[1][:20], np.zeros(20, dtype=int))      # no event: Cox is not identified
    report = survival_utility("cox", synthetic, train, test, num_rows=20, random_state=1, num_random_subsets=2,
                              on_failure="report")
    assert report["synthetic"] == {"c_index": None, "fit_failed": True}
    assert report["failures"] == [{"table": "synthetic", "stage": "fit", "error": "ValueError",
                                   "message": "`event` has no event (all censored): the Cox model is not identified."}]
    assert 0.5 < report["full_data"]["c_index"] <= 1 and report["random_subset"]["c_index_sd"] is not None


def test_short_messages_keep_names_and_drop_numbers():
    assert short_message(ValueError("x12 has 3.25e-4 and -7 at row 41")) == "x12 has # and # at row #"
    assert len(short_message(ValueError("y" * 500))) == 160
    assert short_message(KeyError()) == ""


def _with_nan(X, seed: int, share: float = 0.1):
    X = X.copy()
    X[np.random.default_rng(seed).uniform(size=X.shape) < share] = np.nan
    return X


def test_missing_values_go_as_they_are_to_a_tree_and_are_imputed_per_table_for_logistic(classification_split):
    (X_train, y_train), (X_test, y_test) = classification_split
    X_train, X_test = _with_nan(X_train, 1), _with_nan(X_test, 2)
    X_synthetic, y_synthetic = _with_nan(X_train[:12], 3, 0.2), y_train[:12]
    tree = DecisionTreeClassifier(max_depth=3, random_state=0)
    report = _report(tree, (X_synthetic, y_synthetic), (X_train, y_train), (X_test, y_test))
    missing = report["preprocessing"]["missing_values"]
    assert missing["model_accepts_nan"] is True and "as they are" in missing["rule"]
    assert missing["missing_cells"] == {"synthetic": int(np.isnan(X_synthetic).sum()),
                                        "full_data": int(np.isnan(X_train).sum()), "test": int(np.isnan(X_test).sum())}
    fitted = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_synthetic, y_synthetic)
    assert report["synthetic"]["auroc"] == pytest.approx(auroc(y_test, fitted.predict_proba(X_test)))

    report = _report(LogisticRegression(), (X_synthetic, y_synthetic), (X_train, y_train), (X_test, y_test))
    missing = report["preprocessing"]["missing_values"]
    assert missing["model_accepts_nan"] is False and "median imputation" in missing["rule"]
    assert report["failures"] == []
    for X, y, key in ((X_synthetic, y_synthetic, "synthetic"), (X_train, y_train, "full_data")):
        medians = np.nanmedian(X, axis=0)                       # each training table's own medians
        fitted = LogisticRegression().fit(np.where(np.isnan(X), medians, X), y)
        expected = auroc(y_test, fitted.predict_proba(np.where(np.isnan(X_test), medians, X_test)))
        assert report[key]["auroc"] == pytest.approx(expected)


def test_missing_values_are_imputed_per_table_for_cox(survival_split):
    (X_train, time, event), (X_test, time_test, event_test) = survival_split
    X_train, X_test = _with_nan(X_train, 4), _with_nan(X_test, 5)
    synthetic = (_with_nan(X_train[:30], 6, 0.2), time[:30], event[:30])
    report = survival_utility("cox", synthetic, (X_train, time, event), (X_test, time_test, event_test), num_rows=30,
                              random_state=1, num_random_subsets=2, on_failure="report")
    missing = report["preprocessing"]["missing_values"]
    assert missing["model_accepts_nan"] is False and missing["missing_cells"]["synthetic"] > 0
    assert report["failures"] == []
    medians = np.nanmedian(synthetic[0], axis=0)
    model = LifelinesCoxPH().fit(np.where(np.isnan(synthetic[0]), medians, synthetic[0]), time[:30], event[:30])
    risk = model.predict_risk(np.where(np.isnan(X_test), medians, X_test))
    assert report["synthetic"]["c_index"] == pytest.approx(concordance_index(time_test, risk, event_test))


def test_the_cli_encoder_keeps_missing_numbers_as_nan_and_drops_weights_with_their_rows():
    from zodc.evaluate.heldout import utility_encoder as _encoder_fn
    from zodc.data.datasets import load_dataset

    data = load_dataset("breast_cancer")
    frame = data.frame.iloc[:6].copy()
    frame.loc[frame.index[1], "mean radius"] = np.nan
    frame["mean texture"] = frame["mean texture"].astype(object)
    frame.loc[frame.index[2], "mean texture"] = "not a number"
    frame.loc[frame.index[4], data.schema.target] = None                 # no class: its record is left out
    encode = _encoder_fn(SimpleNamespace(schema_=data.schema))
    encoded, weight = encode(frame, np.arange(6.0), synthetic=True)
    assert encoded.X.shape == (5, 30) and weight.tolist() == [0.0, 1.0, 2.0, 3.0, 5.0]
    radius, texture = (list(encode.feature_names).index(n) for n in ("mean radius", "mean texture"))
    assert np.isnan(encoded.X[1, radius]) and np.isnan(encoded.X[2, texture])
    assert np.isnan(encoded.X).sum() == 2
