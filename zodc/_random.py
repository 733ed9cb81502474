"""``jax.random.bits``, ``uniform`` and ``normal`` for threefry keys, bit for bit, as one fused loop.

Why: on CPU, JAX lowers the threefry hash as a rolled loop (a ``while`` of five iterations that
copies its state between them; it keeps compile time small). For the large draws of a private step
(the directions, ``q m d`` normals; the Poisson mask, ``n`` uniforms) that loop costs as much as the
model fits it feeds: 1.9 ms for the 192,000 normals of ``q 64, m 100, d 30`` on the 2-core VM. Here
the same hash is written out as element-wise operations, which XLA fuses into vectorised loops
(1.0 ms for the same draw; 192,000 bits in 0.36 ms against 1.7), in a loop of two halves whose
output is stored (see :func:`bits`).

The same counters (the flat index of each value), rounds, key schedule and float conversions as
``jax.random`` (``threefry2x32``, ``jax_threefry_partitionable``): the same numbers bit for bit,
so no seeded result changes (``tests/test_random.py`` checks it against ``jax.random``). Where
that cannot be guaranteed — another key implementation, the partitionable flag off, ``2**32`` or
more values, a dtype other than float32 — each function calls ``jax.random`` itself.

:func:`signs` (the default directions' random signs) packs 32 signs into each word of :func:`bits`;
it has no ``jax.random`` counterpart to equal.

Could one record change this? No: these are draws from keys; nothing here reads data.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: jax.Array, r: int) -> jax.Array:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k1: jax.Array, k2: jax.Array, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 hash (20 rounds; Salmon et al. 2011) of the counters ``(x1, x2)`` under the key
    ``(k1, k2)``, unrolled, in the order of operations of JAX's ``threefry2x32``."""
    keys = (k1, k2, k1 ^ k2 ^ _PARITY)
    x = [x1 + keys[0], x2 + keys[1]]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x[0] = x[0] + x[1]
            x[1] = _rotate_left(x[1], r)
            x[1] = x[0] ^ x[1]
        x[0] = x[0] + keys[(block + 1) % 3]
        x[1] = x[1] + keys[(block + 2) % 3] + np.uint32(block + 1)
    return x[0], x[1]


def _key_words(key: jax.Array):
    """``(k1, k2)`` of a threefry key when the draw is known to match ``jax.random``'s, else None."""
    if not jax.config.jax_threefry_partitionable:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != () or str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        data = jax.random.key_data(key)
    else:  # a raw uint32[2] key of the default implementation
        if key.shape != (2,) or key.dtype != jnp.uint32 or jax.config.jax_default_prng_impl != "threefry2x32":
            return None
        data = key
    return data[0], data[1]


def _fits(shape) -> bool:
    return all(isinstance(n, int) for n in shape) and math.prod(shape) < 2**32


def bits(key: jax.Array, shape: tuple) -> jax.Array:
    """``jax.random.bits(key, shape, uint32)``, the same values."""
    shape = tuple(int(n) for n in shape)
    words = _key_words(key) if _fits(shape) else None
    if words is None:
        return jax.random.bits(key, shape, jnp.uint32)
    size = math.prod(shape)
    if size < 2:
        counter = jnp.zeros(shape, jnp.uint32)
        high, low = threefry2x32(words[0], words[1], counter, counter)
        return high ^ low
    # The counters are the flat indices, hashed in two halves by a loop of two iterations: a loop's
    # output is stored, so the consumers read the bits. Written straight, XLA counts the hash's
    # integer operations as cheap and fuses it into every consumer of the draw, computing it again
    # in each (the directions and the perturbed tables: 3.8-4.4 ms; with the loop 1.9-2.0 ms).
    half = -(-size // 2)

    def hash_half(index):
        counter = lax.iota(jnp.uint32, half) + index * np.uint32(half)
        high, low = threefry2x32(words[0], words[1], jnp.zeros((half,), jnp.uint32), counter)
        return high ^ low

    return lax.map(hash_half, jnp.arange(2, dtype=jnp.uint32)).reshape(-1)[:size].reshape(shape)


def uniform(key: jax.Array, shape: tuple, minval=0.0, maxval=1.0, dtype=jnp.float32) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype, minval, maxval)`` for float32, the same values."""
    if jnp.dtype(dtype) != jnp.float32 or _key_words(key) is None or not _fits(tuple(shape)):
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    minval = jnp.asarray(minval, jnp.float32)
    maxval = jnp.asarray(maxval, jnp.float32)
    # The mantissa from the top 23 bits, the exponent of [1, 2); then shifted and scaled.
    mantissa = (bits(key, shape) >> np.uint32(32 - 23)) | np.array(1.0, np.float32).view(np.uint32)
    floats = lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)
    return lax.max(minval, floats * (maxval - minval) + minval)


def normal(key: jax.Array, shape: tuple, dtype=jnp.float32) -> jax.Array:
    """``jax.random.normal(key, shape, dtype)`` for float32, the same values: ``sqrt 2 erfinv(u)``
    with ``u`` uniform on ``(-1, 1)``."""
    if jnp.dtype(dtype) != jnp.float32 or _key_words(key) is None or not _fits(tuple(shape)):
        return jax.random.normal(key, shape, dtype)
    low = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
    u = uniform(key, shape, low, np.float32(1.0))
    return lax.mul(np.array(np.sqrt(2), np.float32), lax.erf_inv(u))


def signs(key: jax.Array, shape: tuple, dtype=jnp.float32) -> jax.Array:
    """Independent signs, ``+1`` or ``-1`` with probability 1/2 each (Rademacher), of ``shape``.

    One bit per value: value ``i`` is bit ``i % 32`` of word ``i // 32`` of :func:`bits` over
    ``ceil(size / 32)`` words, so 192,000 signs hash 6,000 counters where a normal hashes one a
    value. Not ``jax.random.rademacher``'s numbers (that draws a 32-bit word per value)."""
    shape = tuple(int(n) for n in shape)
    size = math.prod(shape)
    words = bits(key, (max(-(-size // 32), 1),))
    shifts = jnp.arange(32, dtype=jnp.uint32)
    ones = (words[:, None] >> shifts[None, :]) & np.uint32(1)
    flat = ones.reshape(-1)[:size].astype(dtype)
    return (2 * flat - 1).reshape(shape)

