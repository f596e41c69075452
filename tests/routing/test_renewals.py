"""A renewal is granted once: pool files (dated, undated, without the account) and exports,
applied in any order around renewals, never grant one renewal twice."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from routing.catalog import Catalog
from routing.model import PLANS, Plan
from routing.poolfile import PoolChange, parse_pool_file
from routing.store import PoolStore
from routing.upkeep import RENEWAL_PERIOD_SECONDS
from tests.routing.helpers import FakeClock

MONTHLY = PLANS[Plan.PRO].fast_seconds_per_month
DAY = 86400.0


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _dated(renews_at: float) -> str:
    return (
        "accounts:\n  - {bot_id: 1, plan: pro, fast_hours_left: 2,"
        f" renews_at: '{_iso(renews_at)}'}}\n  - {{bot_id: 2}}\n"
    )


UNDATED = "accounts:\n  - {bot_id: 1, plan: pro, fast_hours_left: 2}\n  - {bot_id: 2}\n"
WITHOUT = "accounts:\n  - {bot_id: 2}\n"  # account 1 removed


async def _apply(catalog: Catalog, text: str) -> list[PoolChange]:
    return await catalog.apply_pool(parse_pool_file(text))


async def _fast_left(catalog: Catalog) -> int:
    account = await catalog.get_account(1)
    assert account is not None
    return account.fast_seconds_left


async def test_a_stale_export_after_a_renewal_and_an_undated_file_grants_nothing(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    renews = clock() + DAY
    await _apply(catalog, _dated(renews))
    stale = await catalog.export_pool()  # renews_at: the declared date, still ahead
    clock.advance(DAY + 60)
    assert (await store.tick()).renewed == (1,)
    assert await _fast_left(catalog) == MONTHLY
    await store.set_fast_time(1, 3600)  # spent since, as /info says
    await _apply(catalog, UNDATED)  # the renewal date is gone ...
    changes = await _apply(catalog, stale)  # ... and comes back from the stale export
    assert PoolChange(1, "updated", ("renews_at",)) in changes
    assert (await store.tick()).renewed == ()  # not granted again
    assert await _fast_left(catalog) == 3600
    account = await catalog.get_account(1)
    assert account is not None and account.renews_at == renews + RENEWAL_PERIOD_SECONDS
    clock.advance(RENEWAL_PERIOD_SECONDS)  # the next one is granted, once
    assert (await store.tick()).renewed == (1,)
    assert (await store.tick()).renewed == ()


async def _renewed_once(store: PoolStore, catalog: Catalog, clock: FakeClock) -> float:
    """An account declared to renew in a day, that day passed and the renewal granted: the
    declared date."""
    renews = clock() + DAY
    await _apply(catalog, _dated(renews))
    clock.advance(DAY + 60)
    assert (await store.tick()).renewed == (1,)
    return renews


async def test_the_export_writes_the_next_renewal_and_reads_back_unchanged(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    renews = await _renewed_once(store, catalog, clock)
    exported = await catalog.export_pool()
    assert f"renews_at: '{_iso(renews + RENEWAL_PERIOD_SECONDS)[:19]}" in exported
    assert {c.action for c in await _apply(catalog, exported)} == {"unchanged"}
    assert {c.action for c in await _apply(catalog, _dated(renews))} == {"unchanged"}
    await _apply(catalog, UNDATED)
    await _apply(catalog, exported)  # the next date, from an undated pool
    assert (await store.tick()).renewed == ()


async def test_removing_and_creating_again_from_a_stale_file_grants_nothing(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    renews = await _renewed_once(store, catalog, clock)
    assert PoolChange(1, "removed") in await _apply(catalog, WITHOUT)
    assert PoolChange(1, "created") in await _apply(catalog, _dated(renews))
    assert (await store.tick()).renewed == ()
    account = await catalog.get_account(1)
    assert account is not None and account.renews_at == renews + RENEWAL_PERIOD_SECONDS


async def test_a_later_declared_date_still_renews(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    renews = clock() + DAY
    await _apply(catalog, _dated(renews))
    clock.advance(DAY + 60)
    assert (await store.tick()).renewed == (1,)
    clock.advance(DAY)
    await _apply(catalog, _dated(clock() - 60))  # a new date, past: renews at the next tick
    assert (await store.tick()).renewed == (1,)


@pytest.mark.parametrize("seed", range(12))
async def test_files_and_exports_in_any_order_never_renew_twice(
    store: PoolStore, catalog: Catalog, clock: FakeClock, seed: int
) -> None:
    """One schedule (a date and the dates a period apart): whatever is applied when, at
    most one renewal per date of it passed."""
    rng = random.Random(seed)
    first = clock() + DAY
    files = [_dated(first), UNDATED, WITHOUT]
    renewals = 0
    for _ in range(40):
        step = rng.choice(("apply", "apply", "export", "wait", "tick"))
        if step == "apply":
            await _apply(catalog, rng.choice(files))
        elif step == "export":
            files.append(await catalog.export_pool())
        elif step == "wait":
            clock.advance(rng.choice((DAY, 10 * DAY, RENEWAL_PERIOD_SECONDS)))
        renewals += len((await store.tick()).renewed)
        passed = 0 if clock() < first else int((clock() - first) // RENEWAL_PERIOD_SECONDS) + 1
        assert renewals <= passed, (seed, step)
