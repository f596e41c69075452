"""The declarative pool file: YAML in, a validated `PoolFile` out, and back again.

    strategy: least_busy            # least_busy | most_fast_left | weighted
    accounts:
      - bot_id: 1201                # GoAPI's integer id; required, unique
        name: studio-a
        plan: pro                   # basic | standard | pro | mega
        setting: fast               # fast | relax (the Midjourney account's own setting)
        fast_hours_left: 30         # default: the plan's monthly hours
        renews_at: 2030-07-01T00:00:00Z # a past date renews at the next tick
        fast_slots: 12              # default: the plan's
        relax_slots: 3              # default: the plan's (basic: none)
        weight: 1                   # > 0, for the weighted strategy
        tags: [studio]
        state: active               # active | draining | paused | disabled
        pacing: {tier: backup}      # overrides the pool's `pacing` default (routing/pacefile.py);
                                    # null: unpaced whatever the default

Every problem is a `PoolFileError` carrying the 1-based line of the offending YAML node.
Applying a file (`Catalog.apply_pool`) makes the pool match it: see docs/routing.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import yaml

from routing import pacefile
from routing.accounts import MAX_SLOTS, MAX_WEIGHT, AccountSpec
from routing.errors import PoolFileError
from routing.model import AccountState, Plan, Setting, Strategy
from routing.pacedefault import INHERIT, UNPACED, OwnPacing, effective, whole
from routing.pacing import Pacing

FILE_STATES = (
    AccountState.ACTIVE,
    AccountState.DRAINING,
    AccountState.PAUSED,
    AccountState.DISABLED,
)  # cooling is mjgate's own, with a deadline


@dataclass(frozen=True)
class PoolFile:
    strategy: Strategy = Strategy.LEAST_BUSY
    accounts: tuple[AccountSpec, ...] = ()
    pacing: Pacing | None = None  # the pool's default pacing profile


@dataclass(frozen=True)
class PoolChange:
    """One line of an apply's diff. `bot_id` None is a pool-wide change (`fields`: strategy,
    pacing: the default).

    `action`: created | updated | unchanged | removed | draining (absent from the file but
    with tasks in flight: it takes no new root work and is removed by a later apply).
    """

    bot_id: int | None
    action: str
    fields: tuple[str, ...] = field(default=())


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise PoolFileError(_line(node), "expected a single value")
    return loader.construct_object(node)


def _integer(low: int, high: int) -> Callable[[yaml.SafeLoader, yaml.Node], int]:
    def parse(loader: yaml.SafeLoader, node: yaml.Node) -> int:
        value = _scalar(loader, node)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PoolFileError(_line(node), f"expected a whole number from {low} to {high}")
        return value

    return parse


def _choice(kind: Any, allowed: Sequence[Any]) -> Callable[[yaml.SafeLoader, yaml.Node], Any]:
    def parse(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        value = _scalar(loader, node)
        if value not in [str(item) for item in allowed]:
            names = ", ".join(str(item) for item in allowed)
            raise PoolFileError(_line(node), f"expected one of {names}, got {value!r}")
        return kind(value)

    return parse


def _text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    value = _scalar(loader, node)
    if not isinstance(value, str):
        raise PoolFileError(_line(node), "expected text")
    return value


def _hours(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    value = _scalar(loader, node)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
        raise PoolFileError(_line(node), "expected a number of hours, 0 or more")
    return round(value * 3600)


def _instant(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    value = _scalar(loader, node)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise PoolFileError(_line(node), "expected an ISO 8601 date and time") from exc
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise PoolFileError(_line(node), "expected an ISO 8601 date and time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # a time without offset is UTC
    return round(value.timestamp(), 3)


def _tags(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise PoolFileError(_line(node), "expected a list of tags")
    return tuple(_text(loader, item) for item in node.value)


_ACCOUNT_FIELDS: dict[str, tuple[str, Callable[[yaml.SafeLoader, yaml.Node], Any]]] = {
    "bot_id": ("bot_id", _integer(1, 2**53)),
    "name": ("name", _text),
    "plan": ("plan", _choice(Plan, list(Plan))),
    "setting": ("setting", _choice(Setting, list(Setting))),
    "fast_hours_left": ("fast_seconds_left", _hours),
    "renews_at": ("renews_at", _instant),
    "fast_slots": ("fast_slots", _integer(0, MAX_SLOTS)),
    "relax_slots": ("relax_slots", _integer(0, MAX_SLOTS)),
    "weight": ("weight", _integer(1, MAX_WEIGHT)),
    "tags": ("tags", _tags),
    "state": ("state", _choice(AccountState, FILE_STATES)),
}


def _mapping(node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """A mapping's (key, key node, value node) triples; duplicate keys refused."""
    if not isinstance(node, yaml.MappingNode):
        raise PoolFileError(_line(node), f"expected {what} as a mapping of keys to values")
    seen: set[str] = set()
    items = []
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            raise PoolFileError(_line(key_node), "expected a plain key")
        if key in seen:
            raise PoolFileError(_line(key_node), f"'{key}' given twice")
        seen.add(key)
        items.append((key, key_node, value_node))
    return items


