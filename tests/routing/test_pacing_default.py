"""The pool's default pacing profile: accounts without their own take it whole, accounts with
some keys of their own keep them when the default changes, opted-out accounts stay unpaced;
routing honours what is inherited; the pool file's top-level `pacing` is the same object."""

from __future__ import annotations

from dataclasses import replace

from redis.asyncio import Redis

from routing.accounts import AccountSpec, AccountStatus
from routing.catalog import Catalog
from routing.model import Plan
from routing.pacedefault import UNPACED, OwnPacing, keys_of
from routing.pacing import Pacing, Tier
from routing.poolfile import PoolChange, parse_pool_file
from routing.results import Outcome
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, reserved, staged
from tests.routing.test_pacing import at, root

DEFAULT = Pacing(timezone="Europe/Berlin", min_gap_seconds=60, fast_cap=100)


async def account(catalog: Catalog, bot_id: int) -> AccountStatus:
    status = await catalog.get_account(bot_id)
    assert status is not None
    return status


def spec(bot_id: int, own: OwnPacing | None = None) -> AccountSpec:
    return AccountSpec(bot_id=bot_id, plan=Plan.PRO, own_pacing=own)


async def test_accounts_inherit_the_default_and_keep_their_own_keys_when_it_changes(
    catalog: Catalog,
) -> None:
    await catalog.apply_account(spec(1))  # created before the default: inherits it too
    assert await catalog.set_pacing_default(DEFAULT) == [1]
    await catalog.apply_account(spec(2, OwnPacing(keys={"tier": Tier.BACKUP})))
    await catalog.apply_account(spec(3, UNPACED))
    await catalog.apply_account(spec(4))
    assert await catalog.pacing_default() == DEFAULT
    assert (await account(catalog, 1)).pacing == DEFAULT
    assert (await account(catalog, 4)).inherited == (
        "timezone", "active_hours", "actions_only_hours", "fast_cap", "relax_cap",
        "caps_count_children", "min_gap_seconds", "gap_jitter_seconds", "tier",
    )  # fmt: skip
    assert (await account(catalog, 2)).pacing == replace(DEFAULT, tier=Tier.BACKUP)
    assert "tier" not in (await account(catalog, 2)).inherited
    assert (await account(catalog, 3)).pacing is None
    assert (await account(catalog, 3)).inherited == ()

    changed = replace(DEFAULT, min_gap_seconds=5, tier=Tier.PRIMARY)
    assert await catalog.set_pacing_default(changed) == [1, 2, 4]
    assert (await account(catalog, 1)).pacing == changed
    backup = await account(catalog, 2)
    assert backup.pacing == replace(changed, tier=Tier.BACKUP)  # its own key survives
    assert backup.own_pacing == OwnPacing(keys={"tier": Tier.BACKUP})
    assert (await account(catalog, 3)).pacing is None

    assert await catalog.set_pacing_default(None) == [1, 2, 4]
    assert (await account(catalog, 1)).pacing is None  # nothing left to inherit
    assert (await account(catalog, 2)).pacing == Pacing(tier=Tier.BACKUP)  # over built-ins
    assert await catalog.pacing_default() is None
    assert await catalog.set_pacing_default(None) == []  # nothing changes twice


async def test_a_removed_account_leaves_no_declaration_behind(
    catalog: Catalog, redis: Redis
) -> None:
    await catalog.apply_account(spec(1, UNPACED))
    await catalog.remove_account(1)
    assert await redis.hlen(catalog.keys.pacing_own()) == 0
    await catalog.set_pacing_default(DEFAULT)
    await catalog.apply_account(spec(1))  # a new account of the same id inherits
    assert (await account(catalog, 1)).pacing == DEFAULT


async def test_accounts_paced_before_the_default_existed_keep_their_profile(
    catalog: Catalog, redis: Redis
) -> None:
    own = Pacing(min_gap_seconds=30)
    await catalog.apply_account(replace(spec(1), pacing=own))
    await redis.delete(catalog.keys.pacing_own())  # as a pool kept before inheritance
    assert (await account(catalog, 1)).own_pacing == OwnPacing(keys=keys_of(own))
    assert await catalog.set_pacing_default(DEFAULT) == []
    assert (await account(catalog, 1)).pacing == own


async def test_routing_honours_an_inherited_gap(
    catalog: Catalog, store: PoolStore, clock: FakeClock
) -> None:
    await catalog.set_pacing_default(Pacing(min_gap_seconds=60))
    await catalog.apply_account(spec(1))
    reserved(await root(store, "r1"))
    assert staged(await root(store, "r2")).reason == "paced:gap"
    await store.settle("r1", Outcome.COMPLETED)
    clock.advance(60 - 0.001)
    assert await store.dispatch_staged(10, 60) == []
    clock.advance(0.001)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r2"]


