import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from zodc.data import TableEncoder, load_dataset, load_schema, validate_table
from zodc.errors import DataError

from tests.data.test_schema import small_schema, survival_schema
from tests.data.test_validation import good_survival_frame


def test_layout_and_encoding_values():
    encoder = TableEncoder(small_schema())
    blocks = {b.name: b for b in encoder.feature_blocks}
    assert [(b.name, b.start, b.stop, b.kind) for b in encoder.feature_blocks] == [
        ("age", 0, 1, "numeric"), ("sex", 1, 2, "binary"), ("dose", 2, 3, "numeric"), ("grade", 3, 6, "onehot"),
    ]
    assert encoder.n_encoded == 6
    frame = pd.DataFrame({"age": [18, 100, 59], "sex": ["male", "female", "male"], "dose": [0.0, 2.5, 1.25],
                          "grade": [1, 3, 2], "outcome": ["no", "yes", "yes"]})
    table = encoder.encode(frame)
    assert table.X.dtype == np.float32 and table.y.dtype == np.int32
    np.testing.assert_allclose(table.X[:, blocks["age"].slice].ravel(), [-1, 1, 0])
    np.testing.assert_allclose(table.X[:, blocks["sex"].slice].ravel(), [-1, 1, -1])
    np.testing.assert_allclose(table.X[:, blocks["dose"].slice].ravel(), [-1, 1, 0])
    np.testing.assert_allclose(table.X[:, blocks["grade"].slice], [[1, -1, -1], [-1, -1, 1], [-1, 1, -1]])
    assert table.y.tolist() == [0, 1, 1] and table.time is None


@pytest.mark.parametrize("name", ["breast_cancer", "diabetes_progression", "gbsg2_recurrence_3y", "gbsg2", "lung",
                                  "kidney_transplant", "larynx"])
def test_round_trip_on_bundled_data(name):
    data = load_dataset(name)
    encoder = TableEncoder(data.schema)
    table = encoder.encode(data.frame)
    assert table.X.shape == (len(data.frame), encoder.n_encoded)
    assert np.abs(table.X).max() <= 1.0
    back = encoder.decode(table.X, y=table.y, time=table.time, event=table.event)
    assert list(back.columns) == list(data.frame.columns)
    for column in data.schema.columns + ((data.schema.time,) if data.schema.time else ()):
        if hasattr(column, "categories") or column.integer:
            assert back[column.name].tolist() == data.frame[column.name].tolist(), column.name
            assert back[column.name].dtype == data.frame[column.name].dtype, column.name
        else:
            np.testing.assert_allclose(back[column.name], data.frame[column.name], rtol=1e-5,
                                       atol=1e-6 * (column.upper - column.lower))
    np.testing.assert_array_equal(encoder.project(table.X), table.X)


def test_decode_accepts_scores_and_soft_values():
    encoder = TableEncoder(small_schema())
    X = np.zeros((3, encoder.n_encoded))
    back = encoder.decode(X, y=np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]))
    assert back["outcome"].tolist() == ["yes", "no", "yes"]
    back = encoder.decode(X, y=np.array([-3.0, 0.4, 7.0]))
    assert back["outcome"].tolist() == ["no", "no", "yes"]
    assert "outcome" not in encoder.decode(X).columns


def test_decode_rejects_bad_input():
    encoder = TableEncoder(small_schema())
    with pytest.raises(DataError, match=r"shape \(n, 6\)"):
        encoder.decode(np.zeros((3, 5)))
    with pytest.raises(DataError, match="NaN or inf"):
        encoder.decode(np.full((2, 6), np.nan))
    with pytest.raises(DataError, match="no time column"):
        encoder.decode(np.zeros((2, 6)), time=np.ones(2), event=np.ones(2))
    with pytest.raises(DataError, match=r"`y` must have shape \(2,\)"):
        encoder.decode(np.zeros((2, 6)), y=np.zeros(3))


