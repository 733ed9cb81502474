"""The ``zodc`` command.

::

    zodc condense --dataset breast_cancer --model tree --epsilon 1 --out synthetic.csv
    zodc condense --data cohort.csv --target outcome --model tree --epsilon 1 --delta 1e-5 \\
                  --rows-per-class 10 --out synthetic.csv --report report.json
    zodc condense --dataset gbsg2 --model cox --epsilon 1 --out synthetic.csv
    zodc condense --data cohort.csv --time-col days --event-col died --model cox --epsilon 1 \\
                  --rows 50 --out synthetic.csv --report report.json
    zodc datasets
    zodc models

Everything is checked before any private computation starts, and outputs are written only at the
end, each atomically: a failed run leaves no file behind and spends no budget that is not reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from typing import Any, Sequence

import numpy as np

from zodc.errors import ZodcError

DEFAULT_DATASET = "breast_cancer"


def _float_or_inf(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'inf'. Got {text!r}.") from None


def _share_or_auto(text: str):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) or 'auto'. Got {text!r}.") from None


_RETIRED = ("{option} is deprecated and will be removed from `zodc condense` in the next release; ablation "
            "scripts in benchmarks/ reach it through the Python API (Condenser({param}=...)).")
_RETIRED_DIRECTIONS = ("rows", "columns")


class _RetiredOption(argparse.Action):
    """Stores the option's value as a plain option would, and warns (:class:`FutureWarning`) that it is
    retired: a research option of ``zodc condense`` kept for one release (hidden from ``--help``). With
    ``retired``, only those values are retired (e.g. ``--directions rows``)."""

    def __init__(self, option_strings, dest, retired=None, **kwargs):
        self.retired = retired
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if self.retired is None or values in self.retired:
            option = option_string if self.retired is None else f"{option_string} {values}"
            warnings.warn(_RETIRED.format(option=option, param=self.dest), FutureWarning)
        setattr(namespace, self.dest, values)


class _HelpFormatter(argparse.HelpFormatter):
    """Every ``zodc`` parser's formatter: an option's help gets ``(default: X)`` appended when the
    option has a default worth showing (not None, False or "") and its help does not already say what
    the default is (a None default whose meaning the help states, e.g. "default: fresh OS entropy")."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (action.option_strings and default is not argparse.SUPPRESS and default is not None
                and default is not False and default != "" and "default" not in text.lower()):
            text += " (default: %(default)s)"
        return text


