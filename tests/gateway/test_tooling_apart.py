"""The Redis topology starter (gateway.local.topologies) is tooling for the tests and the bench:
no module of the service imports it, even transitively."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLING = "gateway.local.topologies"


def test_no_service_module_imports_the_topology_starter() -> None:
    names = sorted(
        ".".join(path.with_suffix("").relative_to(ROOT).parts)
        for top in ("gateway", "routing")
        for path in (ROOT / top).rglob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    )
    names.remove(TOOLING)
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print({TOOLING!r} in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stdout + result.stderr
