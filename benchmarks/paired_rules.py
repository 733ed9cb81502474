"""What the paired-rule benchmarks share (``time_weight``, ``missing_count``, ``pld_calibration`` (removed),
``refine_trim``, ``whole_numbers``, ``missing_rate``): one quiet ``zodc condense`` run (and its
score), the loop of paired runs, and the paired summary of a score against the first rule.

Each of them runs the command once per rule and seed with the same seed for every rule, so the runs
differ only by the rule; a refusal is scored 0.5 (nothing released, no model).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings

import numpy as np


def condense_quietly(arguments: list) -> int:
    """``zodc condense ARGUMENTS``, its output and warnings swallowed; the exit code."""
    from zodc import cli

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return cli.main(["condense", *arguments])


def scored(values: list) -> np.ndarray:
    """The scores with a refusal (None) as 0.5."""
    return np.array([0.5 if value is None else value for value in values], dtype=float)


def paired(values: list, base: list, metric: str) -> dict:
    """Refusals, the mean score and the paired difference against ``base`` with its standard error."""
    scores, difference = scored(values), scored(values) - scored(base)
    return {"refused": int(sum(value is None for value in values)), f"{metric}_mean": round(float(scores.mean()), 4),
            "paired_difference": round(float(difference.mean()), 4),
            "standard_error": round(float(difference.std(ddof=1) / np.sqrt(len(values))), 4) if len(values) > 1
            else None}


def roles_and_metric(schema) -> tuple:
    """``(zodc condense role arguments, utility metric)`` of a bundled cohort's schema."""
    if schema.task == "classification":
        return ["--target", schema.target], "auroc"
    return ["--time-col", schema.time.name, "--event-col", schema.event], "c_index"


def condense_scored(data: str, roles: list, seed: int, out: str, metric: str, extra: tuple = ()) -> tuple:
    """``(exit code, the synthetic table's utility on the held-out records or None)`` of one quiet
    ``zodc condense --data DATA ROLES --seed SEED --out OUT EXTRA`` (None: refused, or a report
    that could not be computed)."""
    code = condense_quietly(["--data", data, *roles, "--seed", str(seed), "--quiet", "--out", out, *extra])
    if code != 0:
        return code, None
    with open(out.replace(".csv", ".owner.json")) as owner:
        utility = json.load(owner)["utility"]
    return code, (utility["synthetic"][metric] if utility else None)


def paired_runs(table, roles: list, metric: str, seeds: int, module, name: str, rules: dict, *,
                extra: tuple = (), measure=None, first_seed: int = 0) -> tuple:
    """``table`` written as a CSV and condensed at every seed under every rule, in order, with the same
    seed: ``module.name`` set to the rule's value (``rules``: ``{label: value}``; restored after) — or,
    with ``module`` None, the rule's value (a tuple) appended to the arguments —, then
    :func:`condense_scored`, then ``measure(out)`` (the released files' path) when it released.
    Seeds ``first_seed`` to ``first_seed + seeds - 1``.
    One JSON line per seed (``label: score``, or ``[score, measure]``). Returns ``(scores,
    measures)``, each ``{label: [per seed]}`` (None where refused)."""
    scores, measures = {label: [] for label in rules}, {label: [] for label in rules}
    default = getattr(module, name) if module is not None else None
    with tempfile.TemporaryDirectory() as directory:
        data, out = os.path.join(directory, "cohort.csv"), os.path.join(directory, "synthetic.csv")
        table.to_csv(data, index=False)
        try:
            for seed in range(first_seed, first_seed + seeds):
                for label, value in rules.items():
                    if module is not None:
                        setattr(module, name, value)
                    code, score = condense_scored(data, roles, seed, out, metric,
                                                  tuple(extra) + (tuple(value) if module is None else ()))
                    scores[label].append(score)
                    measures[label].append(measure(out) if measure is not None and code == 0 else None)
                line = {label: ([scores[label][-1], measures[label][-1]] if measure is not None else scores[label][-1])
                        for label in rules}
                print(json.dumps({"seed": seed, **line}), flush=True)
        finally:
            if module is not None:
                setattr(module, name, default)
    return scores, measures
