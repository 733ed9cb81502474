"""Reading input tables and writing released files atomically.

A released table or report is written to a temporary file in the destination's directory,
flushed, fsynced, then moved over the destination with :func:`os.replace` (atomic on POSIX and
Windows). A failure at any point removes the temporary file and leaves any previous file intact, so
a reader never sees a half-written release.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import gzip
import json
import lzma
import os
import re
import tempfile
import zipfile
from typing import Any, Iterator, Union

import numpy as np
import pandas as pd

from zodc.errors import DataError

PathLike = Union[str, os.PathLike]


#: Files that are not text tables: their extensions, and a zip archive's first bytes (.xlsx, .ods).
_NOT_CSV = {".xlsx": "an Excel workbook", ".xls": "an Excel workbook", ".xlsm": "an Excel workbook",
            ".ods": "a spreadsheet", ".parquet": "a Parquet file", ".feather": "a Feather file",
            ".sav": "an SPSS file", ".dta": "a Stata file", ".sas7bdat": "a SAS file", ".rds": "an R data file",
            ".rdata": "an R data file"}
#: Compressed CSVs, by the file name's last extension (``cohort.csv.gz``), as pandas reads them.
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_FIELD_SEPARATORS = (",", ";", "\t")
#: A number written with a decimal comma (and optionally dots between thousands): "3,5", "-0,25",
#: "1.234,5", "2,5e-3".
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d*),\d+([eE][+-]?\d+)?$")
#: A number with commas between groups of three digits ("1,234", "-12,345,678.5"), in a comma- or
#: tab-separated file (where a decimal comma does not occur: Excel writes those files with semicolons).
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
#: A percentage: a number followed by "%" ("12.5%", "-3 %", "3,5 %" in a semicolon file).
_PERCENT = re.compile(r"^([+-]?(\d[\d.,]*|[.,]\d+))\s*%$")


def _decode_cp1252(error: UnicodeDecodeError) -> tuple:
    """Codec error handler: bytes that are not UTF-8 read as Windows-1252 (Latin-1 and Excel's
    Western European export), those bytes alone; the rest of the file stays UTF-8."""
    return error.object[error.start:error.end].decode("cp1252", errors="replace"), error.end


codecs.register_error("zodc-cp1252", _decode_cp1252)


def _field_separator(header: bytes) -> str:
    """The separator of a CSV's fields, read from its header line alone: ``,``, ``;`` (Excel's CSV
    where the decimal mark is a comma) or a tab, whichever occurs most outside quotes (ties: comma).
    The header holds the column names, public structure: no record decides the separator."""
    unquoted = re.sub(r'"[^"]*"', "", header.decode("utf-8", errors="zodc-cp1252"))
    counts = [unquoted.count(separator) for separator in _FIELD_SEPARATORS]
    return _FIELD_SEPARATORS[int(np.argmax(counts))] if max(counts) > 0 else ","


def _written_numbers(frame: pd.DataFrame, separator: str) -> pd.DataFrame:
    """Numbers as people write them, rewritten cell by cell as plain numbers; other cells unchanged:

    - a percentage loses its sign ("12.5%" -> "12.5": the column's unit is percent);
    - in a semicolon-separated file, a decimal comma becomes a point ("3,5" -> "3.5", "1.234,5" ->
      "1234.5");
    - in a comma- or tab-separated file, commas between groups of three digits go ("1,234" ->
      "1234").

    Could one record change this? Only its own cells: the rules are fixed, the separator comes from
    the header."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_string_dtype(column) or column.dtype == object):
            continue
        text = column.astype("string").str.strip()
        percent = text.str.fullmatch(_PERCENT).fillna(False).astype(bool)
        text = text.where(~percent, text.str.replace(r"\s*%$", "", regex=True))
        if separator == ";":
            number = text.str.fullmatch(_DECIMAL_COMMA).fillna(False).astype(bool)
            plain = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        else:
            number = text.str.fullmatch(_GROUPED).fillna(False).astype(bool)
            plain = text.str.replace(",", "", regex=False)
        changed = percent | number
        if changed.any():
            out[name] = column.where(~changed, text.where(~number, plain).astype(column.dtype))
    return out


_DECOMPRESSION_ERRORS = (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError)


def _undecompressable(path: str, compression: str | None, error: Exception) -> DataError:
    return DataError(f"input table '{path}' cannot be decompressed ({compression}): {type(error).__name__}.")


def _header_line(path: str, compression: str | None) -> bytes:
    """The file's first line, decompressed (``compression``: a value of :data:`_COMPRESSION`)."""
    try:
        if compression is None:
            with open(path, "rb") as handle:
                return handle.readline()
        if compression == "zip":
            with zipfile.ZipFile(path) as archive:
                members = [name for name in archive.namelist() if not name.endswith("/")]
                if len(members) != 1:
                    raise DataError(f"input table '{path}' is a zip archive holding {len(members)} files; zodc "
                                    "reads a zip holding one CSV file.")
                inner = _NOT_CSV.get(os.path.splitext(members[0])[1].lower())
                if inner is not None:
                    raise DataError(f"input table '{path}' holds {inner}, not a CSV file: save it as CSV (a "
                                    "spreadsheet: File > Save As > CSV).")
                with archive.open(members[0]) as handle:
                    return handle.readline()
        opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression]
        with opener(path, "rb") as handle:
            return handle.readline()
    except _DECOMPRESSION_ERRORS as error:
        raise _undecompressable(path, compression, error) from None


