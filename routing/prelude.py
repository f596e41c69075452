"""A pool script's prelude: the definitions of the shared Lua libraries its body uses.

The libraries under `routing/lua/` (LIBRARIES, in order: accounts.lua, pacing.lua,
indexes.lua, history.lua, tenants.lua, selection.lua, decide.lua, staging.lua; a definition
uses only those before it, in its library or an earlier one) are lists of top-level
definitions, each starting at column 0 with its comment above it:
`local function f(...)`, `local NAME = ...` (or `local A, B`) and `function TN.f(...)`. Redis
runs a script's whole text on every call, and creating a function or a table costs time at
each call even when the body never uses it, so a script carries only what it uses: the
definitions its body names, then the ones those name, and so on; kept in library order (a
Lua local must come before its users), each library's header comment with its first kept
definition. A name is used when it appears as an identifier outside a comment (`TN.check`
also uses `TN`); a name mentioned needlessly only brings a definition too many, never one too
few. Anything at column 0 that is not a definition, a comment, `end` or a table's closing
brace is refused when the libraries are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

LIBRARIES = (
    "accounts",  # conventions, key layout, the account hash and its codec, plan rules
    "pacing",  # the pacing rules an account's fields give
    "indexes",  # selection indexes, aggregates, per-tag sets, acct_save; pacing applied
    "history",  # changes worth an entry in an account's history
    "tenants",  # client keys' quotas and the fair queue of staged work
    "selection",  # one tier's decision
    "decide",  # the routing rules (root, child, pinned) and taking a reservation
    "staging",  # staging, a fresh request's outcome, dispatching staged work
)

_DEFINES = re.compile(
    r"^(?:local\s+function\s+(?P<fn>\w+)|function\s+(?P<field>\w+\.\w+)|local\s+(?P<vars>\w+(?:\s*,\s*\w+)*))"
)
_CONTINUES = re.compile(r"^(?:\s|end\b|}|\)|$)")
_NAME = re.compile(r"(?<![\w.:])([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")
_COMMENT = re.compile(r"--.*$", re.MULTILINE)


@dataclass(frozen=True)
class Definition:
    library: str
    defines: frozenset[str]
    text: str
    uses: frozenset[str]


def read_library(name: str) -> str:
    return resources.files("routing").joinpath("lua", f"{name}.lua").read_text("utf-8")


def used_names(text: str) -> frozenset[str]:
    """Identifiers in `text` outside comments; `A.b` counts as `A` and `A.b`."""
    names: set[str] = set()
    for match in _NAME.finditer(_COMMENT.sub("", text)):
        names.add(match[1])
        if match[2]:
            names.add(f"{match[1]}.{match[2]}")
    return frozenset(names)


def _split(library: str, text: str) -> tuple[str, list[Definition]]:
    """The library's header comment and its definitions, in order."""
    header: list[str] = []
    pending: list[str] = []  # comment lines waiting for the definition they describe
    current: tuple[frozenset[str], list[str]] | None = None
    found: list[tuple[frozenset[str], list[str]]] = []
    for line in text.splitlines():
        match = _DEFINES.match(line)
        if match:
            names = match["fn"] or match["field"] or match["vars"]
            current = (frozenset(n.strip() for n in names.split(",")), [*pending, line])
            found.append(current)
            pending = []
        elif line.startswith("--") or not line.strip():
            (pending if current else header).append(line)
        elif current and _CONTINUES.match(line):
            current[1].extend([*pending, line])
            pending = []
        else:
            raise ValueError(f"{library}.lua: not a definition at column 0: {line!r}")
    definitions = [
        Definition(library, names, "\n".join(lines), used_names("\n".join(lines)) - names)
        for names, lines in found
    ]
    return "\n".join(header), definitions


@cache
def _libraries() -> tuple[dict[str, str], tuple[Definition, ...]]:
    headers: dict[str, str] = {}
    definitions: list[Definition] = []
    for library in LIBRARIES:
        headers[library], found = _split(library, read_library(library))
        definitions.extend(found)
    return headers, tuple(definitions)


def needed(body: str) -> list[Definition]:
    """The definitions `body` uses, directly or through others, in library order."""
    _, definitions = _libraries()
    wanted = set(used_names(body))
    kept: set[int] = set()
    changed = True
    while changed:
        changed = False
        for index, definition in enumerate(definitions):
            if index not in kept and definition.defines & wanted:
                kept.add(index)
                wanted |= definition.uses
                changed = True
    return [definitions[index] for index in sorted(kept)]


BEGIN = "begin(ARGV)"  # every script's first step (accounts.lua: per-call state)


def _definitions_text(definitions: list[Definition]) -> list[str]:
    """The definitions' texts, each library's header before its first one."""
    headers, _ = _libraries()
    parts: list[str] = []
    seen: set[str] = set()
    for definition in definitions:
        if definition.library not in seen:
            seen.add(definition.library)
            parts.append(headers[definition.library])
        parts.append(definition.text)
    return parts


def compose(body: str) -> str:
    """The text Redis runs with EVAL: the definitions `body` uses (each library's header
    with its first one), then `begin(ARGV)` and `body`."""
    return "\n".join([*_definitions_text(needed(f"{BEGIN}\n{body}")), BEGIN, body])


def library(name: str, bodies: Mapping[str, str]) -> str:
    """A Redis Functions library `name` (Redis 7+): the definitions the `bodies` use, loaded
    once per server, then each body registered as the function its key names, called with
    (KEYS, ARGV) and starting with `begin(ARGV)` as with EVAL."""
    wanted = "\n".join([BEGIN, *bodies.values()])
    parts = [f"#!lua name={name}", *_definitions_text(needed(wanted))]
    for function, body in bodies.items():
        parts.append(
            f"redis.register_function('{function}', function(KEYS, ARGV)\n{BEGIN}\n{body}\nend)"
        )
    return "\n".join(parts)
