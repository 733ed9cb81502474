"""``zodc schema``: a schema the data owner can review (draft → review → condense).

::

    zodc schema draft --data cohort.csv --target outcome --out cohort.schema.json            # DP, ε = 0.1
    zodc schema draft --data cohort.csv --target outcome --out cohort.schema.json --no-dp    # a form to fill in
    zodc schema check --schema cohort.schema.json --data cohort.csv

``draft`` writes a schema JSON in which every column carries an ``"origin"`` note: which of its
fields were declared, estimated with differential privacy, or read from the data without privacy
(:meth:`zodc.data.schema.Schema.from_json` ignores the note). With DP (the default) the draft is a
release like any other: it spends ``(epsilon, delta)`` of the cohort's budget, which the owner
counts against the total when the table is condensed too (with ``--schema`` the condensation
treats the schema as public and spends nothing on it). With ``--no-dp`` nothing is spent, the
numeric bounds are left ``null`` for the owner to fill in from a data dictionary, and the levels
are the data's own: such a file is NOT private until the owner has reviewed it.

``check`` reads the table and says, column by column, what a condensation with the schema would do
to it (clip, map to ``"(other)"`` or no level, treat as missing, leave records out) without quoting
private values: by default only whether some rows are affected, with ``--diagnostics`` the counts
and shares. Exit status 0 when nothing would be changed, 1 when something would, 2 on errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from zodc.errors import ConfigError, DataError

DEFAULT_EPSILON = 0.1
DEFAULT_DELTA = 1e-5

_OWNER_ONLY = ("FOR THE DATA OWNER'S EYES ONLY: this check reads the private table; even whether rows are affected "
               "is private (not covered by the privacy guarantee). Do not publish it.")
_NO_DP_LEVELS = ("levels read from the data WITHOUT privacy: keep only levels that are public (a data dictionary), "
                 "delete the rest; values not listed go to '(other)' if you list it")
_NO_DP_MISSING = ("read from the data WITHOUT privacy (true: the table has empty cells here): keep it true only if "
                  "missing values are expected in this column")
_NO_DP_BOUNDS = "fill from your data dictionary (the documented range of the measurement), never from this table"


# ----------------------------------------------------------------------------------------- parser


def add_schema_parser(subparsers) -> argparse.ArgumentParser:
    """Adds ``zodc schema draft`` / ``zodc schema check`` to an argparse ``subparsers`` object.

    Hook into the CLI (``zodc/cli.py``)::

        from zodc.schema_tool import add_schema_parser; add_schema_parser(sub)   # build_parser
        elif args.command == "schema": return args.handler(args)                 # main
    """
    schema = subparsers.add_parser(
        "schema", help="draft a schema for the owner to review, or check a schema against the table",
        description="A schema the owner can review: `zodc schema draft` writes one (with DP, or a form to fill in "
                    "with --no-dp), the owner reviews it, `zodc schema check` says what a condensation would do to "
                    "the table, and `zodc condense --schema` uses it.")
    kinds = schema.add_subparsers(dest="schema_command", required=True)

    draft = kinds.add_parser(
        "draft", help="write a schema draft for review (DP by default; --no-dp: a form to fill in)",
        description="Write a schema JSON for the data owner to review; each column says where each field came from "
                    "(\"origin\"). Default: estimated with differential privacy, which spends (--epsilon, --delta) "
                    "of the cohort's budget (count it against the total if you condense the table too). --no-dp "
                    "spends nothing but leaves the numeric bounds null for you to fill in, and lists the levels found "
                    "in the data: a --no-dp draft contains the data's level names and is NOT private until reviewed.")
    draft.add_argument("--data", required=True, help="CSV file of the private cohort (also .csv.gz, .bz2, .xz, or a .zip of one CSV)")
    draft.add_argument("--target", help="class column (classification)")
    draft.add_argument("--time-col", help="survival time column (survival; with --event-col)")
    draft.add_argument("--event-col", help="survival event column, 0 = censored / 1 = event")
    draft.add_argument("--event-value", metavar="VALUE",
                       help="the --event-col value that means the event happened, when it is not 1 (as for zodc "
                            "condense), e.g. 2 for R's 1 = censored / 2 = dead")
    draft.add_argument("--out", required=True,
                       help="where to write the schema JSON (refused if it exists, unless --force)")
    draft.add_argument("--force", action="store_true", help="overwrite an existing --out")
    draft.add_argument("--epsilon", type=float, default=None,
                       help=f"epsilon the DP draft spends (default {DEFAULT_EPSILON}); count it against the "
                       "cohort's total")
    draft.add_argument("--delta", type=float, default=None,
                       help=f"delta the DP draft spends (default {DEFAULT_DELTA:g})")
    draft.add_argument("--no-dp", action="store_true",
                       help="no privacy spent: kinds and levels read from the data WITHOUT noise, numeric bounds left "
                       "null for you to fill in. The file contains the data's level names and is NOT private until "
                       "reviewed")
    draft.add_argument("--categorical", default="", metavar="COLS", help="comma-separated columns that hold levels")
    draft.add_argument("--integer", default="", metavar="COLS", help="comma-separated columns that hold whole numbers")
    draft.add_argument("--numeric", default="", metavar="COLS", help="comma-separated columns that hold numbers")
    draft.add_argument("--classes", default="", metavar="LABELS",
                       help="comma-separated classes of the target, in order (public; default: the target's distinct "
                       "labels, taken as public)")
    draft.add_argument("--seed", type=int, default=None,
                       help="a SECRET seed of the DP draft's noise (default: fresh OS entropy); never written out")
    draft.add_argument("--diagnostics", action="store_true",
                       help="let messages and the summary quote private values (counts, examples); NOT covered by "
                       "the privacy guarantee")
    draft.set_defaults(handler=draft_command)

    check = kinds.add_parser(
        "check", help="what a condensation with this schema would do to the table (exit 0: nothing, 1: something)",
        description="Validate a schema and report, per column, what a condensation would do to the table: values "
                    "clipped to the bounds, values mapped to '(other)' or no level, missing values, records left out, "
                    "columns ignored. Without --diagnostics it says only whether some rows are affected; with it, "
                    "counts and shares. Modifies nothing. Exit status: 0 nothing would be changed, 1 something would, "
                    "2 an error (an invalid schema, a schema column missing from the table).")
    check.add_argument("--schema", required=True, help="the schema JSON to check")
    check.add_argument("--data", required=True, help="CSV file of the private cohort (also .csv.gz, .bz2, .xz, or a .zip of one CSV)")
    check.add_argument("--event-value", metavar="VALUE",
                       help="the event column's value that means the event happened, when it is not 1 (as for zodc "
                            "condense)")
    check.add_argument("--diagnostics", action="store_true",
                       help="show counts, shares and example values (private; NOT covered by the privacy guarantee)")
    check.set_defaults(handler=check_command)
    return schema


def _columns(text: str) -> list:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _warn_out(caught) -> None:
    """Relays caught warnings to stderr in the command line's format (``zodc.cli.main`` installs
    it: ``zodc: warning: <message>``, each distinct message once)."""
    for warning in caught:
        sys.stderr.write(warnings.formatwarning(warning.message, warning.category, warning.filename,
                                                warning.lineno))


# ------------------------------------------------------------------------------------------ draft


def _roles(args) -> dict:
    survival = args.time_col is not None or args.event_col is not None
    if args.target is not None and survival:
        raise ConfigError("give --target (classification) or --time-col and --event-col (survival), not both.")
    if survival and (args.time_col is None or args.event_col is None):
        raise ConfigError("survival needs both --time-col and --event-col.")
    if not survival and args.target is None:
        raise ConfigError("give --target (the class column) or --time-col and --event-col (survival).")
    if getattr(args, "event_value", None) is not None and not survival:
        raise ConfigError("--event-value is for survival (with --time-col and --event-col).")
    return {"target": args.target, "time": args.time_col, "event": args.event_col}


def _check_out(out: str, data: str, force: bool) -> None:
    directory = os.path.dirname(os.path.abspath(out)) or "."
    if not os.path.isdir(directory):
        raise ConfigError(f"--out: directory {directory!r} does not exist.")
    if os.path.isdir(out):
        raise ConfigError(f"--out: {out!r} is a directory; give a file name.")
    if os.path.exists(data) and os.path.exists(out) and os.path.samefile(out, data):
        raise ConfigError("--out is the --data file; give the schema its own file.")
    if os.path.exists(out) and not force:
        raise ConfigError(f"--out: {out!r} exists; pass --force to overwrite it.")
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"--out: directory {directory!r} is not writable.")


def draft_command(args) -> int:
    """``zodc schema draft``: writes the draft, prints a summary; returns the exit status."""
    from zodc.data.io import (apply_declared_kinds, check_declared_kinds, event_indicator, json_safe, read_table,
                              write_json_atomic)
    from zodc.data.validation import diagnostics

    roles = _roles(args)
    if args.no_dp and (args.epsilon is not None or args.delta is not None or args.seed is not None):
        raise ConfigError("--epsilon, --delta and --seed are for a DP draft; --no-dp spends no budget and draws no "
                          "noise.")
    epsilon = DEFAULT_EPSILON if args.epsilon is None else args.epsilon
    delta = DEFAULT_DELTA if args.delta is None else args.delta
    if not args.no_dp:
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise ConfigError(f"--epsilon must be a finite number > 0. Got {epsilon!r}. For a draft without privacy, "
                              "use --no-dp (bounds left for you to fill in).")
        if not 0 < delta < 1:
            raise ConfigError(f"--delta must be in (0, 1). Got {delta!r}.")
    _check_out(args.out, args.data, args.force)
    declared = {"categorical": _columns(args.categorical), "integer": _columns(args.integer),
                "numeric": _columns(args.numeric)}
    classes = _columns(args.classes) or None
    name = os.path.splitext(os.path.basename(args.data))[0] or "cohort"

    with warnings.catch_warnings(record=True) as caught, diagnostics(args.diagnostics):
        warnings.simplefilter("always")
        frame = read_table(args.data, as_text=True)
        for role, column in roles.items():
            if column is not None and column not in frame.columns:
                from zodc.data.validation import column_not_found

                raise DataError(column_not_found(f"{role} column", column, frame.columns))
        check_declared_kinds(frame, **declared)  # both paths: a column declared twice is refused
        if args.event_value is not None:
            frame = frame.assign(**{roles["event"]: event_indicator(frame[roles["event"]], args.event_value)})
        if args.no_dp:
            document, summary = draft_without_privacy(frame, name=name, declared=declared, classes=classes,
                                                      show_private=args.diagnostics, **roles)
        else:
            typed = apply_declared_kinds(frame, **declared, classes=classes, **roles)
            if args.seed is not None:
                print("zodc: a --seed was given: this draft is private only while the seed stays secret (it is not "
                      "written to any output).", file=sys.stderr)
            document, summary = draft_with_privacy(typed, name=name, epsilon=epsilon, delta=delta, seed=args.seed,
                                                   declared=declared, classes=classes, **roles)
    _warn_out(caught)
    write_json_atomic(json_safe(document), args.out)
    print(f"zodc schema draft: wrote {args.out}")
    print("\n".join(summary))
    print(f"next: review {args.out}, then `zodc schema check --schema {args.out} --data {args.data}`, then "
          f"`zodc condense --data {args.data} --schema {args.out} ...`")
    return 0


def _declared_kind(column: str, declared: dict) -> Optional[str]:
    for kind in ("categorical", "integer", "numeric"):
        if column in declared.get(kind, ()):
            return kind
    return None


def _privacy_note(epsilon: float, delta: float) -> str:
    return (f"epsilon={epsilon:g}, delta={delta:g}; accounted: this draft spent this budget - count it against the "
            "cohort's total if the table is later condensed too")


def draft_with_privacy(frame: pd.DataFrame, *, name: str, epsilon: float, delta: float, seed: Optional[int],
                       declared: dict, classes: Optional[Sequence[Any]] = None, target: Optional[str] = None,
                       time: Optional[str] = None, event: Optional[str] = None) -> tuple:
    """A DP schema draft of ``frame`` (kinds already declared with
    :func:`zodc.data.io.apply_declared_kinds`), every column annotated with its origin.

    The noise is calibrated exactly as :meth:`zodc.estimator.Condenser` calibrates its schema estimate:
    one Gaussian mechanism and the thresholded levels' ``AdditiveDeltaEvent`` (a tenth of ``delta``)
    together meet ``(epsilon, delta)``; the exact sampler's slack is accounted too.

    Returns:
        ``(document, summary)``: the schema as a JSON-ready dict (with ``origin`` notes, loadable by
        :meth:`~zodc.data.schema.Schema.from_json`) and the summary's lines (nothing in them but the
        DP draft itself and public structure).
    """
    from zodc.data.dp_schema import N_BINS, estimate_schema_and_count, looks_like_identifier, schema_noise_multiplier
    from zodc.data.schema import CategoricalColumn
    from zodc.budget import THRESHOLD_DELTA_SHARE as _THRESHOLD_DELTA_SHARE
    from zodc.privacy.events import AdditiveDeltaEvent
    from zodc.privacy.keys import RunKeys, resolve_seed
    from zodc.privacy.ledger import Ledger
    from zodc.privacy.noise import noise_sampling_delta

    threshold_delta = _THRESHOLD_DELTA_SHARE * delta
    noise = schema_noise_multiplier(epsilon, delta, threshold_delta, 1.0)  # the draft spends all of its budget
    # Kinds: declared ones are set by apply_declared_kinds (dtypes); undeclared text columns are "auto".
    schema, events, _ = estimate_schema_and_count(RunKeys(resolve_seed(seed)).generator("schema"), frame,
                                                  noise_multiplier=noise, threshold_delta=threshold_delta, name=name,
                                                  classes=classes, target=target, time=time, event=event)
    ledger = Ledger()
    for event_ in events:
        ledger.add("schema", event_, "DP schema draft")
    draws = [(noise, 1 + 2 * (len(frame.columns) + 1) * (1 + N_BINS + 2**30))]
    ledger.add("noise_sampling", AdditiveDeltaEvent(min(noise_sampling_delta(epsilon, draws), 1.0)),
               "the exact sampler's total-variation distance from the ideal mechanism")
    spent = ledger.epsilon(delta)
    note = _privacy_note(epsilon, delta)

    document = schema.to_dict()
    document["source"] = (
        f"DP draft written by `zodc schema draft` (review it before use): {schema.source}. Privacy spent by this "
        f"draft: epsilon={epsilon:g}, delta={delta:g} (RDP-accounted epsilon={spent:.4g} at delta={delta:g}) - count "
        "it against the cohort's total budget if the table is later condensed too."
        + (" Class proportions estimated with DP." if schema.class_proportions is not None else "")
        + (" Event rate estimated with DP." if schema.event_rate is not None else ""))
    for entry in document["columns"] + ([document["time"]] if document["time"] is not None else []):
        column = entry["name"]
        origin = {}
        kind = _declared_kind(column, declared)
        if column == target:
            origin["kind"] = "target (role given)"
            origin["categories"] = ("target classes declared (--classes): public" if classes is not None else
                                    "target classes: the target's distinct labels, taken as public - check them")
        elif column == time:
            origin["kind"] = "survival time (role given)"
            origin["bounds"] = f"bounds estimated with DP ({note})"
        else:
            origin["kind"] = (f"kind declared (--{kind})" if kind is not None else
                              "kind decided with DP (numbers vs levels, from the noisy counts)")
            if entry["kind"] == "numeric":
                origin["bounds"] = f"bounds estimated with DP ({note})"
                declared_kind = _declared_kind(column, declared)
                origin["integer"] = (
                    "whole numbers: declared (--integer)" if entry["integer"] and declared_kind == "integer" else
                    f"whole numbers: estimated with DP (the noisy counts of whole and fractional values; {note})"
                    if entry["integer"] else
                    "declared numeric (--numeric): not rounded" if declared_kind == "numeric" else
                    "not whole numbers by the noisy counts (declare --integer to round)")
                if entry.get("scale") == "log":
                    origin["scale"] = "log scale chosen from the DP bounds (they span many octaves)"
            else:
                origin["categories"] = ("levels estimated with DP (thresholded: rare levels are not listed"
                                        + ("; values not listed go to '(other)'" if "(other)" in entry["categories"]
                                           else "; values not listed get no level") + f"; {note})")
            origin["missing"] = "missingness estimated with DP"
        entry["origin"] = origin

    summary = [f"DP draft: spent ε = {epsilon:g}, δ = {delta:g} of the cohort's privacy budget (RDP-accounted "
               f"ε = {spent:.4g}); count it against the total if you condense this table too."]
    summary.append(f"columns ({len(schema.column_names)}), task {schema.task}:")
    width = max(len(str(c)) for c in schema.column_names)
    for column in list(schema.columns) + ([schema.time] if schema.time is not None else []):
        if isinstance(column, CategoricalColumn):
            what = (f"target, classes {list(column.categories)}" if column.name == target else
                    f"categorical, {len(column.categories)} level(s)")
        else:
            what = (f"{'survival time' if column.name == time else 'numeric'} [{column.lower:g}, {column.upper:g}]"
                    + (", whole numbers" if column.integer else "") + (", log scale" if column.scale == "log" else ""))
        summary.append(f"  {column.name:<{width}}  {what}" + (", may be missing" if column.missing else ""))
    if event is not None:
        summary.append(f"  {event:<{width}}  event (0/1)")
    left_out = [c for c in frame.columns if c not in schema.column_names]
    review = ["review before use:",
              "  - bounds: estimated with DP; replace them with documented ranges where you know them "
              "(values outside are clipped)",
              "  - levels: estimated with DP; rare levels are not listed (their values go to '(other)' where it is "
              "listed, else no level)"]
    if target is not None:
        review.append(f"  - target classes of '{target}': "
                      + ("declared (--classes)" if classes is not None else
                         "the target's distinct labels, taken as public — check them"))
    undeclared = [c.name for c in schema.columns if c.name != target and _declared_kind(c.name, declared) is None]
    if undeclared:
        review.append(f"  - kinds decided with DP (declare them to be sure): {', '.join(map(str, undeclared))}")
    if left_out:
        identifiers = [c for c in left_out if looks_like_identifier(c) and _declared_kind(c, declared) is None]
        others = [c for c in left_out if c not in identifiers]
        if identifiers:
            review.append(f"  - left out as identifiers (by name): {', '.join(map(str, identifiers))}")
        if others:
            review.append(f"  - left out (nothing stood out from the noise; see the warnings): "
                          f"{', '.join(map(str, others))}")
    return document, summary + review


def _parse_numbers(series: pd.Series) -> np.ndarray:
    """Each cell as a finite float, NaN where it is missing or not a number."""
    numbers = pd.to_numeric(series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v),
                            errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _present(series: pd.Series) -> np.ndarray:
    """Cells that hold something (not missing, not only whitespace: :func:`zodc.data.validation._blank`)."""
    from zodc.data.validation import _blank

    return series.notna().to_numpy() & ~_blank(series)


def draft_without_privacy(frame: pd.DataFrame, *, name: str, declared: dict, classes: Optional[Sequence[Any]] = None,
                          target: Optional[str] = None, time: Optional[str] = None, event: Optional[str] = None,
                          show_private: bool = False) -> tuple:
    """A schema form read from ``frame`` WITHOUT privacy: kinds (declared, else numeric when most present
    values parse as numbers), the data's levels for the owner to prune, numeric bounds ``None`` for the
    owner to fill in. Spends nothing; the result is NOT private until reviewed.

    Returns:
        ``(document, summary)``: the JSON-ready dict (which :meth:`Schema.from_json` refuses until the
        bounds are filled in) and the summary's lines (no value of the data unless ``show_private``).
    """
    from zodc.data.dp_schema import MAX_IMPLICIT_CLASSES, _sorted_levels, column_kinds, normalise_level
    from zodc.data.io import event_numbers
    from zodc.data.validation import check_raw_table, is_free_text

    check_raw_table(frame, target=target, time=time, event=event)
    kinds = {c: k for k, names in declared.items() for c in names}
    kind_of, identifiers = column_kinds(frame, kinds, target=target, time=time, event=event)
    columns, time_entry, notes, empty = [], None, [], []
    counts = {}
    for column in frame.columns:
        if column not in kind_of or column == event:
            continue
        series = frame[column]
        present = _present(series)
        missing = bool((~present).any())
        if column == target:
            labels = [normalise_level(v) for v in series.tolist()]
            if classes is not None:
                levels = [normalise_level(v) for v in classes]
                if len(set(levels)) != len(levels) or len(levels) < 2 or None in levels:
                    raise ConfigError("--classes must be at least 2 distinct, non-empty labels. "
                                      f"Got {list(classes)!r}.")
                origin = {"kind": "target (role given)", "categories": "target classes declared (--classes): public"}
            else:
                levels = _sorted_levels({v for v in labels if v is not None})
                if not 2 <= len(levels) <= MAX_IMPLICIT_CLASSES:
                    raise DataError(f"target column '{target}' does not have 2 to {MAX_IMPLICIT_CLASSES} distinct "
                                    "labels; declare its classes with --classes.")
                origin = {"kind": "target (role given)",
                          "categories": "target classes: the target's distinct labels, read from the data WITHOUT "
                                        "privacy and taken as public - check them"}
            columns.append({"kind": "categorical", "name": column, "categories": list(levels), "origin": origin})
            continue
        numbers = _parse_numbers(series)
        kind = kind_of[column]
        how = f"kind declared (--{kind})" if _declared_kind(column, declared) else None
        if column == time:
            kind, how = "numeric", "survival time (role given)"
        elif kind == "auto":
            if not present.any():
                empty.append(column)
                continue
            numeric_share = np.isfinite(numbers[present]).mean()
            kind = "numeric" if numeric_share > 0.5 else "categorical"
            how = ("kind decided from the data WITHOUT noise (numeric when most values parse as numbers) - "
                   "check it; declare --categorical / --integer / --numeric to be sure")
        elif how is None:
            how = f"kind from the column's type ({kind})"
        if kind == "categorical":
            levels = _sorted_levels({normalise_level(v) for v in series[present].tolist()} - {None})
            if not levels:
                empty.append(column)
                continue
            entry = {"kind": "categorical", "name": column, "categories": list(levels), "missing": missing,
                     "origin": {"kind": how, "categories": _NO_DP_LEVELS, "missing": _NO_DP_MISSING}}
            if is_free_text(series[present].astype(object)):
                notes.append(f"  - '{column}' looks like free text or an identifier (a distinct value on most rows): "
                             "delete it from the schema, or bin it")
            counts[column] = len(levels)
            columns.append(entry)
            continue
        finite = numbers[np.isfinite(numbers)]
        stated = _declared_kind(column, declared)
        if stated in ("integer", "numeric"):
            integer = stated == "integer"
            integer_note = "declared (--integer)" if integer else "declared (--numeric): not whole numbers"
        else:  # read from the data, as the kind was
            integer = len(finite) > 0 and bool(np.all(finite == np.round(finite)))
            integer_note = ("read from the data WITHOUT privacy (" + ("every value a whole number" if integer else
                            "not all whole numbers") + "): check it")
        entry = {"kind": "numeric", "name": column, "lower": None, "upper": None, "integer": integer}
        origin = {"kind": how, "bounds": _NO_DP_BOUNDS, "integer": integer_note}
        if column == time:
            origin["bounds"] += "; the lower bound must be > 0"
            time_entry = {**entry, "origin": origin}
            continue
        origin["missing"] = _NO_DP_MISSING
        columns.append({**entry, "missing": missing, "origin": origin})
    if not [c for c in columns if c["name"] != target]:
        raise DataError("no feature column to draft (every column is a role, an identifier or empty).")
    document = {
        "name": name,
        "task": "classification" if target is not None else "survival",
        "source": ("DRAFT written by `zodc schema draft --no-dp` WITHOUT privacy (no budget spent): kinds, levels and "
                   "missingness were read from the data without noise and the numeric bounds are left null. NOT "
                   "private until reviewed: fill in every bound from a data dictionary, keep only public levels, then "
                   "replace this text with where the bounds and levels come from and why they are public."),
        "target": target,
        "class_proportions": None,
        "time": time_entry,
        "event": event,
        "event_rate": None,
        "columns": columns,
    }
    summary = ["NOT PRIVATE until reviewed: kinds and levels were read from the data WITHOUT noise (no budget spent); "
               "the file contains the data's level names.",
               f"columns ({len(columns) + (time_entry is not None) + (event is not None)}), task {document['task']}:"]
    names = [c["name"] for c in columns] + ([time] if time is not None else []) + ([event] if event is not None else [])
    width = max(len(str(c)) for c in names)
    for entry in columns + ([time_entry] if time_entry is not None else []):
        if entry["name"] == target:
            what = "target (classes: check them)"
        elif entry["kind"] == "categorical":
            what = "categorical (levels: keep only public ones)" + (
                f" [diagnostics: {counts[entry['name']]} level(s) in the data]" if show_private else "")
        else:
            what = (("survival time" if entry["name"] == time else "numeric")
                    + (", whole numbers" if entry["integer"] else "") + " (bounds: fill in)")
        summary.append(f"  {entry['name']:<{width}}  {what}")
    if event is not None:
        summary.append(f"  {event:<{width}}  event (0/1)")
    review = ["review before use (condense and `zodc schema check` refuse the file until the bounds are filled in):"]
    bounds = [e["name"] for e in columns + ([time_entry] if time_entry else []) if e["kind"] == "numeric"]
    if bounds:
        review.append(f"  - fill in lower/upper of: {', '.join(map(str, bounds))} (from your data dictionary)")
    levels = [e["name"] for e in columns if e["kind"] == "categorical" and e["name"] != target]
    if levels:
        review.append(f"  - levels of {', '.join(map(str, levels))} were read from the data WITHOUT privacy: keep only "
                      "public levels, delete the rest (list '(other)' to keep their records' values as one level)")
    review.append("  - kinds, whole numbers and `missing` were read from the data without noise: check them")
    if target is not None and classes is None:
        review.append(f"  - target classes of '{target}': the target's distinct labels — check them")
    if identifiers:
        review.append(f"  - left out as identifiers (by name): {', '.join(map(str, identifiers))}")
    if empty:
        review.append(f"  - left out (no values): {', '.join(map(str, empty))}")
    if event is not None and r_coding(event_numbers(frame[event]).to_numpy()):
        review.append(f"  - '{event}' {R_CODING_HINT} (to this draft and to condense)")
    return document, summary + review + notes


# ------------------------------------------------------------------------------------------ check


@dataclasses.dataclass
class Finding:
    """One thing a condensation would do to the table.

    Attributes:
        column: The column it concerns.
        what: What happens, in words (public: it comes from the schema only).
        rows: Boolean ``(n,)`` mask of the rows affected (private), or None for a fact about the
            whole column (e.g. no event at all).
        changes: Whether it clips, maps or drops something (exit status 1).
        detail: The values concerned, briefly (private; shown only with diagnostics).
    """

    column: str
    what: str
    rows: Optional[np.ndarray]
    changes: bool = True
    detail: str = ""

    @property
    def count(self) -> int:
        return 0 if self.rows is None else int(self.rows.sum())

    @property
    def applies(self) -> bool:
        return self.rows is None or self.count > 0


@dataclasses.dataclass
class CheckResult:
    """What :func:`check_table` found: the findings, the table's columns the schema ignores, the records
    a condensation would leave out (private) and the row count (private)."""

    schema: Any
    findings: list
    ignored: list
    left_out: np.ndarray
    n_rows: int

    @property
    def changes(self) -> bool:
        """Whether anything would be clipped, mapped, treated as missing against the schema, or left out."""
        return any(f.changes and f.applies for f in self.findings)


def _examples(values) -> str:
    shown = []
    for value in pd.unique(np.asarray(values, dtype=object)):
        shown.append(repr(value.item() if isinstance(value, np.generic) else value))
        if len(shown) == 5:
            break
    return "e.g. " + ", ".join(shown) if shown else ""


def _extreme(values: np.ndarray, lowest: bool) -> str:
    if not len(values):
        return ""
    value = float(np.min(values) if lowest else np.max(values))
    return f"{'lowest' if lowest else 'highest'} value {value:g}"


#: What the owner's tools (not private: they read the data without noise) say of an event column
#: holding 1 and 2 and no 0.
R_CODING_HINT = ("holds 1 and 2 and no 0: R's coding (1 = censored, 2 = event)? As it is, 1 is read as the event and "
                 "the records coded 2 are left out: give --event-value 2")


def r_coding(events: np.ndarray) -> bool:
    """Whether an event column's numbers (NaN: missing or not a number) hold 1 and 2 and no 0.
    Read without noise: for the owner's review tools only."""
    return bool((events == 1).any() and (events == 2).any() and not (events == 0).any())


