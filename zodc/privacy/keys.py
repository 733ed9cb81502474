"""One secret seed, one stream per mechanism.

A release's randomness is its privacy: a release that a known seed determines is a deterministic
function of the data. :func:`resolve_seed` draws 128 bits of OS entropy when no seed is given; a
seed given for reproducible research is a secret key and is never written to a report or any
output (the CLI says so when it is given).

From that seed, :class:`RunKeys` hands each mechanism its own stream, named by a fixed path
(:data:`PATHS`): numpy generators (:func:`zodc.privacy.noise.secret_generator`, PCG64 with 128-bit
state, for the exact Gaussian noise of every DP mechanism) and JAX keys. A JAX threefry key holds
64 bits, so the device keys come in pairs drawn from disjoint 64-bit words of the seed's
``SeedSequence``; the Poisson masks XOR both keys' bits (:func:`zodc.privacy.mechanisms.poisson_mask`).
``RunKeys`` refuses to issue a path twice, so no two mechanisms can share a key (tested).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from zodc.errors import ConfigError
from zodc.privacy.noise import fresh_seed, secret_generator

__all__ = ["PATHS", "FreshEntropy", "RunKeys", "child_seeds", "resolve_seed", "words_to_int"]


class FreshEntropy(int):
    """A seed zodc drew from 128 bits of OS entropy and keeps only to resume a run (the CLI's
    ``--checkpoint``): as private as ``random_state=None``, and reported so."""

    def __repr__(self) -> str:  # a secret
        return "FreshEntropy(...)"

#: Every consumer of randomness in a run, each with its own path (never reuse a number).
PATHS = {
    "schema": 1,              # DP schema histograms (noise)
    "class_proportions": 2,   # DP class counts (noise)
    "event_rate": 3,          # DP event counts (noise)
    "record_count": 4,        # DP count of the records (noise)
    "feature_selection": 5,   # exponential mechanism (uniforms)
    "start_centre": 6,        # DP mean of all rows (noise)
    "start_means": 7,         # DP group means (noise)
    "start_spread": 8,        # the start's spread around the means (post-processing, JAX)
    "steps": 9,               # directions and Poisson masks (JAX)
    "step_noise": 10,         # the steps' Gaussian noise (noise)
    "model": 11,              # a native model's own randomness (JAX; forests' bootstraps)
    "subspace": 12,           # public random basis (JAX)
    "search": 13,             # a private search: candidates' seeds and the choice
    "holdout": 14,            # the CLI's keyed-hash holdout
    "release": 15,            # missing cells placed at release (post-processing)
    "start_deviation": 16,    # DP spread of each column around the group means (noise)
}


def words_to_int(words) -> int:
    """An integer from unsigned words, least significant first (``uint32`` or ``uint64``)."""
    width = np.dtype(np.asarray(words).dtype).itemsize * 8
    return sum(int(word) << (width * i) for i, word in enumerate(np.asarray(words).ravel()))


def child_seeds(seed: int, path: int, count: int) -> list[int]:
    """``count`` independent 128-bit seeds on ``path`` under ``seed`` (never shared between paths)."""
    words = np.random.SeedSequence(int(seed), spawn_key=(path,)).generate_state(4 * count, np.uint32)
    return [words_to_int(row) for row in words.reshape(count, 4)]


def resolve_seed(random_state: Any) -> int:
    """The run's secret seed: ``None`` → 128 bits of fresh OS entropy; a non-negative int → itself;
    a numpy ``Generator`` / ``RandomState`` → 128 bits drawn from it."""
    if random_state is None:
        return fresh_seed()
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ConfigError("`random_state` must be >= 0 (a secret seed) or None (fresh entropy).")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return words_to_int(random_state.integers(0, 2**64, size=2, dtype=np.uint64))
    if isinstance(random_state, np.random.RandomState):
        return words_to_int(random_state.randint(0, 2**32, size=4, dtype=np.uint64).astype(np.uint32))
    raise ConfigError(f"`random_state` must be None, an int or a numpy Generator. Got {type(random_state).__name__}.")


class RunKeys:
    """The run's streams, one per mechanism path. Holds the secret seed: never print or pickle it.

    Args:
      seed: the run's secret seed (:func:`resolve_seed`).
    """

    def __init__(self, seed: int):
        self._seed = int(seed)
        self.issued: list[str] = []

    def __repr__(self) -> str:  # the seed is a secret
        return f"RunKeys(issued={self.issued})"

    def __getstate__(self):
        raise TypeError("RunKeys holds a secret seed and is not picklable.")

    def _path(self, name: str) -> tuple[int]:
        if name not in PATHS:
            raise ConfigError(f"unknown randomness path {name!r}; known: {sorted(PATHS)}.")
        if name in self.issued:
            raise ConfigError(f"randomness path {name!r} was already issued in this run: two mechanisms would "
                              "share a key.")
        self.issued.append(name)
        return (PATHS[name],)

    def generator(self, name: str) -> np.random.Generator:
        """The numpy generator (128-bit state) of mechanism ``name``."""
        return secret_generator(self._seed, self._path(name))

    def jax_keys(self, name: str) -> jax.Array:
        """A ``(2,)`` array of independent threefry keys for ``name`` (128 bits together)."""
        words = np.random.SeedSequence(self._seed, spawn_key=self._path(name)).generate_state(4, np.uint32)
        return jax.random.wrap_key_data(words.reshape(2, 2), impl="threefry2x32")

    def seed(self, name: str) -> int:
        """A 128-bit child seed for ``name`` (e.g. the candidate runs of a private search)."""
        return child_seeds(self._seed, self._path(name)[0], 1)[0]
