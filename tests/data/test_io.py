import json
import os
import warnings

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


def _plain_frame():
    return pd.DataFrame({"age": ["61", "47", "58"], "size, mm": ["3.5", "12.25", "1234.5"], "sex": ["f", "m", "f"]})


@pytest.mark.parametrize("separator, decimal, encoding, newline", [
    (",", ".", "utf-8", "\n"), (";", ",", "utf-8", "\n"), ("\t", ".", "utf-8", "\n"),
    (";", ",", "utf-8-sig", "\r\n"), (",", ".", "cp1252", "\r\n")])
def test_a_table_reads_the_same_whatever_excel_wrote(tmp_path, separator, decimal, encoding, newline):
    # Excel in a locale whose decimal mark is a comma writes ";" and "3,5"; a byte-order mark,
    # Windows line ends and Latin-1 text are common too. The separator is read from the header.
    expected = _plain_frame()
    written = expected.copy()
    if decimal == ",":
        written["size, mm"] = ["3,5", "12,25", "1.234,5"]
    lines = [separator.join(f'"{c}"' if separator in c or "," in c else c for c in written.columns)]
    lines += [separator.join(row) for row in written.to_numpy().tolist()]
    path = tmp_path / "cohort.csv"
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    pd.testing.assert_frame_equal(read_table(path, as_text=True), expected.astype("string"))