def check_table(frame: pd.DataFrame, schema) -> CheckResult:
    """What a condensation with ``schema`` would do to ``frame`` (read with ``read_table(as_text=True)``,
    as ``zodc condense`` reads it): the rules of :func:`zodc.data.validation.validate_table`, counted
    rather than applied. Reads only; changes nothing.

    Raises:
        DataError: a schema column (or role) missing from the table.
    """
    from zodc.data.dp_schema import normalise_level
    from zodc.data.io import event_numbers
    from zodc.data.schema import OTHER_LEVEL, NumericColumn
    from zodc.data.validation import category_codes

    absent = [name for name in schema.column_names if name not in frame.columns]
    if absent:
        raise DataError(f"column(s) {absent} of schema '{schema.name}' not found in the table; columns are: "
                        f"{', '.join(map(str, frame.columns))}.")
    findings, n = [], len(frame)
    left_out = np.zeros(n, dtype=bool)
    target_codes = None

    def numeric(column: NumericColumn, considered: np.ndarray, is_time: bool) -> np.ndarray:
        raw = frame[column.name]
        present = _present(raw)
        numbers = _parse_numbers(raw)
        bad = present & np.isnan(numbers) & considered
        empty = ~present & considered
        if is_time:
            findings.append(Finding(column.name, "no usable time (missing or not a number), record left out",
                                    bad | empty, detail=_examples(raw[bad])))
        else:
            findings.append(Finding(column.name, "not a number, treated as missing", bad, detail=_examples(raw[bad])))
            if column.missing:
                findings.append(Finding(column.name, "missing, learned and released as missing (`missing: true`)",
                                        empty, changes=False))
            else:
                findings.append(Finding(column.name, "missing while `missing: false`, encoded at the middle of the "
                                        "bounds (the release has none)", empty))
        usable = np.isfinite(numbers) & considered
        low, high = usable & (numbers < column.lower), usable & (numbers > column.upper)
        findings.append(Finding(column.name, f"below the lower bound {column.lower:g}, clipped up to it", low,
                                detail=_extreme(numbers[low], lowest=True)))
        findings.append(Finding(column.name, f"above the upper bound {column.upper:g}, clipped down to it", high,
                                detail=_extreme(numbers[high], lowest=False)))
        if column.integer:
            clipped = np.clip(numbers, column.lower, column.upper)
            fractional = usable & (clipped != np.round(clipped))
            findings.append(Finding(column.name, "not a whole number in an integer column, rounded", fractional,
                                    detail=_examples(numbers[fractional])))
        return numbers

    for column in schema.columns:
        if isinstance(column, NumericColumn):
            numeric(column, np.ones(n, dtype=bool), is_time=False)
            continue
        raw = frame[column.name]
        present = _present(raw)
        is_target = column.name == schema.target
        series = raw.astype(object).map(normalise_level) if is_target else raw.astype(object)
        codes = category_codes(series.where(pd.Series(present, index=raw.index), None), column.categories)
        unknown = present & (codes < 0)
        if is_target:
            target_codes = codes
            findings.append(Finding(column.name, "class missing, record left out", ~present))
            findings.append(Finding(column.name, "class not among the schema's classes, record left out", unknown,
                                    detail=_examples(raw[unknown])))
            left_out |= ~present | unknown
            continue
        where = ("mapped to '(other)'" if OTHER_LEVEL in column.categories else
                 "encoded as no level, like a missing category (list '(other)' to keep them as one level)")
        findings.append(Finding(column.name, f"not among the levels, {where}", unknown, detail=_examples(raw[unknown])))
        if column.missing:
            findings.append(Finding(column.name, "missing, learned and released as missing (`missing: true`)",
                                    ~present, changes=False))
        else:
            findings.append(Finding(column.name, "missing while `missing: false`, encoded as no level", ~present))
    if schema.time is not None:
        events = event_numbers(frame[schema.event]).to_numpy()  # as condense reads them
        bad_event = ~np.isin(events, (0.0, 1.0))
        findings.append(Finding(schema.event, "event missing or not 0/1, record left out", bad_event,
                                detail=_examples(frame[schema.event][bad_event])))
        if r_coding(events):
            findings.append(Finding(schema.event, R_CODING_HINT, None, changes=False))
        times = numeric(schema.time, ~bad_event, is_time=True)
        left_out |= bad_event | np.isnan(times)
        if not (events[~left_out] == 1).any():
            findings.append(Finding(schema.event, "no event among the records kept: condense would refuse", None))
    if target_codes is not None:
        if len(np.unique(target_codes[(target_codes >= 0) & ~left_out])) < 2:
            findings.append(Finding(schema.target, "fewer than 2 of the schema's classes among the records kept: "
                                    "condense would refuse", None))
    ignored = [c for c in frame.columns if c not in schema.column_names]
    return CheckResult(schema=schema, findings=findings, ignored=ignored, left_out=left_out, n_rows=n)


