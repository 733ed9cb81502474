"""Directions and records over devices (issue 25, part 1): a run on 8 devices releases, bit for bit,
the table the same seed releases on 1 device.

JAX fixes its device count when it starts, so the 8-device runs happen in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (8 CPU devices); the script compares each
mesh with the unsharded run in that same process and prints the verdicts as JSON.

Why bit for bit (tree and logistic), not within a tolerance: every device fits the same synthetic
tables and scores its records with the same per-record arithmetic; each record's losses are
gathered whole onto one device before its clip (the norm is the 1-device sum, in its order); and
the sum over records — the only reduction across devices — is of integers on the noise grid.
Cox's Newton solve is the exception: compiled for another number of tables per device, its float32
coefficients may differ in the last bits, so it is held to a float tolerance.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from zodc.errors import ConfigError
from zodc.sharding import Sharded, device_mesh, mesh_shape

SCRIPT = textwrap.dedent("""
    import json, os
    import jax, jax.numpy as jnp, numpy as np
    from zodc.condense import StepParams, adam, run, zero_order_condenser
    from zodc.models.losses import ClassificationLoss
    from zodc.models.native import native_classifier_data, native_classifier_evaluator
    from zodc.models.presets import get_preset
    from zodc.models.survival import SurvivalLoss, TimeScale, native_survival_data, native_survival_evaluate_fn
    from zodc.sharding import Sharded, device_mesh

    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    n, d, m, q, steps = 500, 5, 6, 4, 10
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int32)
    time = np.exp(rng.uniform(0, 5, n)).astype(np.float32)
    event = (rng.uniform(size=n) < 0.6).astype(np.int32)
    params = StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(1.0), noise_multiplier=jnp.float32(1.0),
                        sampling_probability=jnp.float32(0.4), expected_batch_size=jnp.float32(200.0))
    noise = rng.integers(-3000, 3000, (steps, q)).astype(np.int32)
    cases = {
        "tree": (native_classifier_evaluator(get_preset("tree").native_factory(2),
                                             ClassificationLoss("balanced_linear", (1.0, 1.0))),
                 native_classifier_data(X, y, np.repeat([0, 1], m // 2), jax.random.key(0)), d),
        "logistic": (native_classifier_evaluator(get_preset("logistic").native_factory(2),
                                                 ClassificationLoss("balanced_linear", (1.0, 1.0))),
                     native_classifier_data(X, y, np.repeat([0, 1], m // 2), jax.random.key(0)), d),
        "cox": (native_survival_evaluate_fn(get_preset("cox", task="survival").native_factory(2),
                                            SurvivalLoss("discrete_nll", (2.0, 10.0, 40.0, 120.0)), TimeScale(1.0, 200.0)),
                native_survival_data(X, time, event, np.array([1, 1, 0, 1, 0, 1]), jax.random.key(0)), d + 1),
    }
    meshes = {"8x1": (8, None), "4x2": (8, (4, 2)), "2x4": (8, (2, 4)), "1x8": (8, (1, 8)), "3x1 (padded)": (3, (3, 1))}
    verdicts = {}
    for name, (inner, data, width) in cases.items():
        start = jnp.asarray(np.random.default_rng(4).uniform(-0.5, 0.5, (m, width)), jnp.float32)
        def table(evaluate, block=None):
            c = zero_order_condenser(evaluate, adam(0.05), num_records=n, num_directions=q, record_block=block)
            state, _ = run(c, c.init(jax.random.key(5), start), params, steps, data=data, noise=noise, chunk_size=steps)
            return np.asarray(state.table)
        one = table(inner)
        verdicts[name] = {"moved": float(np.abs(one - np.asarray(start)).max())}
        for label, (count, shape) in meshes.items():
            if label not in (("8x1", "1x8", "3x1 (padded)") if name == "tree" else ("2x4",) if name == "logistic"
                             else ("8x1",)):
                continue
            sharded = Sharded(inner, device_mesh(count, num_tables=2 * q, shape=shape))
            verdicts[name][label] = float(np.abs(table(sharded) - one).max())
        if name == "tree":  # blocks inside a sharded step: the same program for every model
            verdicts[name]["4x2 blocked"] = float(np.abs(
                table(Sharded(inner, device_mesh(8, num_tables=2 * q, shape=(4, 2))), block=64) - one).max())

    # The losses really are spread over the 8 devices.
    inner, data, width = cases["tree"]
    tables = jnp.zeros((2 * q, m, width))
    losses = jax.jit(Sharded(inner, device_mesh(8, num_tables=2 * q, shape=(4, 2))))(tables, jnp.ones(n, bool), data)
    verdicts["devices_used"] = len(losses.sharding.device_set)

    # Neighbouring cohorts on 8 devices: D' adds one record (and so other padding); every other
    # record's losses are the same as on D.
    from zodc import zo
    inner, data, width = cases["tree"]
    start = jnp.asarray(np.random.default_rng(4).uniform(-0.5, 0.5, (m, width)), jnp.float32)
    tables = zo.perturb(start, zo.sample_directions(jax.random.key(3), q, start.shape, start.dtype, "gaussian"), 0.2,
                        "central")
    sharded = jax.jit(Sharded(inner, device_mesh(8, num_tables=2 * q, shape=(2, 4))))
    base = sharded(tables, jnp.ones(n, bool), data)
    more = sharded(tables, jnp.ones(n + 1, bool),
                   native_classifier_data(np.vstack([X, np.full((1, d), 0.99, np.float32)]), np.append(y, 0),
                                          np.repeat([0, 1], m // 2), jax.random.key(0)))
    verdicts["neighbours_others_equal"] = bool(np.array_equal(np.asarray(base), np.asarray(more)[:, :n]))

    # The front door: devices=1 and devices=8 release the same table (the default cohort, seeded).
    from zodc import Condenser, load_dataset
    data = load_dataset("breast_cancer")
    Xf, yf = data.frame.drop(columns="diagnosis"), data.frame["diagnosis"]
    tables = [Condenser(steps=6, rows_per_class=4, num_directions=4, random_state=3, schema=data.schema,
                        devices=k).fit(Xf, yf).table_ for k in (1, 8)]
    verdicts["front_door"] = bool(np.array_equal(*tables))
    print("VERDICTS " + json.dumps(verdicts))
""")


@pytest.fixture(scope="module")
def verdicts():
    environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environment,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("VERDICTS "))
    return json.loads(line[len("VERDICTS "):])


@pytest.mark.parametrize("model", ["tree", "logistic"])
def test_every_mesh_of_8_devices_releases_the_1_device_table_bit_for_bit(verdicts, model):
    assert verdicts[model].pop("moved") > 0.01, "the table did not move: the comparison would be vacuous"
    assert verdicts[model] == {label: 0.0 for label in verdicts[model]}, verdicts[model]


def test_cox_on_8_devices_matches_within_float_rounding(verdicts):
    # Cox's fit is a Newton solve: XLA compiles the fit vmapped over 1 table per device (8x1) other
    # than over 8, and the float32 coefficients may differ in the last bits; a record's loss, and so
    # its grid units, can then move by one unit, which Adam carries on. Measured: 1.3e-5 after 10 steps
    # (8x1; 0 on 2x4 in an earlier run).
    assert verdicts["cox"].pop("moved") > 0.01
    assert max(verdicts["cox"].values()) <= 1e-4, verdicts["cox"]


def test_the_losses_are_spread_over_all_8_devices(verdicts):
    assert verdicts["devices_used"] == 8


def test_one_record_changes_no_other_records_losses_on_8_devices(verdicts):
    assert verdicts["neighbours_others_equal"] is True


def test_the_front_door_releases_the_same_table_on_1_and_8_devices(verdicts):
    assert verdicts["front_door"] is True


def test_mesh_shape_puts_what_divides_the_tables_on_directions():
    assert mesh_shape(8, 32) == (8, 1)
    assert mesh_shape(6, 32) == (2, 3)
    assert mesh_shape(1, 17) == (1, 1)


def test_device_mesh_refuses_what_it_cannot_hold():
    assert device_mesh(None, num_tables=8).devices.size == jax.device_count()
    with pytest.raises(ConfigError, match="between 1 and"):
        device_mesh(jax.device_count() + 1, num_tables=8)
    with pytest.raises(ConfigError, match="does not hold"):
        device_mesh(1, num_tables=8, shape=(2, 1))


def test_a_one_device_mesh_is_the_identity():
    # The front door skips the wrapper on one device; here it is shown to change nothing.
    from zodc.models.losses import ClassificationLoss
    from zodc.models.native import native_classifier_data, native_classifier_evaluator
    from zodc.models.presets import get_preset

    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (50, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    inner = native_classifier_evaluator(get_preset("tree").native_factory(2), ClassificationLoss("balanced_linear"))
    data = native_classifier_data(X, y, np.array([0, 0, 1, 1]), jax.random.key(0))
    tables = jax.numpy.asarray(rng.uniform(-1, 1, (8, 4, 3)), jax.numpy.float32)
    mask = jax.numpy.asarray(rng.uniform(size=50) < 0.5)
    np.testing.assert_array_equal(jax.jit(Sharded(inner, device_mesh(1, num_tables=8)))(tables, mask, data),
                                  jax.jit(inner)(tables, mask, data))
