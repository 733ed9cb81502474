"""The installed package does not depend on the benchmarks: no module under zodc/ (nor kernels/,
shipped as zodc.kernels) imports ``benchmarks`` or the modules that moved there (``zodc.bench``,
``zodc.evaluate.baselines``), and those modules are gone from the package. Read with ``ast``: nothing
is imported."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN = ("benchmarks", "zodc.bench", "zodc.evaluate.baselines")


def _imports(path: pathlib.Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import in the file (or in ``source``, as if it were that file);
    ``from zodc.evaluate import baselines`` counts as ``zodc.evaluate.baselines``; a relative import
    is resolved against the file's package."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if package and package[0] == "kernels":
        package = ["zodc"] + package          # kernels/ is installed as zodc.kernels
    found = []
    source = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def _package_files() -> list[pathlib.Path]:
    return sorted((ROOT / "zodc").rglob("*.py")) + sorted((ROOT / "kernels").rglob("*.py"))


def test_the_package_imports_nothing_from_the_benchmarks():
    files = _package_files()
    assert len(files) > 20 and ROOT / "zodc" / "cli.py" in files
    offending = [f"{path.relative_to(ROOT)}:{line}: {module}" for path in files for line, module in _imports(path)
                 if any(module == name or module.startswith(name + ".") for name in FORBIDDEN)]
    assert offending == []


def test_the_moved_modules_are_not_in_the_package():
    assert not (ROOT / "zodc" / "bench.py").exists()
    assert not (ROOT / "zodc" / "evaluate" / "baselines.py").exists()
    assert (ROOT / "benchmarks" / "runner.py").exists() and (ROOT / "benchmarks" / "baselines.py").exists()


def test_the_check_sees_each_kind_of_import():
    # The walker itself: every spelling of a forbidden import is caught.
    source = ("import benchmarks.runner\nfrom zodc.evaluate import baselines\nfrom zodc import bench\n"
              "from ..evaluate import baselines\nimportlib.import_module('benchmarks')\nimport zodc.evaluate.utility\n")
    modules = [module for _, module in _imports(ROOT / "zodc" / "models" / "probe.py", source)]
    assert "benchmarks.runner" in modules and "zodc.evaluate.baselines" in modules and "zodc.bench" in modules
    assert modules.count("zodc.evaluate.baselines") == 2 and "benchmarks" in modules
    assert "zodc.evaluate.utility" in modules