def _amount(count: int, n: int, show_private: bool) -> str:
    if show_private:
        return f"{count} row(s) ({100.0 * count / max(n, 1):.3g} %)"
    return "some rows" if count else "none"


def format_check(result: CheckResult, show_private: bool = False) -> list:
    """The report's lines. Without ``show_private``: only "some rows" / "none" per finding, no value."""
    schema, n = result.schema, result.n_rows
    lines = [_OWNER_ONLY]
    if show_private:
        lines.append(f"[diagnostics: the counts and values below are private, NOT covered by the privacy guarantee] "
                     f"{n} row(s) in the table.")
    names = list(schema.column_names)
    width = max(len(str(c)) for c in names)
    for name in names:
        if name == schema.event:
            header = "event (0/1)"
        else:
            column = schema.column(name)
            if name == schema.target:
                header = f"target, {len(column.categories)} classes"
            elif hasattr(column, "categories"):
                header = f"categorical, {len(column.categories)} level(s)"
            else:
                header = (("time" if schema.time is not None and name == schema.time.name else "numeric")
                          + f" [{column.lower:g}, {column.upper:g}]" + (", whole numbers" if column.integer else ""))
            header += ", missing: true" if getattr(column, "missing", False) else ""
        found = [f for f in result.findings if f.column == name and f.applies]
        if not found:
            lines.append(f"  {name:<{width}}  {header}: ok (none clipped, mapped, missing or left out)")
            continue
        lines.append(f"  {name:<{width}}  {header}:")
        for f in found:
            amount = "yes" if f.rows is None else _amount(f.count, n, show_private)
            detail = f" ({f.detail}) [diagnostics: private]" if show_private and f.detail else ""
            lines.append(f"      {amount}: {f.what}{detail}")
    if schema.target is not None or schema.time is not None:
        why = "class missing or unknown" if schema.target is not None else "no usable time or event"
        lines.append(f"records left out ({why}): {_amount(int(result.left_out.sum()), n, show_private)}")
    if result.ignored:
        lines.append(f"columns of the table not in the schema (ignored): {', '.join(map(str, result.ignored))}")
    lines.append("result: " + ("something would be clipped, mapped or left out (exit status 1)" if result.changes
                               else "nothing would be clipped, mapped or left out (exit status 0)"))
    return lines


