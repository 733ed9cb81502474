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