def _use_help_formatter(parser: argparse.ArgumentParser) -> None:
    """Sets :class:`_HelpFormatter` on ``parser`` and every (nested) subcommand's parser, including
    those that other modules add (``zodc audit``, ``zodc schema``), so one rule shows each default."""
    parser.formatter_class = _HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _use_help_formatter(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zodc", description="Differentially private zero-order dataset "
                                     "condensation for classical clinical models.")
    parser.add_argument("--version", action="version", version=f"zodc {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    condense = sub.add_parser(
        "condense", help="learn and release a small DP synthetic table",
        description="Learn a small synthetic table with differential privacy and write it with its report. "
                    "Everything is checked before any private computation starts; outputs are written at the end, "
                    "all or nothing.")

    data = condense.add_argument_group("data")
    source = data.add_mutually_exclusive_group()
    source.add_argument("--data", help="CSV file of the private cohort (also .csv.gz, .bz2, .xz, or a .zip of one CSV)")
    source.add_argument("--dataset", help=f"a bundled dataset, see `zodc datasets` (default without --data: {DEFAULT_DATASET})")
    data.add_argument("--target", help="class column (classification; required with --data unless the schema names it)")
    data.add_argument("--time-col", help="survival time column (survival; with --event-col, unless the schema names them)")
    data.add_argument("--event-col", help="survival event column, 0 = censored / 1 = event")
    data.add_argument("--event-value", metavar="VALUE",
                      help="the --event-col value that means the event happened, when it is not 1 (public: the "
                           "task's definition), e.g. 2 for R's 1 = censored / 2 = dead, or dead; every other value "
                           "is censored, a missing one leaves its record out (with --data)")
    data.add_argument("--schema", help="public schema JSON (bounds, categories); without it one is estimated with DP")
    data.add_argument("--classes", default="", metavar="LABELS",
                      help="comma-separated classes of the target, in order (public: the task's definition; "
                      "default: the target's distinct labels, taken as public). Other labels leave their record out")
    data.add_argument("--categorical", default="", metavar="COLS",
                      help="comma-separated columns of a --data CSV that hold levels (e.g. integer-coded stages). "
                      "Undeclared columns without a schema: numbers are numbers, other text is levels, and the "
                      "column's kind is decided with DP (one record cannot tip it)")
    data.add_argument("--integer", default="", metavar="COLS",
                      help="comma-separated columns of a --data CSV that hold whole numbers")
    data.add_argument("--numeric", default="", metavar="COLS",
                      help="comma-separated columns of a --data CSV that hold numbers (text in them is missing)")
    data.add_argument("--on-out-of-bounds", default="clip", choices=["clip", "raise"],
                      help="values outside the schema's bounds: clip them (with a warning), or raise (refuse "
                      "the run: a check of the data before a release, since one record can trigger it)")
    data.add_argument("--holdout", type=float, default=0.3,
                      help="share of rows held out (never condensed) to measure utility; 0 condenses all rows and skips utility")

    model = condense.add_argument_group("model")
    model.add_argument("--model", help="model preset (see `zodc models`); classification: tree, forest, boosting, "
                       "logistic; survival: cox, survival_forest (default: tree / cox)")
    model.add_argument("--backend", default="auto", choices=["auto", "native", "host"],
                       help="where the model is fitted in the loop: native (a device kernel), host (the "
                       "preset's host model, see --n-jobs); auto: native where the preset has one")
    model.add_argument("--n-jobs", type=int, default=1, help="host worker processes (-1: all cores)")
    model.add_argument("--devices", type=int, default=None,
                       help="native models: use the first N devices JAX sees (default: all of them; the release is "
                            "the same on any number)")

    privacy = condense.add_argument_group("privacy")
    privacy.add_argument("--epsilon", type=_float_or_inf, default=1.0, help="target epsilon of the whole release ('inf': non-private)")
    privacy.add_argument("--delta", type=float, default=1e-5, help="target delta")
    privacy.add_argument("--preprocessing-share", type=_share_or_auto, default="auto",
                         help="without a schema: the DP schema's share of the budget (split in rho: it adds at "
                         "most this share to epsilon; 'auto': 2%% per column, within 10-50%%); with one: the DP "
                         "record count's share of epsilon ('auto': 10%%)")
    privacy.add_argument("--l2-norm-clip", type=_float_or_inf, default=1.0,
                         help="per-record clip C of the vector of loss differences ('inf': no clipping)")
    privacy.add_argument("--batch-size", type=int, default=256, help="expected Poisson batch size")
    privacy.add_argument("--seed", type=int, default=None,
                         help="a SECRET seed for reproducible research (default: 128 bits of fresh OS entropy, what "
                         "a release should use). A seeded release is private only while the seed stays secret; it "
                         "is never written to any output")

    table = condense.add_argument_group("synthetic table")
    table.add_argument("--rows-per-class", type=int, help="classification: synthetic rows per class (default: 10)")
    table.add_argument("--rows", type=int, help="survival: synthetic rows (default: 50)")
    table.add_argument("--init", default="auto", choices=["auto", "noise", "dp_means"],
                       help="starting table: data-independent noise, or DP per-class (survival: per-event-status) "
                       "means from --init-share of epsilon; auto: dp_means")
    table.add_argument("--init-share", type=float, default=0.5, help="share of epsilon for --init dp_means")
    table.add_argument("--init-scale", type=float, default=None,
                       help="spread of the starting rows in encoded units (default: 0.5 for noise; around "
                       "DP means 0.1 for classification, 0.2 for survival)")
    table.add_argument("--init-clip", type=float, default=None,
                       help="--init dp_means clips each encoded row to L2 norm INIT_CLIP x sqrt(d) (default: 0.5)")
    table.add_argument("--time-init", default="center", choices=["center", "uniform"],
                       help="survival: data-independent initial synthetic times")
    table.add_argument("--soft-labels", action=argparse.BooleanOptionalAction, default=None,
                       help="classification: learn a class distribution per synthetic row; the output has K "
                       "weighted copies of each row and a sample_weight column to pass to the model's fit"
                       ". Survival: soft events, an event copy and a censored copy of each row, weighted (pass "
                       "sample_weight as lifelines' weights_col). Default: on for boosting, off for the other "
                       "classifiers; survival: on where the DP start is noisy, e.g. cohorts of a few hundred at "
                       "epsilon 1")
    table.add_argument("--soft-label-start", type=float, default=0.9,
                       help="--soft-labels: the own-class (survival: own-status) weight every row starts at "
                       "(public, in (0, 1])")
    table.add_argument("--select-features", type=int, default=None,
                       help="classification: learn only this many encoded columns, selected with DP")
    table.add_argument("--selection-share", type=float, default=0.1,
                       help="share of epsilon for --select-features")

    optimisation = condense.add_argument_group("optimisation (advanced)")
    optimisation.add_argument("--steps", type=int, default=300, help="zero-order steps T")
    optimisation.add_argument("--num-directions", type=int, default=16, help="random directions per step q")
    optimisation.add_argument("--smoothing", type=float, default=0.2,
                              help="perturbation radius mu of the zero-order estimate, in encoded [-1, 1] units")
    optimisation.add_argument("--learning-rate", type=float, default=None,
                              help="Adam's step size (default: 0.05 for classification, 0.02 with three classes or more and for survival)")
    optimisation.add_argument("--directions", choices=["rademacher", "gaussian", "orthogonal", *_RETIRED_DIRECTIONS],
                              default="rademacher", metavar="{rademacher,gaussian,orthogonal}",
                              action=_RetiredOption, retired=_RETIRED_DIRECTIONS,
                              help="kind of random directions: random signs (every cell moved by +/- the smoothing), "
                              "i.i.d. Gaussian over every cell, or orthogonal Gaussian (same privacy cost)")
    optimisation.add_argument("--average-tail", type=float, default=0.0,
                              help="release the average of the last share of iterates (0: the last iterate)")
    optimisation.add_argument("--trust-radius", type=_radius, default="auto",
                              help="how far (encoded units) a cell may move from its start; 'none' for no limit "
                              "(default auto: 0.5 classification, none survival)")
    optimisation.add_argument("--loss", choices=["balanced_linear", "cross_entropy", "brier", "discrete_nll"],
                              help="classification: balanced_linear, cross_entropy, brier; survival: discrete_nll, "
                              "brier (without IPCW weights) (default: balanced_linear / discrete_nll)")
    optimisation.add_argument("--time-bins", type=int, default=10,
                              help="survival: bins of the public log-time grid of the loss")
    optimisation.add_argument("--time-grid", default="log", choices=["log", "linear"],
                              help="survival: spacing of the public time grid of the loss")
    # Retired research options: accepted (and passed to the Condenser as before) for one release,
    # with a FutureWarning; hidden from --help. Ablations reach them through the Python API.
    optimisation.add_argument("--init-centre", type=float, default=0.0, metavar="SHARE", action=_RetiredOption,
                              help=argparse.SUPPRESS)
    optimisation.add_argument("--soft-label-steps", type=int, default=None, action=_RetiredOption,
                              help=argparse.SUPPRESS)
    optimisation.add_argument("--subspace", type=int, default=None, metavar="R", action=_RetiredOption,
                              help=argparse.SUPPRESS)

    search = condense.add_argument_group("private hyperparameter search")
    search.add_argument("--search", metavar="GRID",
                        help="private hyperparameter search: a JSON grid of Condenser parameters (inline or a file), "
                             "e.g. '{\"learning_rate\": [0.02, 0.05]}'; every candidate condenses at a share of "
                             "epsilon and one is chosen by the exponential mechanism, all accounted")
    search.add_argument("--search-repeats", type=int, default=1, metavar="K",
                        help="runs of each --search candidate (of the given settings, without --search), each "
                             "with its own seed: the choice also picks the best of K noisy runs")
    search.add_argument("--search-share", type=float, default=0.1,
                        help="with --search: share of epsilon for choosing among the candidates (random stopping: "
                             "the noisy score's share of each run's budget)")
    search.add_argument("--search-selection", choices=("exponential", "random_stopping"), default="exponential",
                        help="exponential: every candidate condenses once at a share of epsilon, the exponential "
                             "mechanism chooses (cost grows with the candidates); random_stopping: a secret random "
                             "number of runs, each of a random candidate, the best by noisy score released (cost "
                             "grows with log of --search-mean-runs, not with the candidates; Papernot & Steinke 2022)")
    search.add_argument("--search-mean-runs", type=float, default=None, metavar="M",
                        help="with --search-selection random_stopping: the expected number of runs (> 1; default 10)")
    search.add_argument("--search-horizon", type=float, default=None,
                        help="with --search, survival: one public time at which the Brier score that chooses "
                             "compares predicted survival with the records' status (default: the loss's public "
                             "log-time grid)")

    output = condense.add_argument_group("output")
    output.add_argument("--out", help="where to write the synthetic CSV (required, except with --resume)")
    output.add_argument("--checkpoint", metavar="DIR",
                        help="save the run's state in DIR every few steps (owner-only files holding secrets, deleted "
                             "when the run finishes); if the run is killed, `zodc condense --resume DIR` finishes it "
                             "and releases what the uninterrupted run would have")
    output.add_argument("--resume", metavar="DIR", help="finish the run checkpointed in DIR (its options are "
                        "stored there: give no others)")
    output.add_argument("--report", help="where to write the report JSON (default: OUT with .report.json)")
    output.add_argument("--json", action="store_true", help="print the full report JSON (with the owner's file) "
                        "instead of the short summary; the report file always holds it")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    output.add_argument("--diagnostics", action="store_true",
                        help="let error and warning messages quote private values (examples, rows, observed "
                        "ranges); they are NOT covered by the privacy guarantee")
    output.add_argument("--plots", metavar="DIR", help="write DIR/owner_columns.png (real vs synthetic distributions) "
                        "and DIR/owner_utility.png (needs matplotlib). OWNER ONLY: computed from real records WITHOUT "
                        "noise, they reveal the real distributions and are NOT covered by the privacy guarantee; "
                        "never publish them")

    sub.add_parser("datasets", help="list the bundled datasets")
    sub.add_parser("models", help="list the model presets")
    from zodc.evaluate.audit import add_audit_parser

    add_audit_parser(sub)
    from zodc.schema_tool import add_schema_parser

    add_schema_parser(sub)
    _use_help_formatter(parser)
    return parser