def check_command(args) -> int:
    """``zodc schema check``: returns 0 (nothing would change), 1 (something would); errors raise (exit 2)."""
    from zodc.data.io import event_indicator, read_table
    from zodc.data.schema import Schema
    from zodc.errors import SchemaError

    try:
        schema = Schema.from_json(args.schema)
    except SchemaError as error:
        raise SchemaError(f"schema '{args.schema}': {error}") from None
    frame = read_table(args.data, as_text=True)
    if args.event_value is not None:
        if schema.event is None:
            raise ConfigError("--event-value is for a survival schema (one with an event column).")
        if schema.event not in frame.columns:
            from zodc.data.validation import column_not_found

            raise DataError(column_not_found("event column", schema.event, frame.columns))
        frame = frame.assign(**{schema.event: event_indicator(frame[schema.event], args.event_value)})
    result = check_table(frame, schema)
    print(f"zodc schema check: {args.schema} against {args.data}")
    print("\n".join(format_check(result, show_private=args.diagnostics)))
    return 1 if result.changes else 0


__all__ = ["DEFAULT_DELTA", "DEFAULT_EPSILON", "CheckResult", "Finding", "add_schema_parser", "check_command",
           "check_table", "draft_command", "draft_with_privacy", "draft_without_privacy", "format_check"]
