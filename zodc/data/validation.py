"""Checks on input tables, with errors that name the problem, the column and the value.

Two entry points:

* :func:`validate_table` checks a table against a public :class:`~zodc.data.schema.Schema` and
  returns a clean copy (schema column order, canonical dtypes, out-of-bounds values clipped with a
  warning or refused);
* :func:`check_raw_table` checks a table for which no schema exists yet (before
  :func:`zodc.data.dp_schema.estimate_schema`).

Privacy note: these checks read the private table and their errors and warnings quote counts and
example values from it. They are meant for the data holder running zodc locally; nothing they say
is part of a release and none of it should be copied into one.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from zodc.errors import DataError
from zodc.data.schema import OTHER_LEVEL, NumericColumn, Schema

#: A text column is "free text" when more than this share of its rows hold distinct values ...
FREE_TEXT_UNIQUE_SHARE = 0.5
#: ... and it has more than this many distinct values.
FREE_TEXT_MIN_LEVELS = 20

_MAX_SHOWN = 5


#: Whether refusals and warnings may quote private values (examples, row indices, counts). Off by
#: default: a message is as public as a log, and the guarantee does not cover it. Turned on only
#: by an explicit request (:func:`diagnostics`, the CLI's ``--diagnostics``).
_DIAGNOSTICS = False
_WITHHELD = "values withheld: they are private (ask for diagnostics to see them)"


class diagnostics:
    """Context manager: inside it, messages quote private values (examples, rows), marked as such.

    Example::

        with zodc.data.validation.diagnostics():
            validate_table(frame, schema)
    """

    def __init__(self, enabled: bool = True):
        self.enabled = bool(enabled)

    def __enter__(self):
        global _DIAGNOSTICS
        self._saved, _DIAGNOSTICS = _DIAGNOSTICS, self.enabled
        return self

    def __exit__(self, *exc):
        global _DIAGNOSTICS
        _DIAGNOSTICS = self._saved


def _shown(values: Sequence[Any]) -> str:
    if not _DIAGNOSTICS:
        return _WITHHELD
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    text = ", ".join(repr(v) for v in values[:_MAX_SHOWN])
    return text + (", …" if len(values) > _MAX_SHOWN else "")


def _rows(mask: np.ndarray, index: pd.Index) -> str:
    if not _DIAGNOSTICS:
        return "some rows [how many and which is private; ask for diagnostics to see them]"
    positions = np.flatnonzero(mask)
    return (f"{len(positions)} row(s) (e.g. index {_shown(index[positions[:_MAX_SHOWN]].tolist())}) "
            "[diagnostics: private values, not covered by the privacy guarantee]")


def check_min_rows(n: int, needed: int, *, what: str = "the table") -> None:
    """Raise unless ``n >= needed``.

    Raises:
        DataError: "``what`` needs at least ``needed`` rows. Got ``n``."
    """
    if n < needed:
        raise DataError(f"{what} needs at least {needed} rows. Got {n}.")


def _require_frame(frame: Any, allow_empty: bool = False) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame. Got {type(frame).__name__}.")
    if len(frame) == 0 and not allow_empty:
        raise DataError("the table is empty (0 rows).")
    if frame.shape[1] == 0:
        raise DataError("the table has no columns.")
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise DataError(f"duplicate column name(s) {duplicated}.")
    return frame


def column_not_found(what: str, name: Any, columns: Sequence[Any]) -> str:
    """The message for a column that is not in the table: the columns there are, and the closest
    name when one is near (``Vote`` for ``vote``, ``age_yr`` for ``age_yrs``). Column names are
    public structure."""
    import difflib

    names = [str(c) for c in columns]
    folded = {n.casefold(): n for n in names}
    near = folded.get(str(name).casefold()) or next(iter(difflib.get_close_matches(str(name), names, n=1, cutoff=0.75)),
                                                    None)
    hint = f" Did you mean {near!r}?" if near is not None else ""
    return f"{what} {name!r} not found; columns are: {', '.join(names)}.{hint}"


def _require_column(frame: pd.DataFrame, name: Optional[str], role: str) -> None:
    if name is not None and name not in frame.columns:
        raise DataError(column_not_found(f"{role} column", name, frame.columns))


def is_free_text(series: pd.Series) -> bool:
    """Whether a text column looks like free text (an identifier, a note) rather than categories.

    Rule: the column has a text-like dtype (object, string, category) and more than
    :data:`FREE_TEXT_MIN_LEVELS` (20) distinct values, which together cover more than
    :data:`FREE_TEXT_UNIQUE_SHARE` (50 %) of its rows, i.e. a distinct value on (nearly) every row.
    Such a column cannot be one-hot encoded usefully and its levels would mostly identify single
    records; drop it or bin it before using zodc.
    """
    if not (
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    ):
        return False
    n_unique = series.nunique(dropna=True)
    return n_unique > FREE_TEXT_MIN_LEVELS and n_unique > FREE_TEXT_UNIQUE_SHARE * len(series)


def column_kind(series: pd.Series) -> str:
    """The public structural kind of a column, from its dtype only (never its values).

    Returns:
        ``"integer"`` for integer dtypes, ``"numeric"`` for float dtypes, ``"auto"`` for pandas'
        ``string`` dtype (how :func:`zodc.data.io.read_table` reads an undeclared CSV column: its kind
        is then decided with DP by :mod:`zodc.data.dp_schema`), ``"categorical"`` for everything
        else (object, category, bool).
    """
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if isinstance(series.dtype, pd.StringDtype):
        return "auto"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    return "categorical"


def _as_numeric(series: pd.Series, name: str) -> np.ndarray:
    """The column as float64, with every value that is not a finite number as NaN (missing).

    Could one record change this? Only its own value: a non-number is that record's missing value
    (a warning says so, quoting nothing), never a refusal one record could trigger.
    """
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
    else:
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna().to_numpy() & series.notna().to_numpy()
        if bad.any():
            warnings.warn(f"column '{name}' has values that are not numbers ({_shown(pd.unique(series[bad]))}; "
                          f"{_rows(bad, series.index)}): they are treated as missing. If the column holds levels, declare "
                          "it categorical (--categorical on the command line, a 'category' or object dtype in "
                          "Python).", UserWarning, stacklevel=3)
        values = converted.to_numpy(dtype=float, na_value=np.nan)
    values = np.array(values, dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def _note_missing(values: np.ndarray, column: NumericColumn, index: pd.Index, role: str) -> np.ndarray:
    """Missing numbers stay missing (NaN). A column whose schema says ``missing: false`` warns: the
    encoding puts each at the middle of the public bounds and the release has none.

    Could one record change this? Only its own value.
    """
    missing = np.isnan(values)
    if missing.any() and not column.missing:
        warnings.warn(f"{role} '{column.name}' has missing values ({_rows(missing, index)}) but its schema says "
                      "`missing: false`: each is encoded at the middle of the bounds, record by record (set "
                      "`missing: true` to learn and release them).", UserWarning, stacklevel=3)
    return values


def _check_time_event(time_values: np.ndarray, event_series: pd.Series, time_name: str, event_name: str,
                      index: pd.Index, require_variation: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(events (n,) int64, unusable (n,) bool)``: records without a usable time or event.

    Could one record change this? Only whether its own record is usable: a missing time, or an
    event other than 0/1, leaves that record out (a warning says so, quoting nothing); times <= 0
    are clipped up to the schema's lower time bound (> 0) with the other out-of-bounds values.
    Nothing is refused because of one record.
    """
    valid_event = event_series.isin([0, 1, True, False]).to_numpy() & event_series.notna().to_numpy()
    unusable = ~valid_event | np.isnan(time_values)
    if unusable.any():
        warnings.warn(f"survival records without a usable time or event (missing, or an event other than 0/1 in "
                      f"'{event_name}'; {_rows(unusable, index)}) are left out. If the events are coded otherwise "
                      "(R's 1 = censored / 2 = event, or words), say which value is the event: --event-value on "
                      "the command line; in Python, map the column to 1 (event) / 0 (censored) before `fit`.",
                      UserWarning, stacklevel=3)
    events = np.where(valid_event, pd.to_numeric(event_series.where(valid_event, 0), errors="coerce")
                      .fillna(0).to_numpy(dtype=float), 0.0).astype(np.int64)
    if require_variation and events[~unusable].sum() == 0:
        raise DataError(f"event column '{event_name}' has no events (all rows censored).")
    return events, unusable