def _sibling(path: str, suffix: str) -> str:
    root, _ = os.path.splitext(path)
    return root + suffix


def _check_writable(path: str, flag: str) -> None:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(directory):
        raise ZodcError(f"{flag}: directory {directory!r} does not exist.")
    if not os.access(directory, os.W_OK):
        raise ZodcError(f"{flag}: directory {directory!r} is not writable.")
    if os.path.isdir(path):
        raise ZodcError(f"{flag}: {path!r} is a directory; give a file name.")


def _load(args) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Returns (frame, schema or None, roles, dataset description); roles: task, target, time, event."""
    from zodc.data.datasets import load_dataset
    from zodc.data.io import read_table
    from zodc.data.schema import Schema

    if args.data is None:
        name = args.dataset or DEFAULT_DATASET
        dataset = load_dataset(name)
        schema = Schema.from_json(args.schema) if args.schema is not None else dataset.schema
        frame, source = dataset.frame, {"name": name, "source": dataset.info.source}
    else:
        frame = read_table(args.data, as_text=True)  # kinds are declared or decided with DP, never guessed
        schema = Schema.from_json(args.schema) if args.schema else None
        source = {"name": os.path.basename(args.data), "source": os.path.abspath(args.data)}
    survival_flags = args.time_col is not None or args.event_col is not None
    if args.target is not None and survival_flags:
        raise ZodcError("give --target (classification) or --time-col/--event-col (survival), not both.")
    if schema is not None:
        task = schema.task
        if task == "survival" and args.target is not None:
            raise ZodcError(f"the schema {schema.name!r} is for survival (time {schema.time.name!r}, event "
                            f"{schema.event!r}); --target is for classification.")
        if task == "classification" and survival_flags:
            raise ZodcError(f"the schema {schema.name!r} is for classification (target {schema.target!r}); "
                            "--time-col/--event-col are for survival.")
    elif survival_flags:
        task = "survival"
    elif args.target is not None:
        task = "classification"
    else:
        from zodc.models.protocol import model_task

        task = (model_task(args.model) if args.model else None) or "classification"
    if task == "survival":
        time_col = args.time_col or (schema.time.name if schema is not None else None)
        event_col = args.event_col or (schema.event if schema is not None else None)
        if time_col is None or event_col is None:
            raise ZodcError("--time-col and --event-col are required with survival --data, unless --schema names them.")
        if schema is not None and (time_col, event_col) != (schema.time.name, schema.event):
            raise ZodcError(f"the schema's time and event columns are {schema.time.name!r} and {schema.event!r}; "
                            f"got --time-col {time_col!r} --event-col {event_col!r}.")
        roles = {"task": task, "target": None, "time": time_col, "event": event_col}
        if args.event_value is not None:
            if args.data is None:
                raise ZodcError("--event-value goes with --data (a bundled dataset's events are coded 0 / 1).")
            if event_col in frame.columns:  # a missing column is refused by the checks that follow
                from zodc.data.io import event_indicator

                frame = frame.assign(**{event_col: event_indicator(frame[event_col], args.event_value)})
    else:
        if args.event_value is not None:
            raise ZodcError("--event-value is for survival (with --time-col and --event-col).")
        target = args.target or (schema.target if schema is not None else None)
        if target is None:
            raise ZodcError("--target is required with --data (the class column), unless --schema names it; "
                            "for survival give --time-col and --event-col.")
        roles = {"task": task, "target": target, "time": None, "event": None}
    return frame, schema, roles, source


def _radius(text: str):
    """``--trust-radius``: ``auto``, ``none`` or a positive number."""
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, 'auto' or 'none'; got {text!r}") from None


def _start(args):
    """``--init`` and its settings as a :class:`~zodc.start.DPMeans` or :class:`~zodc.start.NoiseStart`."""
    from zodc.start import CLIP_PER_SQRT_D, DPMeans, NoiseStart

    if args.init == "noise":
        return NoiseStart() if args.init_scale is None else NoiseStart(scale=args.init_scale)
    return DPMeans(share=args.init_share, scale=args.init_scale,
                   clip=CLIP_PER_SQRT_D if args.init_clip is None else args.init_clip, centre=args.init_centre)


def _columns(text: str) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _check_early(frame, schema, roles: dict[str, Any], on_out_of_bounds: str) -> None:
    """Every check of the table that needs no budget, before any work: missing columns and roles —
    the table's structure. No refusal here reads the records' values (value problems act on their
    own record; a single class or no event is for the DP estimates to find)."""
    from zodc.data.validation import check_raw_table, column_not_found, validate_table
    from zodc.errors import DataError

    for role in ("target", "time", "event"):
        name = roles[role]
        if name is not None and name not in frame.columns:
            raise DataError(column_not_found(f"{role} column", name, frame.columns))
    if roles["task"] != "survival":
        return  # the classification checks run in Condenser.fit, before any private computation
    if schema is None:
        check_raw_table(frame, time=roles["time"], event=roles["event"])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-bounds warnings are raised again, once, by the fit
            # No variation required: "no event" must not be a refusal one record can decide.
            validate_table(frame, schema, on_out_of_bounds=on_out_of_bounds, require_variation=False)


def holdout_key(seed: int | None) -> str:
    """The holdout hash's 128-bit key as the 16 ASCII characters pandas' SipHash takes (7 bits each,
    112 bits): from the run's secret seed, or fresh entropy. Never written anywhere."""
    from zodc.privacy.keys import PATHS, resolve_seed

    words = np.random.SeedSequence(resolve_seed(seed), spawn_key=(PATHS["holdout"],)).generate_state(16, np.uint32)
    return "".join(chr(int(word) % 128) for word in words)


