"""A task pacing would hold past its staged timeout is refused with when to come back, not
staged to time out (staging.lua's paced_past); one a change frees in time is staged."""

from __future__ import annotations

import pytest

from routing.errors import PacedUnavailableError
from routing.model import AccountState, Mode
from routing.store import PoolStore
from tests.routing import helpers
from tests.routing.helpers import FakeClock, add, staged
from tests.routing.test_pacing import at, paced


async def test_outside_hours_for_longer_than_the_timeout_is_refused_with_retry_after(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T20:00", "Europe/Berlin")
    await paced(store, 1, timezone="Europe/Berlin", active_hours=("08:00-18:00",))
    with pytest.raises(PacedUnavailableError) as refused:
        await helpers.root(store, "r1", staged_timeout=900)
    assert refused.value.reason == "paced:outside_hours"
    # the first pacing change: local midnight (the day's counts reset), 4 h away; a lower
    # bound (the window opens at 08:00): a client coming back then is told again
    assert refused.value.retry_after == 4 * 3600
    assert await store.staged_count() == 0  # nothing left behind
    with pytest.raises(PacedUnavailableError):
        await helpers.root(store, "r2", Mode.RELAX, 0, staged_timeout=900)


async def test_a_change_within_the_timeout_stages_it(store: PoolStore, clock: FakeClock) -> None:
    at(clock, "2025-06-15T07:50", "Europe/Berlin")
    await paced(store, 1, timezone="Europe/Berlin", active_hours=("08:00-18:00",))
    assert staged(await helpers.root(store, "r1", staged_timeout=900)).reason == (
        "paced:outside_hours"
    )


async def test_a_cooling_account_waking_in_time_stages_it(
    store: PoolStore, clock: FakeClock
) -> None:
    """Not pacing's to free, but time-driven all the same: the task can wait for it."""
    at(clock, "2025-06-15T20:00", "Europe/Berlin")
    await paced(store, 1, timezone="Europe/Berlin", active_hours=("08:00-18:00",))
    await add(store, 2)
    await store.set_state(2, AccountState.COOLING, until=clock() + 600)
    assert staged(await helpers.root(store, "r1", staged_timeout=900)).reason.startswith("paced:")


async def test_a_paused_accounts_changes_free_nothing(store: PoolStore, clock: FakeClock) -> None:
    """Found from outside: a paused account's window edge set the Retry-After (and could stage
    a task sure to time out); only active accounts' changes count, and a cooling one's
    deadline."""
    at(clock, "2025-06-15T20:00", "Europe/Berlin")
    await paced(store, 1, timezone="Europe/Berlin", active_hours=("08:00-18:00",))
    await paced(store, 2, timezone="Asia/Kolkata", active_hours=("02:00-03:00",))
    await store.set_state(2, AccountState.PAUSED)
    with pytest.raises(PacedUnavailableError) as refused:
        await helpers.root(store, "r1", staged_timeout=5400)  # 2's local midnight: in 30 min
    assert refused.value.retry_after == 4 * 3600  # account 1's midnight, not 2's window
    await store.set_state(2, AccountState.ACTIVE)
    assert staged(await helpers.root(store, "r2", staged_timeout=5400)).reason.startswith("paced:")