def check_raw_table(
    frame: pd.DataFrame,
    target: Optional[str] = None,
    time: Optional[str] = None,
    event: Optional[str] = None,
) -> None:
    """Check a table that has no schema yet.

    Checks the table's *structure* only: it is a non-empty DataFrame with non-empty string column
    names; the target / time / event columns exist and are distinct (time and event go together);
    the time column has a numeric dtype. Nothing here reads the records' values, so no record can
    decide a refusal: a single class, no event, free text and rare levels are found by the DP
    schema (thresholded, accounted), and missing or malformed values act on their own record
    (:func:`validate_table`).

    Args:
        frame: The private table, shape ``(n, d)``. All its columns are used.
        target: Name of the class column (classification).
        time: Name of the survival time column.
        event: Name of the 0/1 event column.

    Raises:
        DataError: The first structural problem found, naming the column.
    """
    frame = _require_frame(frame)
    bad_names = [c for c in frame.columns if not isinstance(c, str) or not c]
    if bad_names:
        raise DataError(f"column names must be non-empty strings. Got {_shown(bad_names)}; name the columns first.")
    _require_column(frame, target, "target")
    _require_column(frame, time, "time")
    _require_column(frame, event, "event")
    if (time is None) != (event is None):
        raise DataError(f"survival needs both a time and an event column. Got time={time!r}, event={event!r}.")
    if target is not None and time is not None:
        raise DataError("give either a target (classification) or time and event (survival), not both.")
    if time is not None and time == event:
        raise DataError(f"time and event must be different columns. Got '{time}' for both.")
    # No refusal here depends on the records' values: a single class, no event, free text or rare
    # levels are for the DP schema to find (thresholded, accounted); missing or malformed values
    # act on their own record (validate_table). Never a refusal that one record could trigger.
    if time is not None:
        if column_kind(frame[time]) == "categorical":
            raise DataError(f"time column '{time}' must be numeric. Got dtype {frame[time].dtype}.")


