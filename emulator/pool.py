"""Operator actions on the emulated accounts: replace, patch, ban, captcha, expire, restore.

A ban, a captcha or an expiry sends the matching HYA notification (GoAPI's types) and fails every
task the account still has (queued, pending or processing), which frees their slots and
charges no fast time. A timed ban lifts itself at `block_until`; `restore` lifts any state and
sends nothing (GoAPI has no such notification).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.accounts import Account, AccountState, build_accounts
from emulator.config import ConfigError, parse_accounts
from emulator.engine import Emulator
from emulator.errors import BadRequest

_NOTIFICATION = {
    AccountState.BANNED: ("mj_bot_banned", "was banned"),
    AccountState.CAPTCHA: ("mj_bot_captcha_required", "needs a captcha solved"),
    AccountState.EXPIRED: ("mj_bot_subscription_expired", "has an expired subscription"),
}


def replace_accounts(emulator: Emulator, data: Any) -> None:
    """Swap the whole set. Running tasks keep counting on the account objects they started on."""
    try:
        specs = parse_accounts(data)
        emulator.accounts = build_accounts(specs)
    except ConfigError as exc:
        raise BadRequest(str(exc)) from None


def patch_account(emulator: Emulator, bot_id: int, changes: Any) -> Account:
    if not isinstance(changes, Mapping):
        raise BadRequest("the body must be a JSON object of account fields")
    now = emulator.clock()
    emulator.advance(now)
    account = emulator.account(bot_id)
    account.patch(changes)
    emulator.admit_queued(account, now)  # more slots may take queued tasks
    emulator.advance(now)
    emulator.timeline.poke()
    return account


def set_state(
    emulator: Emulator,
    bot_id: int,
    state: AccountState,
    *,
    block_until: float = 0.0,
    reason: str = "",
) -> Account:
    now = emulator.clock()
    emulator.advance(now)
    account = emulator.account(bot_id)
    account.state = state
    account.block_until = block_until if state is AccountState.BANNED else 0.0
    account.reason = reason if state is AccountState.BANNED else ""
    if state is not AccountState.OK:
        kind, what = _NOTIFICATION[state]
        message = f"Midjourney account {account.name} {what}"
        running = [t for t in emulator.tasks.values() if t.account is account and not t.terminal]
        # Queued tasks first, so failing a running one never hands its slot to a doomed task.
        running.sort(key=lambda task: task.admitted_at is not None)
        for task in running:
            emulator.fail(task, now, f"{kind}: {message}")
        detail: dict[str, Any] = {"bot_id": account.bot_id, "bot_name": account.name}
        if state is AccountState.BANNED:
            detail.update(reason=reason, block_until=int(block_until))
        emulator.notify(kind, message, detail, now)
    emulator.advance(now)
    emulator.timeline.poke()
    return account


def ban_arguments(body: Any) -> tuple[float, str]:
    """`{"block_until": <unix s or 0>, "reason": ""}`, both optional."""
    if body is None:
        return 0.0, ""
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object")
    block_until = body.get("block_until", 0) or 0
    if isinstance(block_until, bool) or not isinstance(block_until, int | float):
        raise BadRequest("block_until must be a unix time in seconds, or 0")
    reason = body.get("reason", "") or ""
    if not isinstance(reason, str):
        raise BadRequest("reason must be a string")
    return float(block_until), reason