def test_time_encoding_is_log_scale_and_inverts():
    encoder = TableEncoder(load_schema("larynx"))  # float time, bounds [0.05, 15]
    t = np.array([0.05, np.sqrt(0.05 * 15), 15.0, 3.3])
    z = encoder.encode_time(t)
    np.testing.assert_allclose(z[:3], [-1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(encoder.decode_time(z), t, rtol=1e-12)
    np.testing.assert_allclose(encoder.decode_time(np.array([-5.0, 5.0])), [0.05, 15.0])
    z_jax = encoder.encode_time(jnp.asarray(t, dtype=jnp.float32))
    assert isinstance(z_jax, type(jnp.zeros(1)))
    np.testing.assert_allclose(np.asarray(encoder.decode_time(z_jax)), t, rtol=1e-5)
    integer = TableEncoder(survival_schema())
    assert integer.decode_time(np.array([-1.0, 0.123, 1.0])).tolist() == [1.0, 100.0, 3650.0]
    with pytest.raises(DataError, match="no time column"):
        TableEncoder(small_schema()).encode_time(np.ones(2))


def test_survival_decode_clips_time_and_rounds_event():
    encoder = TableEncoder(survival_schema())
    X = np.zeros((3, encoder.n_encoded))
    back = encoder.decode(X, time=np.array([-4.0, 17.4, 1e9]), event=np.array([0.2, 0.7, 1.0]))
    assert back["time"].tolist() == [1, 17, 3650] and back["time"].dtype == np.int64
    assert back["death"].tolist() == [0, 1, 1] and back["death"].dtype == np.int64
    table = encoder.encode(good_survival_frame())
    assert table.time.dtype == np.float32 and table.event.dtype == np.int32 and table.y is None


SCHEMAS = [small_schema(), survival_schema(), load_schema("breast_cancer"), load_schema("lung"),
           load_schema("diabetes_progression"), load_schema("larynx")]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(range(len(SCHEMAS))), st.integers(1, 12), st.data())
def test_any_encoded_matrix_decodes_to_a_valid_table(index, n, data):
    schema = SCHEMAS[index]
    encoder = TableEncoder(schema)
    X = data.draw(arrays(np.float64, (n, encoder.n_encoded), elements=st.floats(-1.5, 1.5)))
    kwargs = {}
    if schema.task == "classification":
        kwargs["y"] = data.draw(arrays(np.float64, (n,), elements=st.floats(-2, 5)))
    else:
        kwargs["time"] = data.draw(arrays(np.float64, (n,), elements=st.floats(-10, 1e5)))
        kwargs["event"] = data.draw(arrays(np.float64, (n,), elements=st.floats(-1, 2)))
    back = encoder.decode(X, **kwargs)
    assert list(back.columns) == list(schema.column_names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no clipping or rounding needed: values already valid
        clean = validate_table(back, schema, on_out_of_bounds="raise", require_variation=False)
    pd.testing.assert_frame_equal(clean, back, check_dtype=True)
    projected = encoder.project(X)
    assert np.abs(projected).max(initial=0) <= 1.0
    np.testing.assert_array_equal(encoder.project(projected), projected)
    np.testing.assert_array_equal(encoder.encode(back).X, projected)


def test_log_scale_column_spreads_skewed_values_and_round_trips():
    from zodc.data.schema import NumericColumn, Schema
    from zodc.errors import SchemaError

    linear = NumericColumn("progrec", 0.0, 5000.0)
    log = NumericColumn("progrec", 0.0, 5000.0, scale="log")
    values = np.array([0.0, 9.0, 30.0, 300.0, 5000.0])
    np.testing.assert_allclose(log.to_unit(values), np.log1p(values) / np.log1p(5000.0))
    np.testing.assert_allclose(linear.to_unit(values), values / 5000.0)
    np.testing.assert_allclose(log.from_unit(log.to_unit(values)), values, rtol=1e-12, atol=1e-9)
    assert log.to_unit(30.0) > 0.39 > linear.to_unit(30.0) + 0.38  # the median receptor level, no longer at the edge
    schema = Schema(name="skewed", task="classification", source="a test: bounds stated by hand",
                    columns=(log, NumericColumn("age", 18, 100), small_schema().column("outcome")), target="outcome")
    assert Schema.from_json(schema.to_dict()) == schema and schema.to_dict()["columns"][0]["scale"] == "log"
    assert "scale" not in schema.to_dict()["columns"][1]  # linear columns keep the old JSON
    frame = pd.DataFrame({"progrec": values, "age": [20, 30, 40, 50, 60], "outcome": ["no", "yes", "no", "yes", "no"]})
    encoder = TableEncoder(schema)
    encoded = encoder.encode(frame)
    np.testing.assert_allclose(encoded.X[:, 0], 2 * np.log1p(values) / np.log1p(5000.0) - 1, rtol=1e-6)
    np.testing.assert_allclose(encoder.decode(encoded.X, y=encoded.y)["progrec"], values, rtol=1e-5, atol=1e-4)
    with pytest.raises(SchemaError, match="`scale` must be one of"):
        NumericColumn("x", 0.0, 1.0, scale="sqrt")
