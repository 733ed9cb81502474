"""Classification: class labels, the class-balanced loss, one start group per class.

The synthetic labels are ``rows_per_class`` of each class (a public design choice); the class set
is public (the schema's, or the task's definition: ``--classes``, a categorical ``y``'s categories,
or the target's 2-20 distinct labels). Class proportions come from the public schema, the DP
schema, or one DP count from the preprocessing share.
"""

from __future__ import annotations

import dataclasses

import math

import jax.numpy as jnp
import numpy as np
import pandas as pd

from zodc.budget import Budget
from zodc.data.dp_schema import count_share, estimate_class_proportions
from zodc.data.schema import Schema
from zodc.data.transform import TableEncoder
from zodc.data.validation import validate_table
from zodc.errors import ConfigError, DataError
from zodc.models import soft_labels as soft
from zodc.models.host import HostEvaluator, fit_score_classifier
from zodc.models.losses import ClassificationLoss, balanced_class_weights
from zodc.models.native import NativeClassifierEvaluator, native_classifier_data
from zodc.privacy.keys import RunKeys
from zodc.start import DPMeans
from zodc.privacy.selection import calibrate_selection_epsilon, select_features
from zodc.tasks.base import (IDENTIFIER_ASSUMPTION, Problem, check_size, estimate_schema, estimated_columns,
                             features_frame, quietly, record_count, require_features)

DEFAULT_ROWS_PER_CLASS = 10
LOSSES = ("balanced_linear", "cross_entropy", "brier")


