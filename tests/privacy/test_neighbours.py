"""Neighbouring-dataset tests: D and D' differ in one record; what may differ, and by how much.

Each test builds such a pair for one path that reads real data and asserts what the mechanism
lets differ: the per-step clipped sums by at most C, and nothing structural — not a refusal, not a
column's kind, not which rows are condensed, not a message. The host model's per-record isolation
is in ``test_isolation.py``; the accountant against dp-accounting in ``test_accounting.py``.
"""

import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from zodc import Condenser
from zodc.cli import build_parser, holdout_key, holdout_mask
from zodc.data import TableEncoder, validate_table
from zodc.data.dp_schema import estimate_schema_and_count
from zodc.data.io import apply_declared_kinds
from zodc.errors import ConfigError
from zodc.models.losses import ClassificationLoss
from zodc.models.native import native_classifier_data, native_classifier_evaluator
from zodc.models.presets import get_preset
from zodc.privacy import keys as keys_module
from zodc.privacy.keys import PATHS, RunKeys, resolve_seed
from zodc.privacy.mechanisms import grid_noisy_sum
from zodc.privacy.noise import GRID_BITS, _exact_cdf_below, rounded_gaussian, secret_generator
from zodc import zo


def _cohort(n=120, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(30, 80, n)
    frame = pd.DataFrame({"age": age.astype(np.float64), "marker": rng.normal(2.0, 0.5, n),
                          "site": rng.choice(["north", "south"], n)})
    y = pd.Series(np.where(rng.random(n) < 0.4 + 0.004 * (age - 55), "yes", "no"), name="outcome")
    return frame, y


# ---------------------------------------------------------------- randomness is secret

def test_default_randomness_is_fresh_128_bit_entropy_and_paths_never_share_a_key(monkeypatch):
    # No entropy is drawn here (CI must not flake): the OS source is a recorded stand-in, and what is
    # checked is that no seed means 128 bits asked of `secrets`, every time.
    import zodc.privacy.noise as noise

    asked = []
    monkeypatch.setattr(noise.secrets, "randbits", lambda bits: asked.append(bits) or 2**127 + len(asked))
    seeds = [resolve_seed(None) for _ in range(3)]
    assert asked == [128, 128, 128] and seeds == [2**127 + 1, 2**127 + 2, 2**127 + 3]
    assert len(set(PATHS.values())) == len(PATHS)  # one stream per mechanism
    keys = RunKeys(5)
    streams = {name: keys.generator(name).integers(0, 2**63, 4).tolist() for name in PATHS}
    assert len({tuple(v) for v in streams.values()}) == len(PATHS)
    with pytest.raises(ConfigError, match="already issued"):
        keys.generator("schema")
    assert "5" not in repr(keys)
    with pytest.raises(TypeError, match="secret"):
        import pickle
        pickle.dumps(keys)


@pytest.mark.slow
def test_a_fit_issues_each_path_once_and_keeps_no_seed(monkeypatch):
    issued = []
    original = RunKeys.__init__

    def recording(self, seed):
        original(self, seed)
        issued.append(self)

    monkeypatch.setattr(keys_module.RunKeys, "__init__", recording)
    frame, y = _cohort(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Condenser(epsilon=8.0, steps=2, select_features=2, rows_per_class=3,
                          random_state=987654321987).fit(frame, y)
    names = issued[0].issued
    assert len(names) == len(set(names))  # no two mechanisms share a key
    assert {"schema", "feature_selection", "start_means", "steps", "step_noise"} <= set(names)
    assert not hasattr(model, "seed_")
    report = model.report()
    assert "987654321987" not in json.dumps(report, default=str)  # the secret seed is written nowhere
    assert "random_state" not in report and "private only while it stays secret" in report["randomness"]


def test_two_default_runs_release_different_tables():
    frame, y = _cohort(150)
    schema = _public_schema()
    tables = [Condenser(epsilon=1.0, steps=2, rows_per_class=3, schema=schema).fit(frame, y).table_ for _ in range(2)]
    assert not np.array_equal(tables[0], tables[1])


def test_the_cli_seed_defaults_to_fresh_entropy():
    args = build_parser().parse_args(["condense", "--out", "x.csv"])
    assert args.seed is None


def _public_schema():
    from zodc.data.schema import CategoricalColumn, NumericColumn, Schema

    return Schema(name="cohort", task="classification",
                  columns=(NumericColumn("age", 18.0, 100.0), NumericColumn("marker", 0.0, 4.0),
                           CategoricalColumn("site", ("north", "south")),
                           CategoricalColumn("outcome", ("no", "yes"))),
                  target="outcome", class_proportions=None,
                  source="test: bounds fixed by the test, independent of the records")


# ---------------------------------------------------------------- the noise the accountant assumes

def test_rounded_gaussian_matches_the_rounded_normal_exactly_in_distribution():
    rng = secret_generator(7, (0,))
    scale = 1.3
    draws = rounded_gaussian(rng, scale, (400_000,))
    values = np.arange(-8, 9)
    expected = norm.cdf((values + 0.5) / scale) - norm.cdf((values - 0.5) / scale)
    observed = np.array([(draws == v).mean() for v in values])
    # 400k draws: every cell within 5 standard errors.
    assert np.all(np.abs(observed - expected) <= 5 * np.sqrt(expected * (1 - expected) / draws.size) + 1e-6)
    assert draws.dtype == np.int64 and abs(draws.max()) < 19 * scale + 2


def test_the_exact_comparison_agrees_with_float64_away_from_the_edges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        words = rng.integers(0, 2**63, 4, dtype=np.uint64)
        j, scale = int(rng.integers(-30, 0)), float(rng.uniform(1, 20))
        v = (int(words[0]) + (int(words[1]) + 0.5) / 2**64) / 2**64
        edge = norm.cdf((j + 0.5) / scale)
        if abs(v - edge) > 1e-9 * edge:
            assert _exact_cdf_below(j, scale, words, upper=True) == (v <= edge)


def test_the_grid_sum_moves_by_at_most_the_clip_when_one_record_is_added():
    rng = np.random.default_rng(1)
    q, clip = 16, 1.0
    for trial in range(20):
        values = rng.normal(0, rng.uniform(0.01, 10), (50, q)).astype(np.float32)
        extra = rng.normal(0, 100, (1, q)).astype(np.float32)
        noise = jnp.zeros(q, jnp.int32)
        without = grid_noisy_sum(jnp.asarray(values), jnp.ones(50, bool), clip, noise)
        with_it = grid_noisy_sum(jnp.asarray(np.vstack([values, extra])), jnp.ones(51, bool), clip, noise)
        change = float(jnp.linalg.norm(with_it - without))
        assert change <= clip  # never more than the sensitivity the accountant uses
        # Integer arithmetic: the sum is exactly the sum of the rows' grid units.
        units = np.asarray(without) / (clip * 2.0**-GRID_BITS)
        assert np.allclose(units, np.round(units))
    unsampled = grid_noisy_sum(jnp.asarray(np.vstack([values, extra])), jnp.asarray([True] * 50 + [False]), clip,
                               noise)
    assert np.array_equal(np.asarray(unsampled), np.asarray(without))  # an unsampled record changes nothing


def native_tree_neighbours(seed: int = 2, n: int = 60, d: int = 3, m: int = 6, kind: str = "rademacher"):
    """A native tree step's losses as a function ``losses(tables, X, y, mask)`` of the records, the
    perturbed tables, and the records of D and of D' (D plus one outlier): ``(losses, tables, D, D')``
    with ``D = (X, y, mask)``. Also used on the accelerator (``tests/test_device.py``)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    labels = np.repeat([0, 1], m // 2).astype(np.int32)
    evaluate = native_classifier_evaluator(get_preset("tree").native_factory(2), ClassificationLoss("balanced_linear"))

    def losses(tables, X, y, mask):
        return evaluate(tables, mask, native_classifier_data(X, y, labels, jax.random.key(0)))

    table = jnp.asarray(rng.uniform(-1, 1, (m, d)), jnp.float32)
    units = zo.sample_directions(jax.random.key(3), 4, table.shape, table.dtype, kind)
    tables = np.asarray(zo.perturb(table, units, 0.2, "central"))
    outlier = np.full((1, d), 1.0, np.float32)
    neighbour = (np.vstack([X, outlier]), np.append(y, 0).astype(np.int32), np.ones(n + 1, bool))
    return losses, tables, (X, y, np.ones(n, bool)), neighbour


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])  # the default directions, and the paper's
def test_native_step_losses_of_other_records_do_not_depend_on_one_record(kind):
    losses, tables, records, neighbour = native_tree_neighbours(kind=kind)
    # Jitted, as the condenser runs it (eagerly, every op of the vmapped tree fit dispatches on its own: slow).
    losses = jax.jit(losses)
    base, more = np.asarray(losses(tables, *records)), np.asarray(losses(tables, *neighbour))
    assert np.array_equal(base, more[:, :base.shape[1]])


def test_native_losses_with_class_weights_as_data_depend_on_each_records_own_label_only():
    # The front door passes the (DP) class weights as data: each record carries its own weight w_y.
    # D' adds one rare-class record: every other record's weighted loss is D's, bit for bit; the added
    # record's is within the bound w_max (the balanced linear loss is at most 1 before its weight).
    rng = np.random.default_rng(12)
    n, d, m = 60, 3, 6
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(np.int32)
    weights = (0.6, 2.5)
    labels = np.repeat([0, 1], m // 2).astype(np.int32)
    evaluate = jax.jit(native_classifier_evaluator(get_preset("tree").native_factory(2),
                                                   ClassificationLoss("balanced_linear")))
    table = jnp.asarray(rng.uniform(-1, 1, (m, d)), jnp.float32)
    tables = zo.perturb(table, zo.sample_directions(jax.random.key(3), 4, table.shape, table.dtype, "gaussian"),
                        0.2, "central")
    key = jax.random.key(0)
    base = evaluate(tables, jnp.ones(n, bool), native_classifier_data(X, y, labels, key, weights))
    more = evaluate(tables, jnp.ones(n + 1, bool),
                    native_classifier_data(np.vstack([X, np.full((1, d), -1.0, np.float32)]), np.append(y, 1),
                                           labels, key, weights))
    np.testing.assert_array_equal(np.asarray(base), np.asarray(more)[:, :n])
    assert np.all((np.asarray(more)[:, n] >= 0) & (np.asarray(more)[:, n] <= max(weights)))
    # The same numbers as the weights held in the loss (the old form).
    in_loss = jax.jit(native_classifier_evaluator(get_preset("tree").native_factory(2),
                                                  ClassificationLoss("balanced_linear", weights)))
    np.testing.assert_array_equal(np.asarray(base), np.asarray(in_loss(tables, jnp.ones(n, bool),
                                                                       native_classifier_data(X, y, labels, key))))


# ---------------------------------------------------------------- nothing structural depends on one record

def test_a_rare_level_is_dropped_or_kept_by_noise_never_refused():
    frame, y = _cohort(300)
    rare = frame.assign(site=frame["site"].where(frame.index != 0, "island"))  # D: one record holds a level
    for table in (frame, rare):  # D' and D: both go through, neither refuses
        schema, _, count = estimate_schema_and_count(secret_generator(3, (1,)), table.assign(outcome=y),
                                                     target="outcome", noise_multiplier=2.0, threshold_delta=1e-6)
        assert schema.column("site").categories == ("north", "south")  # a single record's level never passes
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clean = validate_table(table.assign(outcome=y), schema)
        assert len(clean) == len(table)
        assert all("island" not in str(w.message) for w in caught)  # the private value is never quoted
        assert np.isfinite(TableEncoder(schema).encode(clean).X).all()


def test_a_column_kind_is_declared_so_one_record_cannot_flip_it():
    frame, y = _cohort(40)
    whole = frame.assign(age=frame["age"].astype(np.int64), outcome=y)
    fractional = whole.assign(age=whole["age"].astype(np.float64).where(whole.index != 0, 57.5))
    kinds = [apply_declared_kinds(t, categorical=["site"], target="outcome").dtypes.to_dict() for t in (whole, fractional)]
    # Undeclared: left as text ("auto"), its kind decided from the DP schema's noisy counts.
    assert kinds[0] == kinds[1] and kinds[0]["age"] == "string"
    declared = [apply_declared_kinds(t, categorical=["site"], integer=["age"], target="outcome")["age"].dtype
                for t in (whole, fractional)]
    assert declared[0] == declared[1] == np.int64


@pytest.mark.parametrize("odd", ["  POSITIVE ", "maybe", None, "Negative"])
def test_declared_classes_map_each_label_alone(odd):
    # --classes names the classes in the owner's spelling; a label matches up to case and spaces.
    # D and D' differ in one record's label: only that record's class (or its absence) differs, and
    # the categories are the declared ones either way.
    frame, _ = _cohort(40)
    labels = np.where(np.arange(40) % 2 == 0, "positive", "negative").astype(object)
    d = frame.assign(outcome=labels)
    d2 = d.assign(outcome=d["outcome"].where(d.index != 7, odd))
    mapped = [apply_declared_kinds(t, categorical=["site"], classes=["Positive", "negative"],
                                   target="outcome")["outcome"] for t in (d, d2)]
    assert list(mapped[0].cat.categories) == list(mapped[1].cat.categories) == ["Positive", "negative"]
    keep = d.index != 7
    assert mapped[0][keep].astype(object).equals(mapped[1][keep].astype(object))


@pytest.mark.parametrize("odd", ["TRUE", "false", "maybe", None, "2"])
def test_an_event_column_reads_each_value_alone(odd):
    # Logicals (TRUE / false) are 1 / 0 and other values missing, record by record: D and D' differ
    # in one record's event, and only that record's value differs.
    frame = pd.DataFrame({"days": np.arange(1.0, 41.0), "died": np.where(np.arange(40) % 3 == 0, "TRUE", "FALSE")})
    d2 = frame.assign(died=frame["died"].where(frame.index != 11, odd))
    read = [apply_declared_kinds(t, time="days", event="died")["died"] for t in (frame, d2)]
    assert read[0].dtype == read[1].dtype
    keep = frame.index != 11
    assert read[0][keep].equals(read[1][keep]) and set(read[0].unique()) == {0.0, 1.0}


def test_the_holdout_side_of_a_record_depends_on_that_record_alone():
    frame, y = _cohort(500)
    table = frame.assign(outcome=y)
    key = holdout_key(3)
    full = holdout_mask(table, 0.3, key)
    for removed in (0, 17, 250):
        neighbour = holdout_mask(table.drop(index=removed), 0.3, key)
        assert np.array_equal(neighbour, np.delete(full, removed))  # no other row changes side
    assert 0.2 < full.mean() < 0.4
    assert not np.array_equal(full, holdout_mask(table, 0.3, holdout_key(4)))  # the key is the randomness


def test_the_report_reveals_no_n_and_the_sampling_probability_comes_from_a_dp_count():
    frame, y = _cohort(300)
    model = Condenser(epsilon=1.0, steps=2, rows_per_class=3, batch_size=64, schema=_public_schema(),
                      random_state=1).fit(frame, y)
    report = model.report()
    assert "add or remove" in report["neighbouring_relation"]
    assert report["sampling_probability"] == pytest.approx(64 / model.record_count_)
    assert any(entry.name == "record_count" for entry in model.ledger_.entries)
    assert not any("number of records" in text for text in report["public_assumptions"])
    assert model.epsilon_ <= 1.0


def test_a_table_the_size_of_the_synthetic_one_is_refused_on_the_dp_count_only():
    frame, y = _cohort(300)
    # The decision reads the DP count (a mechanism in the ledger), not n: without noise it is exact.
    with pytest.raises(Exception, match="DP record count"):
        Condenser(epsilon=math.inf, steps=1, rows_per_class=200, schema=_public_schema()).fit(frame, y)


def test_feature_selection_scores_move_by_at_most_their_stated_sensitivity():
    from zodc.privacy.selection import class_separation_scores

    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (200, 6))
    y = rng.integers(0, 2, 200)
    proportions, count = (0.45, 0.55), 203.7  # DP proportions and a DP count, as the front door passes
    base, sensitivity = class_separation_scores(X, y, proportions, count)
    for extreme in (np.ones(6), -np.ones(6), rng.uniform(-1, 1, 6)):
        for label in (0, 1):
            more, same = class_separation_scores(np.vstack([X, extreme]), np.append(y, label), proportions, count)
            assert same == sensitivity
            assert np.max(np.abs(more - base)) <= sensitivity + 1e-12


def test_soft_label_losses_of_other_records_do_not_depend_on_one_record():
    rng = np.random.default_rng(5)
    n, d, m = 50, 3, 6
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    y = (X[:, 1] > 0).astype(np.int32)
    labels = np.repeat([0, 1], m // 2).astype(np.int32)
    evaluate = jax.jit(native_classifier_evaluator(get_preset("boosting").native_factory(2),
                                                   ClassificationLoss("balanced_linear"), soft_labels=True,
                                                   num_classes=2))  # jitted, as the condenser runs it
    table = jnp.asarray(np.hstack([rng.uniform(-1, 1, (m, d)), np.full((m, 1), 0.8)]), jnp.float32)
    units = zo.sample_directions(jax.random.key(6), 4, table.shape, table.dtype, "gaussian")
    tables = zo.perturb(table, units, 0.2, "central")
    key = jax.random.key(0)
    base = evaluate(tables, jnp.ones(n, bool), native_classifier_data(X, y, labels, key))
    more = evaluate(tables, jnp.ones(n + 1, bool),
                    native_classifier_data(np.vstack([X, np.full((1, d), -1.0, np.float32)]), np.append(y, 1), labels,
                                           key))
    assert np.array_equal(np.asarray(base), np.asarray(more)[:, :n])


def test_the_cli_on_neighbouring_csvs_condenses_the_same_other_records_and_releases_the_same_structure(tmp_path):
    from zodc.cli import main
    from zodc.data.datasets import load_dataset

    data = load_dataset("breast_cancer")
    data.schema.to_json(tmp_path / "schema.json")
    reports = {}
    for name, frame in (("D", data.frame), ("D_prime", data.frame.drop(index=7))):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        out = tmp_path / f"{name}_synthetic.csv"
        assert main(["condense", "--data", str(tmp_path / f"{name}.csv"), "--schema", str(tmp_path / "schema.json"),
                     "--steps", "3", "--num-directions", "2", "--rows-per-class", "3", "--backend", "host",
                     "--seed", "5", "--quiet", "--out", str(out)]) == 0  # neither refuses
        reports[name] = (json.loads((tmp_path / f"{name}_synthetic.report.json").read_text()),
                         json.loads((tmp_path / f"{name}_synthetic.owner.json").read_text()))
    (report, owner), (report_prime, owner_prime) = reports["D"], reports["D_prime"]
    # The removed record was condensed or held out; no other record moved (the keyed-hash holdout).
    assert owner["rows_condensed"] - owner_prime["rows_condensed"] in (0, 1)
    assert owner["rows_held_out"] + owner["rows_condensed"] == owner_prime["rows_held_out"] + owner_prime["rows_condensed"] + 1
    # The same structure is released: the same ledger mechanisms, the same keys; no n anywhere.
    names = lambda r: [entry["name"] for entry in r["privacy"]["ledger"]["entries"]]
    assert names(report) == names(report_prime) and report.keys() == report_prime.keys()
    def numbers(value):
        if isinstance(value, dict):
            return [x for v in value.values() for x in numbers(v)]
        if isinstance(value, list):
            return [x for v in value for x in numbers(v)]
        return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []

    counts = {owner["rows_condensed"], owner_prime["rows_condensed"], len(data.frame), len(data.frame) - 1}
    for released in (report, report_prime):
        assert not counts & set(numbers(released))  # no record count, exact, anywhere in the report
        assert "rows_condensed" not in json.dumps(released)


def test_the_exact_path_inside_the_guard_gives_the_same_draws(monkeypatch):
    from zodc.privacy import noise

    fast = rounded_gaussian(secret_generator(9, (2,)), 2.7, (300,))
    monkeypatch.setattr(noise, "_GUARD", 0.3)  # send most comparisons to mpmath
    exact = rounded_gaussian(secret_generator(9, (2,)), 2.7, (300,))
    assert np.array_equal(fast, exact)


def test_dp_counts_move_by_at_most_one_when_a_record_is_added_even_a_malformed_one():
    from zodc.data.dp_schema import estimate_event_rate, estimate_record_count

    frame, y = _cohort(200)
    table = frame.assign(outcome=y)
    odd = pd.DataFrame({"age": [np.nan], "marker": [np.inf], "site": [None], "outcome": ["yes"]})
    tiny = 1e-9  # round(N(0, tiny^2)) is 0: the counts themselves are compared
    counts = []
    for cohort in (table, pd.concat([table, odd], ignore_index=True)):
        _, _, count = estimate_schema_and_count(secret_generator(1, (3,)), cohort, target="outcome",
                                                noise_multiplier=tiny, threshold_delta=1e-6)
        counts.append(count)
    assert counts[1] - counts[0] == 1  # the histogram's total moves by exactly the one record
    assert estimate_record_count(secret_generator(1, (4,)), 201, tiny)[0] - \
        estimate_record_count(secret_generator(1, (4,)), 200, tiny)[0] == 1
    events = np.array([1] * 30 + [0] * 70)
    rates = [estimate_event_rate(secret_generator(1, (5,)), e, tiny)[0] for e in (events, np.append(events, 1))]
    assert rates[1] == pytest.approx(31 / 101) and rates[0] == pytest.approx(0.3)


def test_a_malformed_record_changes_no_other_row_of_the_validated_table():
    frame, y = _cohort(60)
    table = frame.assign(outcome=y)
    odd = pd.DataFrame({"age": ["n/a"], "marker": [np.nan], "site": ["moon"], "outcome": ["yes"]}, index=[999])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = validate_table(table, _public_schema())
        clean_prime = validate_table(pd.concat([table, odd]), _public_schema())
    pd.testing.assert_frame_equal(clean_prime.drop(index=999), clean, check_dtype=False)
    assert clean_prime.loc[999, ["age", "marker"]].isna().all() and clean_prime.loc[999, "site"] is None


# ---------------------------------------------------------------- the DP schema of a CSV (issue 22)

def _schema_histograms(monkeypatch, table, **roles):
    """Every (count vector, noise std) the DP schema releases for ``table``, in order, with no noise."""
    from zodc.data import dp_schema

    seen = []

    def record(rng, counts, std):
        seen.append((np.asarray(counts, np.float64).copy(), std))
        return counts

    monkeypatch.setattr(dp_schema, "_noisy_counts", record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimate_schema_and_count(secret_generator(4, (1,)), table, noise_multiplier=30.0, threshold_delta=1e-6, **roles)
    return seen


def _messy_cohort(n=3000, seed=11):
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 12, n).round()
    frame = pd.DataFrame({
        "age": age.astype(str),
        "creatinine": np.exp(rng.normal(0, 0.6, n)).round(2).astype(str),
        "year": rng.integers(1995, 2004, n).astype(str),
        "sex": rng.choice(["Male", "female ", "FEMALE"], n),
    }).astype("string")
    frame.loc[rng.random(n) < 0.2, "creatinine"] = pd.NA
    frame["outcome"] = np.where(rng.random(n) < 0.05 + 0.002 * (age - 60), "yes", "no")
    return frame


@pytest.mark.parametrize("odd", [
    {"age": "1e9", "creatinine": "99999", "year": "1066", "sex": "martian"},  # extreme values and a new level
    {"age": "unknown", "creatinine": pd.NA, "year": "", "sex": pd.NA},         # text in numbers, missing cells
    {"age": "61", "creatinine": "1.1", "year": "2000", "sex": "male"},        # an ordinary record
])
def test_one_record_moves_each_schema_histogram_by_at_most_one_count_and_changes_no_structure(monkeypatch, odd):
    # D and D' = D + one record: the same histograms in the same order with the same noise stds; in
    # each, the counts differ by at most one (L1), except that a level only the new record holds adds
    # a bin of count 1 (the observed candidate set is not public: the threshold covers it, delta).
    table = _messy_cohort()
    extra = pd.DataFrame([{**odd, "outcome": "no"}]).astype({c: "string" for c in odd})
    before = _schema_histograms(monkeypatch, table, target="outcome")
    after = _schema_histograms(monkeypatch, pd.concat([table, extra], ignore_index=True), target="outcome")
    assert [std for _, std in before] == [std for _, std in after]  # no structural difference
    for (a, _), (b, _) in zip(before, after):
        if len(b) == len(a) + 1:  # a level only the new record holds: one new bin of count 1
            assert b[-1] == 1 and np.abs(b[:-1] - a).sum() == 0
        else:
            assert len(a) == len(b) and np.abs(b - a).sum() <= 1


def test_one_record_adds_one_whole_or_fractional_count_and_lands_in_the_refinements_outer_bins(monkeypatch):
    # The whole-number counts (2 bins a column) and the refinement's bins below and above its core:
    # D' = D + one record with an age far above its core, a fractional creatinine and a year below
    # its core. Each of those histograms moves by at most one count; the whole-number counts by
    # one for each of the record's 3 numbers; the record's age lands in the refinement's bin above
    # the core and its year in the bin below, not in the core's end bins. Nothing else differs.
    from zodc.data import dp_schema

    table = _messy_cohort()
    odd = pd.DataFrame([{"age": "1e9", "creatinine": "0.123456", "year": "500", "sex": "male",
                         "outcome": "no"}]).astype("string")
    before = _schema_histograms(monkeypatch, table, target="outcome")
    after = _schema_histograms(monkeypatch, pd.concat([table, odd], ignore_index=True), target="outcome")
    assert [(len(a), std) for a, std in before] == [(len(b), std) for b, std in after]
    whole_std = dp_schema.whole_stds(30.0, 4, False)[0]
    refine_std = dp_schema.noise_stds(30.0, 4, False)[3]
    whole = [(a, b) for (a, std), (b, _) in zip(before, after) if std == whole_std]
    assert len(whole) == 4 and all(len(a) == 2 and np.abs(b - a).sum() <= 1 for a, b in whole)
    assert sum(np.abs(b - a).sum() for a, b in whole) == 3  # age, creatinine, year: one count each
    assert [int(b[1] - a[1]) for a, b in whole] == [0, 1, 0, 0]  # the fractional creatinine
    outer = [np.flatnonzero(b - a).tolist() for (a, std), (b, _) in zip(before, after)
             if std == refine_std and len(a) == dp_schema.REFINE_BINS + 3]
    assert outer[0] == [dp_schema.REFINE_BINS + 2] and outer[2] == [1], outer  # above age's core, below year's


def test_the_shares_of_the_schema_histograms_make_one_gaussian_mechanism(monkeypatch):
    # sum over histograms of (sensitivity / std)^2 = 1 / sigma^2: the ledger's GaussianEvent(sigma) is exact.
    seen = _schema_histograms(monkeypatch, _messy_cohort(), target="outcome")
    assert sum(1.0 / std**2 for _, std in seen) == pytest.approx(1.0 / 30.0**2)


def _survival_cohort():
    rng = np.random.default_rng(12)
    table = _messy_cohort().drop(columns="outcome")
    table["days"] = pd.Series(rng.gamma(2.0, 400.0, len(table)).round(1)).astype(str).astype("string")
    table["died"] = (rng.random(len(table)) < 0.3).astype(int)
    return table


@pytest.mark.parametrize("odd", [
    {"age": "1e9", "creatinine": "99999", "year": "1066", "sex": "martian", "days": "1e12", "died": 1},
    {"age": "unknown", "creatinine": pd.NA, "year": "", "sex": pd.NA, "days": "?", "died": 2},  # no usable time/event
    {"age": "61", "creatinine": "1.1", "year": "2000", "sex": "male", "days": "-3", "died": 0},
])
def test_one_survival_record_moves_each_schema_histogram_by_at_most_one_count(monkeypatch, odd):
    # The survival DP schema (the time column weighted, TIME_WEIGHT): D and D' = D + one record give
    # the same histograms in the same order with the same noise stds, counts apart by at most one.
    table = _survival_cohort()
    extra = pd.DataFrame([odd]).astype({c: "string" for c in odd if c != "died"})
    before = _schema_histograms(monkeypatch, table, time="days", event="died")
    after = _schema_histograms(monkeypatch, pd.concat([table, extra], ignore_index=True), time="days", event="died")
    assert [std for _, std in before] == [std for _, std in after]
    for (a, _), (b, _) in zip(before, after):
        if len(b) == len(a) + 1:  # a level only the new record holds
            assert b[-1] == 1 and np.abs(b[:-1] - a).sum() == 0
        else:
            assert len(a) == len(b) and np.abs(b - a).sum() <= 1


def test_a_survival_schema_weighs_its_time_column_within_one_gaussian_mechanism(monkeypatch):
    # The time column gets TIME_WEIGHT features' share of the scan and the refinement: less noise on
    # its histograms, more on the features', and still one Gaussian mechanism of noise multiplier sigma.
    from zodc.data import dp_schema

    seen = _schema_histograms(monkeypatch, _survival_cohort(), time="days", event="died")
    assert sum(1.0 / std**2 for _, std in seen) == pytest.approx(1.0 / 30.0**2)
    stds = sorted({std for _, std in seen})
    role, feature_scan, time_scan, feature_refine, time_refine = dp_schema.noise_stds(30.0, 4, True)
    assert set(stds) == {role, feature_scan, time_scan, feature_refine, time_refine, *dp_schema.whole_stds(30.0, 4, True)}
    assert time_scan < feature_scan and time_refine < feature_refine


def test_a_csv_without_a_schema_releases_at_epsilon_one_and_no_record_decides_a_refusal():
    # The cohort a data owner brings: text cells, stray case, 20 % missing, a 5 % outcome. Both D and
    # D' (one extra record with a unique level and extreme values) release; the schema marks the
    # missing column, folds the case variants into one level, and never releases the unique level.
    table = _messy_cohort()
    odd = pd.DataFrame([{"age": "1e9", "creatinine": pd.NA, "year": "1066", "sex": "martian",
                         "outcome": "yes"}]).astype("string")
    for frame in (table, pd.concat([table, odd], ignore_index=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = Condenser("tree", epsilon=1.0, steps=2, num_directions=4, backend="host", random_state=3).fit(
                frame.drop(columns=["outcome"]), frame["outcome"])
        schema = fitted.schema_
        assert schema.target_column.categories == ("no", "yes")
        assert set(schema.column("sex").categories) <= {"female", "male", "(other)"}
        assert schema.column("creatinine").missing
        year = schema.column("year")  # an offset far larger than its spread: refined inside [1024, 2048]
        assert 1024 <= year.lower <= 1995 and 2003 <= year.upper <= 2048
        assert fitted.synthetic_["creatinine"].isna().any() and not fitted.synthetic_["age"].isna().any()


def test_the_schema_adds_at_most_its_share_of_epsilon_to_the_release():
    # preprocessing_share = 0.1 of the budget (split in rho): the composed epsilon with the schema's
    # events minus the composed epsilon without them is at most 0.1 * epsilon, by the bound that
    # calibrated the release (the tighter of RDP and PLD), and the whole stays within the target.
    from zodc.privacy.ledger import Ledger

    table = _messy_cohort()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = Condenser("tree", epsilon=1.0, steps=2, num_directions=4, backend="host", random_state=5).fit(
            table.drop(columns=["outcome"]), table["outcome"])
    without = Ledger()
    for entry in fitted.ledger_.entries:
        if entry.name != "schema":
            without.add(entry.name, entry.event)
    total, rest = fitted.ledger_.bound(1e-5), without.bound(1e-5)
    assert total <= fitted.epsilon_ <= 1.0 + 1e-9
    assert fitted.epsilon_ == max(total, fitted.steps_reference_["epsilon"])
    assert 0 < total - rest <= 0.1


def test_the_schema_share_of_a_wide_table_is_the_same_for_neighbours_and_spent_as_stated():
    # preprocessing_share="auto" on a 30-column CSV: the DP schema gets 2 % per column, at most 50 %,
    # decided on the column names alone. D and D' = D + one record with text in every cell (and a
    # target label of its own) both release, with the same schema mechanism in the ledger, and the
    # schema adds at most its share of epsilon (the bound that calibrated the release). The classes
    # are declared (a categorical target), so the new record's label "maybe" is left out, not a class.
    from zodc.data.dp_schema import auto_share, schema_noise_multiplier
    from zodc.privacy.events import GaussianEvent
    from zodc.privacy.ledger import Ledger

    rng = np.random.default_rng(4)
    n, d = 1500, 30
    values = rng.normal(0, 1, (n, d))
    frame = pd.DataFrame(np.round(50 + 10 * values, 1), columns=[f"marker {k}" for k in range(d)]).astype(str)
    frame["outcome"] = np.where(values[:, 0] + rng.normal(0, 1, n) > 1, "yes", "no")
    odd = pd.DataFrame([{**{f"marker {k}": "see notes" for k in range(d)}, "outcome": "maybe"}])
    expected = GaussianEvent(schema_noise_multiplier(1.0, 1e-5, 1e-6, auto_share(d, False)))
    for table in (frame, pd.concat([frame, odd], ignore_index=True)):
        table = table.astype("string")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = Condenser("tree", epsilon=1.0, steps=2, num_directions=4, backend="host", random_state=6).fit(
                table.drop(columns=["outcome"]), table["outcome"].astype(pd.CategoricalDtype(["no", "yes"])))
        schema_events = [entry.event for entry in fitted.ledger_.entries if entry.name == "schema"]
        assert expected in schema_events and auto_share(d, False) == 0.5
        assert len(fitted.schema_.columns) - 1 >= 25  # most of the 30 columns stand out at 50 %
        without = Ledger()
        for entry in fitted.ledger_.entries:
            if entry.name != "schema":
                without.add(entry.name, entry.event)
        total = fitted.ledger_.bound(1e-5)
        assert total <= 1.0 + 1e-9 and 0 < total - without.bound(1e-5) <= 0.5


@pytest.mark.parametrize("odd_site", ["moon", " NORTH ", "   ", None])
def test_a_record_with_odd_cells_changes_no_other_row_of_the_missing_aware_encoding(odd_site):
    # The issue-22 value rules (missing kept and learned, "(other)", case and whitespace, blank
    # cells) act on the record alone: with a schema that learns missingness and has an "(other)"
    # level, adding one odd record leaves every other record's validated and encoded row unchanged.
    from zodc.data.schema import OTHER_LEVEL, CategoricalColumn, NumericColumn, Schema

    schema = Schema(name="cohort", task="classification",
                    columns=(NumericColumn("age", 18.0, 100.0, missing=True), NumericColumn("marker", 0.0, 4.0),
                             CategoricalColumn("site", ("north", "south", OTHER_LEVEL), missing=True),
                             CategoricalColumn("outcome", ("no", "yes"))),
                    target="outcome", source="test: public by construction")
    frame, y = _cohort(60)
    table = frame.assign(outcome=y)
    table.loc[3, "age"] = np.nan  # an ordinary missing value in D too
    odd = pd.DataFrame({"age": ["n/a"], "marker": [np.inf], "site": [odd_site], "outcome": ["YES "]}, index=[999])
    encoder = TableEncoder(schema)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean, clean_prime = validate_table(table, schema), validate_table(pd.concat([table, odd]), schema)
        X, X_prime = encoder.encode(clean).X, encoder.encode(clean_prime).X
    pd.testing.assert_frame_equal(clean_prime.drop(index=999), clean, check_dtype=False)
    np.testing.assert_array_equal(X_prime[:-1], X)
    assert clean_prime.loc[999, "outcome"] == "yes"  # the label normalised, the record kept
    age = next(b for b in encoder.feature_blocks if b.name == "age")
    assert X_prime[-1, age.start] == 0 and X_prime[-1, age.start + 1] == 1  # missing: middle + indicator
    expected = {"moon": OTHER_LEVEL, " NORTH ": "north", "   ": None, None: None}[odd_site]
    assert clean_prime.loc[999, "site"] == expected or (expected is None and clean_prime.loc[999, "site"] is None)


def test_host_ask_tell_losses_of_other_records_do_not_depend_on_one_record():
    # The host path of Condenser (run_ask_tell): `ask` is data independent, the host evaluator is
    # called directly between ask and tell. D' adds one outlying record: every other record's
    # losses are unchanged (and the step's clipped sum then moves by at most C:
    # test_the_grid_sum_moves_by_at_most_the_clip_when_one_record_is_added).
    from sklearn.tree import DecisionTreeClassifier

    from zodc.condense import StepParams, adam, zero_order_condenser
    from zodc.models.host import HostEvaluator, fit_score_classifier

    rng = np.random.default_rng(4)
    n, d, m = 50, 3, 6
    X = rng.uniform(-1, 1, (n, d))
    y = (X[:, 0] > 0).astype(np.int32)
    labels = np.repeat([0, 1], m // 2).astype(np.int32)
    loss = ClassificationLoss("balanced_linear")

    def host(X, y):
        payload = {"estimator": DecisionTreeClassifier(max_depth=2, random_state=0), "X": X, "y": y,
                   "synthetic_labels": labels, "num_classes": 2, "loss": loss, "soft_labels": False}
        return HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound, num_records=len(X))

    params = StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(1.0), noise_multiplier=jnp.float32(0.0),
                        sampling_probability=jnp.float32(1.0))
    table = jnp.asarray(rng.uniform(-1, 1, (m, d)), jnp.float32)
    asked = {}
    for size in (n, n + 1):  # `ask` draws the same tables whatever the number of records
        condenser = zero_order_condenser(None, adam(0.05), num_records=size, num_directions=4)
        asked[size] = condenser.ask(condenser.init(jax.random.key(5), table), params)
    np.testing.assert_array_equal(asked[n].tables, asked[n + 1].tables)
    with host(X, y) as base, host(np.vstack([X, np.full((1, d), 1.0)]), np.append(y, 0)) as more:
        losses = base.evaluate(asked[n].tables, asked[n].mask)
        losses_prime = more.evaluate(asked[n + 1].tables, asked[n + 1].mask)
    np.testing.assert_array_equal(losses, losses_prime[:, :n])


def test_a_weighted_step_sum_moves_by_at_most_the_clip_when_one_rare_class_record_is_added(monkeypatch):
    # `tell` with class weights (StepParams.clip_shares, the classification default): D' adds one
    # record of the rare class (the largest weight, share 1) with huge loss differences. The
    # step's clipped sum — what the noise covers — moves by at most C, exactly as without weights,
    # and every other record's clipped row is the same.
    from zodc import condense
    from zodc.condense import StepParams, adam, zero_order_condenser

    rng = np.random.default_rng(8)
    n, q, clip = 40, 4, 1.0
    weights = np.array([1 / (2 * 0.9), 1 / (2 * 0.1)])
    y = (np.arange(n) < 4).astype(int)                                  # 10 % rare class
    sums = []
    real_sum = condense.mechanisms.clipped_sums
    monkeypatch.setattr(condense.mechanisms, "clipped_sums",
                        lambda rows, mask, c: sums.append(np.asarray(rows)) or real_sum(rows, mask, c))
    shared = rng.normal(0, 3, (2 * q, n)) * weights[y]                 # the same losses for the shared records
    extra = rng.normal(0, 50, (2 * q, 1)) * weights[1]
    for labels, losses in ((y, shared), (np.append(y, 1), np.hstack([shared, extra]))):
        size, losses = len(labels), np.asarray(losses, np.float32)
        shares = jnp.asarray((weights / weights.max())[labels], jnp.float32)
        params = StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(clip),
                            noise_multiplier=jnp.float32(1.0), sampling_probability=jnp.float32(1.0),
                            expected_batch_size=jnp.float32(n), clip_shares=shares)
        condenser = zero_order_condenser(None, adam(0.05), num_records=size, num_directions=q)
        state = condenser.init(jax.random.key(1), jnp.zeros((4, 2)))
        asked = condenser.ask(state, params)
        condenser.tell(state, params, asked, jnp.asarray(losses), jnp.zeros(q, jnp.int32))
    base, more = sums
    np.testing.assert_array_equal(base, more[:n])                       # the other records' clipped rows
    assert np.linalg.norm(more.sum(0) - base.sum(0)) <= clip + 1e-5


@pytest.mark.parametrize("task, backend", [("classification", "host"), ("survival", "native")])
def test_one_usable_record_or_none_releases_alike(tmp_path, task, backend):
    # Every record but one has an unusable class (or event): D keeps that one, D' makes it unusable
    # too. With none left the run used to refuse ("the table is empty"), so whether anything was
    # released told whether the record was there. Now both release: the same columns and rows, the
    # same mechanisms in the ledger (a placeholder row that the mask never samples stands in).
    from zodc.cli import main
    from zodc.data.datasets import load_raw, load_schema

    name = "breast_cancer" if task == "classification" else "gbsg2"
    schema, raw = load_schema(name), load_raw(name).iloc[:60].copy()
    schema.to_json(tmp_path / "schema.json")
    if task == "classification":
        column, unusable, roles = schema.target, "unknown", ["--target", schema.target]
    else:
        column, unusable, roles = schema.event, "maybe", ["--time-col", schema.time.name, "--event-col", schema.event]
    raw[column] = raw[column].astype(object).where(raw.index == 0, unusable)
    reports = []
    for label, table in (("d", raw), ("d2", raw.assign(**{column: unusable}))):
        table.to_csv(tmp_path / f"{label}.csv", index=False)
        out = tmp_path / f"{label}_out.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["condense", "--data", str(tmp_path / f"{label}.csv"), *roles, "--schema",
                         str(tmp_path / "schema.json"), "--epsilon", "1", "--steps", "3", "--num-directions", "4",
                         "--holdout", "0", "--backend", backend, "--seed", "4", "--quiet", "--out", str(out)])
        assert code == 0
        reports.append((pd.read_csv(out), json.loads(out.with_suffix(".report.json").read_text())))
    (d, report), (d2, report2) = reports
    assert list(d.columns) == list(d2.columns) and d.shape == d2.shape
    names = [[e["name"] for e in r["privacy"]["ledger"]["entries"]] for r in (report, report2)]
    assert names[0] == names[1]


def test_a_held_out_event_does_not_decide_whether_the_table_is_released(tmp_path):
    # D's held-out side has one event, D' (the same record censored) none: the owner's report cannot
    # score D' (no event among the real records). It used to raise, and nothing was released; now
    # both release the same kind of table, and only the owner's file says the report is missing.
    from zodc.cli import main
    from zodc.data.datasets import load_raw, load_schema

    schema, raw = load_schema("gbsg2"), load_raw("gbsg2").iloc[:120].copy()
    schema.to_json(tmp_path / "schema.json")
    # A record's side is a keyed hash of its own values as the command reads them: where each
    # record falls with an event.
    from zodc.data.io import read_table

    raw.assign(**{schema.event: 1}).to_csv(tmp_path / "all.csv", index=False)
    read = apply_declared_kinds(read_table(tmp_path / "all.csv", as_text=True), schema=schema,
                                time=schema.time.name, event=schema.event)
    side = holdout_mask(read, 0.3, holdout_key(4))
    record = np.flatnonzero(side)[0]
    events = (~side & (np.arange(len(raw)) % 2 == 0)) | (np.arange(len(raw)) == record)
    d = raw.assign(**{schema.event: events.astype(int)})  # held out with an event: that record alone
    d2 = d.drop(index=d.index[record])  # D': without it (add / remove one record)
    outcomes = []
    for label, table in (("d", d), ("d2", d2)):
        table.to_csv(tmp_path / f"{label}.csv", index=False)
        out = tmp_path / f"{label}_out.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["condense", "--data", str(tmp_path / f"{label}.csv"), "--time-col", schema.time.name,
                         "--event-col", schema.event, "--schema", str(tmp_path / "schema.json"), "--epsilon", "1",
                         "--steps", "3", "--num-directions", "4", "--rows", "20", "--backend", "host", "--seed", "4",
                         "--quiet", "--out", str(out)])
        assert code == 0
        owner = json.loads(out.with_suffix(".owner.json").read_text())
        outcomes.append((pd.read_csv(out).shape, owner.get("utility_not_computed")))
    assert outcomes[0][0] == outcomes[1][0]
    assert outcomes[0][1] is None and "no events" in outcomes[1][1]
