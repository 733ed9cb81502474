"""Plots for the data owner: real-versus-synthetic distributions and utility against the references.

``zodc condense --plots DIR`` writes

- ``DIR/owner_columns.png``: one panel per column, the real training records' distribution next to
  the synthetic table's (histograms on the column's public bounds for numbers, bars over the
  schema's levels for categories, the missing share in the legend);
- ``DIR/owner_utility.png``: the utility of the synthetic table next to a random real sample of
  its size and the full real data (when a holdout measured it).

PRIVACY: the real-data panels and the utility figure are computed from real records WITHOUT
noise. They are for the data owner only, like ``OUT.owner.json``: they reveal the real marginal
distributions and are NOT covered by the privacy guarantee. Never publish them. (The synthetic
histograms alone are post-processing of the release; the bins are the public schema's.)

matplotlib is an optional dependency (the ``test`` and ``bench`` extras), imported only here and
only when plots are asked for; figures are drawn with its object-oriented API (no pyplot, no global
backend change) and every file is written atomically (a temporary file beside it, then
``os.replace``), all rendered before any is written.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any, Iterable

import numpy as np

from zodc.errors import ZodcError

COLUMNS_FILE = "owner_columns.png"
UTILITY_FILE = "owner_utility.png"
WHAT = ("columns", "utility")
_BINS = 20
_WARNING = "OWNER ONLY: real records without noise, not covered by the privacy guarantee. Do not publish."


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ZodcError("plots need matplotlib, an optional dependency: `pip install matplotlib` "
                        "(or `pip install zodc[bench]`).") from error
    return Figure


def check_plots(directory: str | os.PathLike) -> None:
    """Refuses, before any work, plots that could not be written: matplotlib missing, or a
    directory that is not writable (it must be a writable directory, or not exist yet under a
    writable one: it is then created)."""
    _figure_class()
    path = os.path.abspath(os.fspath(directory))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ZodcError(f"--plots: {directory!r} is not a directory.")
        if not os.access(path, os.W_OK):
            raise ZodcError(f"--plots: directory {directory!r} is not writable.")
        return
    parent = os.path.dirname(path)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ZodcError(f"--plots: cannot create {directory!r} (its parent is missing or not writable).")


# --------------------------------------------------------------------------- the columns

def _numeric_values(frame: Any, name: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)


def _bins(lower: float, upper: float, log: bool) -> np.ndarray:
    if log and lower > 0:
        return np.geomspace(lower, upper, _BINS + 1)
    return np.linspace(lower, upper, _BINS + 1)


def _share_missing(missing: np.ndarray, weight: np.ndarray) -> float:
    total = weight.sum()
    return float(weight[missing].sum() / total) if total > 0 else 0.0


def _numeric_panel(axis, name: str, lower: float, upper: float, log: bool, tables: list) -> None:
    edges = _bins(lower, upper, log)
    for label, frame, weight, style in tables:
        values = _numeric_values(frame, name)
        missing = ~np.isfinite(values)
        kept = np.clip(values[~missing], lower, upper)
        w = weight[~missing]
        mass = w.sum()
        if mass > 0:
            heights, _ = np.histogram(kept, bins=edges, weights=w / mass)
        else:
            heights = np.zeros(edges.size - 1)
        text = label + (f" ({_share_missing(missing, weight):.0%} missing)" if missing.any() else "")
        axis.stairs(heights, edges, label=text, **style)
    if log and lower > 0:
        axis.set_xscale("log")
    axis.set_xlim(lower, upper)
    axis.set_ylabel("share of rows")


def _categorical_panel(axis, name: str, levels: Iterable, tables: list) -> None:
    from zodc.data.validation import category_codes

    levels = list(levels)
    codes = [np.asarray(category_codes(frame[name], tuple(levels))) for _, frame, _, _ in tables]
    any_missing = any(np.any(c < 0) for c in codes)  # "(missing)": a missing value, or one outside the levels
    labels = [str(level) for level in levels] + (["(missing)"] if any_missing else [])
    positions = np.arange(len(labels))
    width = 0.8 / len(tables)
    for i, ((label, _, weight, style), table_codes) in enumerate(zip(tables, codes)):
        counts = np.array([weight[table_codes == k].sum() for k in range(len(levels))]
                          + ([weight[table_codes < 0].sum()] if any_missing else []))
        shares = counts / counts.sum() if counts.sum() > 0 else counts
        axis.bar(positions + (i - (len(tables) - 1) / 2) * width, shares, width=width, label=label,
                 color=style.get("color"), alpha=0.8)
    axis.set_xticks(positions, labels, rotation=30 if len(labels) > 3 else 0, fontsize=7)
    axis.set_ylabel("share of rows")


def _event_codes(frame: Any, name: str) -> Any:
    import pandas as pd

    values = pd.to_numeric(frame[name], errors="coerce")
    return values.where(values.isin([0, 1]))


def _columns_figure(Figure, real: Any, synthetic: Any, schema: Any) -> Any:
    import pandas as pd

    from zodc.data.schema import NumericColumn
    from zodc.models.soft_labels import split_release

    synthetic, weight = split_release(synthetic)
    weight = np.ones(len(synthetic)) if weight is None else np.asarray(weight, np.float64)
    tables = [("real (training split)", real, np.ones(len(real)), {"color": "tab:blue", "fill": True, "alpha": 0.35}),
              ("synthetic", synthetic, weight, {"color": "tab:red", "linewidth": 1.8})]
    panels = [(column, False) for column in schema.columns]
    if schema.time is not None:
        panels.append((schema.time, True))
    if schema.event is not None:
        panels.append((schema.event, False))
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    figure = Figure(figsize=(4.0 * cols, 2.8 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False)).ravel()
    for axis, (column, is_time) in zip(axes, panels):
        name = column if isinstance(column, str) else column.name
        if any(name not in frame.columns for _, frame, _, _ in tables):
            axis.set_title(f"{name} (not in both tables)", fontsize=9)
            continue
        if isinstance(column, str):  # the survival event column: 0 / 1
            event_tables = [(label, pd.DataFrame({column: _event_codes(frame, column)}), w, style)
                            for label, frame, w, style in tables]
            _categorical_panel(axis, column, (0, 1), event_tables)
            axis.set_title(f"{column} (event)", fontsize=9)
            continue
        if isinstance(column, NumericColumn):
            log = is_time or getattr(column, "scale", "linear") == "log"
            _numeric_panel(axis, column.name, float(column.lower), float(column.upper), log, tables)
        else:
            _categorical_panel(axis, column.name, column.categories, tables)
        title = column.name + (" (time)" if is_time else " (class)" if column.name == schema.target else "")
        axis.set_title(title, fontsize=9)
    for axis in axes[len(panels):]:
        axis.set_visible(False)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"{schema.name}: real training records vs synthetic table\n{_WARNING}", fontsize=10)
    return figure


# --------------------------------------------------------------------------- the utility

def _utility_figure(Figure, utility: dict[str, Any], task: str) -> Any:
    from zodc.evaluate.summary import METRICS, chance_score

    metrics = [m for m in METRICS[task] if m[0] in (utility.get("full_data") or {})
               or m[0] in (utility.get("synthetic") or {})]
    figure = Figure(figsize=(max(7.0, 4.5 * len(metrics)), 4.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(metrics), squeeze=False)).ravel()
    references = (("synthetic", "synthetic", "tab:red"), ("random_subset", "random real\nsample", "tab:gray"),
                  ("full_data", "full real\ndata", "tab:blue"))
    for axis, (key, label) in zip(axes, metrics):
        chance = chance_score(key, utility)
        for position, (reference, name, color) in enumerate(references):
            scores = utility.get(reference) or {}
            value = scores.get(key)
            if value is None:
                axis.text(position, 0.25, "fit\nfailed", ha="center", va="center", fontsize=9, color=color)
                continue
            spread = scores.get(f"{key}_sd")
            axis.bar(position, value, color=color, alpha=0.8, yerr=spread, capsize=4 if spread else 0)
            axis.text(position, value + (spread or 0.0), f"{value:.3f}", ha="center", va="bottom", fontsize=8)
        if chance is not None:
            axis.axhline(chance, color="black", linestyle="--", linewidth=1, label="chance")
            axis.legend(fontsize=7, loc="lower right")
        axis.set_xticks(range(len(references)), [name for _, name, _ in references], fontsize=8)
        axis.set_xlim(-0.6, len(references) - 0.4)
        axis.set_ylim(0, 1.05)
        axis.set_title(label, fontsize=9)
    warning = _WARNING.replace(", not covered", ",\nnot covered")
    figure.suptitle(f"Utility on {utility.get('test_rows', '?')} held-out real records\n{warning}", fontsize=9)
    return figure


# --------------------------------------------------------------------------- rendering and writing

def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def render_plots(directory: str | os.PathLike, *, real: Any, synthetic: Any, schema: Any,
                 utility: dict[str, Any] | None = None, what: Iterable[str] = WHAT) -> dict[str, bytes]:
    """The PNG files of :func:`write_plots`, rendered in memory: ``{path: bytes}``.

    PRIVACY: computed from real records without noise; for the data owner only (module docstring).
    """
    what = tuple(what)
    unknown = sorted(set(what) - set(WHAT))
    if unknown:
        raise ZodcError(f"`what` must be among {list(WHAT)}. Got {unknown}.")
    Figure = _figure_class()
    directory = os.fspath(directory)
    out = {}
    if "columns" in what:
        out[os.path.join(directory, COLUMNS_FILE)] = _png(_columns_figure(Figure, real, synthetic, schema))
    if "utility" in what and utility:
        out[os.path.join(directory, UTILITY_FILE)] = _png(_utility_figure(Figure, utility, schema.task))
    return out


def write_rendered(files: dict[str, bytes]) -> list[str]:
    """Writes ``{path: bytes}`` all or nothing: each to a temporary file beside it (fsynced), then
    every one renamed into place with ``os.replace``. Creates the directories. Returns the paths."""
    from zodc.data.io import write_files_atomic

    write_files_atomic(files, make_directories=True)
    return list(files)


def write_plots(directory: str | os.PathLike, *, real: Any, synthetic: Any, schema: Any,
                utility: dict[str, Any] | None = None, what: Iterable[str] = WHAT) -> list[str]:
    """Writes the owner's plots into ``directory`` (created if missing) and returns their paths.

    PRIVACY: the real-data panels and the utility figure are computed from real records WITHOUT
    noise: for the data owner only, like ``OUT.owner.json``. They reveal the real marginal
    distributions and are NOT covered by the privacy guarantee: never publish them. The synthetic
    histograms alone are post-processing of the release.

    Args:
      directory: where to write ``owner_columns.png`` and ``owner_utility.png``.
      real: the real records (a DataFrame in the schema's columns; the training split).
      synthetic: the released table (a DataFrame; a ``sample_weight`` column weights its rows).
      schema: the :class:`~zodc.data.schema.Schema` the table was condensed with (its public
        bounds and levels set the bins).
      utility: the owner's utility (``OUT.owner.json``'s ``utility``); ``None`` skips that figure.
      what: which figures: ``"columns"``, ``"utility"``.

    Raises:
      ZodcError: matplotlib is not installed (``pip install matplotlib``), or ``what`` is unknown.
    """
    return write_rendered(render_plots(directory, real=real, synthetic=synthetic, schema=schema,
                                       utility=utility, what=what))