def _account(loader: yaml.SafeLoader, node: yaml.Node, pacing: Pacing | None) -> AccountSpec:
    """One account; `pacing` is the pool's default profile (routing/pacedefault.py)."""
    values: dict[str, Any] = {}
    own = INHERIT
    for key, key_node, value_node in _mapping(node, "an account"):
        if key == "pacing":
            null = isinstance(value_node, yaml.ScalarNode) and _scalar(loader, value_node) is None
            own = UNPACED if null else OwnPacing(keys=pacefile.parse_block(loader, value_node))
            continue
        if key not in _ACCOUNT_FIELDS:
            known = ", ".join(_ACCOUNT_FIELDS)
            raise PoolFileError(_line(key_node), f"unknown account key '{key}' (known: {known})")
        attr, parse = _ACCOUNT_FIELDS[key]
        values[attr] = parse(loader, value_node)
    if "bot_id" not in values:
        raise PoolFileError(_line(node), "an account needs a bot_id")
    if values.get("plan", Plan.STANDARD) is Plan.BASIC and values.get("relax_slots", 0) > 0:
        raise PoolFileError(_line(node), "the basic plan has no relax: relax_slots must be 0")
    profile = effective(pacing, own)
    plain = own == whole(profile)  # nothing inherited: the profile (or none) is its own
    return AccountSpec(**values, pacing=profile, own_pacing=None if plain else own)


def parse_pool_file(text: str) -> PoolFile:
    """Parse and validate a pool file; raises PoolFileError(line, reason)."""
    try:  # the reader refuses control characters as it is built, before any parsing
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise PoolFileError(0, f"not valid YAML: {exc}") from exc
    try:
        root = loader.get_single_node()
        if root is None:
            raise PoolFileError(0, "the pool file is empty: it needs an 'accounts' list")
        strategy = Strategy.LEAST_BUSY
        accounts: list[AccountSpec] = []
        found_accounts = False
        pacing = None  # the pool's default profile: parsed first, wherever it is
        for key, _, value_node in _mapping(root, "the pool file"):
            if key == "pacing":
                pacing = Pacing(**pacefile.parse_block(loader, value_node))
        for key, key_node, value_node in _mapping(root, "the pool file"):
            if key == "pacing":
                pass
            elif key == "strategy":
                strategy = _choice(Strategy, list(Strategy))(loader, value_node)
            elif key == "accounts":
                found_accounts = True
                if not isinstance(value_node, yaml.SequenceNode):
                    raise PoolFileError(_line(value_node), "expected a list of accounts")
                seen: set[int] = set()
                for item in value_node.value:
                    spec = _account(loader, item, pacing)
                    if spec.bot_id in seen:
                        raise PoolFileError(_line(item), f"bot_id {spec.bot_id} listed twice")
                    seen.add(spec.bot_id)
                    accounts.append(spec)
            else:
                raise PoolFileError(
                    _line(key_node), f"unknown key '{key}' (known: strategy, pacing, accounts)"
                )
        if not found_accounts:
            raise PoolFileError(_line(root), "the pool file needs an 'accounts' list")
        return PoolFile(strategy=strategy, accounts=tuple(accounts), pacing=pacing)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise PoolFileError(line, f"not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise PoolFileError(0, f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def dump_pool(
    strategy: Strategy, accounts: Sequence[AccountSpec], pacing: Pacing | None = None
) -> str:
    """A pool file that `parse_pool_file` reads back to the same definitions, every field
    written out (defaults resolved); pacing as declared: the default (`pacing`) in full, each
    account's own keys (`own_pacing`; whole `pacing` when None)."""
    entries: list[dict[str, Any]] = []
    for spec in sorted(accounts, key=lambda item: item.bot_id):
        entry: dict[str, Any] = {
            "bot_id": spec.bot_id,
            "name": spec.name,
            "plan": str(spec.plan),
            "setting": str(spec.setting),
            "fast_hours_left": spec.effective_fast_seconds / 3600,
        }
        if spec.renews_at is not None:
            instant = datetime.fromtimestamp(spec.renews_at, UTC)
            entry["renews_at"] = instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        entry |= {
            "fast_slots": spec.effective_fast_slots,
            "relax_slots": spec.effective_relax_slots,
            "weight": spec.weight,
            "tags": list(spec.tags),
            "state": str(spec.state),
        }
        own = spec.own_pacing or whole(spec.pacing)
        if own.off:
            entry["pacing"] = None
        elif own.keys is not None:
            entry["pacing"] = pacefile.dump_keys(own.keys)
        entries.append(entry)
    document: dict[str, Any] = {"strategy": str(strategy)}
    if pacing is not None:
        document["pacing"] = pacefile.dump_block(pacing)
    document["accounts"] = entries
    # Non-ASCII is escaped: PyYAML writes some line separators (U+0085) raw and misreads them.
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None)
