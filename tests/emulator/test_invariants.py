"""Property test: under any mix of creates, cancels, bans and time, the counters stay true."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.accounts import AccountState
from emulator.config import EmulatedAccountSpec, EmulatorConfig
from emulator.engine import Emulator
from emulator.errors import EmulatorError
from emulator.facts import Mode, SlotKind
from emulator.pool import set_state
from emulator.tasks import Status
from emulator.webhooks import WebhookSender
from tests.emulator.conftest import FakeClock

ACCOUNTS = (
    EmulatedAccountSpec(1, "basic", fast_seconds=150, fast_slots=2),
    EmulatedAccountSpec(2, "standard", fast_seconds=200, fast_slots=1, relax_slots=2),
    EmulatedAccountSpec(3, "pro", setting="relax", relax_slots=1),
)

# What a completed imagine costs, from GoAPI's facts rather than from the emulator's table:
# a grid is about one fast GPU-minute, turbo spends twice that, relax nothing.
IMAGINE_CHARGE = {"relax": 0, "fast": 60, "turbo": 120}

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"), st.sampled_from(["fast", "turbo", "relax"]), st.integers(0, 3)
        ),
        st.tuples(st.just("tick"), st.floats(0, 4)),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("ban"), st.integers(1, 3)),
    ),
    max_size=60,
)


def body(mode: str, bot_id: int) -> bytes:
    data = {"model": "midjourney", "task_type": "imagine", "input": {}}
    data["input"] = {"prompt": "p", "process_mode": mode, "bot_id": bot_id}
    return orjson.dumps(data)


def check(emulator: Emulator) -> None:
    for account in emulator.accounts.values():
        for kind in SlotKind:
            mine = [
                t
                for t in emulator.tasks.values()
                if t.account is account and t.mode.slot is kind and not t.terminal
            ]
            holding = [t for t in mine if t.admitted_at is not None]
            assert account.submitted[kind] == len(mine)
            assert account.in_flight[kind] == len(holding) <= account.slots[kind]
            assert len(account.queues[kind]) == len(mine) - len(holding)
            assert account.peak_in_flight[kind] <= account.slots[kind]
        assert account.fast_seconds >= 0


@settings(max_examples=150, deadline=None)
@given(operations)
def test_counters_match_the_tasks(ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    config = EmulatorConfig(pending_seconds=1, processing_seconds=2, accounts=ACCOUNTS)
    emulator = Emulator(config, clock=clock, sender=WebhookSender(retry_delays=(), timeout=1))
    for op in ops:
        try:
            if op[0] == "create":
                emulator.create(body(op[1], op[2]), "http://127.0.0.1")
            elif op[0] == "tick":
                clock.now += op[1]
                emulator.advance()
            elif op[0] == "cancel" and emulator.tasks:
                ids = list(emulator.tasks)
                emulator.cancel(ids[op[1] % len(ids)])
            elif op[0] == "ban":
                set_state(emulator, op[1], AccountState.BANNED)
        except EmulatorError:
            pass
        check(emulator)
    clock.now += 1000
    emulator.advance()
    check(emulator)
    for account in emulator.accounts.values():
        done = [
            t
            for t in emulator.tasks.values()
            if t.account is account and t.status is Status.COMPLETED
        ]
        cost = sum(IMAGINE_CHARGE[t.mode.value] for t in done)
        start = next(s for s in ACCOUNTS if s.bot_id == account.bot_id).initial_fast_seconds()
        assert account.fast_seconds_used == min(cost, start)
        if account.bot_id == 1:  # basic: never relax
            assert all(t.mode is not Mode.RELAX for t in done)
        if account.bot_id == 3:  # setting relax: always relax
            assert all(t.mode is Mode.RELAX for t in done)
