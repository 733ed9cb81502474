"""Schema → model space and back: the encoded table the optimiser sees, and the released table.

:class:`TableEncoder` is built from a public :class:`~zodc.data.schema.Schema` alone; it never fits
anything on data, so encoding leaks nothing beyond what the schema already says.

Encoded layout of the features (``X``, float32, values in ``[-1, 1]``), in schema order:

* numeric column → 1 column, ``2 (x - lower) / (upper - lower) - 1`` with the public bounds (a
  ``scale: "log"`` column: ``log1p(x - lower) / log1p(upper - lower)`` in place of the ratio); a
  missing value is ``0`` (the middle). With ``missing: true`` a second column follows, the missing
  indicator (``+1`` missing, ``-1`` present), learned like any other; a released cell is missing
  where it is positive;
* categorical column: its levels, plus one "missing" slot with ``missing: true``; 2 slots → 1
  column, first ``-1``, second ``+1``; ``k > 2`` slots → ``k`` columns, one-hot in ``{-1, +1}``;
  1 slot → 0 columns (it carries no information). A value with no slot (missing without
  ``missing: true``, or unknown) is "no level": 0, or no ``+1``.

The target is a class index ``y`` (int32); survival time stays in its units (``time``, float32)
with :meth:`TableEncoder.encode_time` / :meth:`TableEncoder.decode_time` mapping it to and from a
log-time scaled to ``[-1, 1]`` by the public time bounds; ``event`` is int32 0/1.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import numpy as np
import pandas as pd

from zodc.errors import DataError
from zodc.data.schema import NumericColumn, Schema
from zodc.data.validation import category_codes, levels_array, validate_table


#: Whether the release honours a column's ``missing_rate`` (False: each cell drawn from its learned
#: indicator, the rule before; kept for the paired benchmark, ``benchmarks/missing_rate.py``).
USE_MISSING_RATE = True


class EncodedTable(NamedTuple):
    """A table in model space.

    Attributes:
        X: float32 ``(n, d_enc)`` features in ``[-1, 1]``.
        y: int32 ``(n,)`` class index (classification), else None.
        time: float32 ``(n,)`` survival time in the schema's units (survival), else None.
        event: int32 ``(n,)`` 0/1 event indicator (survival), else None.
    """

    X: np.ndarray
    y: Optional[np.ndarray] = None
    time: Optional[np.ndarray] = None
    event: Optional[np.ndarray] = None


class FeatureBlock(NamedTuple):
    """Which encoded columns ``X[:, start:stop]`` hold the original column ``name``.

    ``kind`` is ``"numeric"``, ``"numeric_missing"`` (value and missing indicator, 2 columns),
    ``"binary"`` (2 slots, one ±1 column), ``"onehot"`` (k > 2 slots, k ±1 columns) or ``"constant"``
    (1 slot, no column). A categorical column's slots are its levels, then "missing" when the schema
    allows missing values.
    """

    name: str
    start: int
    stop: int
    kind: str

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def _array_namespace(values: Any):
    try:
        import jax

        if isinstance(values, jax.Array):
            import jax.numpy as jnp

            return jnp
    except ImportError:  # pragma: no cover - jax is a dependency
        pass
    return np


def encode_log_time(time: Any, lower: float, upper: float) -> Any:
    """``(n,)`` times → log-times scaled to ``[-1, 1]`` by public bounds ``0 < lower < upper``
    (times outside the bounds are clipped). numpy in, numpy out; jax in, jax out."""
    xp = _array_namespace(time)
    log_lower, log_upper = math.log(lower), math.log(upper)
    t = xp.clip(xp.asarray(time), lower, upper)
    return xp.clip(2.0 * (xp.log(t) - log_lower) / (log_upper - log_lower) - 1.0, -1.0, 1.0)


def decode_log_time(encoded_time: Any, lower: float, upper: float, integer: bool = False) -> Any:
    """Inverse of :func:`encode_log_time` on ``[-1, 1]`` (inputs clipped there first): times are
    positive and within ``[lower, upper]``; rounded when ``integer``."""
    xp = _array_namespace(encoded_time)
    log_lower, log_upper = math.log(lower), math.log(upper)
    unit = (xp.clip(xp.asarray(encoded_time), -1.0, 1.0) + 1.0) / 2.0
    t = xp.clip(xp.exp(log_lower + unit * (log_upper - log_lower)), lower, upper)
    if integer:
        t = xp.clip(xp.round(t), math.ceil(lower), math.floor(upper))
    return t


class TableEncoder:
    """Encode a table described by ``schema`` to model space and decode it back.

    Args:
        schema: The public schema. Nothing is learned from data.

    Examples:
        >>> encoder = TableEncoder(schema)
        >>> table = encoder.encode(frame)          # EncodedTable(X (n, d_enc), y (n,))
        >>> frame_back = encoder.decode(table.X, y=table.y)
    """

    def __init__(self, schema: Schema):
        if not isinstance(schema, Schema):
            raise DataError(f"TableEncoder needs a zodc Schema. Got {type(schema).__name__}.")
        self.schema = schema
        blocks = []
        start = 0
        for column in schema.feature_columns:
            slots = len(column.categories) + int(column.missing) if not isinstance(column, NumericColumn) else 0
            if isinstance(column, NumericColumn):
                width, kind = (2, "numeric_missing") if column.missing else (1, "numeric")
            elif slots == 1:
                width, kind = 0, "constant"
            elif slots == 2:
                width, kind = 1, "binary"
            else:
                width, kind = slots, "onehot"
            blocks.append(FeatureBlock(column.name, start, start + width, kind))
            start += width
        self._blocks = tuple(blocks)
        self._columns = {column.name: column for column in schema.feature_columns}
        self.n_encoded = start

    # ------------------------------------------------------------------ layout

    @property
    def feature_blocks(self) -> tuple:
        """Tuple of :class:`FeatureBlock`, one per feature column, in schema order."""
        return self._blocks

    @property
    def n_classes(self) -> Optional[int]:
        return self.schema.n_classes

    # ------------------------------------------------------------------ blocks

    def _encode_block(self, block: FeatureBlock, values: np.ndarray) -> np.ndarray:
        """values: raw numbers (numeric) or level codes (categorical), shape (n,) → (n, width)."""
        n = values.shape[0]
        if block.kind in ("numeric", "numeric_missing"):
            column = self._columns[block.name]
            missing = np.isnan(values)
            encoded = np.where(missing, 0.0, np.clip(2.0 * column.to_unit(np.where(missing, column.lower, values))
                                                     - 1.0, -1.0, 1.0))
            if block.kind == "numeric":
                return encoded[:, None]
            return np.stack([encoded, np.where(missing, 1.0, -1.0)], axis=1)
        if block.kind == "constant":
            return np.zeros((n, 0))
        # Code -1 is "no level" (a missing or unknown category): 0 for a binary column, no +1 in a one-hot.
        if block.kind == "binary":
            return np.where(values == 1, 1.0, np.where(values == 0, -1.0, 0.0))[:, None]
        onehot = -np.ones((n, block.stop - block.start))
        known = values >= 0
        onehot[np.flatnonzero(known), values[known]] = 1.0
        return onehot

    def _decode_block(self, block: FeatureBlock, encoded: np.ndarray) -> np.ndarray:
        """encoded: (n, width) → raw numbers (numeric) or level codes (categorical), shape (n,)."""
        if block.kind in ("numeric", "numeric_missing"):
            column = self._columns[block.name]
            values = column.from_unit((np.clip(encoded[:, 0], -1.0, 1.0) + 1.0) / 2.0)  # within the bounds
            if column.integer:
                values = np.clip(np.round(values), math.ceil(column.lower), math.floor(column.upper))
            if block.kind == "numeric_missing":
                values = np.where(encoded[:, 1] > 0, np.nan, values)
            return values
        if block.kind == "constant":
            return np.zeros(encoded.shape[0], dtype=np.int64)
        if block.kind == "binary":
            return (encoded[:, 0] > 0).astype(np.int64)
        return np.argmax(encoded, axis=1).astype(np.int64)

    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_encoded:
            raise DataError(
                f"encoded features must have shape (n, {self.n_encoded}) for schema '{self.schema.name}'. "
                f"Got {X.shape}."
            )
        if not np.isfinite(X).all():
            rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
            raise DataError(f"encoded features contain NaN or inf in {len(rows)} row(s) (e.g. row {rows[0]}).")
        return X

    # ------------------------------------------------------------------ encode

    def encode(self, frame: pd.DataFrame, *, on_out_of_bounds: str = "clip") -> EncodedTable:
        """Encode a table to model space.

        The table is first checked with :func:`~zodc.data.validation.validate_table` (without
        requiring two classes or an event, so a decoded synthetic table can be encoded again).

        Args:
            frame: Table of shape ``(n, ·)`` with the schema's columns.
            on_out_of_bounds: Passed to ``validate_table`` (``"clip"`` warns, ``"raise"`` refuses).

        Returns:
            :class:`EncodedTable` with ``X`` float32 ``(n, d_enc)`` in ``[-1, 1]``; ``y`` int32
            ``(n,)`` for classification; ``time`` float32 ``(n,)`` and ``event`` int32 ``(n,)``
            for survival.

        Raises:
            DataError: see ``validate_table``.
        """
        clean = validate_table(frame, self.schema, on_out_of_bounds=on_out_of_bounds, require_variation=False,
                               allow_empty=True)
        n = len(clean)
        parts = []
        for block in self._blocks:
            column = self._columns[block.name]
            if isinstance(column, NumericColumn):
                values = clean[block.name].to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values = category_codes(clean[block.name], column.categories)
                if column.missing:  # the "missing" slot after the levels
                    values = np.where(clean[block.name].isna().to_numpy(), len(column.categories), values)
            parts.append(self._encode_block(block, values))
        X = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))
        y = time = event = None
        if self.schema.target is not None:
            y = category_codes(clean[self.schema.target], self.schema.target_column.categories).astype(np.int32)
        if self.schema.time is not None:
            time = clean[self.schema.time.name].to_numpy(dtype=np.float32)
            event = clean[self.schema.event].to_numpy(dtype=np.int32)
        return EncodedTable(X.astype(np.float32), y, time, event)

    def encode_time(self, time: Any) -> Any:
        """Map survival times ``(n,)`` to log-time scaled to ``[-1, 1]`` by the public time bounds.

        Works on numpy or jax arrays (returns the same kind). Times outside the bounds are clipped.
        """
        column = self._time_column()
        return encode_log_time(time, column.lower, column.upper)

    def decode_time(self, encoded_time: Any) -> Any:
        """Inverse of :meth:`encode_time`: ``(n,)`` values (clipped to ``[-1, 1]``) → times in bounds.

        Integer time columns are rounded. Works on numpy or jax arrays.
        """
        column = self._time_column()
        return decode_log_time(encoded_time, column.lower, column.upper, column.integer)

    def _time_column(self) -> NumericColumn:
        if self.schema.time is None:
            raise DataError(f"schema '{self.schema.name}' has no time column (task is {self.schema.task}).")
        return self.schema.time

    # ------------------------------------------------------------------ decode

    def decode(self, X: Any, y: Any = None, time: Any = None, event: Any = None,
               rng: Optional[np.random.Generator] = None) -> pd.DataFrame:
        """Decode model-space rows to a table in the schema's names, order, units and dtypes.

        Args:
            X: ``(n, d_enc)`` encoded features, any real values (clipped to ``[-1, 1]``).
            y: Classification targets: ``(n,)`` class indices (rounded and clipped to valid
                classes) or ``(n, n_classes)`` scores (argmax). If None, the target column is left
                out.
            time: Survival times ``(n,)`` in the schema's units (not encoded; use
                :meth:`decode_time` first for log-scaled values); clipped to the bounds, rounded for
                an integer time column. If None with ``event`` None, both are left out.
            event: ``(n,)`` event indicators; values > 0.5 become 1, others 0.
            rng: How a learned missing indicator ``v`` in ``[-1, 1]`` becomes a missing cell: with a
                generator, missing with probability ``(v + 1) / 2`` (so a column whose indicators sit
                at ``-0.66`` is missing in about 17 % of rows, as it was learned); without, missing
                where ``v > 0``. With a generator, a column with a ``missing_rate`` has that share of
                its cells missing (rounded), in the rows of highest ``v`` (ties in the generator's
                order). Post-processing of the table either way.

        Returns:
            DataFrame with columns in schema order: numeric values within bounds (int64 for integer
            columns, else float64), categorical values among the levels, the target as its labels,
            survival time within bounds and event int64 0/1.

        Raises:
            DataError: Wrong shapes, NaN / inf inputs, or ``y`` / ``time`` given for the wrong task.
        """
        X = self._check_X(X)
        n = X.shape[0]
        schema = self.schema
        out = {}
        for block in self._blocks:
            column = self._columns[block.name]
            encoded = X[:, block.start:block.stop]
            if block.kind == "numeric_missing" and rng is not None:
                encoded = encoded.copy()
                share = (np.clip(encoded[:, 1], -1.0, 1.0) + 1.0) / 2.0
                draws = rng.random(n)
                if column.missing_rate is not None and USE_MISSING_RATE:  # that share, highest indicators first
                    first = np.lexsort((draws, -share))[:int(round(column.missing_rate * n))]
                    encoded[:, 1] = -1.0
                    encoded[first, 1] = 1.0
                else:
                    encoded[:, 1] = np.where(draws < share, 1.0, -1.0)
            decoded = self._decode_block(block, encoded)
            if isinstance(column, NumericColumn):
                gaps = np.isnan(decoded)
                if column.integer and gaps.any():
                    out[block.name] = pd.arrays.IntegerArray(np.where(gaps, 0, decoded).astype(np.int64), gaps)
                else:
                    out[block.name] = decoded.astype(np.int64 if column.integer else np.float64)
            else:
                levels = levels_array(column.categories)
                if column.missing and (decoded == len(column.categories)).any():
                    levels = np.append(levels.astype(object), None)
                out[block.name] = levels[decoded]
        if y is not None:
            if schema.target is None:
                raise DataError(f"`y` given but schema '{schema.name}' is for {schema.task}, with no target.")
            out[schema.target] = levels_array(schema.target_column.categories)[self._class_index(y, n)]
        if time is not None or event is not None:
            if schema.time is None:
                raise DataError(f"`time`/`event` given but schema '{schema.name}' has no time column.")
            if time is None or event is None:
                raise DataError("survival decoding needs both `time` and `event`.")
            time = self._vector(time, n, "time")
            t = np.clip(time, schema.time.lower, schema.time.upper)
            if schema.time.integer:
                t = np.clip(np.round(t), math.ceil(schema.time.lower), math.floor(schema.time.upper)).astype(np.int64)
            out[schema.time.name] = t
            out[schema.event] = (self._vector(event, n, "event") > 0.5).astype(np.int64)
        order = [name for name in schema.column_names if name in out]
        return pd.DataFrame(out, columns=order)

    def _vector(self, values: Any, n: int, what: str) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n,):
            raise DataError(f"`{what}` must have shape ({n},) to match X. Got {values.shape}.")
        if not np.isfinite(values).all():
            raise DataError(f"`{what}` contains NaN or inf in {int((~np.isfinite(values)).sum())} row(s).")
        return values

    def _class_index(self, y: Any, n: int) -> np.ndarray:
        k = self.schema.n_classes
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2:
            if y.shape != (n, k):
                raise DataError(f"`y` scores must have shape ({n}, {k}). Got {y.shape}.")
            if not np.isfinite(y).all():
                raise DataError("`y` contains NaN or inf.")
            return np.argmax(y, axis=1)
        return np.clip(np.round(self._vector(y, n, "y")), 0, k - 1).astype(np.int64)

    # ------------------------------------------------------------------ project

    def project(self, X: Any) -> np.ndarray:
        """Round trip decode → encode in model space: what the released table really is.

        Numeric values are clipped to ``[-1, 1]`` (and snapped to whole numbers of an integer
        column); categorical blocks become exact ``±1`` codes of one level.

        Args:
            X: ``(n, d_enc)`` encoded features.

        Returns:
            float32 ``(n, d_enc)``.
        """
        X = self._check_X(X)
        parts = [self._encode_block(block, self._decode_block(block, X[:, block.start:block.stop]))
                 for block in self._blocks]
        projected = np.concatenate(parts, axis=1) if parts else np.zeros((X.shape[0], 0))
        return projected.astype(np.float32)
