"""What a start validates, shared by `mjgate serve` (which refuses to start on an error) and
`mjgate check-config` (which reports every problem and exits 2 on an error):

- every setting's value (all of them, not only the first bad one), client keys 8+ characters;
- the pool file: readable and valid, a problem named with the file's path and line;
- `MJGATE_*` environment variables that are no setting: warnings (a typo is otherwise silent).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.settings import Settings, SettingsError
from gateway.variables import SETTINGS
from routing.errors import PoolFileError
from routing.poolfile import PoolFile, parse_pool_file

# Variables read by mjgate but not settings of `mjgate serve`: the operator CLI's.
OTHER_VARIABLES = frozenset({"MJGATE_URL"})


@dataclass(frozen=True)
class Problem:
    level: str  # "error" | "warning"
    message: str


def setting_errors(env: Mapping[str, str]) -> list[Problem]:
    problems = []
    for setting in SETTINGS:
        raw = env.get(setting.env, setting.default)
        try:
            setting.parse(raw.strip())
        except (ValueError, TypeError) as exc:
            problems.append(Problem("error", f"invalid setting {setting.env}={raw!r}: {exc}"))
    return problems


def unknown_variables(env: Mapping[str, str]) -> list[Problem]:
    known = {setting.env for setting in SETTINGS} | OTHER_VARIABLES
    problems = []
    for name in sorted(env):
        if name.startswith("MJGATE_") and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(Problem("warning", f"unknown variable {name} is ignored{hint}"))
    return problems


def load_pool_file(path: Path) -> PoolFile:
    """The pool file, or PoolFileError whose message names the path (and the line)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PoolFileError(0, f"cannot read: {exc.strerror or exc}", f"pool file {path}") from exc
    try:
        return parse_pool_file(text)
    except PoolFileError as exc:  # named once: `pool file <path>: line <n>: <reason>`
        raise PoolFileError(exc.line, exc.reason, f"pool file {path}") from exc


def check(env: Mapping[str, str], *, sandbox: bool = True) -> tuple[Settings | None, list[Problem]]:
    """The settings (None if any is invalid) and every problem found. With `sandbox`, the
    settings are completed for sandbox mode first when no GoAPI key is set."""
    problems = setting_errors(env)
    if problems:
        return None, problems + unknown_variables(env)
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:  # pragma: no cover (setting_errors found it first)
        return None, [Problem("error", str(exc))]
    if sandbox and settings.sandbox:
        from gateway.local.sandbox import sandbox_settings

        settings = sandbox_settings(settings)
    if settings.pool_file is not None:
        try:
            load_pool_file(settings.pool_file)
        except PoolFileError as exc:
            problems.append(Problem("error", str(exc)))
    return settings, problems + unknown_variables(env)