def read_table(path: PathLike, *, as_text: bool = False) -> pd.DataFrame:
    """Read a CSV table with a header row.

    The file may be compressed (``.gz``, ``.bz2``, ``.xz``, or a ``.zip`` holding one CSV, by its
    name's extension). The fields may be separated by commas, semicolons or tabs (read from the header line); in a
    semicolon-separated file (Excel's CSV in locales whose decimal mark is a comma) numbers with a
    decimal comma are read as numbers; with ``as_text``, so are numbers with commas between groups
    of three digits in a comma- or tab-separated file ("1,234") and percentages ("12.5%": 12.5)
    (:func:`_written_numbers`). The file is UTF-8 (with or without a byte-order mark); bytes
    that are not UTF-8 are read as Windows-1252 (Latin-1), those bytes alone. Empty cells and
    pandas' missing markers (``NA``, ``N/A``, ``NaN``, ``null``, ...) are missing, and so are ``?``
    (the UCI repository's marker) and a lone ``.`` (SAS's and Stata's).

    Could one record change this? Only its own cells: the separator comes from the header (the column
    names, public), and a decimal comma, a digit group, a percent sign or a non-UTF-8 byte is read in
    its own cell.

    Args:
        path: Path to a CSV file.
        as_text: Read every cell as text (pandas' ``string`` dtype, empty cells missing) instead of
            letting the reader guess each column's type from all its values (one record could tip
            such a guess). :func:`apply_declared_kinds` then sets the kinds.

    Returns:
        The table, shape ``(n, d)``.

    Raises:
        DataError: The file does not exist, is a directory, is a spreadsheet or another binary
            format, is empty, has a header but no rows, or cannot be parsed (the message names the
            path and the parser's complaint).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"input table not found: '{path}'.")
    if os.path.isdir(path):
        raise DataError(f"input table '{path}' is a directory, not a CSV file.")
    stem, extension = os.path.splitext(path)
    compression = _COMPRESSION.get(extension.lower())
    header = _header_line(path, compression)
    kind = _NOT_CSV.get(os.path.splitext(stem if compression else path)[1].lower())
    if kind is None and compression is None and header.startswith(b"PK\x03\x04"):
        kind = "a zip archive (a spreadsheet?)"
    if kind is not None:
        raise DataError(f"input table '{path}' is {kind}, not a CSV file: save it as CSV (a spreadsheet: "
                        "File > Save As > CSV) and pass that file.")
    separator = _field_separator(header)
    try:
        frame = pd.read_csv(path, sep=separator, compression=compression,
                            dtype="string" if as_text else None, skipinitialspace=as_text,
                            encoding="utf-8-sig", encoding_errors="zodc-cp1252", na_values=["?", "."],
                            decimal="," if separator == ";" and not as_text else ".")
    except pd.errors.EmptyDataError:
        raise DataError(f"input table '{path}' is empty (no header, no rows).") from None
    except pd.errors.ParserError as error:
        raise DataError(f"input table '{path}' cannot be parsed as CSV: {error}".strip()) from None
    except _DECOMPRESSION_ERRORS as error:  # a truncated or corrupt compressed file
        raise _undecompressable(path, compression, error) from None
    if len(frame) == 0:
        raise DataError(f"input table '{path}' has a header but no rows.")
    if as_text:
        frame = _written_numbers(frame, separator)
    return frame


@contextlib.contextmanager
def _atomic_file(path: PathLike, mode: str) -> Iterator[Any]:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DataError(f"cannot write '{path}': directory '{directory}' does not exist.")
    handle = tempfile.NamedTemporaryFile(
        mode=mode, dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp", delete=False,
        **({"encoding": "utf-8", "newline": ""} if "b" not in mode else {}),
    )
    temporary = handle.name
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # Make the rename itself durable where the platform allows it.
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_table_atomic(frame: pd.DataFrame, path: PathLike) -> None:
    """Write ``frame`` as CSV (no index) to ``path`` atomically.

    Args:
        frame: Table to write.
        path: Destination; its directory must exist.

    Raises:
        DataError: The directory does not exist.
        Exception: Whatever serialising ``frame`` raised; no file is left behind.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"write_table_atomic needs a pandas DataFrame. Got {type(frame).__name__}.")
    with _atomic_file(path, "w") as handle:
        frame.to_csv(handle, index=False)