def holdout_mask(frame, holdout: float, key: str) -> np.ndarray:
    """Which rows are held out: a keyed hash (SipHash-2-4, pandas' ``hash_pandas_object``) of each
    row's own values, compared with ``holdout``.

    Could one record change this? Only its own side: each row's side depends on that row and the
    secret key alone, so adding or removing a record changes no other row's side (a seeded
    ``train_test_split`` reshuffles 5-87 others), and the condensed set of neighbouring cohorts
    differs in at most that record. Not stratified: stratifying would couple the rows.
    """
    import pandas as pd

    hashes = pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy(np.uint64)
    return (hashes >> np.uint64(11)).astype(np.float64) * 2.0**-53 < holdout


def _split(frame, holdout: float, seed: int | None):
    """Train / held-out split by :func:`holdout_mask`."""
    if holdout == 0:
        return frame, None
    held = holdout_mask(frame, holdout, holdout_key(seed))
    return frame.loc[~held], frame.loc[held]


def _search_grid(text: str | None):
    """The --search grid: inline JSON or a JSON file; a dict of lists or a list of them."""
    if text is None:
        return None
    source = "--search"
    if os.path.isfile(text):
        source = f"--search file {text!r}"
        with open(text, encoding="utf-8") as handle:
            text = handle.read()
    try:
        grid = json.loads(text)
    except json.JSONDecodeError as error:
        raise ZodcError(f"{source} is not valid JSON ({error}); give e.g. '{{\"learning_rate\": [0.02, 0.05]}}'.") from None
    if not (isinstance(grid, dict) or (isinstance(grid, list) and grid and all(isinstance(g, dict) for g in grid))):
        raise ZodcError(f"{source} must be a JSON object of lists (or a list of them). Got {type(grid).__name__}.")
    return grid


