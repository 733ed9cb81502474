"""Batched runs (issue 25, part 4): ``R`` independent condensations in one compiled program, each equal
to its own separate run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zodc.condense import StepParams, adam, init_batch, run, run_batch, stack_params, zero_order_condenser
from zodc.errors import ConfigError
from zodc.models.losses import ClassificationLoss
from zodc.models.native import native_classifier_data, native_classifier_evaluator
from zodc.models.presets import get_preset

N, D, M, Q, STEPS = 400, 4, 6, 4, 8


def _setup(model):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (N, D)).astype(np.float32)
    y = (X[:, 0] + 0.4 * rng.normal(size=N) > 0).astype(np.int32)
    evaluate = native_classifier_evaluator(get_preset(model).native_factory(2),
                                           ClassificationLoss("balanced_linear", (1.0, 1.0)))
    data = native_classifier_data(X, y, np.repeat([0, 1], M // 2), jax.random.key(0))
    runs = [dict(seed=s, sigma=sg, smoothing=mu, p=p) for s, sg, mu, p in
            ((1, 1.0, 0.2, 0.5), (2, 3.0, 0.1, 0.5), (3, 0.5, 0.3, 0.8), (4, 1.0, 0.2, 0.25))]
    params = [StepParams(smoothing=jnp.float32(r["smoothing"]), l2_norm_clip=jnp.float32(1.0),
                         noise_multiplier=jnp.float32(r["sigma"]), sampling_probability=jnp.float32(r["p"]),
                         expected_batch_size=jnp.float32(r["p"] * N)) for r in runs]
    noise = np.stack([np.random.default_rng(10 + i).integers(-4000, 4000, (STEPS, Q)) for i in range(len(runs))]
                     ).astype(np.int32)
    starts = jnp.asarray(rng.uniform(-0.5, 0.5, (len(runs), M, D)), jnp.float32)
    keys = jnp.stack([jax.random.key(r["seed"]) for r in runs])
    return evaluate, data, params, noise, starts, keys


@pytest.mark.parametrize("model,block", [("tree", 64), ("logistic", None)])
def test_each_batched_run_equals_its_separate_run(model, block):
    evaluate, data, params, noise, starts, keys = _setup(model)
    condenser = zero_order_condenser(evaluate, adam(0.05), num_records=N, num_directions=Q, record_block=block)
    states, infos = run_batch(condenser, init_batch(condenser, keys, starts), stack_params(params), STEPS, data=data,
                              noise=noise, chunk_size=4)
    assert infos.loss.shape == (4, STEPS)
    for r in range(4):
        alone, alone_info = run(condenser, condenser.init(keys[r], starts[r]), params[r], STEPS, data=data,
                                noise=noise[r], chunk_size=4)
        # Within float32 rounding, not bit for bit: XLA compiles the batched program's gradient (a sum
        # over directions) and logistic's iterative fit for a batch, in another order. Measured after 8
        # steps: tree 6e-8 (one ulp), logistic 4e-6. The integer noisy sums and masks are the same.
        np.testing.assert_allclose(np.asarray(states.table[r]), np.asarray(alone.table), rtol=0,
                                   atol=1e-6 if model == "tree" else 1e-4)
        np.testing.assert_array_equal(np.asarray(infos.batch_size[r]), np.asarray(alone_info.batch_size))
    assert not np.allclose(np.asarray(states.table[0]), np.asarray(states.table[1]))  # the runs differ


def test_batched_noise_must_have_a_run_axis():
    evaluate, data, params, noise, starts, keys = _setup("tree")
    condenser = zero_order_condenser(evaluate, adam(0.05), num_records=N, num_directions=Q)
    with pytest.raises(ConfigError, match=r"\(runs, steps, q\)"):
        run_batch(condenser, init_batch(condenser, keys, starts), stack_params(params), STEPS, data=data,
                  noise=noise[0])
