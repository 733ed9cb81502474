"""Device mechanisms: sensitivity of the clipped sum, noise scale, limits, Poisson sampling, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zodc.errors import ConfigError
from zodc.privacy import clip_rows, noisy_clipped_sum, poisson_mask

NUM_RECORDS, NUM_DIRECTIONS = 6, 3

# One compiled function for every hypothesis example: shapes fixed, clip traced.
_jit_clipped_sum = jax.jit(lambda values, mask, clip: noisy_clipped_sum(jax.random.key(0), values, mask, clip, 0.0))
_jit_clip_rows = jax.jit(clip_rows)

_rows = hnp.arrays(
    np.float32,
    (NUM_RECORDS, NUM_DIRECTIONS),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32),
)
_clips = st.floats(2.0**-10, 2.0**10, width=32)


@settings(max_examples=60, deadline=None)
@given(values=_rows, mask=hnp.arrays(np.bool_, (NUM_RECORDS,)), clip=_clips, added=st.integers(0, NUM_RECORDS - 1))
def test_clipped_sum_moves_by_at_most_clip_when_one_record_is_added(values, mask, clip, added):
    without = mask.copy()
    without[added] = False
    with_record = without.copy()
    with_record[added] = True
    change = np.asarray(_jit_clipped_sum(values, with_record, clip) - _jit_clipped_sum(values, without, clip))
    # float32 round-off of a sum of up to n clipped rows, nothing more.
    assert np.linalg.norm(change) <= clip * (1 + 1e-5) + 1e-6 * clip * NUM_RECORDS


@settings(max_examples=60, deadline=None)
@given(values=_rows, clip=_clips)
def test_clip_rows_bounds_norms_and_keeps_directions(values, clip):
    clipped = np.asarray(_jit_clip_rows(values, clip), np.float64)
    values = values.astype(np.float64)
    norms = np.linalg.norm(values, axis=1)
    np.testing.assert_array_less(np.linalg.norm(clipped, axis=1), clip * (1 + 1e-5) + 1e-30)
    short = norms <= clip
    np.testing.assert_array_equal(clipped[short], values[short])
    # Long rows are scaled, not rotated: clipped = values * (clip / norm), up to float32 round-off.
    long_rows = ~short
    expected = values[long_rows] * (clip / norms[long_rows])[:, None]
    np.testing.assert_allclose(clipped[long_rows], expected, rtol=1e-5, atol=1e-6 * clip)


def test_clip_rows_edge_cases():
    values = jnp.array([[0.0, 0.0], [3.0, 4.0], [1e30, -1e30]], jnp.float32)
    np.testing.assert_array_equal(clip_rows(values, jnp.inf), values)
    clipped = np.asarray(clip_rows(values, 1.0))
    assert np.all(np.isfinite(clipped))
    np.testing.assert_allclose(clipped, [[0.0, 0.0], [0.6, 0.8], [2**-0.5, -(2**-0.5)]], rtol=1e-6)
    np.testing.assert_array_equal(clip_rows(values, 0.0), np.zeros((3, 2)))


def test_noise_has_std_sigma_times_clip():
    num_draws, num_directions = 4000, 16
    clip, sigma = 0.7, 3.0
    values = jax.random.normal(jax.random.key(1), (10, num_directions)) * 2.0
    mask = jnp.arange(10) % 2 == 0
    exact = noisy_clipped_sum(jax.random.key(0), values, mask, clip, 0.0)
    keys = jax.random.split(jax.random.key(2), num_draws)
    draws = jax.jit(jax.vmap(lambda key: noisy_clipped_sum(key, values, mask, clip, sigma)))(keys)
    standardised = (np.asarray(draws, np.float64) - np.asarray(exact, np.float64)) / (sigma * clip)
    count = standardised.size
    # 6 standard errors: mean has s.e. 1/sqrt(N), sample variance of a normal sqrt(2/(N-1)).
    assert abs(standardised.mean()) < 6 / np.sqrt(count)
    assert abs(standardised.var(ddof=1) - 1.0) < 6 * np.sqrt(2 / (count - 1))
    # A wrong scale (sigma alone, as if C were forgotten) would be far outside that band.
    assert abs((standardised * clip).var(ddof=1) - 1.0) > 6 * np.sqrt(2 / (count - 1))


def test_infinite_clip_and_zero_noise_recover_the_exact_sum():
    values = jax.random.normal(jax.random.key(3), (50, 4)) * 10.0
    mask = jax.random.uniform(jax.random.key(4), (50,)) < 0.5
    result = noisy_clipped_sum(jax.random.key(5), values, mask, jnp.inf, 0.0)
    expected = np.asarray(values)[np.asarray(mask)].sum(axis=0)
    np.testing.assert_allclose(np.asarray(result), expected, rtol=1e-5, atol=1e-4)
    # Traced sigma = 0 with C = inf (0 * inf) still gives the exact sum, not NaN.
    traced = jax.jit(noisy_clipped_sum)(jax.random.key(5), values, mask, jnp.inf, 0.0)
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(result))


def test_poisson_mask_rate():
    num_records = 200_000
    for p in (0.01, 0.3):
        mask = np.asarray(poisson_mask(jax.random.key(6), num_records, p))
        assert mask.shape == (num_records,) and mask.dtype == np.bool_
        assert abs(mask.mean() - p) < 6 * np.sqrt(p * (1 - p) / num_records)
    assert not np.any(poisson_mask(jax.random.key(7), 1000, 0.0))
    assert np.all(poisson_mask(jax.random.key(7), 1000, 1.0))
    # Independent keys give different batches.
    assert np.any(poisson_mask(jax.random.key(8), 1000, 0.5) != poisson_mask(jax.random.key(9), 1000, 0.5))


def test_jit_equals_no_jit_and_vmap_over_parameters():
    key = jax.random.key(10)
    values = jax.random.normal(jax.random.key(11), (20, 5))
    mask = poisson_mask(jax.random.key(12), 20, 0.5)
    jitted_mask = jax.jit(poisson_mask, static_argnums=1)(jax.random.key(12), 20, 0.5)
    np.testing.assert_array_equal(np.asarray(mask), np.asarray(jitted_mask))
    np.testing.assert_allclose(clip_rows(values, 0.5), jax.jit(clip_rows)(values, 0.5), rtol=1e-6)
    eager = noisy_clipped_sum(key, values, mask, 0.5, 2.0)
    jitted = jax.jit(noisy_clipped_sum)(key, values, mask, 0.5, 2.0)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), rtol=1e-5, atol=1e-6)
    # Noise multipliers as a traced, vmapped parameter (e.g. sweeping privacy levels).
    sigmas = jnp.array([0.0, 1.0, 2.0])
    swept = jax.jit(jax.vmap(lambda sigma: noisy_clipped_sum(key, values, mask, 0.5, sigma)))(sigmas)
    for row, sigma in zip(swept, sigmas):
        np.testing.assert_allclose(row, noisy_clipped_sum(key, values, mask, 0.5, float(sigma)), rtol=1e-5, atol=1e-6)


def test_invalid_inputs_raise():
    values = jnp.ones((4, 2))
    with pytest.raises(ConfigError, match="l2_norm_clip"):
        clip_rows(values, -1.0)
    with pytest.raises(ConfigError, match="noise_multiplier"):
        noisy_clipped_sum(jax.random.key(0), values, jnp.ones(4, bool), 1.0, -0.5)
    with pytest.raises(ConfigError, match="mask"):
        noisy_clipped_sum(jax.random.key(0), values, jnp.ones(3, bool), 1.0, 1.0)
    with pytest.raises(ConfigError, match="sampling_probability"):
        poisson_mask(jax.random.key(0), 4, 1.5)
    with pytest.raises(ConfigError, match="values"):
        clip_rows(jnp.ones(4), 1.0)


@pytest.mark.parametrize("num_records", [1, 2, 999, 1000])
def test_poisson_mask_of_a_neighbour_keeps_every_other_records_draw(num_records):
    # D' adds one record at the end: every record of D keeps its own inclusion draw (the draw of
    # record i is the hash of counter i alone), so the added record changes no one else's sampling.
    keys = jax.random.split(jax.random.key(13), 2)
    for key in (keys[0], keys):  # one key, and the pair whose bits are XORed
        mask = np.asarray(poisson_mask(key, num_records, 0.5))
        mask_prime = np.asarray(poisson_mask(key, num_records + 1, 0.5))
        np.testing.assert_array_equal(mask_prime[:num_records], mask)