async def test_routing_honours_inherited_hours_and_an_override(
    catalog: Catalog, store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T21:30", "Europe/Berlin")
    await catalog.set_pacing_default(
        Pacing(timezone="Europe/Berlin", active_hours=("22:00-06:00",))
    )
    await catalog.apply_account(spec(1))
    assert staged(await root(store, "r1")).reason == "paced:outside_hours"
    await catalog.apply_account(spec(2, OwnPacing(keys={"active_hours": ()})))  # always on
    assert reserved(await root(store, "r2")).bot_id == 2
    clock.advance(30 * 60)  # 22:00 Berlin: account 1's window opens
    got = await store.dispatch_staged(10, 60)
    assert [(r.task_id, r.bot_id) for r in got] == [("r1", 1)]  # type: ignore[union-attr]


FILE = """\
pacing: {timezone: Europe/Berlin, min_gap_seconds: 60, daily_caps: {fast: 100}}
accounts:
  - {bot_id: 1, plan: pro}
  - {bot_id: 2, plan: pro, pacing: {tier: backup}}
  - {bot_id: 3, plan: pro, pacing: null}
"""


async def test_a_pool_file_sets_the_same_default_and_export_writes_it_back(
    catalog: Catalog,
) -> None:
    pool = parse_pool_file(FILE)
    assert pool.pacing == DEFAULT
    assert [c.action for c in await catalog.apply_pool(pool)] == ["updated"] + ["created"] * 3
    assert await catalog.pacing_default() == DEFAULT  # what the API reads
    assert [(await account(catalog, n)).pacing for n in (1, 2, 3)] == [
        DEFAULT, replace(DEFAULT, tier=Tier.BACKUP), None,
    ]  # fmt: skip
    text = await catalog.export_pool()
    again = parse_pool_file(text)
    assert again.pacing == DEFAULT
    assert [a.pacing for a in again.accounts] == [a.pacing for a in pool.accounts]
    assert [a.own_pacing for a in again.accounts] == [a.own_pacing for a in pool.accounts]
    assert "pacing: null" in text
    assert all(c.action == "unchanged" for c in await catalog.apply_pool(again))

    changes = await catalog.apply_pool(parse_pool_file(FILE.replace("60", "20")))
    assert [c for c in changes if c.action != "unchanged"] == [
        PoolChange(None, "updated", ("pacing",)),
        PoolChange(1, "updated", ("min_gap_seconds",)),
        PoolChange(2, "updated", ("min_gap_seconds",)),
    ]


async def test_declaring_an_inherited_value_as_ones_own_is_a_change(catalog: Catalog) -> None:
    await catalog.set_pacing_default(DEFAULT)
    await catalog.apply_account(spec(1))
    action = await catalog.apply_account(spec(1, OwnPacing(keys={"min_gap_seconds": 60.0})))
    assert action == "updated"  # the same profile, but the gap no longer follows the default
    await catalog.set_pacing_default(replace(DEFAULT, min_gap_seconds=1))
    assert (await account(catalog, 1)).pacing == DEFAULT


async def test_seeding_an_empty_pool_sets_the_default_and_a_full_one_keeps_its_own(
    catalog: Catalog,
) -> None:
    await catalog.seed_pool(parse_pool_file(FILE))
    assert await catalog.pacing_default() == DEFAULT
    await catalog.set_pacing_default(None)
    changes = await catalog.seed_pool(parse_pool_file(FILE + "  - {bot_id: 4}\n"))
    assert [c.action for c in changes] == ["unchanged"] * 3 + ["created"]
    assert await catalog.pacing_default() is None
    assert (await account(catalog, 4)).pacing is None


async def test_a_default_changed_by_another_replica_is_seen_by_the_next_apply(
    catalog: Catalog, store: PoolStore
) -> None:
    assert await catalog.pacing_default() is None  # this replica has read it: none
    await Catalog(store).set_pacing_default(DEFAULT)  # another replica sets one
    assert await catalog.apply_account(spec(1)) == "created"
    assert (await account(catalog, 1)).pacing == DEFAULT  # applied again with the new one
    assert await catalog.pacing_default() == DEFAULT


async def test_declarations_are_kept_only_when_they_say_more_than_the_profile(
    catalog: Catalog, redis: Redis
) -> None:
    await catalog.apply_account(spec(1))
    await catalog.apply_account(replace(spec(2), pacing=Pacing(min_gap_seconds=5)))
    assert await redis.hlen(catalog.keys.pacing_own()) == 0  # a pool without a default
    await catalog.set_pacing_default(DEFAULT)
    assert await redis.hkeys(catalog.keys.pacing_own()) == [b"1"]  # 1 inherits: kept
