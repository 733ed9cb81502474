"""Smoke test of the scaling benchmark (benchmarks/scaling.py, python -m benchmarks.scaling): structure
and the blocked = unblocked sanity check at a tiny size, not timings.

Three fresh worker processes (the tree's step compiles in each: most of the test's time): n = 300
blocked and unblocked (a batch of ~64 in blocks of 32, so a step scores two or three blocks) and
n = 3,000 blocked; unblocked at 3,000 is skipped by --unblocked-max-n, which records the reason.
"""

import json
import math

import pytest


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from benchmarks import scaling

    out = tmp_path_factory.mktemp("scaling") / "scaling.json"
    assert scaling.main(["--out", str(out), "--sizes", "300,3000", "--variants", "blocked,unblocked", "--quick",
                         "--batch", "64", "--block", "32", "--unblocked-max-n", "300", "--threads", "1"]) == 0
    written = json.loads(out.read_text())
    assert out.with_suffix(".md").exists()
    return written, out.with_suffix(".md").read_text()


def test_the_json_records_the_machine_and_every_run(result):
    written, _ = result
    for key in ("jax_version", "cpu_count", "platform", "date", "xla_cpu_threads_per_run"):
        assert key in written["machine"]
    assert written["sizes"] == [300, 3000] and written["quick"] is True
    assert "utility is not measured" in written["cohort"]
    runs = {(r["n"], r["variant"]): r for r in written["records"]}
    assert set(runs) == {(300, "blocked"), (300, "unblocked"), (3000, "blocked"), (3000, "unblocked")}
    skipped = runs[3000, "unblocked"]
    assert skipped["status"] == "skipped" and "--unblocked-max-n" in skipped["reason"]
    for key in ((300, "blocked"), (300, "unblocked"), (3000, "blocked")):
        run = runs[key]
        assert run["status"] == "measured", run
        assert run["chunk_size"] == 2 and run["chunks"] == 1 and len(run["chunk_seconds_all"]) == 1
        assert run["compile_seconds"] > 0 and run["step_seconds"] > 0 and run["first_chunk_seconds"] > 0
        assert run["step_cpu_seconds"] > 0 and len(run["chunk_cpu_seconds_all"]) == 1
        assert math.isclose(run["step_seconds"], run["chunk_seconds_all"][0] / 2)
        assert run["peak_rss_mib"] >= run["baseline_maxrss_mib"] > 0
        assert math.isclose(run["peak_over_baseline_mib"], run["peak_rss_mib"] - run["baseline_maxrss_mib"])
        assert math.isclose(run["data_mib"], run["n"] * (30 * 4 + 4) / 2**20)
        assert math.isclose(run["sampling_probability"], 64 / run["n"], rel_tol=1e-6)
        assert run["table_finite"] and run["batch_size_max"] >= 1
    assert runs[300, "blocked"]["path"] == "blocked" and runs[300, "blocked"]["record_block"] == 32
    assert runs[300, "unblocked"]["path"] == "unblocked" and runs[300, "unblocked"]["record_block"] is None


def test_blocked_and_unblocked_tables_are_equal_bit_for_bit(result):
    written, markdown = result
    checks = {check["n"]: check["same_table"] for check in written["checks"]}
    assert checks == {300: True, 3000: None}
    runs = {(r["n"], r["variant"]): r for r in written["records"]}
    assert runs[300, "blocked"]["first_chunk_table_sha256"] == runs[300, "unblocked"]["first_chunk_table_sha256"]
    assert runs[300, "blocked"]["same_table"] is True
    assert "| 300 | blocked | blocked |" in markdown and "not run: n above --unblocked-max-n" in markdown