def write_json_atomic(obj: Any, path: PathLike) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    NaN and infinity are refused (they are not JSON); the object is serialised fully before the
    temporary file is written.

    Raises:
        DataError: The directory does not exist, or ``obj`` is not JSON-serialisable (the message
            says why); no file is left behind.
    """
    try:
        text = json.dumps(obj, indent=2, allow_nan=False, sort_keys=False) + "\n"
    except (TypeError, ValueError) as error:
        raise DataError(f"cannot write '{os.fspath(path)}' as JSON: {error}.") from None
    with _atomic_file(path, "w") as handle:
        handle.write(text)


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats spelled as strings (``"inf"``, ``"-inf"``, ``"nan"``) and numpy
    scalars as Python numbers, so that strict JSON can hold it (``epsilon = inf`` is a real value:
    the non-private run)."""
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return "nan" if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_files_atomic(contents: dict, *, make_directories: bool = False) -> None:
    """Writes several files all or nothing: ``{path: text or bytes}`` (``make_directories``: create
    missing destination directories first).

    Every file is first written and fsynced to a temporary file beside its destination; only when
    all of them are written are they renamed into place. A failure before that leaves no file
    behind, new or changed (a failure between two renames — a full disk cannot cause it — is the
    only window).

    Raises:
        DataError: a destination directory does not exist.
    """
    pending = []
    try:
        for path, text in contents.items():
            path = os.fspath(path)
            directory = os.path.dirname(os.path.abspath(path))
            if make_directories:
                os.makedirs(directory, exist_ok=True)
            if not os.path.isdir(directory):
                raise DataError(f"cannot write '{path}': directory '{directory}' does not exist.")
            binary = isinstance(text, (bytes, bytearray))
            handle = tempfile.NamedTemporaryFile(mode="wb" if binary else "w", dir=directory,
                                                 prefix=f".{os.path.basename(path)}.", suffix=".tmp", delete=False,
                                                 **({} if binary else {"encoding": "utf-8", "newline": ""}))
            pending.append((handle.name, path))
            with handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        for temporary, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    for temporary, path in pending:
        os.replace(temporary, path)


