"""Several hosts (issue 25, part 2): two real processes, joined by :func:`jax.distributed.initialize`,
each with 2 forced CPU devices, release bit for bit the table one process releases on one device.

Multi-controller JAX on CPU: every process runs the same program on the same numpy inputs; the
jitted step spans the 4 devices of both processes (``device_mesh(None, ...)`` takes
:func:`jax.devices`, every process's), and the cross-process collectives go over gloo (JAX's
default CPU collectives once ``jax.distributed`` is initialised). Nothing of zodc's own launches or
joins the processes. The final table comes back replicated on every device, so ``np.asarray``
reads it on each process, as the front door does.

Two meshes: the default ``(directions, records) = (4, 1)`` (each record's losses gathered across
the processes before its clip) and ``(1, 4)`` (the records split across the processes: the
integer sum over records crosses them). The reference is the unsharded run in a third process.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import jax
    mode = sys.argv[1]
    if mode == "child":
        process_id, port = int(sys.argv[2]), sys.argv[3]
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                                   process_id=process_id, initialization_timeout=60)
    import jax.numpy as jnp, numpy as np
    from zodc.condense import StepParams, adam, run, zero_order_condenser
    from zodc.models.losses import ClassificationLoss
    from zodc.models.native import native_classifier_data, native_classifier_evaluator
    from zodc.models.presets import get_preset
    from zodc.sharding import Sharded, device_mesh, shared_seed

    rng = np.random.default_rng(0)
    n, d, m, q, steps = 500, 5, 6, 4, 10
    X = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int32)
    params = StepParams(smoothing=jnp.float32(0.2), l2_norm_clip=jnp.float32(1.0), noise_multiplier=jnp.float32(1.0),
                        sampling_probability=jnp.float32(0.4), expected_batch_size=jnp.float32(200.0))
    noise = rng.integers(-3000, 3000, (steps, q)).astype(np.int32)
    inner = native_classifier_evaluator(get_preset("tree").native_factory(2),
                                        ClassificationLoss("balanced_linear", (1.0, 1.0)))
    data = native_classifier_data(X, y, np.repeat([0, 1], m // 2), jax.random.key(0))
    start = jnp.asarray(np.random.default_rng(4).uniform(-0.5, 0.5, (m, d)), jnp.float32)

    def table(evaluate):
        c = zero_order_condenser(evaluate, adam(0.05), num_records=n, num_directions=q, record_block=None)
        state, _ = run(c, c.init(jax.random.key(5), start), params, steps, data=data, noise=noise, chunk_size=steps)
        return state.table

    out = {"start": np.asarray(start).tobytes().hex()}
    if mode == "single":
        out["table"] = np.asarray(table(inner)).tobytes().hex()
    else:
        out.update(process_index=jax.process_index(), process_count=jax.process_count(),
                   device_count=jax.device_count(), local_device_count=jax.local_device_count())
        for label, shape in (("4x1", None), ("1x4", (1, 4))):
            mesh = device_mesh(None, num_tables=2 * q, shape=shape)
            result = table(Sharded(inner, mesh))
            out[label] = {"mesh": [mesh.shape["directions"], mesh.shape["records"]],
                          "processes": sorted({device.process_index for device in mesh.devices.flat}),
                          "replicated": bool(result.is_fully_replicated),
                          "table": np.asarray(result).tobytes().hex()}
        # The seed helper: process 0's entropy on both. Each process's "fresh" draw is a fixed stand-in
        # here (1000 + 1000 i: no unseeded draw in a test), so process 1 must end with process 0's 1000.
        import zodc.privacy.noise
        zodc.privacy.noise.fresh_seed = lambda: 1000 + 1000 * jax.process_index()
        out["seed_digest"] = hashlib.sha256(str(int(shared_seed())).encode()).hexdigest()
    print("RESULT " + json.dumps(out), flush=True)
""")

TIMEOUT = 240  # seconds for all three processes (about 20-30 s on 2 idle cores)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(devices: int) -> dict:
    flags = os.environ.get("XLA_FLAGS", "")  # the suite's optimisation level (tests/conftest.py), alike in all
    return {**os.environ, "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}".strip()}


