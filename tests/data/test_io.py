import json
import os

import numpy as np
import pandas as pd
import pytest

from zodc.data import read_table, write_json_atomic, write_table_atomic
from zodc.errors import DataError


def test_table_round_trip(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, np.pi]})
    path = tmp_path / "t.csv"
    write_table_atomic(frame, path)
    pd.testing.assert_frame_equal(read_table(path), frame)
    assert os.listdir(tmp_path) == ["t.csv"]


def test_read_errors(tmp_path):
    with pytest.raises(DataError, match="not found: '.*missing.csv'"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="header but no rows"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "bad.csv").write_text('a,b\n1,2\n3,4,5,6\n"unclosed\n')
    with pytest.raises(DataError, match="cannot be parsed"):
        read_table(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="directory"):
        read_table(tmp_path)


class Unprintable:
    def __str__(self):
        raise RuntimeError("cannot serialise this cell")

    __repr__ = __str__
    __format__ = lambda self, spec: str(self)


def test_failed_table_write_leaves_nothing_and_keeps_old_file(tmp_path):
    path = tmp_path / "release.csv"
    path.write_text("old release\n")
    frame = pd.DataFrame({"a": list(range(1000)) + [0], "b": [1] * 1000 + [Unprintable()]})
    with pytest.raises(RuntimeError, match="cannot serialise"):
        write_table_atomic(frame, path)
    assert os.listdir(tmp_path) == ["release.csv"]
    assert path.read_text() == "old release\n"
    with pytest.raises(RuntimeError):
        write_table_atomic(frame, tmp_path / "new.csv")
    assert os.listdir(tmp_path) == ["release.csv"]


def test_json_write(tmp_path):
    path = tmp_path / "report.json"
    write_json_atomic({"epsilon": 1.0, "rows": [1, 2]}, path)
    assert json.loads(path.read_text()) == {"epsilon": 1.0, "rows": [1, 2]}
    with pytest.raises(DataError, match="not JSON|Out of range"):
        write_json_atomic({"epsilon": float("nan")}, path)
    with pytest.raises(DataError, match="cannot write"):
        write_json_atomic({"x": object()}, path)
    assert json.loads(path.read_text())["rows"] == [1, 2]
    assert os.listdir(tmp_path) == ["report.json"]
    with pytest.raises(DataError, match="does not exist"):
        write_json_atomic({}, tmp_path / "nope" / "r.json")
    with pytest.raises(DataError, match="DataFrame"):
        write_table_atomic([1, 2], tmp_path / "x.csv")


def test_event_indicator_reads_the_declared_event_value():
    from zodc.data.io import event_indicator

    raw = pd.Series(["1", "2", " 2.0", None, "", "dead", "2", 2, 1.0, True])
    np.testing.assert_array_equal(event_indicator(raw, "2").to_numpy(),
                                  [0, 1, 1, np.nan, np.nan, 0, 1, 1, 0, 0])
    words = pd.Series(["Dead", "alive", " DEAD ", None, "1"])
    np.testing.assert_array_equal(event_indicator(words, "dead").to_numpy(), [1, 0, 1, np.nan, 0])
    np.testing.assert_array_equal(event_indicator(pd.Series([True, False, None]), "true").to_numpy(), [1, 0, np.nan])
    with pytest.raises(DataError, match="--event-value needs a value"):
        event_indicator(words, "  ")


def test_event_indicator_neighbours_differ_in_the_changed_record_only():
    # D and D' differ in one record (an odd value, a missing one, the event value itself): the codes
    # of every other record are the same.
    from zodc.data.io import event_indicator

    rng = np.random.default_rng(3)
    base = pd.Series(rng.choice(["1", "2"], 50).astype(object))
    codes = event_indicator(base, "2").to_numpy()
    for odd in ("2", "1", "9", "dead", None, "2.0"):
        neighbour = base.copy()
        neighbour[17] = odd
        changed = event_indicator(neighbour, "2").to_numpy()
        keep = np.arange(50) != 17
        np.testing.assert_array_equal(changed[keep], codes[keep])
