"""The documentation's code runs as written: every ```python block of the README and docs/, and no
link that leaves the repository or points at a file that is not there."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text[:match.start()].count("\n") + 1, match.group(1))
            for match in re.finditer(r"```python\n(.*?)```", text, re.S)]


BLOCKS = [pytest.param(path, line, code, id=f"{path.relative_to(ROOT)}:{line}",
                       marks=[pytest.mark.slow] if "Condenser(" in code else [])
          for path in DOCUMENTS for line, code in _blocks(path)]


def test_every_document_with_code_is_collected():
    names = {param.values[0].name for param in BLOCKS}
    assert {"README.md", "reference.md", "models.md"} <= names


@pytest.mark.parametrize("path, line, code", BLOCKS)
def test_python_block_runs_as_written(path, line, code):
    if "from xgboost import" in code:
        pytest.importorskip("xgboost", reason="the XGBoost example needs the optional `boosting` extra")
    namespace = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, f"{path.name}:{line}", "exec"), namespace)  # noqa: S102 - our own documentation
    if "XGBoost" in namespace:  # a class only: build its host model to check the factory runs
        namespace["XGBoost"]().host(2)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_in_the_repository_and_resolve(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        assert not re.match(r"[a-z]+://", target), f"{path.name} links outside the repository: {target}"
        file = (path.parent / target.split("#")[0]).resolve()
        assert ROOT in file.parents or file == ROOT, f"{path.name} links outside the repository: {target}"
        assert file.exists(), f"{path.name} links to a missing file: {target}"