def check_declared_kinds(frame: pd.DataFrame, *, categorical=(), integer=(), numeric=()) -> None:
    """Refuse a declared column that the table does not have, or one declared with two kinds.

    Raises:
        DataError: naming the column(s).
    """
    categorical, integer, numeric = set(categorical or ()), set(integer or ()), set(numeric or ())
    for name in sorted(categorical | integer | numeric):
        if name not in frame.columns:
            from zodc.data.validation import column_not_found

            raise DataError(column_not_found("declared column", name, frame.columns))
    twice = sorted((categorical & integer) | (categorical & numeric) | (integer & numeric))
    if twice:
        raise DataError(f"column(s) {twice} declared with two kinds.")


def _as_number(value: Any) -> float | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


#: Words an event column may hold without ``--event-value``, read record by record (stripped, lower
#: case): logicals as R and Python write them, and vital status in words (English, German, French,
#: Spanish, Italian). A fixed public vocabulary: no record decides what a word means. "yes" / "no"
#: are not in it (a column named "censored" may hold them), nor R's 1 / 2 (1 is an event here).
EVENT_WORDS = {
    **dict.fromkeys(("true", "dead", "deceased", "died", "death", "event", "tot", "verstorben", "décédé", "decede",
                     "fallecido", "fallecida", "muerto", "muerta", "deceduto", "deceduta", "morto", "morta"), 1),
    **dict.fromkeys(("false", "alive", "living", "censored", "lebend", "vivant", "vivante", "vivo", "viva"), 0),
}


def event_words(series: pd.Series) -> pd.Series:
    """An event column's text cells in :data:`EVENT_WORDS` as 1 / 0, each stripped and lower-cased;
    every other cell as it is. Could one record change this? Only its own cell."""
    return series.astype(object).map(
        lambda v: EVENT_WORDS.get(v.strip().lower(), v) if isinstance(v, str) else v)


def event_numbers(series: pd.Series) -> pd.Series:
    """An event column as zodc reads it, float64 whatever its cells hold (so no record decides the
    dtype): the words of :data:`EVENT_WORDS` as 1 / 0, numbers (also written as text, ``" 1"``) as
    numbers, anything else missing (its record is left out). Could one record change this? Only its
    own cell."""
    cells = event_words(series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v))
    return pd.to_numeric(cells, errors="coerce").astype(np.float64)


def event_indicator(series: pd.Series, event_value: Any) -> pd.Series:
    """A survival event column recoded to 1.0 (event) / 0.0 (censored) by its declared event value.

    ``event_value`` is the value that means the event happened (``--event-value``: public, the
    task's definition, as ``--classes`` is for a target): R's ``survival`` package codes status 1 =
    censored, 2 = event, and many tables write words. A record whose value equals it is an event,
    one with any other value is censored, a missing value stays missing (its record is left out).
    Numbers compare as numbers (``"2"``, ``2`` and ``2.0`` are one value), text as zodc compares
    levels (stripped, lower case: ``" Dead"`` is ``"dead"``).

    Could one record change this? Only its own value's code.

    Raises:
        DataError: an empty ``event_value``.
    """
    from zodc.data.dp_schema import normalise_level

    wanted = normalise_level(event_value)
    if wanted is None:
        raise DataError("--event-value needs a value (the event column's value that means the event happened).")
    wanted_number = _as_number(wanted)
    wanted_text = str(wanted).lower()

    def code(value):
        level = normalise_level(value)
        if level is None:
            return np.nan
        number = _as_number(level)
        if wanted_number is not None and number is not None:
            return float(number == wanted_number)
        return float(str(level).lower() == wanted_text)

    return series.astype(object).map(code).astype(np.float64)


