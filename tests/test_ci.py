"""CI's script (`.ci/run`) keeps the project's promises: it runs the README's test command verbatim,
fails when a test fails, and never lets the opt-in fresh-seed mode (`tests/seeds.py`, the one place in
tests/ that may draw an unseeded number) reach CI."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ci_lines():
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim_and_fails_with_it():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"\*\*Install and run the tests\*\*.*?```bash\n(.+?)\n```", readme, re.S).group(1).strip()
    lines = _ci_lines()
    assert lines[-1] == command
    assert "set -euo pipefail" in lines  # pytest's exit status is the script's


def test_ci_unsets_the_fresh_seed_mode_before_the_tests():
    lines = _ci_lines()
    assert "unset ZODC_RANDOMISED_TESTS" in lines
    assert lines.index("unset ZODC_RANDOMISED_TESTS") < len(lines) - 1
