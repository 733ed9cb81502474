"""Resumable runs: the condensation's state, written atomically every few steps.

A checkpoint holds what a killed run needs to finish *as if it had not been killed*: the run's
secret seed (so every mechanism — the DP schema, the start, the directions, the Poisson masks, the
noise — draws the same randomness again), the step reached and the core's state at that step
(:class:`zodc.condense.CondenseState`: the table, the optimiser's state, the keys), the per-step
diagnostics so far, and a fingerprint of the data and the public settings. On resume the
preprocessing is replayed with the same seed on the same data: the same outputs, not a second
release; the loop continues from the saved step with the same noise. The budget spent is the one
the ledger of the uninterrupted run holds: nothing is counted or spent twice, and a seeded run
resumed releases exactly the uninterrupted run's table (tested, ``tests/test_checkpoint.py``).

A checkpoint is never a release. It holds secrets — the seed, and the raw iterate with its key
— so it is written owner-only (mode 0600), is not a CSV and is never read as a table, and is
deleted when the run finishes. A checkpoint whose fingerprint does not match the data and
settings it is resumed with is refused: replaying the same noise on other data would release
the difference of two datasets without noise.

The file is replaced atomically (write to a temporary file in the same directory, ``fsync``,
``os.replace``): a kill at any moment leaves the previous checkpoint or the new one, never half.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from zodc.errors import ConfigError

if TYPE_CHECKING:  # the annotation only; pandas is imported where it is used
    import pandas as pd

FILE = "zodc-checkpoint.pkl"
VERSION = 1
#: Steps between checkpoints (the native loop's chunk: a checkpoint costs one small write).
EVERY = 25


def fingerprint(frame: "pd.DataFrame", settings: dict) -> str:
    """SHA-256 of the data as given (every cell, the column names and kinds) and the public settings.

    Kept only inside the (secret) checkpoint, to refuse resuming on other data or settings; never
    written to an output."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64).tobytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def write_private(path: str, content: bytes | str) -> None:
    """Writes ``content`` to ``path`` owner-only (0600; its directory created 0700) and atomically:
    a temporary file beside it, ``fsync``, ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".zodc-", dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as file:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


class _KeyBits:
    """A JAX key array as its implementation's name and raw bits (a pickling stand-in, not a pytree)."""

    def __init__(self, impl: str, bits: np.ndarray):
        self.impl, self.bits = impl, bits


def _to_host(tree: Any) -> Any:
    """JAX arrays (and key arrays, as their raw bits) to numpy, for pickling."""
    def leaf(value):
        if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            return _KeyBits(str(jax.random.key_impl(value)), np.asarray(jax.random.key_data(value)))
        return np.asarray(value) if isinstance(value, jax.Array) else value

    return jax.tree.map(leaf, tree)


def _from_host(tree: Any) -> Any:
    def leaf(value):
        if isinstance(value, _KeyBits):
            return jax.random.wrap_key_data(value.bits, impl=value.impl)
        return jax.numpy.asarray(value) if isinstance(value, np.ndarray) else value

    return jax.tree.map(leaf, tree)


class Checkpoint:
    """The checkpoint of one run in ``directory`` (created owner-only if missing).

    Attributes:
      directory: where :data:`FILE` lives.
      seed: the run's secret seed (set by :meth:`start` or read by :meth:`load`).
      step, state, infos: the last saved step, core state and per-step diagnostics (``None``
        before the first step was saved).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, FILE)
        self.seed: int | None = None
        self.fingerprint: str | None = None
        self.step = 0
        self.state = None
        self.infos = None

    def __repr__(self) -> str:  # the seed is a secret
        return f"Checkpoint({self.directory!r}, step={self.step})"

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def load(self, expected_fingerprint: str) -> "Checkpoint":
        """Reads the checkpoint and refuses one of another run (other data or settings)."""
        try:
            with open(self.path, "rb") as handle:
                saved = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError) as error:
            raise ConfigError(f"cannot read the checkpoint {self.path!r} ({type(error).__name__}); remove it to start "
                              "over.") from None
        if not isinstance(saved, dict) or saved.get("version") != VERSION:
            raise ConfigError(f"{self.path!r} is not a zodc checkpoint of this version; remove it to start over.")
        if saved["fingerprint"] != expected_fingerprint:
            raise ConfigError(f"the checkpoint in {self.directory!r} belongs to another run: the data or the settings "
                              "differ from those it was made with. Resume with the same data and settings, or remove "
                              "it to start over (nothing was released).")
        self.seed, self.fingerprint, self.step = int(saved["seed"]), saved["fingerprint"], int(saved["step"])
        self.state = None if saved["state"] is None else _from_host(saved["state"])
        self.infos = saved["infos"]
        return self

    def start(self, seed: int, fingerprint_: str) -> None:
        """Writes the run's seed and fingerprint before any randomness is used."""
        self.seed, self.fingerprint = int(seed), fingerprint_
        self._write(step=0, state=None, infos=None)

    def save(self, state: Any, infos: dict | None) -> None:
        """Saves the core's state (its ``step`` field says how far the run is) and the diagnostics so far."""
        self.step = int(np.asarray(state.step))
        self.state, self.infos = state, infos
        self._write(step=self.step, state=_to_host(state), infos=infos)

    def _write(self, **content) -> None:
        payload = {"version": VERSION, "seed": self.seed, "fingerprint": self.fingerprint, **content}
        write_private(self.path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))

    def remove(self) -> None:
        """Deletes the checkpoint (it holds secrets): called when the run has finished."""
        if os.path.exists(self.path):
            os.remove(self.path)


__all__ = ["Checkpoint", "EVERY", "FILE", "fingerprint", "write_private"]
