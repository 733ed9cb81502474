"""Directions and records over devices: one code path for 1 and N devices (DESIGN §3).

A step evaluates ``k = 2q`` perturbed tables on the sampled real records. :class:`Sharded` wraps a
native evaluator in :func:`jax.shard_map` over a two-axis :class:`jax.sharding.Mesh`: the tables
are split along ``"directions"``, the records (and every per-record field of the data) along
``"records"``; each device fits its tables and scores its records. Each record's ``k`` losses are
then gathered onto the devices that hold the record (an all-gather over ``"directions"``), so the
core (:mod:`zodc.condense`) clips its difference vector with the 1-device arithmetic; the sum over
records is the only reduction across devices (XLA lowers it to an all-reduce, a ``psum``), and it
is a sum of integers on the noise grid (:func:`zodc.privacy.mechanisms.clipped_sums`),
so its value does not depend on the order of the reduction: a run on 8 devices releases exactly
what the same seed releases on 1 device, given the same per-record losses — and each loss is the
same arithmetic on one device or another (tested bit for bit, ``tests/test_sharding.py``).

Several hosts: start each process with :func:`jax.distributed.initialize` (see ``docs/scale.md``);
:func:`device_mesh` then spans every process's devices, and the same program runs on all of them.
Every process must then hold the same data and the same secret seed (:func:`shared_seed`): a process
that drew its own would feed its devices other noise and masks, and the processes would end with
different tables, with no error (seen with ``random_state=None`` on two processes).

Could one record change this? Only its own losses: a device fits synthetic tables only, and a
record's loss is computed on whichever device holds it, by the same per-record arithmetic. Padding
(to a multiple of the mesh's axes) adds masked-out copies whose losses are dropped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from zodc.condense import is_per_record, pad_records
from zodc.errors import ConfigError

DIRECTIONS, RECORDS = "directions", "records"


def mesh_shape(num_devices: int, num_tables: int) -> tuple[int, int]:
    """``(directions, records)``: as many devices on the directions axis as divide the ``k`` tables
    evenly (each device fits ``k / D`` tables: no padded fits), the rest on the records axis."""
    if num_devices < 1:
        raise ConfigError(f"`devices` must be >= 1. Got {num_devices}.")
    directions = math.gcd(num_devices, num_tables)
    return directions, num_devices // directions


def device_mesh(devices: int | Sequence[Any] | None = None, *, num_tables: int,
                shape: tuple[int, int] | None = None) -> Mesh:
    """A ``("directions", "records")`` mesh.

    Args:
      devices: ``None`` (every device of every process, :func:`jax.devices`), a count (the first
        that many), or a sequence of devices.
      num_tables: ``k``, the tables per step (``2q`` central, ``q + 1`` forward): sets the default shape.
      shape: ``(directions, records)`` explicitly (their product is the number of devices).

    Raises:
      ConfigError: more devices asked for than there are, or a shape that does not match them.
    """
    available = jax.devices()
    if devices is None:
        chosen = list(available)
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ConfigError(f"`devices` must be between 1 and the {len(available)} available "
                              f"({available[0].platform}). Got {devices}.")
        chosen = list(available[:devices])
    else:
        chosen = list(devices)
        if not chosen:
            raise ConfigError("`devices` is an empty sequence.")
    shape = mesh_shape(len(chosen), num_tables) if shape is None else tuple(int(s) for s in shape)
    if len(shape) != 2 or shape[0] * shape[1] != len(chosen):
        raise ConfigError(f"a mesh shape (directions, records) = {shape} does not hold {len(chosen)} devices.")
    return Mesh(np.asarray(chosen, dtype=object).reshape(shape), (DIRECTIONS, RECORDS))


def shared_seed() -> int:
    """128 bits of fresh OS entropy drawn on process 0 and the same on every process: the
    ``random_state`` of a run over several processes (:func:`jax.distributed.initialize`), whose
    processes must draw the same noise and masks. ``random_state=None`` would draw other entropy in
    each process. On one process, a fresh seed. A :class:`zodc.privacy.keys.FreshEntropy`: reported
    as fresh entropy, not as a chosen seed. It crosses the processes' network (as their losses do)."""
    from jax.experimental import multihost_utils

    from zodc.privacy.keys import FreshEntropy, words_to_int
    from zodc.privacy.noise import fresh_seed

    seed = fresh_seed()
    if jax.process_count() > 1:
        words = np.array([(seed >> (32 * i)) & 0xFFFFFFFF for i in range(4)], np.uint32)
        seed = words_to_int(np.asarray(multihost_utils.broadcast_one_to_all(words), np.uint32))
    return FreshEntropy(seed)


@dataclasses.dataclass(frozen=True)
class Sharded:
    """``evaluate_fn`` with its tables split over the mesh's ``"directions"`` axis and its records
    over ``"records"`` (:func:`jax.shard_map`); the same ``(tables, mask, data) -> (k, n)`` contract.

    The per-record fields of ``data`` are the leaves whose leading axis has the mask's length (the
    contract of :class:`zodc.condense.ZeroOrderCondenser`'s ``record_block``); every other leaf (the
    model key, synthetic labels, selected columns) is replicated. A value (the mesh compares by its
    devices and axis names), so condensers built on equal ones share a compiled step.
    """

    evaluate_fn: Callable
    mesh: Mesh

    def __call__(self, tables: jax.Array, mask: jax.Array, data: Any) -> jax.Array:
        num_tables, num_records = tables.shape[0], mask.shape[0]
        directions, records = self.mesh.shape[DIRECTIONS], self.mesh.shape[RECORDS]
        padded_tables = -(-num_tables // directions) * directions
        padded_records = -(-num_records // records) * records

        # The tables (and hence the directions) are made whole on every device before they are split,
        # so XLA's sharding propagation keeps the gradient's sum over directions on one device, in the
        # 1-device order (without it, tree and logistic tables differ by an ulp: tests/test_sharding.py).
        # Padding tables are copies of the last one, dropped below.
        whole = jax.lax.with_sharding_constraint(tables, NamedSharding(self.mesh, P()))
        tables = pad_records(whole, num_tables, padded_tables)
        mask = jnp.concatenate([jnp.asarray(mask, bool), jnp.zeros(padded_records - num_records, bool)])
        specs = jax.tree.map(lambda leaf: P(RECORDS) if is_per_record(leaf, num_records) else P(), data)
        data = pad_records(data, num_records, padded_records)
        inner = jax.shard_map(self.evaluate_fn, mesh=self.mesh, in_specs=(P(DIRECTIONS), P(RECORDS), specs),
                              out_specs=P(DIRECTIONS, RECORDS), check_vma=False)
        losses = inner(tables, mask, data)
        # Each record's k losses are gathered onto the devices holding that record (an all-gather over
        # "directions"): its difference vector's norm — the clip — is then the 1-device arithmetic, in
        # the 1-device order. Only the sum over records crosses devices, and it is of integers.
        losses = jax.lax.with_sharding_constraint(losses, NamedSharding(self.mesh, P(None, RECORDS)))
        return losses[:num_tables, :num_records]


__all__ = ["DIRECTIONS", "RECORDS", "Sharded", "device_mesh", "mesh_shape", "shared_seed"]
