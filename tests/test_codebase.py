"""The code's shape: every module imports, no two modules import each other, no two classes share a name,
``styleexp --help`` starts without Lightning."""

from __future__ import annotations

import ast
import collections
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "styleexp", ROOT / "hydra_plugins"]


def module_files() -> dict[str, Path]:
    """Every Python module of the package and of its Hydra plugin, by dotted name."""
    modules = {}
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in it, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *[base] * bool(base)])
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names)
    return {module for module in found if module in known and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``graph`` meets, each as the modules along it."""
    found, state, path = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                found.append([*path[path.index(child) :], child])
            elif child not in state:
                visit(child)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


@pytest.mark.parametrize("module", sorted(module_files()))
def test_every_module_imports(module):
    if module.endswith("__main__"):  # ``python -m``: importing it runs the command, so it is compiled only
        path = module_files()[module]
        compile(path.read_text(), str(path), "exec")
    else:
        importlib.import_module(module)


def test_no_two_modules_import_each_other_directly_or_through_others():
    modules = module_files()
    graph = {name: imports(name, path, set(modules)) for name, path in modules.items()}
    assert graph["styleexp.run"] and graph["styleexp.cli"]  # the scan sees imports at all
    assert cycles(graph) == []


def test_a_cycle_is_found_where_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_no_two_classes_share_a_name():
    where = collections.defaultdict(list)
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(name)
    assert {name: modules for name, modules in where.items() if len(modules) > 1} == {}


def test_no_module_is_longer_than_300_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in module_files().items()}
    assert {name: length for name, length in lengths.items() if length > 300} == {}
    assert lengths["styleexp.run"] <= 200


@pytest.mark.slow
def test_help_starts_without_lightning():
    code = "\n".join([
        "import sys",
        "sys.argv = ['styleexp', '--help']",
        "from styleexp.cli import app",
        "try:",
        "    app()",
        "except SystemExit:",
        "    pass",
        "print('pytorch_lightning' in sys.modules, file=sys.stderr)",
    ])  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "== Config groups" in done.stdout, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False"
