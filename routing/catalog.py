"""Catalog: what the pool is. Accounts (create, update, read, remove), the strategy, the pool's
default pacing profile, the pool file (apply, seed, export) and the snapshot for metrics.

It runs its writes as the store's scripts (`PoolStore.run`: one clock, one error translation)
and reads with plain commands; routing decisions over the pool are `PoolStore`'s (the hot path).
Everything here is an operator's (or start-up's) operation: O(N) in the pool's size is fine.

Pacing inheritance (routing/pacedefault.py): each account's pacing as declared (`OwnPacing`)
is kept beside it (`Keys.pacing_own`; left out when it says no more than the profile), the
default once (`Keys.pacing_default`). The account hash carries the profile it runs by, where
the scripts read it; changing the default re-applies it to every account that takes from it.

Pool files: `apply_pool` makes the pool match the file (strategy, default pacing, every
account; an account absent from it is removed, or set draining while it has tasks in flight:
it then takes no new root work and a later apply removes it; a dry run changes nothing);
`seed_pool` creates only the accounts the pool lacks (and sets the strategy and default pacing
of an empty pool). docs/routing.md, *The pool file*, has the details.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from routing import codec, pacing, snapshot
from routing.accounts import AccountSpec, AccountStatus
from routing.errors import AccountBusyError, AccountNotFoundError, store_errors
from routing.model import PLANS, AccountState, Strategy
from routing.pacedefault import (
    INHERIT,
    OwnPacing,
    decode_default,
    effective,
    encode_default,
    inherited,
    same,
    whole,
)
from routing.pacing import Pacing
from routing.pooldiff import spec_of
from routing.poolfile import PoolChange, PoolFile, dump_pool
from routing.snapshot import PoolSnapshot
from routing.store import PoolStore, ms
from routing.storeops import StoreOp
from routing.upkeep import RENEWAL_PERIOD_SECONDS

RESCORE_BATCH = 500  # accounts rescored per script call after a strategy change


class Catalog:
    def __init__(self, store: PoolStore) -> None:
        self.store, self.redis, self.keys = store, store.redis, store.keys
        self._seen: tuple[bytes | None, Pacing | None] | None = None  # the default last read

    # -- accounts ---------------------------------------------------------------------------
    async def apply_account(self, spec: AccountSpec, *, why: str = "pool_file") -> str:
        """Create or update an account's definition: 'created', 'updated' or 'unchanged'.
        Live counters kept; a declared figure applied only when it differs from the last
        declared one (re-applying restores nothing consumed since); `why`: history's reason."""
        action, _ = await self.apply_account_diff(spec, why=why)
        return action

    async def apply_account_diff(
        self, spec: AccountSpec, *, dry_run: bool = False, why: str = "pool_file"
    ) -> tuple[str, tuple[str, ...]]:
        """`apply_account`, also naming the fields that changed; `dry_run` writes nothing.
        Its pacing: `spec.own_pacing` over the pool's default. One round trip: the default
        last read is assumed and read again after the script; if it had changed (another
        replica), the account is applied again with the new one. A replica changing the
        default re-applies the accounts it lists after writing it, so either that replica
        or this one sees the account with the new default."""
        if self._seen is None:
            await self.pacing_default()
        raw, guess = self._seen or (None, None)
        action, changed, now = await self._apply(spec, guess, dry_run, why)
        if now != raw:
            again, changed, _ = await self._apply(spec, self._decode(now), dry_run, why)
            action = action if action == "created" else again
        return action, changed

    async def _apply(
        self, spec: AccountSpec, default: Pacing | None, dry_run: bool, why: str = "pool_file"
    ) -> tuple[str, tuple[str, ...], bytes | None]:
        """One round trip on the store's pipe: the pool's default and the account's
        declaration as they were, and the script; then the declaration written when it
        changed (left out when it says no more than the profile; a dry run writes nothing)."""
        spec.check()
        declared = spec.own_pacing or whole(spec.pacing)
        profile = effective(default, declared)
        own, field, key = declared.encode(), str(spec.bot_id), self.keys.pacing_own()
        pipe = self.store.pipe
        script = self.store.run(
            StoreOp.APPLY_ACCOUNT, "apply_account", spec.bot_id, spec.name, spec.plan.value,
            spec.setting.value, max(0, spec.effective_fast_seconds),
            "" if spec.renews_at is None else ms(spec.renews_at), spec.effective_fast_slots,
            spec.effective_relax_slots, spec.weight,
            json.dumps(list(spec.tags), separators=(",", ":")), spec.state.value,
            PLANS[spec.plan].fast_seconds_per_month, int(dry_run),
            pacing.profile_json(profile, ms(self.store.clock())),
            RENEWAL_PERIOD_SECONDS * 1000, why)  # fmt: skip
        async with store_errors(StoreOp.APPLY_ACCOUNT, self.store.timeout):
            now, was, reply = await asyncio.gather(
                pipe.send(b"GET", self.keys.pacing_default()),
                pipe.send(b"HGET", key, field),
                script,
            )
            keep = None if own == whole(profile).encode() else own  # absent reads as whole
            if not dry_run and (None if was is None else codec.text(was)) != keep:
                await pipe.call(
                    *((b"HDEL", key, field) if keep is None else (b"HSET", key, field, keep))
                )
        action, changed = codec.text(reply[0]), tuple(codec.text(item) for item in reply[1:])
        before = OwnPacing.decode(codec.text(was)) if was is not None else None
        if action == "unchanged" and (before or whole(profile)) != declared:
            action, changed = "updated", ("pacing",)  # the same profile, declared anew
        return action, changed, now

    async def get_account(self, bot_id: int) -> AccountStatus | None:
        async with (
            store_errors(StoreOp.GET_ACCOUNT, self.store.timeout),
            self.redis.pipeline(transaction=False) as pipe,
        ):
            pipe.hgetall(self.keys.account(bot_id))
            pipe.lrange(self.keys.account_history(bot_id), 0, -1)
            pipe.hget(self.keys.pacing_own(), str(bot_id))
            pipe.get(self.keys.pacing_default())
            raw, history, own, default = await pipe.execute()
        if not raw:
            return None
        status = codec.account_status(bot_id, codec.fields(raw), self.store.clock(), history)
        return self._declared(status, own, self._decode(default))

    async def list_accounts(self) -> list[AccountStatus]:
        """Every account, by bot_id, without history (admin use: reads the whole pool)."""
        async with store_errors(StoreOp.LIST_ACCOUNTS, self.store.timeout):
            ids = sorted(int(item) for item in await self.redis.smembers(self.keys.accounts()))
            async with self.redis.pipeline(transaction=False) as pipe:
                for bot_id in ids:
                    pipe.hgetall(self.keys.account(bot_id))
                pipe.hgetall(self.keys.pacing_own())
                pipe.get(self.keys.pacing_default())
                *raws, owns, default = await pipe.execute()
        owned, pool, now = codec.fields(owns), self._decode(default), self.store.clock()
        statuses = [
            codec.account_status(bot_id, codec.fields(raw), now)
            for bot_id, raw in zip(ids, raws, strict=True)
            if raw
        ]
        return [self._declared(s, owned.get(str(s.bot_id)), pool) for s in statuses]

    @staticmethod
    def _declared(status: AccountStatus, own: object, pool: Pacing | None) -> AccountStatus:
        """`status` with its pacing as declared (no record: its profile is its own, whole)."""
        mine = OwnPacing.decode(codec.text(own)) if own is not None else whole(status.pacing)
        return replace(status, own_pacing=mine, inherited=inherited(pool, mine))

    async def remove_account(self, bot_id: int, *, force: bool = False) -> None:
        """Remove an account; AccountBusyError while it has tasks in flight, unless `force`
        (their reservations still settle later, touching nothing but themselves). Its last
        renewal is kept (`Keys.renewed`): creating it again never grants that one twice."""
        await self._keep_renewal(bot_id)
        reply = await self.store.run(StoreOp.REMOVE_ACCOUNT, "remove_account", bot_id, int(force))
        if codec.text(reply[0]) == "E":
            if codec.text(reply[1]) == "busy":
                raise AccountBusyError(bot_id, int(reply[2]))
            raise AccountNotFoundError(bot_id)
        async with store_errors(StoreOp.REMOVE_ACCOUNT, self.store.timeout):
            await self.redis.hdel(self.keys.pacing_own(), str(bot_id))

    async def _keep_renewal(self, bot_id: int) -> None:
        """apply_account.lua's `renewed` mark, from the account about to go: a renewal moved
        `rn` on past the declared `drn`, a period after the last one granted."""
        async with store_errors(StoreOp.REMOVE_ACCOUNT, self.store.timeout):
            rn, drn = await self.redis.hmget(self.keys.account(bot_id), ["rn", "drn"])
            if rn is not None and drn is not None and float(rn) > float(drn):
                last = int(float(rn)) - RENEWAL_PERIOD_SECONDS * 1000
                kept = await self.redis.hget(self.keys.renewed(), str(bot_id))
                if kept is None or last > float(kept):
                    await self.redis.hset(self.keys.renewed(), str(bot_id), str(last))

    async def set_state(
        self, bot_id: int, state: AccountState, *, until: float | None = None, reason: str = ""
    ) -> AccountStatus:
        """`PoolStore.set_state`, then the account as it is now."""
        await self.store.set_state(bot_id, state, until=until, reason=reason)
        if (status := await self.get_account(bot_id)) is None:  # removed in between
            raise AccountNotFoundError(bot_id)
        return status

    # -- the pool's settings ------------------------------------------------------------------
    async def get_strategy(self) -> Strategy:
        async with store_errors(StoreOp.GET_STRATEGY, self.store.timeout):
            value = await self.redis.hget(self.keys.pool_meta(), "strategy")
        return Strategy(codec.text(value)) if value else Strategy.LEAST_BUSY

    async def set_strategy(self, strategy: Strategy) -> None:
        """Switch the pool's strategy and rescore every account, in batches (an admin
        operation: O(N), but never one long script). Decisions made meanwhile are still
        correct; only their order among eligible accounts may follow either strategy."""
        async with store_errors(StoreOp.SET_STRATEGY, self.store.timeout):
            await self.redis.hset(self.keys.pool_meta(), "strategy", strategy.value)
            batch: list[str] = []
            async for member in self.redis.sscan_iter(self.keys.accounts(), count=RESCORE_BATCH):
                batch.append(codec.text(member))
                if len(batch) >= RESCORE_BATCH:
                    await self.store.run(StoreOp.SET_STRATEGY, "rescore", *batch)
                    batch = []
            if batch:
                await self.store.run(StoreOp.SET_STRATEGY, "rescore", *batch)

    async def pacing_default(self) -> Pacing | None:
        """The pool's default pacing profile (None: none)."""
        async with store_errors(StoreOp.PACING_DEFAULT, self.store.timeout):
            return self._decode(await self.store.pipe.call(b"GET", self.keys.pacing_default()))

    def _decode(self, raw: bytes | None) -> Pacing | None:
        if self._seen is None or self._seen[0] != raw:
            self._seen = (raw, None if raw is None else decode_default(codec.text(raw)))
        return self._seen[1]

    async def set_pacing_default(self, profile: Pacing | None) -> list[int]:
        """Set (None: remove) the pool's default and re-apply it to every account that takes
        from it (O(N) in the pool's size); returns the accounts whose profile changed."""
        await self._store_default(profile)
        changed = []
        for status in await self.list_accounts():
            if not same(effective(profile, status.own_pacing or INHERIT), status.pacing):
                await self._apply(spec_of(status), profile, dry_run=False)
                changed.append(status.bot_id)
        return changed

    async def _store_default(self, profile: Pacing | None) -> None:
        async with store_errors(StoreOp.SET_PACING_DEFAULT, self.store.timeout):
            if profile is None:
                await self.redis.delete(self.keys.pacing_default())
            else:
                await self.redis.set(self.keys.pacing_default(), encode_default(profile))

    # -- the pool as a whole ----------------------------------------------------------------
    async def pool_snapshot(self, per_account: bool = False) -> PoolSnapshot:
        """Totals for metrics in two round trips at most, whatever the pool's size."""
        store = self.store
        return await snapshot.read(self.redis, self.keys, store.timeout, per_account, store.clock())

    async def apply_pool(self, pool_file: PoolFile, *, dry_run: bool = False) -> list[PoolChange]:
        """Make the pool match the file (the module's docstring)."""
        changes = await self._settings(pool_file, dry_run=dry_run)
        for spec in pool_file.accounts:
            action, fields, _ = await self._apply(spec, pool_file.pacing, dry_run)
            changes.append(PoolChange(spec.bot_id, action, fields))
        declared = {spec.bot_id for spec in pool_file.accounts}
        for status in await self.list_accounts():
            if status.bot_id not in declared:
                changes.append(PoolChange(status.bot_id, await self._retire(status, dry_run)))
        return changes

    async def seed_pool(self, pool_file: PoolFile) -> list[PoolChange]:
        """Create the accounts the pool lacks (the module's docstring)."""
        existing = {status.bot_id for status in await self.list_accounts()}
        changes = [] if existing else await self._settings(pool_file, dry_run=False)
        for spec in pool_file.accounts:
            if spec.bot_id in existing:
                changes.append(PoolChange(spec.bot_id, "unchanged"))
            else:
                changes.append(PoolChange(spec.bot_id, *await self.apply_account_diff(spec)))
        return changes

    async def _settings(self, pool_file: PoolFile, *, dry_run: bool) -> list[PoolChange]:
        """The file's strategy and default pacing (its accounts are applied after, by it)."""
        changes = []
        if await self.get_strategy() is not pool_file.strategy:
            changes.append(PoolChange(None, "updated", ("strategy",)))
            if not dry_run:
                await self.set_strategy(pool_file.strategy)
        if not same(await self.pacing_default(), pool_file.pacing):
            changes.append(PoolChange(None, "updated", ("pacing",)))
            if not dry_run:
                await self._store_default(pool_file.pacing)
        return changes

    async def _retire(self, status: AccountStatus, dry_run: bool) -> str:
        if dry_run:
            return "draining" if status.in_flight else "removed"
        try:
            await self.remove_account(status.bot_id)
        except AccountBusyError:
            if status.state is not AccountState.DRAINING:
                why = "absent_from_pool_file"
                await self.store.set_state(status.bot_id, AccountState.DRAINING, reason=why)
            return "draining"
        except AccountNotFoundError:
            pass  # removed meanwhile
        return "removed"

    async def export_pool(self) -> str:
        """Every account's declared definition, the strategy and the default pacing, as a
        pool file (readable by `parse_pool_file`)."""
        specs = [spec_of(status) for status in await self.list_accounts()]
        return dump_pool(await self.get_strategy(), specs, await self.pacing_default())