def _finish(processes) -> list[tuple[str, str]]:
    """Each process's (stdout, stderr), all within TIMEOUT; a hung one (a peer that never joined) is
    killed, all of them; each must have exited 0."""
    deadline = time.monotonic() + TIMEOUT
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    return outputs


def _result(stdout: str) -> dict:
    # Gloo's C++ logging shares the child's stdout and may land on the same line, before or after the
    # result (seen in CI: "...}[Gloo] Rank 0 is connected..."): decode the one JSON object after the marker.
    start = stdout.index("RESULT ") + len("RESULT ")
    return json.JSONDecoder().raw_decode(stdout, start)[0]


def _table(hex_bytes: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hex_bytes), np.float32)


def test_two_processes_release_the_one_device_table_bit_for_bit():
    port = _free_port()
    launches = [[sys.executable, "-c", SCRIPT, "child", str(i), str(port)] for i in range(2)]
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=_environment(2)) for args in launches]
    processes.append(subprocess.Popen([sys.executable, "-c", SCRIPT, "single"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=_environment(1)))
    outputs = _finish(processes)

    children = [_result(stdout) for stdout, _ in outputs[:2]]
    single = _result(outputs[2][0])
    one = _table(single["table"])
    assert np.abs(one - _table(single["start"])).max() > 0.01, "the table did not move: the comparison is vacuous"
    for index, child in enumerate(children):
        assert (child["process_index"], child["process_count"], child["device_count"],
                child["local_device_count"]) == (index, 2, 4, 2)
        assert child["start"] == single["start"]
        for label, mesh in (("4x1", [4, 1]), ("1x4", [1, 4])):
            assert child[label]["mesh"] == mesh
            assert child[label]["processes"] == [0, 1], "the mesh does not span both processes"
            assert child[label]["replicated"] is True
            assert child[label]["table"] == single["table"], (label, np.abs(_table(child[label]["table"]) - one).max())
    assert children[0]["seed_digest"] == children[1]["seed_digest"] == hashlib.sha256(b"1000").hexdigest()


def test_shared_seed_on_one_process_is_its_fresh_entropy(monkeypatch):
    # One process: the seed is the process's own fresh draw (a seeded stand-in here), marked as entropy.
    import zodc.privacy.noise
    from zodc.privacy.keys import FreshEntropy
    from zodc.sharding import shared_seed

    draws = iter([7, 2**127 + 5])
    monkeypatch.setattr(zodc.privacy.noise, "fresh_seed", lambda: next(draws))
    first, second = shared_seed(), shared_seed()
    assert isinstance(first, FreshEntropy) and (first, second) == (7, 2**127 + 5)


CLI = textwrap.dedent("""
    import sys, jax
    process_id, port = int(sys.argv[1]), sys.argv[2]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id,
                               initialization_timeout=60)
    import zodc.privacy.noise  # each process's "fresh" entropy: a fixed stand-in (no unseeded draw in a test)
    zodc.privacy.noise.fresh_seed = lambda: 3000 + process_id
    from zodc.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def test_the_cli_on_two_processes_shares_fresh_entropy_and_writes_once(tmp_path):
    # No --seed: the processes share process 0's fresh entropy (the same holdout and noise), and only
    # process 0 writes. Each process writes to its own directory here, so a second writer would show.
    port = _free_port()
    for i in range(2):
        (tmp_path / f"p{i}").mkdir()
    processes = [subprocess.Popen([sys.executable, "-c", CLI, str(i), str(port), "condense", "--dataset",
                                   "breast_cancer", "--steps", "10", "--quiet", "--out",
                                   str(tmp_path / f"p{i}" / "synthetic.csv")], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=_environment(2)) for i in range(2)]
    outputs = _finish(processes)
    assert sorted(os.listdir(tmp_path / "p0")) == ["synthetic.csv", "synthetic.owner.json", "synthetic.report.json"]
    assert os.listdir(tmp_path / "p1") == []
    assert "process 1 of 2 done; process 0 writes the release" in outputs[1][0]
    report = json.loads((tmp_path / "p0" / "synthetic.report.json").read_text())
    assert report["privacy"]["randomness"] == "fresh 128-bit OS entropy"