_ZERO_FRACTION = re.compile(r"[+-]?\d+\.0+")


def normalise_text(text: str) -> str:
    """A text level as zodc compares and releases it: surrounding and repeated whitespace removed,
    lower-cased (``" Male"``, ``"MALE "`` and ``"male"`` are one level), and a whole number written
    with a zero fraction written without it (``"1.0"`` is ``"1"``: tables merged from exports that
    write numbers differently; ``"01"`` stays ``"01"``). Acts on one value alone."""
    text = " ".join(text.split()).casefold()
    return text[:text.index(".")] if _ZERO_FRACTION.fullmatch(text) else text


def _blank(series: pd.Series) -> np.ndarray:
    """Cells that hold only whitespace: missing, like an empty cell."""
    return series.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)


def _category_key(value: Any) -> tuple:
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return ("number", float(value))
    if isinstance(value, str):  # stray case and whitespace do not make a new level
        return ("text", normalise_text(value))
    return ("other", value)


def category_codes(series: pd.Series, categories: Sequence[Any]) -> np.ndarray:
    """Index of each value of ``series`` in ``categories`` (-1 where it is not a level).

    Numbers match numbers by value (``1`` matches ``1.0``), booleans match booleans, strings match
    strings up to case and surrounding or repeated whitespace (``" Male"`` matches ``"male"``).

    Returns:
        int64 array of shape ``(n,)``.
    """
    lookup = {_category_key(level): index for index, level in enumerate(categories)}
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.array([lookup.get(_category_key(u), -1) for u in uniques] + [-1], dtype=np.int64)
    return mapped[codes]


