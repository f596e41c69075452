"""Where a new task runs and in which mode: GoAPI's Host-Your-Account rules.

- No accounts at all: GoAPI's public pool, the requested mode, no slots.
- `bot_id` set: that account; fast/turbo fall back to relax when it has no fast time or its
  setting is relax; relax (or a fallback) on a basic account is refused.
- `bot_id` 0: an active account with fast time for fast/turbo (least loaded first), else relax
  on an active non-basic account.
- Children run on the parent's account in the parent's mode; an explicit `process_mode` of
  relax is honoured (refused on a basic account, which has no relax), any other is ignored
  (`emulator.modes.child_mode`). An account that can no longer run fast runs the child relax.
A child's parent must be known, completed and of the right output kind (`check_parent`).
Account-level refusals are AccountRefused, whose message starts with the notification type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emulator.accounts import Account, AccountState
from emulator.errors import AccountRefused, BadRequest
from emulator.facts import Costs, Mode, Setting, SlotKind, TaskType
from emulator.modes import Requested, child_mode
from emulator.outputs import parent_kinds
from emulator.tasks import Status, Task
from emulator.validation import CreateRequest


@dataclass(frozen=True, slots=True)
class Placement:
    account: Account | None
    mode: Mode


def place(
    request: CreateRequest,
    tasks: Mapping[str, Task],
    accounts: Mapping[int, Account],
    costs: Costs,
    now: float,
) -> Placement:
    """Where and in which mode a valid create runs; BadRequest or AccountRefused if nowhere."""
    if request.task_type.is_root:
        return place_root(
            request.task_type, request.asked.mode, request.bot_id, accounts, costs, now
        )
    parent = check_parent(request, tasks.get(request.origin_task_id or ""))
    account = parent.account
    if account is not None:
        current = accounts.get(account.bot_id)
        if current is None:
            raise BadRequest(f"input.origin_task_id: the parent's account {account.bot_id} is gone")
        account = current
    return place_child(
        request.task_type, request.index, request.asked, account, parent.mode, costs, now
    )


def place_root(
    task_type: TaskType,
    requested: Mode,
    bot_id: int,
    accounts: Mapping[int, Account],
    costs: Costs,
    now: float,
) -> Placement:
    if not accounts:
        return Placement(None, requested)
    cost = costs.charge(task_type, requested)
    if bot_id:
        account = accounts.get(bot_id)
        if account is None:
            raise BadRequest(f"input.bot_id: no account with bot_id {bot_id}")
        check_state(account, now)
        return Placement(account, mode_on(account, requested, cost))
    active = [a for a in accounts.values() if a.current_state(now) is AccountState.OK]
    if not active:
        raise AccountRefused("no_active_mj_bot", "no account is available")
    if requested is not Mode.RELAX:
        fast = [a for a in active if a.setting is Setting.FAST and a.has_fast_time(cost)]
        if fast:
            return Placement(_least_loaded(fast, SlotKind.FAST), requested)
    relax = [a for a in active if a.can_relax]
    if not relax:
        raise AccountRefused(
            "no_active_mj_bot", "no account can run relax jobs (the basic plan has no relax)"
        )
    return Placement(_least_loaded(relax, SlotKind.RELAX), Mode.RELAX)


def place_child(
    task_type: TaskType,
    index: str | None,
    asked: Requested,
    parent_account: Account | None,
    parent_mode: Mode,
    costs: Costs,
    now: float,
) -> Placement:
    mode = child_mode(parent_mode, asked)
    if parent_account is None:
        return Placement(None, mode)
    check_state(parent_account, now)
    cost = costs.charge(task_type, mode, index)
    return Placement(parent_account, mode_on(parent_account, mode, cost))


def check_parent(request: CreateRequest, parent: Task | None) -> Task:
    """The child's parent, known, completed and of a kind the child type accepts."""
    origin = request.origin_task_id
    if parent is None:
        raise BadRequest(f"input.origin_task_id: task {origin} not found")
    if parent.status is not Status.COMPLETED:
        raise BadRequest(
            f"input.origin_task_id: task {origin} is {parent.status.value}, not completed"
        )
    needed = parent_kinds(request.task_type, request.index)
    if parent.output_kind not in needed:
        what = request.task_type.value + (f" {request.index}" if request.index else "")
        kinds = " or ".join(sorted(kind.value for kind in needed))
        raise BadRequest(
            f"input.origin_task_id: {what} needs a parent whose output is {kinds}; "
            f"the output of task {origin} is {parent.output_kind.value}"
        )
    return parent


def check_state(account: Account, now: float) -> None:
    state = account.current_state(now)
    if state is AccountState.OK:
        return
    if state is AccountState.BANNED:
        until = f" until {int(account.block_until)}" if account.block_until > 0 else ""
        reason = f": {account.reason}" if account.reason else ""
        raise AccountRefused("mj_bot_banned", f"bot {account.bot_id} is banned{until}{reason}")
    if state is AccountState.CAPTCHA:
        raise AccountRefused(
            "mj_bot_captcha_required", f"bot {account.bot_id} needs a captcha solved"
        )
    raise AccountRefused(
        "mj_bot_subscription_expired", f"bot {account.bot_id} has an expired subscription"
    )


def mode_on(account: Account, requested: Mode, cost: float) -> Mode:
    """The mode `account` actually runs a task requested in `requested`."""
    if requested is Mode.RELAX:
        if not account.can_relax:
            raise BadRequest(
                f"input.process_mode: relax is not available on the basic plan "
                f"(bot_id {account.bot_id})"
            )
        return Mode.RELAX
    if account.setting is Setting.FAST and account.has_fast_time(cost):
        return requested
    if account.can_relax:
        return Mode.RELAX
    raise AccountRefused(
        "mj_bot_no_fasthour",
        f"bot {account.bot_id} has no fast time left and the basic plan has no relax",
    )


def _least_loaded(accounts: list[Account], kind: SlotKind) -> Account:
    """Free slot first, then lowest submitted/slots, then most fast time, then lowest id."""
    return min(
        accounts,
        key=lambda a: (not a.has_free_slot(kind), a.load(kind), -a.fast_seconds, a.bot_id),
    )
