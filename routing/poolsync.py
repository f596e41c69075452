"""Making the pool match a pool file, seeding a pool from one, and writing the pool back out.

`apply_pool`: the file is the truth. Applying it sets the strategy, applies every account in
it (a declared figure only when it differs from the last declared one: see
`PoolStore.apply_account`), and retires every account absent from it: removed at once, or set
draining while it still has tasks in flight (it then takes no new root work, its child tasks
still run, and a later apply removes it). A dry run reads the same diff and changes nothing.

`seed_pool`: the file only seeds. Accounts it lists that the pool lacks are created (and the
strategy set when the pool had no account at all); accounts already there, and accounts the
file does not list, are left as they are.

`describe`: each change as (field, from, to) triples, for the logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routing.accounts import AccountSpec, AccountStatus
from routing.errors import AccountBusyError, AccountNotFoundError
from routing.model import AccountState
from routing.poolfile import PoolChange, PoolFile, dump_pool

if TYPE_CHECKING:
    from routing.store import PoolStore


async def apply_pool(store: PoolStore, pool_file: PoolFile, *, dry_run: bool) -> list[PoolChange]:
    changes: list[PoolChange] = []
    if await store.get_strategy() is not pool_file.strategy:
        changes.append(PoolChange(None, "updated", ("strategy",)))
        if not dry_run:
            await store.set_strategy(pool_file.strategy)
    for spec in pool_file.accounts:
        action, changed = await store.apply_account_diff(spec, dry_run=dry_run)
        changes.append(PoolChange(spec.bot_id, action, changed))
    declared = {spec.bot_id for spec in pool_file.accounts}
    for status in await store.list_accounts():
        if status.bot_id not in declared:
            changes.append(PoolChange(status.bot_id, await _retire(store, status, dry_run)))
    return changes


async def seed_pool(store: PoolStore, pool_file: PoolFile) -> list[PoolChange]:
    existing = {status.bot_id for status in await store.list_accounts()}
    changes: list[PoolChange] = []
    if not existing and await store.get_strategy() is not pool_file.strategy:
        changes.append(PoolChange(None, "updated", ("strategy",)))
        await store.set_strategy(pool_file.strategy)
    for spec in pool_file.accounts:
        if spec.bot_id in existing:
            changes.append(PoolChange(spec.bot_id, "unchanged"))
        else:
            action, changed = await store.apply_account_diff(spec)
            changes.append(PoolChange(spec.bot_id, action, changed))
    return changes


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
    }


def describe(
    change: PoolChange, before: dict[int, AccountStatus], pool_file: PoolFile, strategy: str
) -> list[tuple[str, Any, Any]]:
    """(field, from, to) for each field `change` names; `before`: the accounts before the
    apply; `strategy`: the pool's strategy before it."""
    if change.bot_id is None:
        return [("strategy", strategy, str(pool_file.strategy))]
    old = before.get(change.bot_id)
    specs = {spec.bot_id: spec for spec in pool_file.accounts}
    new = specs.get(change.bot_id)
    was = declared(old) if old is not None else {}
    will = specified(new) if new is not None else {}
    names = change.fields or tuple(was if change.action in ("removed", "draining") else will)
    return [(name, was.get(name), will.get(name)) for name in names]


async def _retire(store: PoolStore, status: AccountStatus, dry_run: bool) -> str:
    if dry_run:
        return "draining" if status.in_flight else "removed"
    try:
        await store.remove_account(status.bot_id)
    except AccountBusyError:
        if status.state is not AccountState.DRAINING:
            await store.set_state(
                status.bot_id, AccountState.DRAINING, reason="absent_from_pool_file"
            )
        return "draining"
    except AccountNotFoundError:
        pass  # removed meanwhile
    return "removed"


async def export_pool(store: PoolStore) -> str:
    """Every account's declared definition, and the strategy, as a pool file."""
    specs = [
        AccountSpec(
            bot_id=status.bot_id,
            name=status.name,
            plan=status.plan,
            setting=status.declared_setting,
            fast_seconds_left=status.declared_fast_seconds,
            renews_at=status.declared_renews_at,
            fast_slots=status.fast_slots,
            relax_slots=status.relax_slots,
            weight=status.weight,
            tags=status.tags,
            state=status.declared_state or status.state,
            pacing=status.pacing,
        )
        for status in await store.list_accounts()
    ]
    return dump_pool(await store.get_strategy(), specs)