def levels_array(categories: Sequence[Any]) -> np.ndarray:
    """The levels as a numpy array of the dtype a column of them should have.

    All bool → bool, all int → int64, all numbers → float64, otherwise object.
    """
    levels = list(categories)
    if all(isinstance(v, bool) for v in levels):
        return np.array(levels, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in levels):
        return np.array(levels, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels):
        return np.array(levels, dtype=np.float64)
    out = np.empty(len(levels), dtype=object)
    out[:] = levels
    return out


def _numeric_in_bounds(values: np.ndarray, column: NumericColumn, index: pd.Index, on_out_of_bounds: str,
                       role: str = "column") -> np.ndarray:
    outside = (values < column.lower) | (values > column.upper)
    if outside.any():
        observed = (f" (observed range [{float(np.min(values))!r}, {float(np.max(values))!r}]: private, shown as "
                    "diagnostics)" if _DIAGNOSTICS else "")
        message = (
            f"{role} '{column.name}': {_rows(outside, index)} outside the schema bounds "
            f"[{column.lower!r}, {column.upper!r}]{observed}"
        )
        if on_out_of_bounds == "raise":
            raise DataError(message + ".")
        warnings.warn(message + "; clipped to the bounds.", UserWarning, stacklevel=3)
        values = np.clip(values, column.lower, column.upper)
    if column.integer:
        fractional = (values != np.round(values)) & ~np.isnan(values)
        if fractional.any():
            warnings.warn(
                f"{role} '{column.name}' is an integer column but {_rows(fractional, index)} are not whole "
                "numbers; rounded.",
                UserWarning,
                stacklevel=3,
            )
            values = np.clip(np.round(values), math.ceil(column.lower), math.floor(column.upper))
        if np.isnan(values).any():  # whole numbers with gaps: pandas' nullable integers
            return pd.arrays.IntegerArray(np.where(np.isnan(values), 0, values).astype(np.int64), np.isnan(values))
        return values.astype(np.int64)
    return values.astype(np.float64)


