"""Public schemas: which columns a table has, their bounds, levels and roles.

A :class:`Schema` is everything zodc may know about a table *without* looking at its values:
column names and order, numeric bounds, categorical levels, the task, the target / time / event
columns, and (optionally) published class proportions or event rate. Every number in a schema must
be public (published documentation, domain knowledge) or estimated with differential privacy
(:mod:`zodc.data.dp_schema`); :attr:`Schema.source` says which, in words.

Table layout described by a schema (the column order of a decoded table):

* ``columns`` in their order (features, and for classification the target, a
  :class:`CategoricalColumn` named by ``target``, wherever it sits);
* then, for survival, the time column (``time``, a :class:`NumericColumn` with ``lower > 0``)
  and the event column (``event``, values 0/1).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Mapping, Optional, Union

import numpy as np

from zodc.errors import SchemaError

TASKS = ("classification", "survival")
NUMERIC_SCALES = ("linear", "log")
#: The level a categorical column's rare values land in (a DP schema adds it when such values are
#: frequent enough to be seen through the noise; a public schema may list it too).
OTHER_LEVEL = "(other)"


def _is_json_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


@dataclasses.dataclass(frozen=True)
class NumericColumn:
    """A numeric column with public bounds.

    Attributes:
        name: Column name.
        lower: Public lower bound (finite, ``< upper``).
        upper: Public upper bound (finite).
        integer: Whether values are whole numbers (decoding rounds them).
        scale: ``"linear"`` (default): encoded linearly between the bounds. ``"log"``: encoded by
            ``log1p(x - lower)`` between ``0`` and ``log1p(upper - lower)`` — for right-skewed
            counts and concentrations whose bounds are wide (gbsg2's receptor levels lie in
            [0, 5000] fmol with a median near 30), so that the values records actually take
            are spread over the encoded range rather than crowded at one end. A public choice
            made from the column's meaning, like the bounds; it never looks at the data.
        missing: Whether values may be missing. ``True``: the encoded table gets a learned
            missing-indicator column beside the value, and the released table has missing cells
            where the learned indicator says so. ``False`` (default): a missing value is encoded at
            the middle of the bounds and the release has none.
        missing_rate: With ``missing``, the share of records whose value is missing, when known
            (the DP schema estimates it from its noisy counts; a public schema may state it): the
            release has that share of missing cells (rounded), in the rows whose learned indicator
            is highest (:meth:`~zodc.data.transform.TableEncoder.decode` with a generator).
            ``None`` (default): each row's cell is missing as its learned indicator says, which
            drifts where the indicator does not move the loss (a column with few missing values had
            15-25 % of its cells empty).
    """

    name: str
    lower: float
    upper: float
    integer: bool = False
    scale: str = "linear"
    missing: bool = False
    missing_rate: Optional[float] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError(f"column name must be a non-empty string. Got {self.name!r}.")
        if not isinstance(self.missing, bool):
            raise SchemaError(f"column '{self.name}': `missing` must be true or false. Got {self.missing!r}.")
        for field in ("lower", "upper"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SchemaError(f"column '{self.name}': `{field}` must be a finite number. Got {value!r}.")
        if not self.lower < self.upper:
            raise SchemaError(
                f"column '{self.name}': `lower` must be < `upper`. Got lower={self.lower!r}, upper={self.upper!r}."
            )
        if not isinstance(self.integer, bool):
            raise SchemaError(f"column '{self.name}': `integer` must be true or false. Got {self.integer!r}.")
        if self.integer and math.floor(self.upper) < math.ceil(self.lower):
            raise SchemaError(
                f"column '{self.name}': integer column has no whole number in "
                f"[{self.lower!r}, {self.upper!r}]."
            )
        if self.scale not in NUMERIC_SCALES:
            raise SchemaError(f"column '{self.name}': `scale` must be one of {list(NUMERIC_SCALES)}. Got {self.scale!r}.")
        if self.missing_rate is not None:
            rate = self.missing_rate
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
                raise SchemaError(f"column '{self.name}': `missing_rate` must be a number in [0, 1]. Got {rate!r}.")
            if not self.missing:
                raise SchemaError(f"column '{self.name}': `missing_rate` needs `missing: true`.")
            object.__setattr__(self, "missing_rate", float(rate))

    def to_unit(self, values: Any) -> np.ndarray:
        """Raw values → ``[0, 1]`` (the encoding before the shift to ``[-1, 1]``), clipped to the bounds."""
        values = np.clip(np.asarray(values, np.float64), self.lower, self.upper)
        if self.scale == "log":
            return np.log1p(values - self.lower) / math.log1p(self.upper - self.lower)
        return (values - self.lower) / (self.upper - self.lower)

    def from_unit(self, unit: Any) -> np.ndarray:
        """``[0, 1]`` → raw values (the inverse of :meth:`to_unit`), within the bounds."""
        unit = np.clip(np.asarray(unit, np.float64), 0.0, 1.0)
        if self.scale == "log":
            values = self.lower + np.expm1(unit * math.log1p(self.upper - self.lower))
        else:
            values = self.lower + unit * (self.upper - self.lower)
        return np.clip(values, self.lower, self.upper)

    def to_dict(self) -> dict:
        out = {"kind": "numeric", "name": self.name, "lower": self.lower, "upper": self.upper, "integer": self.integer}
        if self.scale != "linear":
            out["scale"] = self.scale
        if self.missing:
            out["missing"] = True
        if self.missing_rate is not None:
            out["missing_rate"] = self.missing_rate
        return out


@dataclasses.dataclass(frozen=True)
class CategoricalColumn:
    """A categorical column with public levels.

    Attributes:
        name: Column name.
        categories: The levels, in a fixed order (tuple of str / int / float / bool, no duplicates,
            at least one). For a target, the class index of a level is its position here. A level
            named :data:`OTHER_LEVEL` collects every value that is not one of the others.
        missing: Whether values may be missing (a feature only): missing becomes one more learned
            level of the encoding, released as an empty cell. ``False``: a missing value is "no level".
    """

    name: str
    categories: tuple
    missing: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError(f"column name must be a non-empty string. Got {self.name!r}.")
        if not isinstance(self.missing, bool):
            raise SchemaError(f"column '{self.name}': `missing` must be true or false. Got {self.missing!r}.")
        if isinstance(self.categories, (str, bytes)) or not hasattr(self.categories, "__iter__"):
            raise SchemaError(f"column '{self.name}': `categories` must be a list of levels. Got {self.categories!r}.")
        object.__setattr__(self, "categories", tuple(self.categories))
        if len(self.categories) < 1:
            raise SchemaError(f"column '{self.name}': needs at least 1 category. Got none.")
        for level in self.categories:
            if not _is_json_scalar(level):
                raise SchemaError(
                    f"column '{self.name}': categories must be strings, numbers or booleans. Got {level!r}."
                )
        seen = set()
        for level in self.categories:
            key = (type(level) is bool, level)
            if key in seen:
                raise SchemaError(f"column '{self.name}': duplicate category {level!r}.")
            seen.add(key)

    def to_dict(self) -> dict:
        out = {"kind": "categorical", "name": self.name, "categories": list(self.categories)}
        if self.missing:
            out["missing"] = True
        return out


Column = Union[NumericColumn, CategoricalColumn]


def _column_from_dict(entry: Mapping[str, Any]) -> Column:
    if not isinstance(entry, Mapping):
        raise SchemaError(f"each column must be a JSON object. Got {entry!r}.")
    name = entry.get("name", "<unnamed>")
    kind = entry.get("kind")
    known = {"kind", "name", "lower", "upper", "integer", "scale", "missing", "missing_rate", "categories", "origin"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise SchemaError(f"column '{name}': unknown field(s) {unknown}.")
    for field in ("lower", "upper") if kind == "numeric" else ():
        if field in entry and entry[field] is None:
            raise SchemaError(f"column '{name}': `{field}` is not filled in. Write the bound from your data "
                              "dictionary or the measurement's documented range (a draft leaves it for you).")
    try:
        if kind == "numeric":
            return NumericColumn(
                name=entry["name"], lower=entry["lower"], upper=entry["upper"], integer=entry.get("integer", False),
                scale=entry.get("scale", "linear"), missing=entry.get("missing", False),
                missing_rate=entry.get("missing_rate"),
            )
        if kind == "categorical":
            return CategoricalColumn(name=entry["name"], categories=tuple(entry["categories"]),
                                     missing=entry.get("missing", False))
    except KeyError as missing:
        raise SchemaError(f"column '{name}': missing field {missing}.") from None
    raise SchemaError(f"column '{name}': `kind` must be 'numeric' or 'categorical'. Got {kind!r}.")


@dataclasses.dataclass(frozen=True)
class Schema:
    """The public description of a table.

    Attributes:
        name: Name of the table (e.g. ``"breast_cancer"``).
        task: ``"classification"`` or ``"survival"``.
        columns: Tuple of :class:`NumericColumn` / :class:`CategoricalColumn`, in table order. For
            classification it includes the target (a :class:`CategoricalColumn`).
        target: Name of the target column (classification), else ``None``.
        class_proportions: Public class proportions, one per target level (positive, summing to 1),
            or ``None`` when none are published.
        time: Survival time column (``lower > 0``), else ``None``.
        event: Name of the 0/1 event column (survival), else ``None``.
        event_rate: Public proportion of events in ``(0, 1)``, or ``None``.
        source: Where the bounds come from and why they are public (free text, required).
    """

    name: str
    task: str
    columns: tuple
    target: Optional[str] = None
    class_proportions: Optional[tuple] = None
    time: Optional[NumericColumn] = None
    event: Optional[str] = None
    event_rate: Optional[float] = None
    source: str = ""

    def __repr__(self) -> str:
        # Short, so an estimator's repr stays readable; the whole schema is in to_dict() / to_json().
        role = (f"target={self.target!r}" if self.task == "classification" else
                f"time={self.time.name if self.time is not None else None!r}, event={self.event!r}")
        return f"Schema(name={self.name!r}, task={self.task!r}, {len(self.feature_names)} features, {role})"

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        if self.class_proportions is not None:
            object.__setattr__(self, "class_proportions", tuple(float(p) for p in self.class_proportions))
        self._validate()

    def _validate(self) -> None:
        where = f"schema '{self.name}'"
        if self.task not in TASKS:
            raise SchemaError(f"{where}: `task` must be one of {TASKS}. Got {self.task!r}.")
        if not isinstance(self.source, str) or not self.source.strip():
            raise SchemaError(f"{where}: `source` must say where the bounds come from and why they are public.")
        for column in self.columns:
            if not isinstance(column, (NumericColumn, CategoricalColumn)):
                raise SchemaError(f"{where}: columns must be NumericColumn or CategoricalColumn. Got {column!r}.")
        names = [column.name for column in self.columns]
        if self.time is not None:
            if not isinstance(self.time, NumericColumn):
                raise SchemaError(f"{where}: `time` must be a NumericColumn. Got {self.time!r}.")
            names.append(self.time.name)
        if self.event is not None:
            names.append(self.event)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(f"{where}: duplicate column name(s) {duplicates}.")
        if self.task == "classification":
            if self.target is None:
                raise SchemaError(f"{where}: a classification schema needs a `target` column.")
            target = self.column(self.target) if self.target in names else None
            if not isinstance(target, CategoricalColumn):
                raise SchemaError(
                    f"{where}: target column '{self.target}' must be one of `columns` and categorical."
                )
            if target.missing:
                raise SchemaError(f"{where}: target column '{self.target}' cannot be `missing` (a record without a "
                                  "class is left out).")
            if len(target.categories) < 2:
                raise SchemaError(
                    f"{where}: target column '{self.target}' needs at least 2 classes. Got {list(target.categories)}."
                )
            if self.time is not None or self.event is not None or self.event_rate is not None:
                raise SchemaError(f"{where}: `time`, `event` and `event_rate` are for survival schemas only.")
            if self.class_proportions is not None:
                proportions = self.class_proportions
                if len(proportions) != len(target.categories):
                    raise SchemaError(
                        f"{where}: `class_proportions` needs one value per class of '{self.target}' "
                        f"({len(target.categories)}). Got {len(proportions)}."
                    )
                if any(not (p > 0) or not math.isfinite(p) for p in proportions) or abs(sum(proportions) - 1) > 1e-6:
                    raise SchemaError(
                        f"{where}: `class_proportions` must be positive and sum to 1. Got {list(proportions)}."
                    )
        else:
            if self.target is not None or self.class_proportions is not None:
                raise SchemaError(f"{where}: `target` and `class_proportions` are for classification schemas only.")
            if self.time is None or self.event is None:
                raise SchemaError(f"{where}: a survival schema needs `time` and `event`.")
            if self.time.missing:
                raise SchemaError(f"{where}: time column '{self.time.name}' cannot be `missing` (a record without "
                                  "a time is left out).")
            if not self.time.lower > 0:
                raise SchemaError(
                    f"{where}: time column '{self.time.name}' needs lower > 0. Got lower={self.time.lower!r}."
                )
            if not isinstance(self.event, str) or not self.event:
                raise SchemaError(f"{where}: `event` must be a column name. Got {self.event!r}.")
            if self.event_rate is not None and not (0 < self.event_rate < 1):
                raise SchemaError(f"{where}: `event_rate` must be in (0, 1). Got {self.event_rate!r}.")

    # ---------------------------------------------------------------- views

    @property
    def feature_columns(self) -> tuple:
        """The feature columns (all of ``columns`` but the target), in order."""
        return tuple(column for column in self.columns if column.name != self.target)

    @property
    def feature_names(self) -> tuple:
        """Names of the feature columns, in order."""
        return tuple(column.name for column in self.feature_columns)

    @property
    def column_names(self) -> tuple:
        """All column names in table order: ``columns``, then time and event (survival)."""
        names = [column.name for column in self.columns]
        if self.time is not None:
            names.append(self.time.name)
        if self.event is not None:
            names.append(self.event)
        return tuple(names)

    @property
    def target_column(self) -> Optional[CategoricalColumn]:
        """The target column (classification) or ``None``."""
        return None if self.target is None else self.column(self.target)

    @property
    def n_classes(self) -> Optional[int]:
        """Number of target classes (classification) or ``None``."""
        target = self.target_column
        return None if target is None else len(target.categories)

    def column(self, name: str) -> Column:
        """The column called ``name`` (including the time column).

        Raises:
            SchemaError: No such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        if self.time is not None and self.time.name == name:
            return self.time
        raise SchemaError(f"schema '{self.name}' has no column '{name}'; columns are: {list(self.column_names)}.")

    def replace(self, **changes: Any) -> "Schema":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- JSON

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (what :meth:`from_json` reads)."""
        return {
            "name": self.name,
            "task": self.task,
            "source": self.source,
            "target": self.target,
            "class_proportions": None if self.class_proportions is None else list(self.class_proportions),
            "time": None if self.time is None else self.time.to_dict(),
            "event": self.event,
            "event_rate": self.event_rate,
            "columns": [column.to_dict() for column in self.columns],
        }

    def to_json(self, path: Union[str, os.PathLike]) -> None:
        """Write the schema as JSON, atomically (temp file, fsync, rename)."""
        from zodc.data.io import write_json_atomic

        write_json_atomic(self.to_dict(), path)

    @classmethod
    def from_json(cls, source: Union[str, os.PathLike, Mapping[str, Any]]) -> "Schema":
        """Read a schema from a JSON file path or an already parsed dict.

        A column may carry an ``"origin"`` note (where each field came from, as ``zodc schema
        draft`` writes it); it is for the reviewer and ignored here. A numeric bound left ``null``
        by a draft is refused with a message saying to fill it in.

        Raises:
            SchemaError: Missing file, invalid JSON, missing or invalid fields (the message names
                the field or column).
        """
        if isinstance(source, Mapping):
            data = source
        else:
            try:
                with open(source, encoding="utf-8") as handle:
                    data = json.load(handle)
            except FileNotFoundError:
                raise SchemaError(f"schema file not found: '{os.fspath(source)}'.") from None
            except json.JSONDecodeError as error:
                raise SchemaError(f"schema file '{os.fspath(source)}' is not valid JSON: {error}.") from None
        if not isinstance(data, Mapping):
            raise SchemaError(f"a schema must be a JSON object. Got {type(data).__name__}.")
        known = {"name", "task", "source", "target", "class_proportions", "time", "event", "event_rate", "columns"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SchemaError(f"schema '{data.get('name', '<unnamed>')}': unknown field(s) {unknown}.")
        for required in ("name", "task", "columns", "source"):
            if required not in data:
                raise SchemaError(f"schema '{data.get('name', '<unnamed>')}': missing field '{required}'.")
        if not isinstance(data["columns"], list):
            raise SchemaError(f"schema '{data['name']}': `columns` must be a list.")
        time = data.get("time")
        if time is not None:
            time = _column_from_dict({"kind": "numeric", **time})
        return cls(
            name=data["name"],
            task=data["task"],
            columns=tuple(_column_from_dict(entry) for entry in data["columns"]),
            target=data.get("target"),
            class_proportions=data.get("class_proportions"),
            time=time,
            event=data.get("event"),
            event_rate=data.get("event_rate"),
            source=data["source"],
        )