def test_bytes_that_are_not_utf8_are_read_as_latin1_in_their_own_cell(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("Größe;sex\n".encode("cp1252") + "1,5;männlich\n".encode("cp1252")
                     + "2,5;männlich\n".encode("utf-8"))
    frame = read_table(path, as_text=True)
    assert list(frame.columns) == ["Größe", "sex"]
    assert frame["sex"].tolist() == ["männlich", "männlich"] and frame["Größe"].tolist() == ["1.5", "2.5"]


def test_spreadsheets_are_refused_with_what_to_do(tmp_path):
    (tmp_path / "cohort.xlsx").write_bytes(b"anything")
    with pytest.raises(DataError, match="Excel workbook, not a CSV file: save it as CSV"):
        read_table(tmp_path / "cohort.xlsx")
    (tmp_path / "cohort.csv").write_bytes(b"PK\x03\x04rest of a zip archive")
    with pytest.raises(DataError, match="zip archive"):
        read_table(tmp_path / "cohort.csv")


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_a_compressed_csv_reads_as_the_plain_one(tmp_path, suffix):
    # Large cohorts travel compressed: the header (hence the separator) and the cells are read
    # through the decompressor its name's extension says, the same frame as the plain file.
    import bz2
    import gzip
    import lzma
    import zipfile

    data = ";".join(_plain_frame().columns) + "\n" + "\n".join(";".join(r) for r in _plain_frame().to_numpy()) + "\n"
    raw = data.encode("utf-8-sig")
    plain = tmp_path / "cohort.csv"
    plain.write_bytes(raw)
    packed = tmp_path / f"cohort.csv{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(packed, "w") as archive:
            archive.writestr("cohort.csv", raw)
    else:
        packed.write_bytes({".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix](raw))
    pd.testing.assert_frame_equal(read_table(packed, as_text=True), read_table(plain, as_text=True))
    pd.testing.assert_frame_equal(read_table(packed), read_table(plain))


@pytest.mark.parametrize("suffix", [".gz", ".zip"])
def test_compressed_neighbours_read_the_same_other_records(tmp_path, suffix):
    # D and D' = D plus one record with odd cells (a decimal comma, a word in a number column, a
    # Latin-1 byte), each compressed: the columns and every record of D read the same from both.
    import gzip
    import zipfile

    rows = [f"{i};{i % 7},25;{'f' if i % 2 else 'm'}" for i in range(40)]
    texts = {"d": "\n".join(["code;dose;sex"] + rows) + "\n",
             "d2": "\n".join(["code;dose;sex"] + rows + ["99;viel;m\xe4nnlich"]) + "\n"}
    frames = {}
    for name, text in texts.items():
        path = tmp_path / f"{name}.csv{suffix}"
        raw = text.encode("cp1252")
        if suffix == ".zip":
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr(f"{name}.csv", raw)
        else:
            path.write_bytes(gzip.compress(raw))
        frames[name] = read_table(path, as_text=True)
    d, d2 = frames["d"], frames["d2"]
    assert list(d.columns) == list(d2.columns) == ["code", "dose", "sex"] and len(d2) == len(d) + 1
    pd.testing.assert_frame_equal(d, d2.iloc[:len(d)])


def test_compressed_files_that_hold_no_one_csv_are_refused_saying_why(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", "x,y\n1,2\n")
        archive.writestr("b.csv", "x,y\n1,2\n")
    with pytest.raises(DataError, match="holding 2 files; zodc reads a zip holding one CSV"):
        read_table(tmp_path / "two.zip")
    with zipfile.ZipFile(tmp_path / "book.zip", "w") as archive:
        archive.writestr("cohort.xlsx", "anything")
    with pytest.raises(DataError, match="holds an Excel workbook, not a CSV file"):
        read_table(tmp_path / "book.zip")
    (tmp_path / "cut.csv.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    with pytest.raises(DataError, match=r"cannot be decompressed \(gzip\)"):
        read_table(tmp_path / "cut.csv.gz")


@pytest.mark.parametrize("odd", ["1,5", "1.234,5", "ab\xe9c", "not a number", "", "?", "."])
def test_read_table_neighbours_differ_in_the_changed_record_only(tmp_path, odd):
    # D and D' differ in one record's cell (a decimal comma, a Latin-1 byte, text): every other cell
    # reads the same, and so do the columns (the separator comes from the header).
    rows = [f"{i};{i % 7},25;{'f' if i % 2 else 'm'}" for i in range(40)]
    header = "id_code;dose;sex"
    (tmp_path / "d.csv").write_bytes(("\n".join([header] + rows) + "\n").encode("utf-8"))
    rows[13] = f"13;{odd};m"
    (tmp_path / "d2.csv").write_bytes(("\n".join([header] + rows) + "\n").encode("cp1252"))
    d, d2 = read_table(tmp_path / "d.csv", as_text=True), read_table(tmp_path / "d2.csv", as_text=True)
    assert list(d.columns) == list(d2.columns) and d.dtypes.equals(d2.dtypes)
    keep = d.index != 13
    pd.testing.assert_frame_equal(d[keep], d2[keep])


@pytest.mark.parametrize("separator", [",", "\t", ";"])
def test_digit_groups_and_percentages_read_as_numbers_cell_by_cell(tmp_path, separator):
    # US-style digit groups in a comma or tab file ("1,234"; quoted in a comma file), percentages in
    # any file ("12.5%": 12.5, the column's unit), a decimal comma in a semicolon file; cells that
    # only look alike stay as they are. D' = D plus a record with such a cell: D's cells unchanged.
    if separator == ";":
        cells = {"3,5 %": "3.5", "1.234,5": "1234.5", "12%": "12", "x%": "x%", "1,2345": "1.2345"}
    else:
        cells = {"1,234": "1234", "-12,345,678.5": "-12345678.5", "12.5%": "12.5", "-3 %": "-3", "1,5": "1,5",
                 "1,2345": "1,2345", "x%": "x%"}
    quote = (lambda v: f'"{v}"') if separator == "," else (lambda v: v)
    lines = [f"size{separator}code"] + [f"{quote(v)}{separator}{i}" for i, v in enumerate(cells)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    frame = read_table(tmp_path / "d.csv", as_text=True)
    assert frame["size"].tolist() == list(cells.values())
    (tmp_path / "d2.csv").write_text("\n".join(lines + [f"{quote(next(iter(cells)))}{separator}99"]) + "\n")
    pd.testing.assert_frame_equal(read_table(tmp_path / "d2.csv", as_text=True).iloc[:len(frame)], frame)


def test_missing_markers_are_missing(tmp_path):
    path = tmp_path / "uci.csv"
    path.write_text("age,thal,ca\n63,fixed,0\n67,?,3\n?,normal,NA\n41,,N/A\n.,.,0.5\n")
    frame = read_table(path, as_text=True)  # '?': UCI's marker; a lone '.': SAS's and Stata's
    assert frame.isna().sum().tolist() == [2, 3, 2]
    assert frame["thal"].dropna().tolist() == ["fixed", "normal"] and frame["ca"].iloc[4] == "0.5"


@pytest.mark.parametrize("odd", ["Verstorben", "maybe", "2", ""])
def test_event_words_neighbours_differ_in_the_added_record_only(odd):
    # D and D' = D plus one record whose event is a vocabulary word, an unknown word, another code or
    # empty: on the command line (apply_declared_kinds) and in Python (the survival task's frame),
    # every record of D keeps its event code and the columns their dtypes; the added record's code
    # is its own (1 for "Verstorben", missing, so left out later, for the others; 2 stays 2).
    from zodc.data.io import EVENT_WORDS, apply_declared_kinds
    from zodc.tasks.survival import Survival

    words = ["dead", " Alive", "DECEASED", "censored", "1", "0", "true", "lebend"] * 5
    d = pd.DataFrame({"days": [str(10 + i) for i in range(len(words))], "status": words})
    d2 = pd.concat([d, pd.DataFrame({"days": ["99"], "status": [odd]})], ignore_index=True)
    cli = [apply_declared_kinds(frame, time="days", event="status") for frame in (d, d2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        python = [Survival().frame(frame.astype({"days": float}), None, {"duration_col": "days",
                                                                         "event_col": "status"}, None)[0]
                  for frame in (d, d2)]
    for a, b in (cli, python):
        assert a.dtypes.equals(b.dtypes)
        pd.testing.assert_frame_equal(a, b.iloc[:len(a)])
    for a, b in (cli, python):  # both read the words and the numbers written as text alike
        assert a["status"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0] * 5
        expected = {"Verstorben": 1.0, "2": 2.0}.get(odd)
        added = b["status"].iloc[-1]
        assert b["status"].dtype == np.float64 and ((np.isnan(added) and expected is None) or added == expected)
    assert EVENT_WORDS["verstorben"] == 1 and "maybe" not in EVENT_WORDS
