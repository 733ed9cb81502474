"""zodc._random draws the same numbers as jax.random, bit for bit (the fused threefry)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc import _random

SHAPES = [(), (1,), (7,), (3, 5), (64, 10, 3), (2, 3, 4, 5)]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(np.uint32) if a.dtype == np.float32 else a,
                                  b.view(np.uint32) if b.dtype == np.float32 else b)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("typed", [True, False], ids=["typed_key", "raw_key"])
def test_bits_uniform_normal_equal_jax_random(shape, typed):
    for seed in (0, 1, 12345, 2**31 + 7):
        key = jax.random.key(seed) if typed else jax.random.PRNGKey(seed)
        _same(jax.jit(_random.bits, static_argnums=1)(key, shape), jax.random.bits(key, shape, jnp.uint32))
        _same(jax.jit(_random.uniform, static_argnums=1)(key, shape), jax.random.uniform(key, shape))
        _same(jax.jit(_random.uniform, static_argnums=1)(key, shape, -2.5, 0.5),
              jax.random.uniform(key, shape, minval=-2.5, maxval=0.5))
        _same(jax.jit(_random.normal, static_argnums=1)(key, shape), jax.random.normal(key, shape))


def test_equal_under_vmap_of_split_keys():
    keys = jax.random.split(jax.random.key(3), 6)
    _same(jax.jit(jax.vmap(lambda k: _random.normal(k, (4, 9))))(keys),
          jax.vmap(lambda k: jax.random.normal(k, (4, 9)))(keys))


def test_the_threefry_hash_matches_the_published_test_vector():
    # Random123's known-answer test for threefry2x32_20 with a zero key and zero counter.
    zero = np.uint32(0)
    high, low = _random.threefry2x32(zero, zero, jnp.zeros((), jnp.uint32), jnp.zeros((), jnp.uint32))
    assert (int(high), int(low)) == (0x6B200159, 0x99BA4EFE)


def test_other_dtypes_and_key_kinds_fall_back_to_jax_random():
    key = jax.random.key(5)
    _same(_random.normal(key, (8,), jnp.float16).astype(jnp.float32),
          jax.random.normal(key, (8,), jnp.float16).astype(jnp.float32))
    rbg = jax.random.key(5, impl="rbg")
    _same(_random.normal(rbg, (8,)), jax.random.normal(rbg, (8,)))
    _same(_random.bits(rbg, (8,)), jax.random.bits(rbg, (8,), jnp.uint32))


@pytest.mark.parametrize("shape", [(), (1,), (31,), (33,), (64, 10, 3)], ids=str)
def test_signs_are_the_bits_of_the_packed_words(shape):
    """Value i is bit i % 32 of word i // 32 of ``bits`` over ceil(size / 32) words, as +1 / -1."""
    key = jax.random.key(5)
    size = int(np.prod(shape))
    words = np.asarray(jax.random.bits(key, (max(-(-size // 32), 1),), jnp.uint32))
    expected = np.array([1.0 if (words[i // 32] >> (i % 32)) & 1 else -1.0 for i in range(size)], np.float32)
    signs = np.asarray(jax.jit(_random.signs, static_argnums=1)(key, shape))
    assert signs.shape == shape and signs.dtype == np.float32
    np.testing.assert_array_equal(signs.reshape(-1), expected)


def test_signs_are_balanced_and_independent_across_keys():
    draws = np.asarray(jax.vmap(lambda k: _random.signs(k, (4_000,)))(jax.random.split(jax.random.key(6), 50)))
    assert set(np.unique(draws)) == {-1.0, 1.0}
    # 200,000 fair signs: the mean within 5 standard errors (1 / sqrt(200,000) each) of 0, and two
    # keys agree on about half the values (a repeated key would agree on all).
    assert abs(draws.mean()) < 5 / np.sqrt(draws.size)
    agreement = (draws[0] == draws[1]).mean()
    assert abs(agreement - 0.5) < 5 * 0.5 / np.sqrt(draws.shape[1])