def apply_declared_kinds(frame: pd.DataFrame, *, categorical=(), integer=(), numeric=(), classes=None,
                         target: str | None = None, time: str | None = None, event: str | None = None,
                         schema=None) -> pd.DataFrame:
    """The table with every column's dtype set by declaration or by the schema, never guessed here.

    A CSV reader guesses a column's type from every value, so one record (an age of 57.5 among
    whole numbers, a word among numbers) could change a column's kind. Here:

    * with a public ``schema``: its numeric columns (and the time) are numbers, its categorical
      columns levels;
    * without one: the ``categorical`` columns hold levels, ``integer`` columns whole numbers (each
      value rounded on its own), ``numeric`` columns numbers; the target holds labels (a pandas
      categorical with the declared ``classes``, the task's public classes, when given); the time
      is a number and the event a 0/1 number (``TRUE`` / ``false``, as R and Python write logicals,
      are 1 / 0, and so are vital status words, ``"Dead"`` / ``"alive"``: :data:`EVENT_WORDS`); every other column is left as text (pandas'
      ``string`` dtype), which the DP schema reads as ``auto``: numbers are numbers, other text is
      levels, and the column's kind is decided from the noisy counts
      (:func:`zodc.data.dp_schema.estimate_schema_and_count`).

    Could one record change this? Only its own values (a fractional integer is rounded, a non-number
    in a number column becomes missing, a label outside ``classes`` becomes missing: per record); no
    dtype, kind or refusal depends on any record.

    Raises:
        DataError: a declared column that does not exist; a column declared twice; ``classes`` with
            fewer than two labels. (A value that is not a number in a number column is that
            record's missing value, with a warning naming the column; the value is not quoted.)
    """
    import warnings

    from zodc.data.dp_schema import declared_spelling, normalise_level
    from zodc.data.schema import NumericColumn

    categorical, integer, numeric = list(categorical or ()), list(integer or ()), list(numeric or ())
    check_declared_kinds(frame, categorical=categorical, integer=integer, numeric=numeric)
    if schema is not None:
        for column in schema.columns + ((schema.time,) if schema.time is not None else ()):
            if column.name in frame.columns:
                (numeric if isinstance(column, NumericColumn) else categorical).append(column.name)
    out = frame.copy()
    for name in out.columns:
        series = out[name]
        if name == target:
            labels = series.astype(object).map(normalise_level)
            if classes is not None:
                levels = [normalise_level(c) for c in classes]
                if len(set(levels)) < 2 or None in levels:
                    raise DataError(f"--classes needs at least two distinct labels. Got {list(classes)!r}.")
                # The owner's spelling (" ".join of its words) names each class; labels match it up to
                # case and spaces, other labels are missing (their records are left out).
                spelled = declared_spelling(classes)
                out[name] = pd.Categorical(labels.map(dict(zip(levels, spelled))), categories=spelled)
            else:
                out[name] = labels.where(labels.notna(), None)
            continue
        if name in categorical:
            out[name] = series.astype(object).where(series.notna(), None)
            continue
        if name not in integer and name not in numeric and name not in (time, event):
            if schema is None:
                out[name] = series.astype("string")  # auto: decided with DP
            continue
        if name == event:  # logicals and vital status in words, record by record (EVENT_WORDS)
            numbers = event_numbers(series)
        else:
            numbers = pd.to_numeric(series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v),
                                    errors="coerce")
        if (numbers.isna() & series.notna()).any():
            warnings.warn(f"event column {name!r} holds values other than 0/1, true/false and dead/alive (in words zodc "
                          "knows): their records are left out. If the events are coded otherwise (R's 1 = censored / "
                          "2 = event, other words), say which value is the event: --event-value." if name == event else
                          f"column {name!r} holds values that are not numbers: they are treated as missing. If the "
                          f"column holds levels, declare it with --categorical {name}.", UserWarning, stacklevel=2)
        if name == event:  # float64 whatever the values (a missing one would otherwise change the dtype)
            out[name] = numbers
        elif name in integer:
            out[name] = numbers.round().astype("Int64") if numbers.isna().any() else numbers.round().astype(np.int64)
        else:
            out[name] = numbers.astype(np.float64)
    return out
