"""Smoke test of the throughput runner (benchmarks/throughput.py, python -m benchmarks.throughput): structure, not timings."""

import gzip
import json
import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = ROOT / "benchmarks" / "configs" / "throughput.json"


@pytest.fixture(scope="module")
def runner():
    from benchmarks import throughput

    return throughput


@pytest.fixture(scope="module")
def config():
    return json.loads(CONFIG.read_text())


def test_grids_express_the_issue(runner, config):
    full = runner.expand_grid(config, "full")
    assert len(full) == 3 * 3 * 2 * 2 * 4 + 4          # the issue's grid for 4 models, plus the headline
    headline = {"q": 64, "m": 100, "d": 30, "B": 1024}
    for grid in ("full", "cpu", "headline", "gpu"):
        points = runner.expand_grid(config, grid)
        assert len({tuple(sorted(p.items())) for p in points}) == len(points)   # no duplicates
        for model in runner.MODELS:
            assert dict(headline, model=model) in points, (grid, model)
    cpu = runner.expand_grid(config, "cpu")
    assert {p["model"] for p in cpu} == set(runner.MODELS)
    gpu = runner.expand_grid(config, "gpu")  # the device check's: fits per second up to q = 1,024
    assert {(p["model"], p["q"]) for p in gpu if p["q"] > 64} == {(m, q) for m in ("tree", "cox") for q in (256, 1024)}
    assert runner.expand_grid(config, "cpu", ["cox"]) == [p for p in cpu if p["model"] == "cox"]


def test_one_point_runs_and_records_both_backends(runner, config, tmp_path):
    out = tmp_path / "throughput.json"
    result = runner.run(config, "smoke", quick=True, n_jobs=1, out=str(out), paired_rounds=2, log=lambda *_: None)
    written = json.loads(out.read_text())
    assert written["results"] == json.loads(json.dumps(result["results"]))
    assert result["skipped"] == []
    for key in ("jax_version", "jax_devices", "cpu_count", "platform", "host_n_jobs"):
        assert key in result["machine"]
    (record,) = result["results"]
    assert {k: record[k] for k in ("model", "q", "m", "d", "B")} == {"model": "tree", "q": 2, "m": 8, "d": 3, "B": 16}
    assert record["fits_per_step"] == 4
    for backend in ("native", "host"):
        timing = record[backend]
        assert timing["status"] == "measured"
        assert timing["repeats"] >= 1 and len(timing["step_seconds_all"]) == timing["repeats"]
        assert timing["compile_seconds"] > 0 and timing["step_seconds"] > 0
        assert math.isclose(timing["fits_per_second"], 4 * timing["steps_per_second"])
        assert timing["table_finite"]
    assert math.isclose(record["ratio"], record["native"]["steps_per_second"] / record["host"]["steps_per_second"])
    assert record["ratio_is_estimate"] is False
    # Paired rounds: each round's ratio is its host step over the median of its native block.
    paired = record["paired"]
    assert paired["rounds"] == 2 and len(paired["ratios"]) == 2 and paired["native_steps_per_round"] >= 1
    for ratio, host_step, native_step in zip(paired["ratios"], paired["host_step_seconds"],
                                             paired["native_step_seconds"]):
        assert math.isclose(ratio, host_step / native_step)
    assert paired["ratio_min"] <= paired["ratio_median"] <= paired["ratio_max"]

    markdown = runner.to_markdown(result)
    header = ("| model | q | m | d | B | host steps/s | native steps/s | ratio | native fits/s | compile s (native / host) |"
              " paired ratio |")
    assert header in markdown and "2 rounds) |" in markdown
    assert "| tree | 2 | 8 | 3 | 16 |" in markdown
    # --from-json re-renders a result stored compressed
    packed, rendered = tmp_path / "throughput.json.gz", tmp_path / "again.md"
    packed.write_bytes(gzip.compress(out.read_bytes()))
    assert runner.main(["--from-json", str(packed), "--markdown", str(rendered)]) == 0
    assert rendered.read_text() == runner.to_markdown(written)


def test_over_budget_host_is_estimated_with_a_reason(runner, config, monkeypatch):
    # The native timing is not under test here (the test above compiles it): stub it out.
    native = {"status": "measured", "steps_per_second": 10.0, "fits_per_second": 40.0, "compile_seconds": 1.0}
    monkeypatch.setattr(runner, "_measure", lambda *args, **kwargs: dict(native))
    point = {"model": "tree", "q": 2, "m": 8, "d": 3, "B": 16}
    record = runner.run_point(point, dict(config["settings"]), n_jobs=1, repeats=1, host_budget_seconds=0.0,
                              native_budget_seconds=1.0)
    assert record["host"]["status"] == "estimated"
    assert "budget" in record["host"]["reason"]
    assert record["ratio_is_estimate"] is True
    assert record["host"]["steps_per_second"] > 0
    assert math.isclose(record["ratio"], 10.0 / record["host"]["steps_per_second"])
