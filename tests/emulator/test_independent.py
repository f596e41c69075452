"""The emulator is an independent witness: nothing in emulator/ imports mjgate's code.

It models GoAPI from GoAPI's own facts (emulator.facts, emulator.modes); if it imported routing's
tables it could only show that mjgate follows mjgate's rules. tests/test_facts_agree.py is the
one place both sides meet.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import emulator

FORBIDDEN = frozenset({"routing", "gateway", "bench", "tests"})
PACKAGE = Path(emulator.__file__).parent


def imported_packages(source: str) -> set[str]:
    """The top-level names of every absolute import in a module, wherever it appears."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_the_walker_sees_every_kind_of_import() -> None:
    source = (
        "import routing.model\n"
        "def f():\n    from gateway import app\n"
        "import importlib\nimportlib.import_module('bench.lab')\n"
        "from starlette.routing import Route\nfrom . import facts\n"
    )
    assert imported_packages(source) == {"routing", "gateway", "importlib", "bench", "starlette"}


def test_no_module_of_the_emulator_imports_mjgate() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 20, modules  # the walk really covers the package
    offenders = {
        path.name: sorted(found)
        for path in modules
        if (found := imported_packages(path.read_text(encoding="utf-8")) & FORBIDDEN)
    }
    assert offenders == {}


def test_importing_the_whole_emulator_loads_nothing_of_mjgate() -> None:
    """Also transitively, in a fresh interpreter."""
    stems = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    names = sorted(f"emulator.{stem}" for stem in stems)  # __main__ would run the server
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(FORBIDDEN)!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
