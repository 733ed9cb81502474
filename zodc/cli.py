"""The ``zodc`` command.

::

    zodc condense --dataset breast_cancer --model tree --epsilon 1 --out synthetic.csv
    zodc condense --data cohort.csv --target outcome --model tree --epsilon 1 --delta 1e-5 \\
                  --rows-per-class 10 --out synthetic.csv --report report.json
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zodc", description="Differentially private zero-order dataset "
                                     "condensation for classical clinical models.")
    sub = parser.add_subparsers(dest="command", required=True)

    condense = sub.add_parser("condense", help="learn and release a small DP synthetic table",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    source = condense.add_mutually_exclusive_group()
    source.add_argument("--data", help="CSV file of the private cohort")
    source.add_argument("--dataset", help=f"a bundled dataset (see `zodc datasets`; default {DEFAULT_DATASET})")
    condense.add_argument("--target", help="class column (required with --data unless the schema names it)")
    condense.add_argument("--schema", help="public schema JSON (bounds, categories); without it one is estimated with DP")
    condense.add_argument("--model", default="tree", help="tree, forest, boosting or logistic")
    condense.add_argument("--backend", default="auto", choices=["auto", "native", "host"])
    condense.add_argument("--epsilon", type=_float_or_inf, default=1.0, help="target epsilon of the whole release ('inf': non-private)")
    condense.add_argument("--delta", type=float, default=1e-5, help="target delta")
    condense.add_argument("--rows-per-class", type=int, default=10)
    condense.add_argument("--steps", type=int, default=300)
    condense.add_argument("--num-directions", type=int, default=16)
    condense.add_argument("--smoothing", type=float, default=0.2)
    condense.add_argument("--learning-rate", type=float, default=0.05)
    condense.add_argument("--l2-norm-clip", type=_float_or_inf, default=1.0)
    condense.add_argument("--batch-size", type=int, default=256, help="expected Poisson batch size")
    condense.add_argument("--average-tail", type=float, default=0.0,
                          help="release the average of the last share of iterates (0: the last iterate)")
    condense.add_argument("--loss", default="balanced_linear", choices=["balanced_linear", "cross_entropy", "brier"])
    condense.add_argument("--preprocessing-share", type=float, default=0.1,
                          help="share of epsilon for DP preprocessing when no schema is given")
    condense.add_argument("--on-out-of-bounds", default="clip", choices=["clip", "raise"])
    condense.add_argument("--holdout", type=float, default=0.3,
                          help="share of rows held out (never condensed) to measure utility; 0 condenses all rows and skips utility")
    condense.add_argument("--seed", type=int, default=0)
    condense.add_argument("--n-jobs", type=int, default=1, help="host worker processes (-1: all cores)")
    condense.add_argument("--out", required=True, help="where to write the synthetic CSV")
    condense.add_argument("--report", help="where to write the report JSON (default: OUT with .report.json)")
    condense.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("datasets", help="list the bundled datasets")
    sub.add_parser("models", help="list the model presets")
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


def _load(args) -> tuple[Any, Any, str, dict[str, Any]]:
    """Returns (frame, schema or None, target, dataset description)."""
    from zodc.data.datasets import load_dataset
    from zodc.data.io import read_table
    from zodc.data.schema import Schema

    if args.data is None:
        name = args.dataset or DEFAULT_DATASET
        dataset = load_dataset(name)
        schema = dataset.schema
        if schema.task != "classification":
            raise ZodcError(f"dataset {name!r} is a {schema.task} cohort; this release condenses classification data "
                            "(see `zodc datasets`).")
        if args.schema is not None:
            schema = Schema.from_json(args.schema)
        target = args.target or schema.target
        return dataset.frame, schema, target, {"name": name, "source": dataset.info.source}
    frame = read_table(args.data)
    schema = Schema.from_json(args.schema) if args.schema else None
    target = args.target or (schema.target if schema is not None else None)
    if target is None:
        raise ZodcError("--target is required with --data (the class column), unless --schema names it.")
    return frame, schema, target, {"name": os.path.basename(args.data), "source": os.path.abspath(args.data)}


def _split(frame, target: str, holdout: float, seed: int):
    from sklearn.model_selection import train_test_split

    if holdout == 0:
        return frame, None
    try:
        return train_test_split(frame, test_size=holdout, random_state=seed, stratify=frame[target])
    except ValueError as error:
        raise ZodcError(f"--holdout {holdout}: cannot split the table stratified by {target!r}: {error}") from None


def condense_command(args) -> dict[str, Any]:
    from zodc import __version__
    from zodc.data.io import write_json_atomic, write_table_atomic
    from zodc.data.transform import TableEncoder
    from zodc.data.validation import validate_table
    from zodc.estimator import Condenser
    from zodc.evaluate.utility import classification_utility
    from zodc.models.presets import PRESETS

    if not 0 <= args.holdout < 1:
        raise ZodcError(f"--holdout must be in [0, 1). Got {args.holdout}.")
    report_path = args.report or _sibling(args.out, ".report.json")
    schema_path = _sibling(args.out, ".schema.json")
    for path, flag in ((args.out, "--out"), (report_path, "--report")):
        _check_writable(path, flag)
    if len({os.path.abspath(p) for p in (args.out, report_path, schema_path)}) < 3:
        raise ZodcError("--out and --report must be different files.")

    frame, schema, target, source = _load(args)
    if target not in frame.columns:
        from zodc.errors import DataError
        raise DataError(f"target column {target!r} not found; columns are: {', '.join(map(str, frame.columns))}.")
    started = time.perf_counter()
    train, test = _split(frame, target, args.holdout, args.seed)
    condenser = Condenser(
        args.model, epsilon=args.epsilon, delta=args.delta, rows_per_class=args.rows_per_class, steps=args.steps,
        num_directions=args.num_directions, smoothing=args.smoothing, learning_rate=args.learning_rate,
        l2_norm_clip=args.l2_norm_clip, batch_size=args.batch_size, loss=args.loss, average_tail=args.average_tail,
        schema=schema,
        preprocessing_share=args.preprocessing_share, on_out_of_bounds=args.on_out_of_bounds,
        backend=args.backend, n_jobs=args.n_jobs, random_state=args.seed, verbose=0 if args.quiet else 1)
    condenser.fit(train.drop(columns=[target]), train[target])
    condense_seconds = time.perf_counter() - started

    utility: dict[str, Any] | None = None
    if test is not None:
        encoder = TableEncoder(condenser.schema_)
        encode = lambda table: encoder.encode(validate_table(table, condenser.schema_, on_out_of_bounds="clip"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-bounds test rows were already reported for training
            synthetic, real_train, real_test = (encode(t) for t in (condenser.synthetic_, train, test))
        reference = PRESETS[args.model].host_factory(condenser.schema_.n_classes)
        utility = classification_utility(
            reference, (synthetic.X, synthetic.y), (real_train.X, real_train.y), (real_test.X, real_test.y),
            num_classes=condenser.schema_.n_classes, rows_per_class=args.rows_per_class, random_state=args.seed)
        utility["note"] = ("train on each table, test on the held-out real split; computed on real records, "
                           "NOT covered by the privacy guarantee: for the data owner's review")

    report = {
        "zodc_version": __version__,
        "data": {**source, "rows_condensed": int(len(train)), "rows_held_out": 0 if test is None else int(len(test)),
                 "target": target, "schema": "public (given)" if schema is not None else "estimated with DP"},
        "model": {"name": args.model, "backend": condenser.backend_},
        "privacy": condenser.report(),
        "hyperparameters": {k: v for k, v in condenser.get_params().items()
                            if k not in ("schema", "optimizer", "verbose") and not callable(v)},
        "utility": utility,
        "timing": {"condense_seconds": round(condense_seconds, 3)},
        "outputs": {"synthetic": os.path.abspath(args.out), "report": os.path.abspath(report_path),
                    "schema": os.path.abspath(schema_path) if schema is None else None},
    }
    # All computation is done: write the outputs, each atomically.
    write_table_atomic(condenser.synthetic_, args.out)
    if schema is None:
        write_json_atomic(condenser.schema_.to_dict(), schema_path)
    write_json_atomic(report, report_path)
    return report


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from zodc.runtime import enable_compilation_cache

    enable_compilation_cache()
    try:
        if args.command == "condense":
            report = condense_command(args)
            print(json.dumps(report, indent=2, default=_json_default))
        elif args.command == "datasets":
            rows = datasets_command()
            width = max(len(r["name"]) for r in rows)
            for r in rows:
                print(f"{r['name']:<{width}}  {r['task']:<14}  {r['rows']:>5} rows  {r['features']:>3} features  {r['description']}")
        elif args.command == "models":
            from zodc.models.presets import PRESETS, native_available

            for preset in PRESETS.values():
                backends = "native, host" if native_available(preset) else "host"
                print(f"{preset.name:<10}  {preset.task:<14}  [{backends}]  {preset.description}")
    except (ZodcError, FileNotFoundError) as error:
        print(f"zodc: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