def condense_command(args, argv: Sequence[str] | None = None) -> dict[str, Any]:
    from zodc import __version__
    from zodc.data.io import json_safe, write_files_atomic
    from zodc.errors import DataError
    from zodc.estimator import Condenser
    from zodc.models.presets import get_preset
    from zodc.tasks import get_task

    if args.out is None:
        raise ZodcError("--out is required (where to write the synthetic CSV), unless --resume DIR finishes a run.")
    if not 0 <= args.holdout < 1:
        raise ZodcError(f"--holdout must be in [0, 1). Got {args.holdout}.")
    report_path = args.report or _sibling(args.out, ".report.json")
    schema_path = _sibling(args.out, ".schema.json")
    owner_path = _sibling(args.out, ".owner.json")
    for path, flag in ((args.out, "--out"), (report_path, "--report")):
        _check_writable(path, flag)
    if os.path.exists(args.out):
        warnings.warn(f"--out {args.out!r} exists; a finished run replaces it. Each run on the same cohort spends its "
                      "own budget: if the table it replaces was shared, the two releases together cost the sum of "
                      "their epsilons.", UserWarning, stacklevel=2)
    if args.plots is not None:  # matplotlib and the directory, before any work
        from zodc.evaluate.plots import check_plots

        check_plots(args.plots)
    if len({os.path.abspath(p) for p in (args.out, report_path, schema_path, owner_path)}) < 4:
        raise ZodcError("--out and --report must be different files.")

    grid = _search_grid(args.search)
    stopping = args.search_selection == "random_stopping"
    searching = grid is not None or args.search_repeats != 1 or stopping
    if not searching and (args.search_share != 0.1 or args.search_horizon is not None):
        raise ZodcError("--search-share and --search-horizon go with --search or --search-repeats.")
    if args.search_mean_runs is not None and not stopping:
        raise ZodcError("--search-mean-runs goes with --search-selection random_stopping.")
    if args.checkpoint is not None and searching:
        raise ZodcError("--checkpoint checkpoints one run; it does not go with a private search (--search, "
                        "--search-repeats, --search-selection).")
    if args.devices is not None and args.devices < 1:
        raise ZodcError(f"--devices must be at least 1. Got {args.devices}.")

    frame, schema, roles, source = _load(args)
    task = get_task(roles["task"])
    model = args.model or task.default_model
    get_preset(model, task=task.name)  # a model for the other task is refused before any work
    flags = {"rows_per_class": "--rows-per-class", "rows": "--rows"}
    for name, flag in flags.items():
        if name != task.row_parameter and getattr(args, name) is not None:
            raise ZodcError(f"{flag} is for {'classification' if name == 'rows_per_class' else 'survival'}; for "
                            f"{task.name} data give {flags[task.row_parameter]} (default {task.default_rows}).")
    if args.loss is not None and args.loss not in task.losses:
        raise ZodcError(f"--loss {args.loss} is a {'survival' if task.name == 'classification' else 'classification'} "
                        f"loss; {task.name} uses {', '.join(task.losses)}.")
    size = {task.row_parameter: getattr(args, task.row_parameter)}
    _check_early(frame, schema, roles, args.on_out_of_bounds)
    if args.data is not None:  # kinds as declared or in the schema, else decided with DP (zodc.data.io.apply_declared_kinds)
        from zodc.data.io import apply_declared_kinds

        frame = apply_declared_kinds(frame, categorical=_columns(args.categorical), integer=_columns(args.integer),
                                     numeric=_columns(args.numeric), classes=_columns(args.classes) or None,
                                     target=roles["target"], time=roles["time"], event=roles["event"], schema=schema)
    elif args.classes:
        raise ZodcError("--classes goes with --data (a bundled dataset's schema names its classes).")

    started = time.perf_counter()
    if args.seed is not None:
        print("zodc: a --seed was given: this release is private only while the seed stays secret (it is not written "
              "to any output).", file=sys.stderr)
    seed = args.seed
    import jax

    if jax.process_count() > 1:  # several processes (jax.distributed.initialize): one run, one writer
        if args.checkpoint is not None:
            raise ZodcError("--checkpoint is for one process; a run over several processes (jax.distributed) "
                            "cannot be checkpointed yet.")
        if seed is None:  # process 0's fresh entropy on every process: the same holdout, noise and masks
            from zodc.sharding import shared_seed

            seed = shared_seed()
    if args.checkpoint is not None:  # one secret seed for the holdout and the run, kept to resume
        seed = _checkpoint_seed(args, list(argv) if argv is not None else sys.argv[1:])
    train, test = _split(frame, args.holdout, seed)
    condenser = Condenser(
        model, epsilon=args.epsilon, delta=args.delta, **size, steps=args.steps,
        num_directions=args.num_directions, smoothing=args.smoothing, learning_rate=args.learning_rate,
        l2_norm_clip=args.l2_norm_clip, batch_size=args.batch_size, loss=args.loss, num_time_bins=args.time_bins,
        directions=args.directions, average_tail=args.average_tail, trust_radius=args.trust_radius,
        select_features=args.select_features,
        selection_share=args.selection_share, soft_labels="auto" if args.soft_labels is None else args.soft_labels,
        soft_label_start=args.soft_label_start, init=_start(args), time_grid=args.time_grid,
        time_init=args.time_init, schema=schema, preprocessing_share=args.preprocessing_share,
        on_out_of_bounds=args.on_out_of_bounds, backend=args.backend, n_jobs=args.n_jobs, random_state=seed,
        devices=args.devices, checkpoint=args.checkpoint,
        verbose=0 if args.quiet or stopping else 1,  # random stopping: no per-run progress (the count is secret)
        # Retired options (the flags warned already): passed only when given, for one release.
        **{name: getattr(args, name) for name in ("subspace", "soft_label_steps")
           if getattr(args, name) is not None})
    search = None
    if searching:
        from zodc.tuning import PrivateSearch

        varies_model = grid is not None and any("model" in g for g in (grid if isinstance(grid, list) else [grid]))
        search = PrivateSearch(condenser, grid, repeats=args.search_repeats, epsilon=args.epsilon, delta=args.delta,
                               selection_share=args.search_share, scoring_model=model if varies_model else None,
                               horizon=args.search_horizon, random_state=seed,
                               # Random stopping's number of runs is secret: no per-run lines on the terminal.
                               verbose=0 if args.quiet or stopping else 1, selection=args.search_selection,
                               **({"mean_repeats": args.search_mean_runs} if args.search_mean_runs is not None else {}))
    fitting = condenser if search is None else search
    fit_args, fit_kwargs = task.fit_arguments(train, roles)
    fitting.fit(*fit_args, **fit_kwargs)
    if search is not None:
        condenser = search.best_condenser_
    condense_seconds = time.perf_counter() - started

    utility: dict[str, Any] | None = None
    utility_error = None
    if test is not None:
        try:
            utility = task.utility(condenser, model, train, test, 0 if seed is None else seed)
        except DataError as error:
            # The owner's report reads the real records as they are (no event, or one class, among
            # them): the release must not depend on it, so it is written without the report.
            utility_error = str(error)
    plots = None
    if args.plots is not None:  # owner only (real records, no noise): rendered now, written with the other files
        from zodc.evaluate.plots import render_plots

        plots = render_plots(args.plots, real=train, synthetic=condenser.synthetic_, schema=condenser.schema_,
                             utility=utility)

    # What ran (the fitted configuration, nothing left "auto" or None), not the constructor's arguments.
    hyperparameters = {k: v for k, v in condenser.config_.to_dict().items()
                       if k not in ("task", "verbose", "task_scale")}
    hyperparameters["model"] = condenser.model if isinstance(condenser.model, str) else model
    hyperparameters["start"] = hyperparameters["init"]  # {"kind", and its settings}
    hyperparameters["init_scale"] = hyperparameters["init"]["scale"]
    hyperparameters["init"] = condenser.init_
    hyperparameters["soft_labels"] = bool(condenser.soft_labels_)
    hyperparameters[task.row_parameter] = hyperparameters.pop("rows")
    for name in task.other_settings:  # settings of the other task
        del hyperparameters[name]
    if search is not None:  # what ran is the chosen candidate, at its share of the budget
        hyperparameters["search"] = {"grid": grid, "repeats": args.search_repeats, "chosen": search.best_params_,
                                     "chosen_index": search.best_index_, "candidates": len(search.candidates_)}
        if stopping:  # the public settings only; the number of runs stays secret
            hyperparameters["search"].update(selection="random_stopping", mean_runs=search.mean_repeats_)
    data_roles = task.report_roles(condenser, roles)
    # The report goes with the table: only what the guarantee covers (no n, no seed, no statistic
    # of real records). What is computed on real records without noise is the owner's alone.
    report = {
        "zodc_version": __version__,
        "data": {**source, "task": task.name, "holdout": args.holdout, **data_roles,
                 "schema": "public (given)" if schema is not None else
                 "estimated with DP" if math.isfinite(args.epsilon) else "computed exactly (epsilon = inf: non-private)"},
        "model": {"name": model, "backend": condenser.backend_},
        "privacy": condenser.report() if search is None else search.report(),
        "hyperparameters": hyperparameters,
        "outputs": {"synthetic": os.path.abspath(args.out), "report": os.path.abspath(report_path),
                    "owner_only": os.path.abspath(owner_path),
                    "schema": os.path.abspath(schema_path) if schema is None else None},
    }
    owner = {"note": "NOT covered by the privacy guarantee: computed on real records without noise, for the data "
                     "owner's review. Do not publish.",
             "rows_condensed": int(len(train)), "rows_held_out": 0 if test is None else int(len(test)),
             "utility": utility, "timing": {"condense_seconds": round(condense_seconds, 3)}}
    if utility_error is not None:
        owner["utility_not_computed"] = utility_error
    if plots:
        owner["plots"] = [os.path.abspath(path) for path in plots]
    # All computation is done. Serialise everything first (a value JSON cannot hold fails here,
    # before any file exists), then write the files all or nothing.
    report, owner = json_safe(report), json_safe(owner)
    contents = {args.out: condenser.synthetic_.to_csv(index=False),
                report_path: json.dumps(report, indent=2, allow_nan=False) + "\n",
                owner_path: json.dumps(owner, indent=2, allow_nan=False) + "\n"}
    if schema is None:
        contents[schema_path] = json.dumps(json_safe(condenser.schema_.to_dict()), indent=2, allow_nan=False) + "\n"
    if jax.process_index() != 0:  # every process holds the release; process 0 writes it
        return {**report, "owner_only": owner, "written_by_process_0": True}
    write_files_atomic(contents)
    if args.checkpoint is not None and os.path.exists(_run_file(args.checkpoint)):  # released: its secrets go
        os.remove(_run_file(args.checkpoint))
    if plots:
        from zodc.evaluate.plots import write_rendered

        write_rendered(plots)
    return {**report, "owner_only": owner}


