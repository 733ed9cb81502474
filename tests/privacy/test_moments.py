import jax
import numpy as np
import pytest

from zodc.errors import ConfigError, DataError
from zodc.privacy.events import GaussianEvent
from zodc.privacy.moments import dp_group_means


def _data(seed=0, n=400, d=6):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 2, n)
    values = np.clip(rng.normal(0.3 * (2 * groups[:, None] - 1), 0.2, (n, d)), -1, 1)
    return values, groups


def test_without_noise_and_clip_it_is_the_exact_group_means():
    values, groups = _data()
    sizes = np.bincount(groups)
    with jax.enable_x64(True):  # exact to float64 rounding
        means, event = dp_group_means(jax.random.key(0), values, groups, 2, sizes, np.inf, 0.0)
    np.testing.assert_allclose(means, [values[groups == g].mean(0) for g in range(2)], atol=1e-12)
    assert event is None


def test_clipping_bounds_what_one_record_can_change():
    values, groups = _data()
    sizes = np.bincount(groups).astype(float)
    extreme = np.ones((1, values.shape[1]))  # the largest record the encoded space allows
    clip = 0.5
    with jax.enable_x64(True):
        without, _ = dp_group_means(jax.random.key(0), values, groups, 2, sizes, clip, 0.0)
        with_it, _ = dp_group_means(jax.random.key(0), np.vstack([values, extreme]), np.append(groups, 1), 2, sizes,
                                    clip, 0.0)
    change = np.linalg.norm((with_it - without) * sizes[:, None])  # change of the sums
    # At most the clip; below it only by the grid's truncation (rows snap toward zero onto C 2^-10).
    assert clip * (1 - 2.0**-12) - clip * 2.0**-10 * np.sqrt(values.shape[1]) <= change <= clip * (1 + 1e-12)


def test_noise_has_the_calibrated_scale_and_is_reported():
    values, groups = _data(n=200, d=4)
    sizes = np.array([100.0, 100.0])
    exact, _ = dp_group_means(jax.random.key(0), values, groups, 2, sizes, 1.0, 0.0)
    draws = np.stack([dp_group_means(jax.random.key(s), values, groups, 2, sizes, 1.0, 3.0)[0] - exact
                      for s in range(300)])
    # std of a mean = sigma * clip / size (clamping to [-1, 1] is negligible at this scale)
    assert draws.std() == pytest.approx(3.0 * 1.0 / 100.0, rel=0.1)
    assert dp_group_means(jax.random.key(0), values, groups, 2, sizes, 1.0, 3.0)[1] == GaussianEvent(3.0)


def test_a_centre_inside_the_data_leaves_the_means_unshrunk_under_a_small_clip():
    # Two groups at 0.5 and 0.7 per coordinate (sd 0.03): every row lies about 0.6 sqrt(d) from the
    # origin but within 0.15 sqrt(d) of the overall mean. A clip between the two shrinks every mean
    # towards 0 around the origin; around a nearby centre (even 0.05 off per coordinate) it leaves
    # them exact.
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 2, 400)
    values = rng.normal(0.5 + 0.2 * groups[:, None], 0.03, (400, 6))
    sizes = np.bincount(groups).astype(float)
    exact = np.stack([values[groups == g].mean(0) for g in range(2)])
    centre = values.mean(0) + 0.05
    clip = float(np.linalg.norm(values - centre, axis=1).max()) + 0.01
    assert np.linalg.norm(values, axis=1).min() > clip + 0.3  # every row is clipped around the origin
    with jax.enable_x64(True):
        origin, _ = dp_group_means(jax.random.key(0), values, groups, 2, sizes, clip, 0.0)
        centred, _ = dp_group_means(jax.random.key(0), values, groups, 2, sizes, clip, 0.0, centre=centre)
    # Exact up to the grid: each offset is truncated toward the centre onto clip 2^-10.
    np.testing.assert_allclose(centred, exact, atol=clip * 2.0**-10)
    assert np.abs(origin - exact).min() > 0.1


def test_a_centre_keeps_the_sensitivity_at_the_clip():
    values, groups = _data()
    sizes = np.bincount(groups).astype(float)
    centre = np.full(values.shape[1], 0.4)
    far = -np.ones((1, values.shape[1]))  # the record farthest from the centre
    clip = 0.3
    with jax.enable_x64(True):
        without, _ = dp_group_means(jax.random.key(0), values, groups, 2, sizes, clip, 0.0, centre=centre)
        with_it, _ = dp_group_means(jax.random.key(0), np.vstack([values, far]), np.append(groups, 0), 2, sizes,
                                    clip, 0.0, centre=centre)
    change = np.linalg.norm((with_it - without) * sizes[:, None])
    assert clip * (1 - 2.0**-12) - clip * 2.0**-10 * np.sqrt(values.shape[1]) <= change <= clip * (1 + 1e-12)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(centre=np.zeros(5)), ConfigError, "centre"),
    (dict(centre=np.full(6, np.nan)), ConfigError, "centre"),
    (dict(l2_norm_clip=0.0), ConfigError, "l2_norm_clip"),
    (dict(l2_norm_clip=np.inf, noise_multiplier=1.0), ConfigError, "l2_norm_clip"),
    (dict(noise_multiplier=-1.0), ConfigError, "noise_multiplier"),
    (dict(group_sizes=[10.0, 0.0]), ConfigError, "group_sizes"),
    (dict(groups=np.full(400, 2)), DataError, "groups"),
])
def test_bad_input_is_refused_by_name(kwargs, error, match):
    values, groups = _data()
    args = dict(values=values, groups=groups, num_groups=2, group_sizes=[200.0, 200.0], l2_norm_clip=1.0,
                noise_multiplier=1.0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        dp_group_means(jax.random.key(0), **args)


def test_cohorts_of_nearby_size_share_one_compiled_sum_and_the_padding_changes_nothing(monkeypatch):
    # The rows are padded to a shape bucket (zodc.runtime.shape_bucket) before the one compiled sum: a
    # run on another holdout or DP split reuses the program (and the persistent cache) instead of
    # compiling its own, and the padding rows, in no group, change no release.
    from zodc.privacy import mechanisms, moments

    values, groups = _data(n=300)
    sizes = np.array([150.0, 150.0])
    padded = dp_group_means(jax.random.key(3), values, groups, 2, sizes, 0.5, 1.0)[0]
    compiled = mechanisms._grid_noisy_sum._cache_size()
    for n in (260, 299, 400, 512):  # the same bucket of 512 rows
        dp_group_means(jax.random.key(n), values[:n] if n <= 300 else np.vstack([values, values])[:n],
                       groups[:n] if n <= 300 else np.tile(groups, 2)[:n], 2, sizes, 0.5, 1.0)
    assert mechanisms._grid_noisy_sum._cache_size() == compiled
    monkeypatch.setattr(moments, "shape_bucket", lambda n: n)
    unpadded = dp_group_means(jax.random.key(3), values, groups, 2, sizes, 0.5, 1.0)[0]
    np.testing.assert_array_equal(padded, unpadded)  # integer sums and the same noise: bit for bit
