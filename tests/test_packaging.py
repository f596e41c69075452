"""A non-editable install (the Dockerfile's `pip install .`) ships every package: the
setuptools package list names each folder that has an `__init__.py`, and package data holds
every Lua script and YAML file the code reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]  # type: ignore[no-any-return]


def test_every_package_is_listed() -> None:
    listed = set(_config()["packages"])  # type: ignore[call-overload]
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("routing", "gateway", "emulator", "bench")
        for init in (ROOT / top).rglob("__init__.py")
    } | {"routing.lua", "gateway.lua"}  # data-only folders, listed for their files
    assert found - listed == set()


def test_package_data_covers_the_files_read_at_run_time() -> None:
    data: dict[str, list[str]] = _config()["package-data"]  # type: ignore[assignment]
    for path in [*ROOT.glob("routing/lua/*.lua"), *ROOT.glob("gateway/**/*.lua"),
                 *ROOT.glob("gateway/**/*.yaml")]:  # fmt: skip
        package = ".".join(path.parent.relative_to(ROOT).parts)
        assert any(path.match(pattern) for pattern in data.get(package, [])), path