def datasets_command() -> list[dict[str, Any]]:
    from zodc.data.datasets import list_datasets

    rows = []
    for info in list_datasets():
        rows.append({"name": info.name, "task": info.task, "rows": info.n_rows, "features": info.n_features,
                     "description": info.description})
    return rows


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return str(value)


RUN_FILE = "zodc-run.json"


def _run_file(directory: str) -> str:
    return os.path.join(directory, RUN_FILE)


def _resumed_arguments(parser, args):
    """``--resume DIR``: the options stored in DIR by ``--checkpoint DIR``, parsed again, and the
    directory the run was started in (its relative paths resolve from there)."""
    defaults = _condense_defaults(parser)
    given = [name for name, value in vars(args).items()
             if name not in ("command", "resume") and value != defaults.get(name)]
    if given:
        raise ZodcError(f"--resume takes no other options (the run's are stored in its directory). Got: "
                        f"{', '.join('--' + name.replace('_', '-') for name in sorted(given))}.")
    path = _run_file(args.resume)
    try:
        with open(path, encoding="utf-8") as handle:
            stored = json.load(handle)
    except FileNotFoundError:
        raise ZodcError(f"--resume {args.resume!r}: no run to resume there ({RUN_FILE} is missing: the run finished, "
                        "or never started with --checkpoint).") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ZodcError(f"--resume {args.resume!r}: {RUN_FILE} cannot be read ({type(error).__name__}).") from None
    started_in = stored.get("cwd")
    if started_in is not None and not os.path.isdir(started_in):
        raise ZodcError(f"--resume {args.resume!r}: the run was started in a directory that no longer exists; its "
                        "relative paths resolve from there.")
    return parser.parse_args(stored["argv"]), stored["argv"], started_in


