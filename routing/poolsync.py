"""Making the pool match a pool file, and writing the pool back out as one.

The file is the truth: applying it sets the strategy, applies every account in it (a declared
figure only when it differs from the last declared one: see `PoolStore.apply_account`), and
retires every account absent from it: removed at once, or set draining while it still has
tasks in flight (it then takes no new root work, its child tasks still run, and a later
apply removes it). A dry run reads the same diff and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        )
        for status in await store.list_accounts()
    ]
    return dump_pool(await store.get_strategy(), specs)
