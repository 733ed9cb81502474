"""The data owner's held-out utility of a release (``zodc condense --holdout``): train on each
table — synthetic, all real training rows, random real subsets of the synthetic size — and test on
the held-out real rows. Computed on real records without noise: NOT covered by the guarantee, for
the owner's review only (never published). The tasks call these (:meth:`zodc.tasks.Task.utility`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


_UTILITY_NOTE = ("train on each table, test on the held-out real split; computed on real records, "
                 "NOT covered by the privacy guarantee: for the data owner's review")


def utility_encoder(condenser):
    """``encode(table, weight=None, synthetic=False) -> (EncodedTable, weight)`` for the utility, in
    the condensed schema's encoded space; ``encode.feature_names`` names the encoded columns.

    The same for every table: a numeric cell that is missing (or not a finite number) stays NaN in its
    encoded column, for the utility's missing-value rule (:mod:`zodc.evaluate.utility`: as it is for a
    model that accepts NaN, else a median imputation per training table); a missing category is "no
    level"; a record without a usable class, time or event is left out, and its ``weight`` with it. A
    synthetic table need not vary (no event: its fit fails and the report says so)."""
    from zodc.data.transform import TableEncoder
    from zodc.data.validation import validate_table

    schema = condenser.schema_
    encoder = TableEncoder(schema)
    # A numeric block's value is its first column (a second one, if any, is the schema's missing indicator).
    numeric = [block for block in encoder.feature_blocks if block.kind in ("numeric", "numeric_missing")]

    def encode(table, weight=None, synthetic=False):
        table = table.reset_index(drop=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-bounds test rows were already reported for training
            clean = validate_table(table, schema, on_out_of_bounds="clip", require_variation=not synthetic)
            encoded = encoder.encode(clean)
        X = np.array(encoded.X)
        for block in numeric:  # the validated table keeps a missing (or non-finite) number as NaN
            X[clean[block.name].isna().to_numpy(), block.start] = np.nan
        return encoded._replace(X=X), None if weight is None else np.asarray(weight, np.float64)[clean.index.to_numpy()]

    columns = {column.name: column for column in schema.feature_columns}
    names = [f"x{j}" for j in range(encoder.n_encoded)]
    for block in encoder.feature_blocks:
        column = columns[block.name]
        slots = [*getattr(column, "categories", ()), *(["(missing)"] if getattr(column, "missing", False) else [])]
        width = block.stop - block.start
        for k in range(width):
            names[block.start + k] = (
                block.name if width == 1 or (k == 0 and block.kind == "numeric_missing")
                else f"{block.name}=(missing)" if block.kind == "numeric_missing"
                else f"{block.name}={slots[k]}" if block.kind == "onehot" and width == len(slots)
                else f"{block.name}[{k}]")
    encode.feature_names = names
    return encode


_MISSING_CATEGORIES = ("a missing category is the schema's (missing) level where the schema allows missing values, "
                       "else no level (no one-hot column set); the same in every table")


def classification_heldout(condenser, model: str, train, test, seed: int) -> dict[str, Any]:
    """AUROC and balanced accuracy of the host reference model trained on the synthetic table, on all
    real training rows and on random real subsets of the synthetic size; failures, dropped columns and
    missing values are handled alike for all three and reported (:mod:`zodc.evaluate.utility`)."""
    from zodc.evaluate.utility import classification_utility
    from zodc.models.presets import PRESETS
    from zodc.models.soft_labels import split_release

    encode = utility_encoder(condenser)
    released, weight = split_release(condenser.synthetic_)
    synthetic, weight = encode(released, weight, synthetic=True)
    (real_train, _), (real_test, _) = encode(train), encode(test)
    num_classes = condenser.schema_.n_classes
    reference = PRESETS[model].host_factory(num_classes)
    utility = classification_utility(
        reference, (synthetic.X, synthetic.y, weight), (real_train.X, real_train.y),
        (real_test.X, real_test.y), num_classes=num_classes, rows_per_class=condenser.num_rows_ // num_classes,
        random_state=seed, on_failure="report", feature_names=encode.feature_names)
    utility["note"] = _UTILITY_NOTE + ". " + utility["note"]
    utility["preprocessing"]["missing_values"]["categories"] = _MISSING_CATEGORIES
    return utility


def survival_heldout(condenser, model: str, train, test, seed: int) -> dict[str, Any]:
    """C-index (and integrated Brier score on the public grid) of the host reference model trained on
    the synthetic table, on all real training rows and on random real subsets of the synthetic size;
    encoded columns constant in any of these training tables are left out of all of them, and failures
    and missing values are handled alike and reported (:mod:`zodc.evaluate.survival`)."""
    from zodc.errors import DataError
    from zodc.evaluate.survival import survival_utility
    from zodc.models.soft_labels import split_release

    encode = utility_encoder(condenser)
    released, weight = split_release(condenser.synthetic_)
    synthetic, weight = encode(released, weight, synthetic=True)
    tables = [synthetic, encode(train)[0], encode(test)[0]]
    triples = [(np.asarray(t.X, np.float64), np.asarray(t.time, np.float64), np.asarray(t.event)) for t in tables]
    if weight is not None:  # soft events: the copies' weights
        triples[0] = triples[0] + (weight,)
    options = {"num_rows": condenser.num_rows_, "random_state": seed, "on_failure": "report",
               "feature_names": encode.feature_names}
    try:
        utility = survival_utility(model, *triples, time_grid=condenser.time_grid_, **options)
    except DataError:  # the grid has < 2 points below the largest test time: C-index only
        utility = survival_utility(model, *triples, **options)
    utility["note"] = _UTILITY_NOTE + ". " + utility["note"]
    utility["preprocessing"]["missing_values"]["categories"] = _MISSING_CATEGORIES
    return utility