def _condense_defaults(parser) -> dict:
    """The ``condense`` sub-command's defaults (to tell which options were given)."""
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse has no public accessor
        condense = action.choices["condense"]
        return {a.dest: a.default for a in condense._actions}  # noqa: SLF001
    return {}


def _checkpoint_seed(args, argv: list[str]) -> int | None:
    """The run's seed with ``--checkpoint DIR``: the user's ``--seed``, or 128 bits of fresh entropy drawn
    once and kept (owner-only) in DIR with the run's options, so that a resumed run replays the same
    holdout and randomness. Refuses a DIR that holds another run."""
    from zodc.privacy.keys import FreshEntropy, resolve_seed

    path = _run_file(args.checkpoint)
    options = list(argv)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            stored = json.load(handle)
        if stored.get("argv") != options:
            raise ZodcError(f"--checkpoint {args.checkpoint!r} holds another run's checkpoint: finish it with "
                            f"`zodc condense --resume {args.checkpoint}`, or use another directory.")
        seed = stored.get("seed")
        return args.seed if seed is None else FreshEntropy(seed)
    from zodc.checkpoint import write_private

    fresh = None if args.seed is not None else FreshEntropy(resolve_seed(None))  # a --seed is in argv already
    write_private(path, json.dumps({"argv": options, "cwd": os.getcwd(),
                                    "seed": None if fresh is None else int(fresh)}))
    return args.seed if fresh is None else fresh


