"""Survival: a time and an event, the discrete-time loss, one start group per event status.

The learnable table is ``(m, d + 1)``: the encoded features, then the encoded log-time (public
:class:`~zodc.models.survival.TimeScale`). The ``m`` events are fixed, ``round(event_rate * m)``
ones, from the schema's public event rate or a DP estimate (accounted). The loss is the
discrete-time NLL (or unweighted Brier) on a public log-time grid between the schema's time bounds.
Either API: ``fit(frame, duration_col=..., event_col=...)`` (lifelines) or ``fit(X, y)`` with a
structured ``(event, time)`` array (scikit-survival's ``Surv.from_arrays``).
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from zodc.budget import Budget
from zodc.data.dp_schema import count_share, estimate_event_rate
from zodc.data.io import event_numbers
from zodc.data.schema import Schema
from zodc.data.transform import TableEncoder
from zodc.data.validation import column_not_found, validate_table
from zodc.errors import ConfigError, DataError
from zodc.models import soft_labels as soft
from zodc.models.host import HostEvaluator
from zodc.models.protocol import accepts_weights
from zodc.models.survival import (SURVIVAL_LOSSES, SurvivalLoss, TimeScale, expand_soft_events, fit_score_survival,
                                  host_survival_payload, native_survival_data, native_survival_evaluate_fn,
                                  public_time_grid)
from zodc.privacy.keys import RunKeys
from zodc.start import DPMeans, NoiseStart
from zodc.tasks.base import (IDENTIFIER_ASSUMPTION, Problem, check_size, estimate_schema, estimated_columns,
                             features_frame, quietly, record_count, require_features)

DEFAULT_ROWS = 50
# soft_labels="auto" on survival data: soft events where the noise on the DP per-event-status means'
# difference exceeds this, per encoded coordinate (rounds 20-21: lung 0.36 and larynx 0.44 at
# epsilon 1 gained, gbsg2 and kidney transplant at 0.08 were level).
SOFT_EVENTS_START_NOISE = 0.2
# ... and where the synthetic table would hold fewer rows of the rarer event status than this (its
# rows times the DP event rate): a Cox fit on three or four event rows is often degenerate (thirteenth
# session: nafld1, 7.8 % events, 3.9 event rows of 50, gained; kidney transplant, 8.1 of 50, did not).
SOFT_EVENTS_MIN_ROWS = 5.0


def synthetic_event_count(event_rate: float, rows: int) -> int:
    """Events among the ``rows`` synthetic rows: ``round(event_rate * rows)``, kept in ``[1, rows - 1]``
    (at least one event, or no survival model is identified; at least one censored row, as in any
    real cohort). Post-processing of a public or DP event rate."""
    return int(min(max(int(round(event_rate * rows)), 1), rows - 1))


def is_structured(y) -> bool:
    dtype = getattr(y, "dtype", None)
    return dtype is not None and getattr(dtype, "names", None) is not None


class Survival:
    name = "survival"
    default_model = "cox"
    losses = SURVIVAL_LOSSES
    learning_rate = 0.02   # Adam's default step size in the bounds' units (rounds 10-14: with the DP-means start)
    start_scale = 0.2      # DPMeans' default spread in the bounds' units (rounds 11-13)
    trust_radius = None     # how far (encoded units) a cell may move from its start (not measured for Cox)
    learning_rate_data = 0.1  # the same in the data's units (column spreads; round 28)
    start_scale_data = 0.5
    row_parameter, default_rows = "rows", DEFAULT_ROWS
    other_settings = ("class_weight", "select_features", "selection_share")  # classification's

    # ---------------------------------------------------------------- arguments
    def frame(self, X, y, roles: dict, schema: Schema | None) -> tuple[pd.DataFrame, dict]:
        """(frame with the time and event columns, {"time", "event"}) from either survival API."""
        duration_col, event_col = roles.get("duration_col"), roles.get("event_col")
        if y is not None:
            if duration_col is not None or event_col is not None:
                raise DataError("give either a structured `y` (event, time) or `duration_col` / `event_col`, not both.")
            names = y.dtype.names
            if len(names) != 2:
                raise DataError(f"a structured survival `y` must have two fields (event: bool, time: float), as "
                                f"scikit-survival's Surv.from_arrays makes. Got fields {list(names)}.")
            kinds = {name: y.dtype[name].kind for name in names}
            bool_fields = [name for name in names if kinds[name] == "b"]
            if len(bool_fields) != 1 or kinds[names[1 - names.index(bool_fields[0])]] not in "iuf":
                raise DataError(f"a structured survival `y` needs one boolean event field and one numeric time field. "
                                f"Got dtype {y.dtype}.")
            event_field = bool_fields[0]
            time_field = names[1 - names.index(event_field)]
            # With a schema, the fields take the schema's column names (matched by role, not by name).
            time_name = schema.time.name if schema is not None and schema.time is not None else time_field
            event_name = schema.event if schema is not None and schema.event is not None else event_field
            frame = features_frame(X)
            if len(y) != len(frame):
                raise DataError(f"`y` must have one (event, time) per row of X ({len(frame)}). Got {len(y)}.")
            for name in (time_name, event_name):
                if name in frame.columns:
                    raise DataError(f"`y`'s field {name!r} is also a column of X; drop it from X.")
            frame[time_name] = np.asarray(y[time_field])
            frame[event_name] = np.asarray(y[event_field]).astype(np.int64)
            return frame, {"time": time_name, "event": event_name}
        if not isinstance(X, pd.DataFrame):
            raise DataError("`duration_col` / `event_col` name columns of a DataFrame `X` (lifelines style). "
                            f"Got {type(X).__name__}.")
        if schema is not None and schema.time is not None:
            duration_col = schema.time.name if duration_col is None else duration_col
            event_col = schema.event if event_col is None else event_col
        if duration_col is None or event_col is None:
            raise DataError(f"survival needs both `duration_col` and `event_col`. Got duration_col={duration_col!r}, "
                            f"event_col={event_col!r}.")
        for role, name in (("duration_col", duration_col), ("event_col", event_col)):
            if name not in X.columns:
                raise DataError(column_not_found(f"`{role}`", name, X.columns))
        if schema is not None and (schema.time.name, schema.event) != (duration_col, event_col):
            raise DataError(f"the schema's time and event columns are {schema.time.name!r} and {schema.event!r}; "
                            f"got duration_col={duration_col!r}, event_col={event_col!r}.")
        frame = X.copy()
        if not pd.api.types.is_numeric_dtype(frame[event_col]):  # text, read as the command line reads a CSV
            frame[event_col] = event_numbers(frame[event_col])
        return frame, {"time": duration_col, "event": event_col}

    def fit_arguments(self, frame: pd.DataFrame, roles: dict) -> tuple[tuple, dict]:
        """``Condenser.fit``'s arguments (lifelines style) for a frame holding the time and event."""
        return (frame,), {"duration_col": roles["time"], "event_col": roles["event"]}

    def settings(self, params: dict) -> dict:
        if params["rows_per_class"] is not None:
            raise ConfigError("`rows_per_class` is for classification; for survival set `rows` (the synthetic "
                              f"table's size). Got rows_per_class={params['rows_per_class']!r}.")
        if params["select_features"] is not None:
            raise ConfigError("`select_features` is for classification (it scores class separation). "
                              f"Got select_features={params['select_features']!r} with survival data.")
        loss = "discrete_nll" if params["loss"] is None else params["loss"]
        if loss not in SURVIVAL_LOSSES:
            raise ConfigError(f"`loss` must be one of {list(SURVIVAL_LOSSES)} for survival data. Got {params['loss']!r}.")
        rows = DEFAULT_ROWS if params["rows"] is None else params["rows"]
        if rows < 2:
            raise ConfigError(f"`rows` must be an integer >= 2. Got {rows!r}.")
        # "auto": soft events where the start is noisy, decided in `start` once n_hat and the event rate are known.
        soft_labels = params["soft_labels"] if isinstance(params["soft_labels"], str) else bool(params["soft_labels"])
        return {"rows": rows, "loss": loss, "soft_labels": soft_labels}

    # ---------------------------------------------------------------- schema, statistics, records
    def prepare(self, frame, roles, config, keys: RunKeys, budget: Budget, schema: Schema | None) -> Problem:
        if config.soft_labels is True and soft.SAMPLE_WEIGHT_COLUMN in frame.columns:
            raise DataError(f"the table has a column named {soft.SAMPLE_WEIGHT_COLUMN!r}, the soft-event release's "
                            "weight column: rename it, or condense without `soft_labels`.")
        estimated = schema is None
        schema, event_rate, count = self._resolve_schema(frame, roles, config, keys, budget, schema)
        clean = validate_table(estimated_columns(frame, schema) if estimated else frame, schema,
                               on_out_of_bounds=config.on_out_of_bounds, require_variation=False)
        encoder = TableEncoder(schema)
        require_features(encoder)
        encoded = encoder.encode(clean)
        check_size(count, config.rows, "rows")
        time_scale = TimeScale.from_schema(schema)
        grid = public_time_grid(schema.time.lower, schema.time.upper, config.num_time_bins, config.time_grid)
        events = (np.arange(config.rows) < synthetic_event_count(event_rate, config.rows)).astype(np.int64)
        return Problem(frame, roles, schema, encoder, count, np.asarray(encoded.X, np.float32), config.rows,
                       stats={"event_rate": float(event_rate)},
                       extra={"time": np.asarray(clean[schema.time.name], np.float64),
                              "event": np.asarray(encoded.event, np.int64), "events": events,
                              "time_scale": time_scale, "grid": grid,
                              # Brier: no IPCW weights — the censoring distribution would have to be public or DP.
                              "loss": SurvivalLoss(config.loss, grid),
                              "clashing_column": soft.SAMPLE_WEIGHT_COLUMN in frame.columns})

    def _resolve_schema(self, frame, roles, config, keys, budget, schema):
        """(schema, event rate, record count) — public or DP, accounted."""
        if schema is None:
            schema, count = estimate_schema(frame, keys, budget, config.preprocessing_share, time=roles["time"],
                                            event=roles["event"])
            return schema, float(schema.event_rate), count
        if schema.task != "survival":
            raise DataError(f"schema {schema.name!r} is for {schema.task}; the data given are for survival.")
        share = count_share(config.preprocessing_share)
        if schema.event_rate is not None:
            return schema, float(schema.event_rate), record_count(len(frame), keys, budget,
                                                                  budget.share_noise(share, 1))
        noise = budget.share_noise(share, 2)
        events = quietly(validate_table, frame, schema, on_out_of_bounds="clip",
                         require_variation=False)[schema.event].to_numpy()
        if budget.private:
            rate, mechanism = estimate_event_rate(keys.generator("event_rate"), events, noise)
            budget.draw(noise, 2)
            budget.add("event_rate", mechanism, "DP count of events and censorings: the synthetic rows' event share")
        else:
            rate = float(np.mean(events))  # non-private mode: the exact rate
        return schema, rate, record_count(len(frame), keys, budget, noise)

    # ---------------------------------------------------------------- start
    def step_size(self, problem: Problem, config) -> float | None:
        """The configured learning rate (survival's default is fixed before the data)."""
        return config.learning_rate

    def soft_events(self, problem: Problem, config, budget: Budget) -> bool:
        """``soft_labels="auto"``: soft events when the start's DP noise on the difference of the two
        event-status means exceeds 0.2 per encoded coordinate, or (private runs) when the synthetic
        table would hold fewer than :data:`SOFT_EVENTS_MIN_ROWS` rows of the rarer status (its rows
        times the event rate), if the model fits ``sample_weight`` and no column is named ``sample_weight``. Public
        inputs only (``n_hat`` and the event rate are public or DP, in the ledger; the rows are a
        setting)."""
        if config.soft_labels != "auto":
            return bool(config.soft_labels)
        if problem.extra["clashing_column"] or not accepts_weights(config.model, 2):
            return False
        rate = problem.stats["event_rate"]
        if budget.private and problem.num_rows * min(rate, 1.0 - rate) < SOFT_EVENTS_MIN_ROWS:
            return True
        init = config.init if isinstance(config.init, DPMeans) else DPMeans()
        noise = init.difference_noise(budget, problem.X.shape[1] + 1, problem.record_count,
                                      problem.stats["event_rate"])
        return noise > SOFT_EVENTS_START_NOISE

    def start(self, problem: Problem, config, keys: RunKeys, budget: Budget):
        """Each event status's rows at the start (:mod:`zodc.start`); times log-uniform with
        ``time_init="uniform"`` on a noise start."""
        extra, rate = problem.extra, problem.stats["event_rate"]
        values = np.concatenate([problem.X, np.asarray(extra["time_scale"].encode(extra["time"]),
                                                       np.float32)[:, None]], axis=1)
        sizes = lambda: problem.record_count * np.array([1.0 - rate, rate])
        start = config.init.table(keys, budget, values, extra["event"], extra["events"], 2, sizes,
                                  "per-event-status (censored / event)", config.task_scale)
        extra["spread"], table = start.spread, start.table  # the loop's units: DP (in the ledger) or None
        if isinstance(config.init, NoiseStart) and config.time_init == "uniform":
            column = jax.random.uniform(jax.random.fold_in(start.key, 1), (problem.num_rows,), minval=-1.0, maxval=1.0)
            table = table.at[:, -1].set(column)
        return table

    # ---------------------------------------------------------------- the loss
    def evaluator(self, problem: Problem, config, model_key, n_jobs: int):
        """(evaluate_fn, data, host evaluator or None). Could one record change this? Only its own
        losses (the evaluators' docstrings)."""
        extra = problem.extra
        if config.backend == "native":
            # The NLL's grid and the time scale travel as data: a DP schema's time bounds then change no
            # compiled step, and runs on other bounds reuse it (the same losses bit for bit).
            as_data = extra["loss"].name == "discrete_nll"
            evaluate_fn = native_survival_evaluate_fn(config.model.native(2), extra["loss"], extra["time_scale"],
                                                      config.soft_labels, bounds_as_data=as_data)
            data = native_survival_data(problem.X, extra["time"], extra["event"], extra["events"], model_key,
                                        *((extra["loss"], extra["time_scale"]) if as_data else ()))
            return evaluate_fn, data, None
        payload = host_survival_payload(config.model.host(2), extra["loss"], problem.X.astype(np.float64),
                                        extra["time"], extra["event"], extra["events"], extra["time_scale"],
                                        soft_events=config.soft_labels)
        host = HostEvaluator(fit_score_survival, payload, upper_bound=extra["loss"].upper_bound,
                             num_records=max(problem.X.shape[0], 1), n_jobs=n_jobs)
        return host.evaluate, None, host  # called outside jit (run_ask_tell)

    # ---------------------------------------------------------------- release
    def release(self, problem: Problem, learned: np.ndarray, keys: RunKeys, config) -> tuple[pd.DataFrame, dict]:
        extra, schema = problem.extra, problem.schema
        events, released_events, sample_weight, table = extra["events"], extra["events"], None, learned
        if config.soft_labels:  # every row as an event copy and a censored copy, weighted
            table, released_events, sample_weight = expand_soft_events(np.asarray(table, np.float64), events)
            released_events = np.asarray(released_events, np.int64)
        time_scale = extra["time_scale"]
        released = problem.encoder.decode(table[:, :-1], time=time_scale.decode(table[:, -1]), event=released_events,
                                          rng=keys.generator("release"))
        encoded = np.concatenate([np.asarray(problem.encoder.encode(released).X, np.float64),
                                  np.asarray(time_scale.encode(released[schema.time.name].to_numpy(np.float64)))[:, None]],
                                 axis=1)
        if sample_weight is not None:
            released[soft.SAMPLE_WEIGHT_COLUMN] = sample_weight
        return released, {"table_": encoded, "sample_weight_": sample_weight, "events_": events,
                          "event_rate_": problem.stats["event_rate"], "time_grid_": extra["grid"]}

    def assumptions(self, fitted, given_schema: bool) -> list[str]:
        schema = fitted.schema_
        out = [f"schema (bounds, categories{', time bounds, event rate' if schema.event_rate is not None else ', time bounds'}) "
               "given as public"] if given_schema else [IDENTIFIER_ASSUMPTION]
        source = "the public schema" if given_schema and schema.event_rate is not None else "the DP event rate (ledger)"
        out.append(f"synthetic events fixed: {int(fitted.events_.sum())} of {fitted.num_rows_} rows "
                   f"(round(event_rate x rows), event rate {fitted.event_rate_:.3f} from {source}); "
                   f"loss on a public log-time grid of {len(fitted.time_grid_)} bins within the time bounds")
        return out

    # ---------------------------------------------------------------- the private search's score
    def num_classes(self, schema: Schema) -> int:
        return 2  # the factories' argument (survival models ignore it)

    def search_context(self, search, fitted):
        """The score's public context for every candidate (see :meth:`score`)."""
        return search._score_times(fitted, fitted.schema_)

    score_description = ("sum over real records of the Brier score of the survival curve, averaged over public times "
                         "(a time where a record was censored before it scores 0)")

    def score(self, scorer, condenser, frame: pd.DataFrame, roles: dict, times: np.ndarray) -> float:
        """A candidate's score: the sum of :func:`~zodc.tuning.survival_record_scores` over the real
        records at the public ``times``; the scoring model is fitted on the candidate's released table
        only; a fit that fails predicts a coin flip (0.5) for every record, a record it cannot predict
        gets the coin flip alone.

        Could one record change this? Only by its own term, in ``[0, 1]``: the fit and the dropped
        columns depend on the candidate's table only, and predictions and scores are per record."""
        from zodc.data.validation import clean_quietly
        from zodc.evaluate.survival import drop_constant_columns
        from zodc.models.host import predict_rows
        from zodc.models.survival import fit_host_survival_model
        from zodc.tuning import survival_record_scores

        schema = condenser.schema_
        encoder = TableEncoder(schema)
        released, weight = soft.split_release(condenser.synthetic_)  # a soft-event release: weighted copies
        clean_real, clean_synthetic = clean_quietly(frame, schema), clean_quietly(released, schema)
        real, synthetic = encoder.encode(clean_real), encoder.encode(clean_synthetic)
        time_real = np.asarray(clean_real[schema.time.name], np.float64)
        time_synthetic = np.asarray(clean_synthetic[schema.time.name], np.float64)
        # Encoded columns constant in the candidate's table (a level absent from it) are left out, as
        # the CLI's utility does: lifelines cannot fit them. Which columns depends on the table only.
        (synthetic_X,), (real_X,), _, _ = drop_constant_columns((synthetic.X,), (real.X,), (real.X,))
        coin_flip = np.full((real_X.shape[0], times.size), 0.5)
        try:
            model = fit_host_survival_model(scorer, synthetic_X, time_synthetic, synthetic.event, sample_weight=weight)
        except Exception:  # noqa: BLE001 - a table the model cannot fit scores as a coin flip, for everyone
            survival = coin_flip
        else:
            survival = predict_rows(lambda X: model.predict_survival(X, times), real_X, (times.size,))
            unpredicted = ~np.all(np.isfinite(survival), axis=1)  # a record it cannot predict: a coin flip, alone
            survival[unpredicted] = coin_flip[unpredicted]
        return float(survival_record_scores(survival, time_real, real.event, times).sum())

    # ---------------------------------------------------------------- the owner's held-out utility
    def utility(self, condenser, model: str, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict:
        """C-index (and integrated Brier) on held-out real rows (:mod:`zodc.evaluate.heldout`): owner only."""
        from zodc.evaluate.heldout import survival_heldout

        return survival_heldout(condenser, model, train, test, seed)

    def report_roles(self, condenser, roles: dict) -> dict:
        """The report's roles: the columns' names and the synthetic events (public: fixed by design from a
        public or DP rate); with soft events the event copies' total weight (post-processing)."""
        out = {"time": roles["time"], "event": roles["event"], "events_in_synthetic": int(condenser.events_.sum()),
               "synthetic_rows": condenser.num_rows_}
        if condenser.sample_weight_ is not None:
            out["event_weight_in_synthetic"] = float(condenser.sample_weight_[condenser.num_rows_:].sum())
        return out