def validate_table(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    on_out_of_bounds: str = "clip",
    require_variation: bool = True,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Check ``frame`` against ``schema`` and return a clean copy.

    Args:
        frame: Table of shape ``(n, d)`` with (at least) the schema's columns. Columns not in the
            schema are dropped with a warning.
        schema: The public schema.
        on_out_of_bounds: ``"clip"`` (default): numeric values outside the schema bounds are clipped
            and a warning names the column and the number of rows; ``"raise"``: DataError instead.
        require_variation: Refuse a target with a single class, or survival data without any event
            (what training needs). Set False to check a decoded synthetic table.

    Every value problem acts on its own record, with a warning that quotes nothing private (unless
    :class:`diagnostics` are on): a missing, infinite or non-numeric number is missing (NaN; the
    encoder learns it when the schema says ``missing: true``, else puts it at the middle of the
    bounds); a category value outside the levels is the ``"(other)"`` level where the schema has
    one, else "no level"; a missing category is missing; a record whose class is missing or
    unknown, or whose time or event is unusable, is left out; out-of-bounds values are clipped. Could one record change this? Only its own row of the result.

    Returns:
        A DataFrame with the index of the records kept and the columns ``schema.column_names`` in
        order: numeric columns float64 (int64 for integer columns; pandas ``Int64`` where values
        are missing), missing numbers NaN, categorical columns holding the
        schema's levels (``None`` for no level), the event column int64 0/1.

    Raises:
        DataError: Empty table; a missing column (the target: "target column 'outcome' not found;
            columns are: …"); with ``require_variation``, fewer than two classes or no event among
            the records kept; values out of bounds with ``on_out_of_bounds="raise"``.
    """
    if on_out_of_bounds not in ("clip", "raise"):
        raise DataError(f"`on_out_of_bounds` must be 'clip' or 'raise'. Got {on_out_of_bounds!r}.")
    if not isinstance(schema, Schema):
        raise DataError(f"`schema` must be a zodc Schema. Got {type(schema).__name__}.")
    frame = _require_frame(frame, allow_empty)
    _require_column(frame, schema.target, "target")
    if schema.time is not None:
        _require_column(frame, schema.time.name, "time")
        _require_column(frame, schema.event, "event")
    missing = [name for name in schema.column_names if name not in frame.columns]
    if missing:
        raise DataError(
            f"column(s) {missing} of schema '{schema.name}' not found; columns are: {list(frame.columns)}."
        )
    extra = [name for name in frame.columns if name not in schema.column_names]
    if extra:
        warnings.warn(
            f"column(s) {extra} are not in schema '{schema.name}' and are ignored.", UserWarning, stacklevel=2
        )
    # Missing or malformed values act on their own record only (never a refusal): a missing number is
    # set to the middle of the public bounds, a missing or unknown category is "no level", a record
    # without a usable class, time or event is left out.
    out = {}
    dropped_rows = np.zeros(len(frame), dtype=bool)
    for column in schema.columns:
        series = frame[column.name]
        role = "target" if column.name == schema.target else "column"
        if isinstance(column, NumericColumn):
            values = _note_missing(_as_numeric(series, column.name), column, frame.index, role)
            out[column.name] = _numeric_in_bounds(values, column, frame.index, on_out_of_bounds, role)
        else:
            codes = category_codes(series, column.categories)
            if OTHER_LEVEL in column.categories and role != "target":  # values outside the levels are "other"
                present = series.notna().to_numpy() & ~_blank(series)  # a blank cell is missing, not "other"
                codes = np.where((codes < 0) & present, list(column.categories).index(OTHER_LEVEL), codes)
            unknown = codes < 0
            if role == "target" and (unknown & series.isna().to_numpy()).any():
                warnings.warn(f"target '{column.name}' has missing values ({_rows(unknown & series.isna().to_numpy(), frame.index)}): "
                              "their records are left out.", UserWarning, stacklevel=2)
            if (unknown & series.notna().to_numpy() & ~_blank(series)).any():
                # Never a refusal (one record would decide it, e.g. a rare level the DP schema
                # dropped): a feature value outside the levels is encoded as "no level", a class
                # outside the target's levels leaves its record out. Both act on that record alone.
                what = ("their records are left out" if role == "target" else
                        "they are encoded as no level (like a missing category)")
                warnings.warn(f"{role} '{column.name}' has values not among the schema's levels: {what} "
                              f"({_rows(unknown, frame.index)}).", UserWarning, stacklevel=2)
            if role == "target" and require_variation and len(np.unique(codes[~unknown])) < 2:
                raise DataError(f"target column '{column.name}' has fewer than 2 of the schema's classes; need at least 2.")
            levels = levels_array(column.categories)
            if unknown.any():
                values = np.empty(len(codes), dtype=object)
                values[~unknown] = levels[codes[~unknown]]
                values[unknown] = None
                out[column.name] = values
                if role == "target":
                    dropped_rows |= unknown
            else:
                out[column.name] = levels[codes]
    if schema.time is not None:
        time_values = _as_numeric(frame[schema.time.name], schema.time.name)
        events, unusable = _check_time_event(
            time_values, frame[schema.event], schema.time.name, schema.event, frame.index, require_variation
        )
        usable_times = np.where(unusable, schema.time.upper, time_values)
        out[schema.time.name] = _numeric_in_bounds(usable_times, schema.time, frame.index, on_out_of_bounds, "time")
        out[schema.event] = events
        dropped_rows |= unusable
    clean = pd.DataFrame(out, index=frame.index, columns=list(schema.column_names))
    if dropped_rows.any():
        clean = clean.loc[~dropped_rows]
    return clean


def clean_quietly(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """:func:`validate_table` for tables already reported on: out-of-bounds values clipped without
    a warning, no class or event variation required (a decoded synthetic table, a test split)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validate_table(frame, schema, on_out_of_bounds="clip", require_variation=False)
