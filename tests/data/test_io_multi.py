import json
import math
import os

import numpy as np
import pytest

from zodc.data.io import json_safe, write_files_atomic
from zodc.errors import DataError


def test_json_safe_spells_non_finite_values():
    value = {"epsilon": math.inf, "list": [np.float32(1.5), -math.inf, float("nan")], "n": np.int64(3)}
    assert json.loads(json.dumps(json_safe(value), allow_nan=False)) == {"epsilon": "inf", "list": [1.5, "-inf", "nan"], "n": 3}


def test_all_or_nothing_when_one_destination_fails(tmp_path):
    good = tmp_path / "a.csv"
    with pytest.raises(DataError, match="does not exist"):
        write_files_atomic({good: "x\n", tmp_path / "missing" / "b.json": "{}"})
    assert os.listdir(tmp_path) == []  # neither the first file nor any temporary
    write_files_atomic({good: "x\n", tmp_path / "b.json": "{}"})
    assert good.read_text() == "x\n" and sorted(os.listdir(tmp_path)) == ["a.csv", "b.json"]
