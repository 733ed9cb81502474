"""The prepared GPU run (benchmarks/device_check.sh) and its fits-per-second part: structure, not timings."""

import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def test_the_script_parses_and_refuses_an_unknown_mode_or_step(tmp_path):
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    refused = subprocess.run(["bash", str(SCRIPT), "gpu"], capture_output=True, text=True)
    assert refused.returncode == 2 and "usage" in refused.stderr
    refused = subprocess.run(["bash", str(SCRIPT), "dry", "benchmark"], capture_output=True, text=True,
                             env={"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert refused.returncode == 2 and "unknown step 'benchmark'" in (tmp_path / "log.txt").read_text()


def test_the_script_names_steps_that_exist():
    # Each step's module and option is real (a typo would only show on the lent machine).
    text = SCRIPT.read_text()
    for module in ("benchmarks.throughput", "benchmarks.scaling", "benchmarks.batched"):
        assert (ROOT / (module.replace(".", "/") + ".py")).exists() and module in text
    grids = json.loads((ROOT / "benchmarks" / "configs" / "throughput.json").read_text())["grids"]
    assert "--grid gpu" in text and "gpu" in grids
    assert "tests/test_device.py" in text and (ROOT / "tests" / "test_device.py").exists()


def test_fit_scaling_reports_fits_per_second(tmp_path):
    from benchmarks import batched

    out = tmp_path / "fits.json"
    assert batched.main(["--parts", "fits", "--fit-batches", "2,4", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["fit_scaling"]
    assert [row["fits"] for row in rows] == [2, 4]
    assert all(row["fits_per_second"] > 0 and row["m"] == 100 and row["d"] == 30 for row in rows)
    assert "fits / s" in out.with_suffix(".md").read_text()
