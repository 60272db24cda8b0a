"""The strict stack holds: the import contracts in pyproject.toml pass (and catch a wrong import), every
module of registry/ sits in a layer, no file imports another in a cycle, and imports inside functions
are only the documented start-up-speed choices (each marked ``# lazy: <why>``)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.paths import ROOT

KNOWN_CYCLES: dict[frozenset[str], str] = {}
"""Cycles between files allowed for now (none: the storage and remote-CLI cycles are gone). A new cycle fails."""


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    return found


def _run_lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the ``registry`` package found first on the path from ``root``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([_lint_imports(), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          env=env, capture_output=True, text=True)


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "registry").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def test_the_import_contracts_pass() -> None:
    proc = _run_lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(("module", "wrong_import", "contract"), [
    ("registry/snapshots/diff.py", "from registry.cli import output as _wrong", "The stack"),
    ("registry/audit/log.py", "import click as _wrong", "Only the edges"),
    ("registry/quality/gate.py", "from registry.provenance import blame as _wrong", "Quality and auth"),
])
def test_a_wrong_import_breaks_its_contract(tmp_path: Path, module: str, wrong_import: str, contract: str) -> None:
    shutil.copytree(ROOT / "registry", tmp_path / "registry", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as fh:
        fh.write(f"\n{wrong_import}  # noqa: E402,F401\n")
    proc = _run_lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    broken = proc.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and importer in broken, proc.stdout


def test_every_module_sits_in_exactly_one_layer() -> None:
    """A new module must be placed in the stack (packages split across layers are listed by module)."""
    stack = next(c for c in _contracts() if c["id"] == "stack")
    entries = [name.strip().strip("()") for layer in stack["layers"]  # type: ignore[attr-defined]
               for name in layer.replace(":", "|").split("|")]
    misplaced = {}
    for module, path in _modules().items():
        homes = [e for e in entries if module == e or module.startswith(e + ".")]
        if len(homes) == 1:
            continue
        if not homes and path.name == "__init__.py":
            # a package whose modules sit in different layers: its __init__ must import nothing
            tree = ast.parse(path.read_text())
            if not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)) or module == "registry":
                continue
        misplaced[module] = homes
    assert misplaced == {}, f"modules in no layer or in several (layer them in pyproject.toml): {misplaced}"


def test_no_import_cycles_between_files() -> None:
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("registry")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(frozenset(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    unexpected = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert unexpected == [], f"files importing each other (break the cycle, do not import late): {unexpected}"


def _unmarked_function_imports() -> list[str]:
    found = []
    for path in sorted((ROOT / "registry").rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        seen: set[int] = set()
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno not in seen:
                    seen.add(node.lineno)
                    own = "\n".join(lines[node.lineno - 1: node.end_lineno])
                    above = lines[node.lineno - 2].strip()  # or a comment line of its own just above
                    if "# lazy:" not in own and not above.startswith("# lazy:"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_imports_inside_functions_are_documented_start_up_choices() -> None:
    """An import inside a function either keeps start-up fast (say why: ``# lazy: <why>``) or moves to the top."""
    unmarked = _unmarked_function_imports()
    assert unmarked == [], "\n".join(unmarked)
