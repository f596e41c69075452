"""Start-up pool loading, and watching for a store that was reset under the running service.

`run(gate)` (the lifespan's task): register the scripts, move keys an earlier version left to
today's layout (gateway.upgrade), apply the pool file (if any) in its
mode (MJGATE_POOL_FILE_MODE: `seed` creates only the accounts the pool lacks; `authoritative`
makes the pool match the file), apply MJGATE_STRATEGY, and mark the store with an epoch (a
field of the pool's meta hash). Every change an apply makes is logged (`pool_change`: which
account, which field, from what to what). Then, every MJGATE_RECONCILE_INTERVAL, it checks
the epoch: a store that lost it was reset (flushed, or restarted without persistence). That is
logged as an error (`store_reset`), the pool file is applied again and the epoch rewritten.
Retried until Redis answers; a pool file that does not load is reported in `gate.pool_error`
(`mjgate serve` refuses to start with one: see gateway.cli.main).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from gateway import logs
from gateway.upgrade import upgrade_layout
from routing.errors import RoutingError, StoreError, store_errors, translated
from routing.pooldiff import describe
from routing.poolfile import PoolChange, PoolFile, parse_pool_file
from routing.storeops import StoreOp
from routing.upkeep import recount_fast

if TYPE_CHECKING:
    from gateway.state import MjGate

EPOCH_FIELD = "epoch"


def read_pool_file(gate: MjGate) -> PoolFile | None:
    path = gate.settings.pool_file
    return None if path is None else parse_pool_file(path.read_text())


async def apply_file(gate: MjGate, pool: PoolFile, *, why: str) -> list[PoolChange]:
    """Apply `pool` in the configured mode and log every change (`why`: start or reset)."""
    catalog = gate.catalog
    mode = gate.settings.pool_file_mode
    before = {status.bot_id: status for status in await catalog.list_accounts()}
    strategy = str(await catalog.get_strategy())
    default = await catalog.pacing_default()
    changes: list[PoolChange]
    if mode == "authoritative":
        changes = await catalog.apply_pool(pool)
    else:
        changes = await catalog.seed_pool(pool)
    for change in changes:
        if change.action == "unchanged":
            continue
        fields = {
            name: {"from": old, "to": new}
            for name, old, new in describe(change, before, pool, strategy, default)
        }
        logs.event("pool_change", bot_id=change.bot_id, action=change.action, fields=fields,
                   mode=mode, why=why)  # fmt: skip
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    logs.event("pool_applied", file=str(gate.settings.pool_file), mode=mode, why=why,
               counts=counts)  # fmt: skip
    return changes


async def _epoch(gate: MjGate) -> str | None:
    value = await translated(
        StoreOp.EPOCH, gate.redis.hget(gate.store.keys.pool_meta(), EPOCH_FIELD)
    )
    return None if value is None else value.decode() if isinstance(value, bytes) else str(value)


async def _mark(gate: MjGate) -> None:
    meta = gate.store.keys.pool_meta()
    await translated(StoreOp.EPOCH, gate.redis.hsetnx(meta, EPOCH_FIELD, uuid.uuid4().hex))


async def load(gate: MjGate, *, why: str = "start") -> None:
    """Scripts, layout, fast-time aggregates, pool file, strategy override, epoch; raises
    StoreError or a file error."""
    settings = gate.settings
    await gate.store.load_scripts()
    async with store_errors(StoreOp.UPGRADE):
        await upgrade_layout(gate.redis, gate.store.keys)
    await recount_fast(gate.store)
    await _mark(gate)  # first: a file that does not load leaves a marked store all the same
    pool = read_pool_file(gate)
    if pool is not None:
        await apply_file(gate, pool, why=why)
    if settings.strategy is not None:
        await gate.catalog.set_strategy(settings.strategy)


async def load_pool(gate: MjGate) -> None:
    """Load until Redis answers; a pool file that does not load ends it with `pool_error`."""
    while True:
        try:
            await load(gate)
            gate.pool_loaded, gate.pool_error = True, ""
            return
        except StoreError as exc:
            gate.pool_error = f"store unavailable ({exc.op})"
            await asyncio.sleep(1.0)
        except (RoutingError, OSError, ValueError) as exc:
            gate.pool_error = str(exc)
            logs.event("pool_file_error", logging.ERROR, error=str(exc))
            return


async def check_epoch(gate: MjGate) -> bool:
    """True if the store had lost its epoch (it was reset) and was loaded again. The reset is
    logged once: a reload that fails (Redis still starting, a timeout) is tried again at the
    next check without a second `store_reset`."""
    if await _epoch(gate) is not None:
        gate.reloading = False
        return False
    if not gate.reloading:
        accounts = len(await gate.catalog.list_accounts())
        logs.event(
            "store_reset",
            logging.ERROR,
            accounts=accounts,
            pool_file=str(gate.settings.pool_file or ""),
            detail="Redis lost mjgate's data (flushed, or restarted without persistence); "
            "tasks accepted before are unknown; the pool file, if one is set, is applied again",
        )
        gate.reloading = True
    try:
        await load(gate, why="store_reset")
    except StoreError:
        raise
    except (RoutingError, OSError, ValueError) as exc:
        gate.pool_error = str(exc)
        logs.event("pool_file_error", logging.ERROR, error=str(exc))
    gate.reloading = False
    return True


async def run(gate: MjGate) -> None:
    """The lifespan's task: load the pool, then watch the store's epoch."""
    await load_pool(gate)
    while True:
        await asyncio.sleep(gate.settings.reconcile_interval)
        try:
            await check_epoch(gate)
        except StoreError:
            continue  # an outage: readiness reports it; the epoch is checked once it is back
