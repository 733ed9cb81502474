"""Private evolution by nearest-neighbour voting: fewer releases, more signal each (issue 24).

The per-step mechanism releases ``T × 2q`` noisy, clipped loss differences; each carries little
signal at ε = 1. Private evolution (Lin et al. 2023, arXiv:2305.15560; for tables, Tab-PE) releases
a handful of histograms instead, each of sensitivity 1:

1. ``population`` candidate rows per class are drawn uniformly from the public box (the schema's
   bounds and levels, in the encoder's ``[-1, 1]`` space). Nothing private is read.
2. Each iteration, every real record votes once for its nearest candidate *of its own class*
   (Euclidean distance in the encoded space). The vote counts of all classes form one histogram;
   adding or removing one record changes one count by 1, so its L2 sensitivity is 1 and Gaussian
   noise ``N(0, z²)`` per count makes it ``GaussianEvent(z)``. ``iterations`` such releases compose to
   ``SelfComposedEvent(GaussianEvent(z), iterations)``; ``z`` is calibrated to the target (ε, δ) by
   zodc's RDP calibration and the ledger records it.
3. Post-processing of the noisy counts only: candidates whose noisy count is below
   ``threshold × z`` get weight 0, the next population is drawn from the rest in proportion to
   their noisy counts (uniformly if none is left), and each drawn row is varied: numeric cells move
   by ``N(0, s_t²)`` (clipped to the box), binary cells and missingness flags flip and one-hot
   columns take a random level with probability ``min(s_t, 0.5)``; ``s_t`` falls geometrically from
   ``variation[0]`` to ``variation[1]``.
4. After the last vote the ``rows_per_class`` candidates of each class with the highest noisy counts
   (``final="top"``) or a draw in proportion to them (``final="sample"``) are released.

Could one record change anything but the noisy counts? The candidate draws and variations use the
seeded generator and public quantities only (``population``, the bounds, the classes); each record's
vote touches one count; the class sizes are never read (a class's candidates are ranked by their
own noisy counts). So the released table is post-processing of the ``iterations`` Gaussian
releases, and ``tests/benchmarks/test_private_evolution.py`` checks it on neighbouring tables.

Used as the ``private_evolution`` baseline of ``benchmarks.runner`` (``--baselines``), paired with
the condenser on the same splits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from zodc.data.schema import Schema
from zodc.errors import ConfigError
from zodc.privacy.calibration import calibrate_noise_multiplier
from zodc.privacy.events import GaussianEvent, SelfComposedEvent
from zodc.privacy.ledger import Ledger


def private_evolution_event(noise_multiplier: float, iterations: int) -> SelfComposedEvent:
    """The ``iterations`` sensitivity-1 vote histograms, each with noise std ``noise_multiplier``."""
    return SelfComposedEvent(GaussianEvent(noise_multiplier), iterations)


def _random_rows(blocks, num: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``num`` rows drawn uniformly from the public box in the encoded space (no data read)."""
    rows = np.zeros((num, width))
    for block in blocks:
        sl = slice(block.start, block.stop)
        if block.kind == "numeric":
            rows[:, sl] = rng.uniform(-1.0, 1.0, (num, 1))
        elif block.kind == "numeric_missing":
            rows[:, block.start] = rng.uniform(-1.0, 1.0, num)
            rows[:, block.start + 1] = rng.choice([-1.0, 1.0], num)
        elif block.kind == "binary":
            rows[:, sl] = rng.choice([-1.0, 1.0], (num, 1))
        elif block.kind == "onehot":
            levels = block.stop - block.start
            onehot = -np.ones((num, levels))
            onehot[np.arange(num), rng.integers(levels, size=num)] = 1.0
            rows[:, sl] = onehot
    return rows