class Classification:
    name = "classification"
    default_model = "tree"
    losses = LOSSES
    learning_rate = 0.05   # Adam's default step size in the bounds' units (ablation rounds 9-14, docs/ablation.md)
    learning_rate_many_classes = 0.02  # the same for three classes or more (round 36)
    start_scale = 0.1      # DPMeans' default spread in the bounds' units (rounds 12-13)
    trust_radius = 0.5     # how far (encoded units) a cell may move from its start (round 29)
    learning_rate_data = 0.1  # the same in the data's units (column spreads; round 28)
    start_scale_data = 0.5
    row_parameter, default_rows = "rows_per_class", DEFAULT_ROWS_PER_CLASS
    other_settings = ("num_time_bins", "time_grid", "time_init")  # survival's

    # ---------------------------------------------------------------- arguments
    def frame(self, X, y, roles: dict, schema: Schema | None) -> tuple[pd.DataFrame, dict]:
        if y is None:
            raise DataError("`y` is required: pass the class labels (one per row of X), or for survival a structured "
                            "(event, time) array, or `duration_col` and `event_col` naming columns of X.")
        frame = features_frame(X)
        target = getattr(y, "name", None) or "target"
        if target in frame.columns:
            raise DataError(f"`y` is named {target!r} but X already has a column of that name.")
        y_values = np.asarray(y)
        if y_values.ndim != 1 or y_values.shape[0] != len(frame):
            raise DataError(f"`y` must be 1-dimensional with one label per row of X ({len(frame)}). "
                            f"Got shape {y_values.shape}.")
        # A pandas categorical `y` keeps its categories: they are the task's public classes.
        frame[target] = y.array if isinstance(y, pd.Series) else y_values
        return frame, {"target": target}

    def fit_arguments(self, frame: pd.DataFrame, roles: dict) -> tuple[tuple, dict]:
        """``Condenser.fit``'s arguments for a frame holding the target column."""
        return (frame.drop(columns=[roles["target"]]), frame[roles["target"]]), {}

    def settings(self, params: dict) -> dict:
        """Task defaults and the checks that depend on the task."""
        if params["rows"] is not None:
            raise ConfigError(f"`rows` is for survival data; for classification set `rows_per_class` "
                              f"(the table has rows_per_class x classes rows). Got rows={params['rows']!r}.")
        loss = "balanced_linear" if params["loss"] is None else params["loss"]
        ClassificationLoss(loss)  # validates the name
        auto = isinstance(params["soft_labels"], str)
        # "auto": soft labels for the boosting preset only (ablation rounds 7-8).
        soft_labels = params["model"] == "boosting" if auto else bool(params["soft_labels"])
        rows = DEFAULT_ROWS_PER_CLASS if params["rows_per_class"] is None else params["rows_per_class"]
        return {"rows": rows, "loss": loss, "soft_labels": soft_labels}

    # ---------------------------------------------------------------- schema, statistics, records
    def prepare(self, frame, roles, config, keys: RunKeys, budget: Budget, schema: Schema | None) -> Problem:
        if config.soft_labels and soft.SAMPLE_WEIGHT_COLUMN in frame.columns:
            raise DataError(f"the table has a column named {soft.SAMPLE_WEIGHT_COLUMN!r}, the soft-label release's "
                            "weight column: rename it, or condense without `soft_labels`.")
        estimated = schema is None
        schema, proportions, count = self._resolve_schema(frame, roles["target"], config, keys, budget, schema)
        clean = validate_table(estimated_columns(frame, schema) if estimated else frame, schema,
                               on_out_of_bounds=config.on_out_of_bounds, require_variation=False)
        encoder = TableEncoder(schema)
        require_features(encoder)
        encoded = encoder.encode(clean)
        num_rows = config.rows * schema.n_classes
        check_size(count, num_rows, "rows_per_class", classes=schema.n_classes)
        weights = tuple(balanced_class_weights(proportions)) if config.class_weight == "balanced" else None
        return Problem(frame, roles, schema, encoder, count, np.asarray(encoded.X, np.float32), num_rows,
                       stats={"proportions": proportions, "class_weights": weights},
                       extra={"y": np.asarray(encoded.y, np.int32),
                              "labels": np.repeat(np.arange(schema.n_classes, dtype=np.int32), config.rows),
                              "loss": ClassificationLoss(config.loss, class_weights=weights)})

    def _resolve_schema(self, frame, target, config, keys, budget, schema):
        """(schema, class proportions, record count) — public or DP, all accounted."""
        if schema is None:
            schema, count = estimate_schema(frame, keys, budget, config.preprocessing_share, target=target)
            return schema, schema.class_proportions, count
        if schema.task != "classification":
            raise DataError(f"schema {schema.name!r} is for {schema.task}; the data given are for classification.")
        if schema.target != target:
            raise DataError(f"the schema's target is {schema.target!r} but `y` is named {target!r}; "
                            f"pass y as a Series named {schema.target!r}.")
        proportions = schema.class_proportions
        # Needed by the class-balanced loss and by the DP-means start (its divisors n_hat * proportions).
        needed = proportions is None and (config.class_weight == "balanced" or isinstance(config.init, DPMeans))
        noise = budget.share_noise(count_share(config.preprocessing_share), 2 if needed else 1)
        if needed:
            encoded_y = TableEncoder(schema).encode(quietly(validate_table, frame, schema, on_out_of_bounds="clip",
                                                            require_variation=False)).y
            if not budget.private:  # non-private mode: the exact proportions
                counts = np.bincount(encoded_y, minlength=schema.n_classes).astype(np.float64)
                return schema, tuple(np.maximum(counts, 1.0) / max(counts.sum(), 1.0)), float(len(frame))
            proportions, event = estimate_class_proportions(keys.generator("class_proportions"), encoded_y,
                                                            schema.n_classes, noise)
            budget.draw(noise, schema.n_classes)
            budget.add("class_proportions", event, "DP class counts (class-balanced loss, DP-means start)")
        return schema, proportions, record_count(len(frame), keys, budget, noise)

    # ---------------------------------------------------------------- start
    def soft_events(self, problem: Problem, config, budget: Budget) -> bool:
        """Soft labels as configured (decided on public configuration in :meth:`settings`)."""
        return bool(config.soft_labels)

    def step_size(self, problem: Problem, config) -> float | None:
        """The default learning rate once the classes are known: :attr:`learning_rate_many_classes`
        where the target has three classes or more (the per-class signal is thinner against the same
        noise; round 36 in ``docs/ablation.md``), else the configured one. Reads the class set, the
        task's public definition, and no record."""
        if config.units == "bounds" and config.learning_rate is not None and problem.schema.n_classes >= 3:
            return self.learning_rate_many_classes
        return config.learning_rate

    def start(self, problem: Problem, config, keys: RunKeys, budget: Budget):
        """Feature selection (if asked), then each class's rows at the start (:mod:`zodc.start`)."""
        K = problem.schema.n_classes
        proportions = problem.stats["proportions"]
        selected = self._select_features(problem, config, keys, budget)
        problem.extra["selected"] = selected
        values = problem.X if selected is None else problem.X[:, selected]
        start = config.init.table(keys, budget, values, problem.extra["y"], problem.extra["labels"], K,
                                  lambda: problem.record_count * np.asarray(proportions, np.float64), "per-class",
                                  config.task_scale)
        problem.extra["spread"] = start.spread  # the loop's units: DP (in the ledger) or None
        return start.table

    def _select_features(self, problem, config, keys, budget):
        """Private feature selection (or ``None``); the mechanism goes in the ledger.

        Could this leak? Only through the exponential mechanism's choice, accounted at its epsilon;
        the class proportions it scores with are public or DP, and ``n_hat`` is DP."""
        X, num_selected = problem.X, config.select_features
        if num_selected is None or num_selected >= X.shape[1]:
            return None  # every column is learned: nothing to select, nothing spent
        K = problem.schema.n_classes
        per_selection = (calibrate_selection_epsilon(budget.epsilon * config.selection_share, budget.delta,
                                                     num_selected) if budget.private else math.inf)
        proportions = problem.stats["proportions"]
        weights = proportions if proportions is not None else np.full(K, 1.0 / K)
        selected, event = select_features(keys.generator("feature_selection"), X, problem.extra["y"], num_selected,
                                          weights, problem.record_count, per_selection)
        budget.selection_draws = num_selected * X.shape[1]  # candidates over the k draws
        budget.add("feature_selection", event, f"exponential mechanism, {num_selected} of {X.shape[1]} encoded "
                   f"columns by class separation, epsilon {per_selection:.4g} each")
        return np.asarray(selected)

    # ---------------------------------------------------------------- the loss
    def evaluator(self, problem: Problem, config, model_key, n_jobs: int):
        """(evaluate_fn, data, host evaluator or None). Could one record change this? Only its own
        losses (the evaluators' docstrings); the real records are ``data`` or the host workers'."""
        from zodc.condense import Embedded

        K, loss, extra = problem.schema.n_classes, problem.extra["loss"], problem.extra
        # Each record's share of the clip (StepParams.clip_shares): its class weight over the largest,
        # from its own label and the public or DP weights.
        weights = loss.class_weights
        extra["clip_shares"] = (None if weights is None else
                                (np.asarray(weights, np.float32) / max(weights))[np.asarray(extra["y"])])
        host = None
        if config.backend == "native":
            # The class weights (DP or public) travel as data, so the compiled step is the same in every run.
            evaluate_fn = NativeClassifierEvaluator(config.model.native(K), dataclasses.replace(loss, class_weights=None),
                                                    config.soft_labels, K)
            data = native_classifier_data(problem.X, extra["y"], extra["labels"], model_key, loss.class_weights)
        else:
            payload = {"estimator": config.model.host(K), "X": problem.X.astype(np.float64), "y": extra["y"],
                       "synthetic_labels": extra["labels"], "num_classes": K, "loss": loss,
                       "soft_labels": config.soft_labels}
            host = HostEvaluator(fit_score_classifier, payload, upper_bound=loss.upper_bound,
                                 num_records=max(problem.X.shape[0], 1), n_jobs=n_jobs)
            evaluate_fn, data = host.evaluate, None  # called outside jit (run_ask_tell)
        selected = extra.get("selected")
        if selected is not None:
            evaluate_fn = Embedded(evaluate_fn, problem.X.shape[1], int(config.soft_labels))
            data = (data, jnp.asarray(selected))
        return evaluate_fn, data, host

    # ---------------------------------------------------------------- release
    def release(self, problem: Problem, learned: np.ndarray, keys: RunKeys, config) -> tuple[pd.DataFrame, dict]:
        """The table decoded to the original columns and levels (post-processing) and the fitted attributes."""
        K, labels, selected = problem.schema.n_classes, problem.extra["labels"], problem.extra.get("selected")
        own = learned[:, -1:] if config.soft_labels else None  # the last learned column: the own-class weight
        table = learned[:, :-1] if config.soft_labels else learned
        if selected is not None:
            table = np.zeros((problem.num_rows, problem.X.shape[1]))
            table[:, selected] = learned[:, :selected.size]
        sample_weight = None
        if own is not None:
            table, labels, sample_weight = soft.expand(np.hstack([table, own]), labels, K)
        released = problem.encoder.decode(table, y=labels, rng=keys.generator("release"))
        encoded = np.asarray(problem.encoder.encode(released).X, np.float64)
        if sample_weight is not None:
            released[soft.SAMPLE_WEIGHT_COLUMN] = sample_weight
        return released, {"table_": encoded, "labels_": labels, "sample_weight_": sample_weight,
                          "class_weights_": problem.stats["class_weights"], "selected_features_": selected,
                          "classes_": np.asarray(problem.schema.target_column.categories, dtype=object)}

    def assumptions(self, fitted, given_schema: bool) -> list[str]:
        schema = fitted.schema_
        if not given_schema:
            return [f"the target's classes {list(schema.target_column.categories)}: the task's definition "
                    "(declared, or the target's distinct labels), not a record's value", IDENTIFIER_ASSUMPTION]
        return [f"schema (bounds, categories{', class proportions' if schema.class_proportions else ''}) given as "
                "public"]

    # ---------------------------------------------------------------- the private search's score
    def num_classes(self, schema: Schema) -> int:
        return schema.n_classes

    def search_context(self, search, fitted):
        """The score's public context for every candidate (see :meth:`score`)."""
        return fitted.class_weights_

    score_description = "sum over real records of the class-weighted multi-class Brier score, 1 - B/2"

    def score(self, scorer, condenser, frame: pd.DataFrame, roles: dict, context) -> float:
        """A candidate's score: the sum of :func:`~zodc.tuning.classification_record_scores` over the
        real records, the scoring model fitted on the candidate's released table only; a fit that
        fails predicts chance for every record, a record it cannot predict is chance alone.

        Could one record change this? Only by its own term, in ``[0, 1]``: the fit never sees a real
        record, and predictions and scores are per record."""
        from zodc.data.validation import clean_quietly
        from zodc.evaluate.utility import fit_predict_proba
        from zodc.tuning import classification_record_scores

        schema, target = condenser.schema_, roles["target"]
        real = frame.rename(columns={target: schema.target}) if target != schema.target else frame
        encoder = TableEncoder(schema)
        real_encoded = encoder.encode(clean_quietly(real, schema))
        table, weight = soft.split_release(condenser.synthetic_)
        synthetic = encoder.encode(clean_quietly(table, schema))
        proba = fit_predict_proba(scorer, synthetic.X, synthetic.y, real_encoded.X, schema.n_classes,
                                  sample_weight=weight)
        return float(classification_record_scores(proba, real_encoded.y, context).sum())

    # ---------------------------------------------------------------- the owner's held-out utility
    def utility(self, condenser, model: str, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict:
        """AUROC and balanced accuracy on held-out real rows (:mod:`zodc.evaluate.heldout`): owner only."""
        from zodc.evaluate.heldout import classification_heldout

        return classification_heldout(condenser, model, train, test, seed)

    def report_roles(self, condenser, roles: dict) -> dict:
        """The report's description of the columns' roles (public: names)."""
        return {"target": roles["target"]}
