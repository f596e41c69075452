"""Tag-limited client keys: the same rules, decided over the accounts carrying the key's tags."""

from __future__ import annotations

import pytest

from routing.accounts import AccountSpec
from routing.catalog import Catalog
from routing.errors import NoRelaxCapableAccountError
from routing.model import AccountState, Mode, Plan
from routing.results import Outcome
from routing.store import PoolStore
from tests.routing.helpers import add, reserved, root, staged


async def test_only_tagged_accounts_take_the_key_s_work(store: PoolStore) -> None:
    await add(store, 1, Plan.MEGA)  # the best by strategy, but untagged
    await add(store, 2, Plan.STANDARD, tags=("studio",), fast_slots=1)
    await add(store, 3, Plan.PRO, tags=("other",))
    assert reserved(await root(store, "t1", tags=("studio",))).bot_id == 2
    # the tagged account is busy: stage, although untagged accounts are free
    assert staged(await root(store, "t2", tags=("studio",))).reason == "fast_slots_busy"
    assert reserved(await root(store, "t3")).bot_id == 1  # untagged keys reach every account
    await store.settle("t1", Outcome.COMPLETED)
    [dispatched] = await store.dispatch_staged(32, 60)
    assert (dispatched.task_id, dispatched.bot_id) == ("t2", 2)


async def test_any_of_several_tags_and_the_strategy_among_them(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, tags=("a",), fast_slots=2)
    await add(store, 2, Plan.MEGA, tags=("b", "c"), fast_slots=2)
    await add(store, 3, Plan.MEGA)
    first = reserved(await root(store, "t1", tags=("a", "b")))
    assert first.bot_id == 2  # both idle: most fast time left breaks the tie
    assert reserved(await root(store, "t2", tags=("a", "b"))).bot_id == 1  # least busy


async def test_fallback_and_errors_look_at_tagged_accounts_only(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, tags=("studio",), fast_seconds_left=0)
    await add(store, 2, Plan.MEGA)  # plenty of fast time, but not the key's
    got = reserved(await root(store, "t1", tags=("studio",)))
    assert (got.bot_id, got.mode, got.decision) == (1, Mode.RELAX, "fallback_relax:no_fast_hours")
    await add(store, 4, Plan.BASIC, tags=("cheap",))
    with pytest.raises(NoRelaxCapableAccountError):
        await root(store, "t2", Mode.RELAX, 0, tags=("cheap",))
    with pytest.raises(NoRelaxCapableAccountError):
        await root(store, "t3", Mode.RELAX, 0, tags=("nobody",))


async def test_tag_sets_follow_account_changes(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.PRO, tags=("studio",))
    await add(store, 2, Plan.PRO)
    await catalog.apply_account(AccountSpec(bot_id=1, plan=Plan.PRO, tags=("other",)))
    await catalog.apply_account(AccountSpec(bot_id=2, plan=Plan.PRO, tags=("studio",)))
    assert reserved(await root(store, "t1", tags=("studio",))).bot_id == 2
    await store.set_state(2, AccountState.PAUSED, reason="test")
    with pytest.raises(NoRelaxCapableAccountError):  # no *active* tagged account: as untagged
        await root(store, "t2", Mode.RELAX, 0, tags=("studio",))
    await store.set_state(2, AccountState.ACTIVE, reason="test")
    await store.settle("t1", Outcome.FAILED)
    await catalog.remove_account(2)
    with pytest.raises(NoRelaxCapableAccountError):
        await root(store, "t3", Mode.RELAX, 0, tags=("studio",))
    assert reserved(await root(store, "t4", Mode.RELAX, 0, tags=("other",))).bot_id == 1