def _vary(rows: np.ndarray, blocks, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A variation of each row (public randomness only): numeric cells jitter by ``N(0, scale²)``,
    categorical cells change with probability ``min(scale, 0.5)``."""
    out = rows.copy()
    num = rows.shape[0]
    flip = min(scale, 0.5)
    for block in blocks:
        if block.kind in ("numeric", "numeric_missing"):
            col = block.start
            out[:, col] = np.clip(out[:, col] + rng.normal(0.0, scale, num), -1.0, 1.0)
            if block.kind == "numeric_missing":
                change = rng.random(num) < flip
                out[change, col + 1] = -out[change, col + 1]
        elif block.kind == "binary":
            change = rng.random(num) < flip
            out[change, block.start] = -out[change, block.start]
        elif block.kind == "onehot":
            change = np.flatnonzero(rng.random(num) < flip)
            levels = block.stop - block.start
            onehot = -np.ones((change.size, levels))
            onehot[np.arange(change.size), rng.integers(levels, size=change.size)] = 1.0
            out[np.ix_(change, np.arange(block.start, block.stop))] = onehot
    return out


def _votes(X: np.ndarray, candidates: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """How many rows of ``X`` have each candidate as their nearest (ties: the lowest index)."""
    counts = np.zeros(candidates.shape[0])
    sq = (candidates ** 2).sum(axis=1)
    for start in range(0, X.shape[0], chunk):
        block = X[start:start + chunk]
        distances = sq[None, :] - 2.0 * block @ candidates.T  # ||x||² is the same for every candidate
        counts += np.bincount(np.argmin(distances, axis=1), minlength=candidates.shape[0])
    return counts


def private_evolution(frame: pd.DataFrame, schema: Schema, rows_per_class: int, *, epsilon: float,
                      delta: float = 1e-5, iterations: int = 6, population: int | None = None,
                      threshold: float = 2.0, variation: tuple[float, float] = (0.5, 0.05), final: str = "top",
                      init: str = "uniform", init_epsilon: float = 0.3, random_state: Any = None):
    """Private evolution by nearest-neighbour voting; ``rows_per_class`` rows per class.

    Args:
      frame: the private training table (schema columns).
      schema: public classification schema.
      rows_per_class: ``k``: rows released per class.
      epsilon, delta: the target; ``epsilon = inf`` votes without noise.
      iterations: vote histograms released (``>= 1``); the last one picks the released rows.
      population: candidates per class (public; default ``max(4 k, 20)``).
      threshold: candidates below ``threshold × z`` noisy votes are not drawn again.
      variation: the variation's scale in the first and the last iteration (encoded units).
      final: ``"top"`` (the ``k`` most-voted candidates) or ``"sample"`` (drawn in proportion).
      init: ``"uniform"`` (the public box, free) or ``"dp_gaussian"``: the first population drawn from
        the DP class-conditional Gaussian (``benchmarks.baselines.dp_gaussian``'s moments, diagonal),
        which spends ``init_epsilon`` of the target's ε on its own; the votes' noise is then calibrated
        so that both compose to the target.
      random_state: seed or ``np.random.Generator`` (the noise and every draw).

    Returns:
      ``benchmarks.baselines.BaselineResult`` with the ledger (epsilon at most the target) and, in
      ``details``, the noise multiplier and the settings.
    """
    from benchmarks.baselines import (BaselineResult, _check_budget, _check_rows, _classification, _dp_group_moments,
                                      _draw, _encoded, _rng)

    _classification(schema)
    rows_per_class = _check_rows(rows_per_class)
    epsilon, delta = _check_budget(epsilon, delta)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ConfigError(f"`iterations` must be an integer >= 1. Got {iterations!r}.")
    population = max(4 * rows_per_class, 20) if population is None else int(population)
    if population < rows_per_class:
        raise ConfigError(f"`population` must be at least rows_per_class={rows_per_class}. Got {population}.")
    if final not in ("top", "sample"):
        raise ConfigError(f"`final` must be 'top' or 'sample'. Got {final!r}.")
    if init not in ("uniform", "dp_gaussian"):
        raise ConfigError(f"`init` must be 'uniform' or 'dp_gaussian'. Got {init!r}.")
    rng = _rng(random_state)
    encoder, X, y = _encoded(frame, schema)
    blocks = encoder.feature_blocks
    width = X.shape[1]
    private = math.isfinite(epsilon)
    ledger = Ledger()
    classes = range(schema.n_classes)
    if init == "dp_gaussian":
        start_epsilon = init_epsilon * epsilon if private else math.inf
        moments = _dp_group_moments(X, y, schema.n_classes, start_epsilon, delta, "diagonal", (0.1, 0.45, 0.45),
                                    1e-3, rng, ("pe_start_counts", "pe_start_sums", "pe_start_squares"), "class")
        if private:
            for entry in moments.ledger.entries:
                ledger.add(entry.name, entry.event, entry.description)
        candidates = {c: _draw(moments, c, population, rng) for c in classes}
        for c in classes:  # categorical cells back to the +-1 coding the votes and variations use
            candidates[c] = np.asarray(encoder.encode(encoder.decode(candidates[c], y=np.full(population, c))).X)
    else:
        candidates = {c: _random_rows(blocks, population, width, rng) for c in classes}
    z = 0.0
    if private:
        spent_before = tuple(entry.event for entry in ledger.entries)
        z = calibrate_noise_multiplier(epsilon, delta, lambda s: private_evolution_event(s, iterations),
                                       base_events=spent_before)
        ledger.add("pe_votes", private_evolution_event(z, iterations),
                   f"{iterations} nearest-candidate vote histograms, L2 sensitivity 1")
    scales = np.geomspace(variation[0], variation[1], max(iterations - 1, 1))
    members = {c: X[y == c] for c in classes}  # each class's records, split once (not per vote)
    table, labels = [], []
    for t in range(iterations):
        noisy = {}
        for c in classes:
            counts = _votes(members[c], candidates[c])   # one vote per record: sensitivity 1 overall
            noisy[c] = counts + (rng.normal(0.0, z, counts.shape) if private else 0.0)
        if t == iterations - 1:
            break
        for c in classes:
            weight = np.where(noisy[c] > threshold * z, noisy[c], 0.0)
            total = weight.sum()
            chosen = rng.choice(population, size=population, p=weight / total if total > 0 else None)
            candidates[c] = _vary(candidates[c][chosen], blocks, float(scales[t]), rng)
    for c in classes:
        if final == "top":
            keep = np.argsort(-noisy[c], kind="stable")[:rows_per_class]
        else:
            weight = np.clip(noisy[c], 0.0, None)
            total = weight.sum()
            keep = rng.choice(population, size=rows_per_class, replace=False,
                              p=weight / total if np.count_nonzero(weight) >= rows_per_class else None)
        table.append(candidates[c][keep])
        labels.append(np.full(keep.size, c))
    decoded = encoder.decode(np.concatenate(table), y=np.concatenate(labels))
    spent = ledger.epsilon(delta) if private else math.inf
    return BaselineResult(decoded, ledger if private else None, spent, True,
                          {"noise_multiplier": float(z), "iterations": int(iterations), "population": population,
                           "threshold": float(threshold), "variation": list(map(float, variation)), "final": final,
                           "init": init, "init_epsilon": float(init_epsilon) if init == "dp_gaussian" else 0.0})
