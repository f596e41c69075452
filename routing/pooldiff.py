"""An account's declared definition read back from the pool, and an apply's changes described
field by field (from, to) for the logs.

`spec_of(status)` is what the operator last declared for an account, its renewal date as
renewals moved it on (what `export_pool` writes and what re-applying it changes nothing of);
`describe` turns a `PoolChange` into (field, from, to) triples, by the field names an apply
reports.
"""

from __future__ import annotations

from typing import Any

from routing.accounts import AccountSpec, AccountStatus
from routing.pacefile import KEYS, dump_block
from routing.pacing import Pacing
from routing.poolfile import PoolChange, PoolFile


def spec_of(status: AccountStatus) -> AccountSpec:
    """The account's declared definition (its pacing as declared: own keys or inherited),
    with its next renewal: the declared date as renewals moved it on. A past date that was
    already renewed would say nothing true (apply_account.lua grants no renewal twice)."""
    return AccountSpec(
        bot_id=status.bot_id,
        name=status.name,
        plan=status.plan,
        setting=status.declared_setting,
        fast_seconds_left=status.declared_fast_seconds,
        renews_at=status.renews_at,
        fast_slots=status.fast_slots,
        relax_slots=status.relax_slots,
        weight=status.weight,
        tags=status.tags,
        state=status.declared_state or status.state,
        pacing=status.pacing,
        own_pacing=status.own_pacing,
    )


def _block(profile: Pacing | None) -> dict[str, Any] | None:
    return None if profile is None else dump_block(profile)


def _pacing(profile: Pacing | None) -> dict[str, Any]:
    """The profile whole (`pacing`) and key by key: an apply names the keys that changed
    (`timezone`, `daily_caps`, ...); None for each when the account is unpaced."""
    block = _block(profile)
    return {"pacing": block, **{key: (block or {}).get(key) for key in KEYS}}


def declared(status: AccountStatus) -> dict[str, Any]:
    """An account's declared definition, by the field names an apply reports."""
    return {
        "name": status.name,
        "plan": str(status.plan),
        "setting": str(status.declared_setting),
        "fast_seconds_left": status.declared_fast_seconds,
        "renews_at": status.declared_renews_at,
        "fast_slots": status.fast_slots,
        "relax_slots": status.relax_slots,
        "weight": status.weight,
        "tags": list(status.tags),
        "state": str(status.declared_state or status.state),
        **_pacing(status.pacing),
    }


def specified(spec: AccountSpec) -> dict[str, Any]:
    """A definition from a file, by the same field names (defaults resolved)."""
    return {
        "name": spec.name,
        "plan": str(spec.plan),
        "setting": str(spec.setting),
        "fast_seconds_left": spec.effective_fast_seconds,
        "renews_at": spec.renews_at,
        "fast_slots": spec.effective_fast_slots,
        "relax_slots": spec.effective_relax_slots,
        "weight": spec.weight,
        "tags": list(spec.tags),
        "state": str(spec.state),
        **_pacing(spec.pacing),
    }


def describe(
    change: PoolChange,
    before: dict[int, AccountStatus],
    pool_file: PoolFile,
    strategy: str,
    pacing: Pacing | None = None,
) -> list[tuple[str, Any, Any]]:
    """(field, from, to) for each field `change` names; `before`: the accounts before the
    apply; `strategy` and `pacing`: the pool's strategy and default pacing before it."""
    if change.bot_id is None:
        pool_was = {"strategy": strategy, "pacing": _block(pacing)}
        pool_will = {"strategy": str(pool_file.strategy), "pacing": _block(pool_file.pacing)}
        return [(name, pool_was[name], pool_will[name]) for name in change.fields]
    old = before.get(change.bot_id)
    specs = {spec.bot_id: spec for spec in pool_file.accounts}
    new = specs.get(change.bot_id)
    was = declared(old) if old is not None else {}
    will = specified(new) if new is not None else {}
    names = change.fields or tuple(was if change.action in ("removed", "draining") else will)
    triples = [(name, was.get(name), will.get(name)) for name in names]
    # a created or removed account lists its fields: not those it has none of (an unpaced
    # account's pacing keys were `{"from": null, "to": null}` lines, found from outside)
    return [(name, old, new) for name, old, new in triples if old is not None or new is not None]
