"""The layout the code promises: every module in a layer, small modules, short functions.

The layers themselves (no import goes up, no cycles) are import-linter contracts in
pyproject.toml, checked by `lint-imports` in .ci/run and by the test below.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bookmark_enrich"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
DECLARATIVE_TABLES: set[str] = set()
"""``path:function`` of functions that are tables (a list of checks), not logic."""


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    names: list[str] = []
    for layer in layers:
        names += [n.strip() for n in layer.replace("|", ":").split(":")]
    return names


def test_every_top_level_module_has_a_layer() -> None:
    placed = set(_layers())
    modules = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__")
               or (p.is_dir() and (p / "__init__.py").exists())}
    assert modules - placed == set(), "add these modules to a layer in pyproject.toml"
    assert placed - modules == set(), "these layers name modules that do not exist"


def test_the_import_contracts_hold() -> None:
    # Beside this interpreter first: the venv's scripts need not be on PATH.
    beside = Path(sys.executable).with_name("lint-imports")
    lint = str(beside) if beside.exists() else shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_the_limit() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f"split these modules (over {MAX_MODULE_LINES} lines)"


def test_no_function_is_over_the_limit() -> None:
    long: dict[str, int] = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                # The body, not the signature: a command's option list is a table.
                size = (node.end_lineno or node.lineno) - node.body[0].lineno + 1
                name = f"{path.relative_to(ROOT)}:{node.name}"
                if size > MAX_FUNCTION_LINES and name not in DECLARATIVE_TABLES:
                    long[name] = size
    assert long == {}, f"split these functions (over {MAX_FUNCTION_LINES} lines)"
