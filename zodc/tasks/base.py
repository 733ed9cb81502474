"""The task protocol: everything that differs between classification and survival, in one object.

:class:`~zodc.Condenser` runs one pipeline — task → budget → start → core → release — and asks
its task for each part that depends on what is predicted:

============================  ========================================================================
``frame(X, y, roles, schema)``  the fit's arguments as one frame and the columns' roles
``settings(params)``          task defaults (rows, learning rate, loss, the start's spread) and checks
``prepare(...)``              the schema (public, or DP) and its public statistics, the DP record
                              count, the encoded real records: a :class:`Problem`
``soft_events(...)``          soft labels / events, decided once the public statistics are known
``step_size(...)``            the default learning rate, once the class set is known
``start(...)``                the starting table (its row groups: classes, or event status)
``evaluator(...)``            the zero-order loss: a native kernel's evaluator, or a host payload
``release(...)``              the learned table decoded to the original columns, and fitted attributes
``assumptions(...)``          what the report lists as public for this task
``score(...)``                the private search's bounded per-record score of a candidate
``utility(...)``              the owner's held-out utility (CLI): train on synthetic, test on real
============================  ========================================================================

A third task (regression, say) is one new module implementing these and one line in
:data:`TASKS`. The shared helpers below are the parts both tasks use the same way.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Optional, Protocol

import numpy as np
import pandas as pd

from zodc.budget import THRESHOLD_DELTA_SHARE, Budget
from zodc.data.dp_schema import (N_BINS, estimate_record_count, estimate_schema_and_count, record_count_spread,
                                 schema_noise_multiplier, schema_share)
from zodc.data.schema import Schema
from zodc.data.transform import TableEncoder
from zodc.data.validation import check_raw_table
from zodc.errors import DataError
from zodc.privacy.keys import RunKeys


@dataclasses.dataclass
class Problem:
    """One fit's resolved inputs (the task fills it; nothing here is released).

    Attributes:
      frame, roles: the raw frame and its role columns (``target``; or ``time`` and ``event``).
      schema: public or DP; encoder: its :class:`~zodc.data.transform.TableEncoder`.
      record_count: the DP count ``n_hat`` (or exact without privacy).
      X: ``(n, d)`` encoded real features; stats: public or DP statistics (class proportions, or
        event rate); extra: task-specific arrays (labels, times, events).
      num_rows: ``m``, the synthetic table's rows.
    """

    frame: pd.DataFrame
    roles: dict
    schema: Schema
    encoder: TableEncoder
    record_count: float
    X: np.ndarray
    num_rows: int
    stats: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)


class Task(Protocol):
    """See the module docstring for what each method owns."""

    name: str

    def frame(self, X, y, roles: dict, schema: Schema | None) -> tuple[pd.DataFrame, dict]: ...

    def settings(self, params: dict) -> dict: ...

    def prepare(self, frame, roles, settings, keys: RunKeys, budget: Budget, schema: Schema | None) -> Problem: ...

    def soft_events(self, problem: Problem, settings, budget: Budget) -> bool: ...

    def step_size(self, problem: Problem, settings) -> float | None: ...

    def start(self, problem: Problem, settings, keys: RunKeys, budget: Budget): ...

    def evaluator(self, problem: Problem, settings, model_key, n_jobs: int): ...

    def release(self, problem: Problem, learned: np.ndarray, keys: RunKeys, settings) -> tuple[pd.DataFrame, dict]: ...

    def assumptions(self, fitted: Any, given_schema: bool) -> list[str]: ...


IDENTIFIER_ASSUMPTION = "a column whose name says it is an identifier is left out (a decision on the name)"


def features_frame(X) -> pd.DataFrame:
    """``X`` as a DataFrame (an array's columns named ``x0, x1, …``), a copy.

    Refused (the table's structure, not a record's value): sparse input, no column, complex
    columns. A cell that is not a single value (a dict, a list, …) is one record's odd cell: it is
    read as missing, alone, with a warning that names the column and quotes nothing."""
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise DataError("sparse `X` is not supported: pass a dense array or a DataFrame (X.toarray()).")
    if isinstance(X, pd.DataFrame):
        frame = X.copy()
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise DataError(f"`X` must be 2-dimensional (n_rows, n_columns). Got shape {array.shape}.")
        frame = pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])
    if frame.shape[1] == 0:
        raise DataError(f"`X` has 0 feature(s) (shape=({frame.shape[0]}, 0)) while a minimum of 1 is required.")
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "c":
            raise DataError(f"Complex data not supported: column {name!r} of `X` is complex.")
        if column.dtype == object:
            odd = column.map(lambda value: isinstance(value, (dict, list, set, tuple, np.ndarray)))
            if odd.any():
                warnings.warn(f"column {name!r}: some cells are not single values (how many and which is private); "
                              "read as missing.", UserWarning, stacklevel=3)
                frame[name] = column.mask(odd, np.nan)
    return frame


def require_features(encoder: TableEncoder) -> None:
    """Refuse a schema that leaves nothing to learn (every feature constant). A decision on the schema
    (public, or DP: post-processing), never on a record."""
    if encoder.n_encoded == 0:
        raise DataError("the schema leaves no feature to learn: every feature column is constant (one level, or "
                        "none). Give a schema with at least one informative column (zodc schema draft --no-dp), or a "
                        "larger cohort.")


def check_size(record_count: float, num_rows: int, parameter: str, classes: Optional[int] = None) -> None:
    """Refuses a table not larger than the synthetic one — decided on the DP count ``n_hat``
    (already in the ledger), never on ``n``: one record cannot decide it beyond what the noise allows.
    ``classes``: the target's number of classes (public), named when the rows are per class."""
    if record_count <= num_rows:
        rows = (f"{num_rows} rows ({classes} classes x {num_rows // classes})" if classes else f"{num_rows} rows")
        many = (" If the target is a measurement rather than a class, it is the wrong column: its distinct values "
                "became classes." if classes and classes > 10 else "")
        raise DataError(f"the table's DP record count ({record_count:.0f}) is not more than the synthetic table's "
                        f"{rows}: condensing would not make it smaller. Lower `{parameter}`.{many} (The DP "
                        "preprocessing already run is accounted; nothing was released.)")


def estimate_schema(frame: pd.DataFrame, keys: RunKeys, budget: Budget, share, **roles):
    """The DP schema and the DP record count (post-processing of its histograms), accounted; with
    ``epsilon=inf`` the exact schema (non-private mode, nothing in the ledger). ``share``: a number, or
    ``"auto"`` (:func:`zodc.data.dp_schema.schema_share`: from the number of columns).

    Could one record change this? Each histogram by one count (tests/privacy/test_neighbours.py);
    every decision is on noisy counts (:mod:`zodc.data.dp_schema`); the share is decided on the
    columns' names, roles and dtypes."""
    check_raw_table(frame, **roles)
    threshold_delta = THRESHOLD_DELTA_SHARE * budget.delta
    share = schema_share(share, frame, **roles)
    noise = schema_noise_multiplier(budget.epsilon, budget.delta, threshold_delta, share)
    schema, events, count = estimate_schema_and_count(keys.generator("schema"), frame, noise_multiplier=noise,
                                                      threshold_delta=threshold_delta, name="estimated", **roles)
    if noise > 0:
        # Every count's noise std is at least `noise` (each part's share of the budget is < 1); a
        # column has at most 1 + N_BINS + 2^30 scan bins and as many refinement bins.
        budget.draw(noise, 1 + 2 * (len(frame.columns) + 1) * (1 + N_BINS + 2**30))
    if noise > 0:
        budget.count_spread = record_count_spread(noise, schema)
    for event in events:
        budget.add("schema", event, f"DP column kinds and bounds (public log-scale bins, refined), category "
                   f"levels (thresholded), missingness, class proportions or event rate and the record count "
                   f"({share:.3g} of the budget)")
    return schema, count


def estimated_columns(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The frame's columns that a DP-estimated schema kept: it has already warned about each column it
    left out (by name, or because nothing of it stood out of the noise), so validation need not
    warn again. Structure only (the schema is post-processing)."""
    kept = set(schema.column_names)
    return frame[[column for column in frame.columns if column in kept]]


def record_count(num_records: int, keys: RunKeys, budget: Budget, noise: float) -> float:
    """A DP count of the records (``n`` is private under add/remove), accounted; exact without
    privacy; a shared budget's count when it carries one (post-processing of a mechanism already in
    the whole release's ledger)."""
    if not budget.private:
        return float(num_records)
    if budget.shared is not None and budget.shared.record_count is not None:
        return float(budget.shared.record_count)
    count, event = estimate_record_count(keys.generator("record_count"), num_records, noise)
    budget.count_spread = (float(noise), 1)
    budget.draw(noise, 1)
    budget.add("record_count", event, "DP count of the records: sets the sampling probability and the start's "
               "group sizes (n is private under add/remove)")
    return count


def quietly(function, *args, **kwargs):
    """``function(*args, **kwargs)`` with warnings silenced (reported once, by the fit's own validation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)