def _warning_format():
    """A ``warnings.formatwarning`` for the command line: ``zodc: warning: <message>``, each distinct
    message once.

    Python's default shows a warning as the file, line and source line that raised it, which tells
    a person running the command nothing, and shows a message again when another line raises it
    (the same missing-value notice from validating the table and from encoding it). Only
    :func:`main` installs it, for its own duration: a library caller keeps Python's format, and
    recorded warnings (``pytest.warns``, ``catch_warnings(record=True)``) are not formatted."""
    seen: set = set()

    def format_warning(message, category, filename, lineno, line=None) -> str:
        text = str(message)
        if text in seen:
            return ""
        seen.add(text)
        return f"zodc: {'warning' if issubclass(category, UserWarning) else category.__name__}: {text}\n"

    return format_warning


def _version() -> str:
    from zodc import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    default_format, warnings.formatwarning = warnings.formatwarning, _warning_format()
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = default_format


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from zodc.runtime import deterministic_gpu  # before JAX starts a backend: seeded runs repeat on a GPU

    deterministic_gpu()
    if argv[:1] in (["condense"], ["audit"]):  # the commands that fit trees: build the C++ library meanwhile
        from zodc.kernels._build import build_in_background  # imports no JAX: starts before JAX loads

        build_in_background()
    parser = build_parser()
    args = parser.parse_args(argv)
    from zodc.runtime import enable_compilation_cache

    enable_compilation_cache()
    try:
        if args.command == "condense":
            from zodc.data.validation import diagnostics

            here = os.getcwd()
            if args.resume is not None:  # in the directory the run was started in, as its paths are relative to it
                args, argv, started_in = _resumed_arguments(parser, args)
                os.chdir(started_in or here)
            try:
                with diagnostics(args.diagnostics):
                    report = condense_command(args, argv)
            finally:
                os.chdir(here)
            if report.get("written_by_process_0"):
                import jax

                print(f"zodc condense: process {jax.process_index()} of {jax.process_count()} done; process 0 writes "
                      "the release.")
            elif args.json:
                print(json.dumps(report, indent=2, default=_json_default))
            else:  # a few lines a person reads; the full JSON is in the report file
                from zodc.evaluate.summary import summary_lines

                print("\n".join(summary_lines(report, report.get("owner_only"))))
        elif args.command == "audit":
            from zodc.evaluate.audit import audit_command

            print(json.dumps(audit_command(args), indent=2, default=_json_default))
        elif args.command == "datasets":
            rows = datasets_command()
            width = max(len(r["name"]) for r in rows)
            for r in rows:
                print(f"{r['name']:<{width}}  {r['task']:<14}  {r['rows']:>5} rows  {r['features']:>3} features  {r['description']}")
        elif args.command == "schema":
            return args.handler(args)
        elif args.command == "models":
            from zodc.models.presets import PRESETS
            from zodc.models.protocol import native_available

            for preset in PRESETS.values():
                backends = "native, host" if native_available(preset) else "host"
                print(f"{preset.name:<10}  {preset.task:<14}  [{backends}]  {preset.description}")
    except (ZodcError, FileNotFoundError) as error:
        print(f"zodc: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
