"""The emulator's state machine: tasks, their phases, slots, fast time, faults, the received log.

A task is `pending` until it holds a slot of its mode on its account (at once in the public
pool), then pending and `processing` for the phases drawn then (`emulator.durations`), then
`completed` (or `failed`: a fault, a cancel, a ban). Fast time is charged on completion; at 0
the account's setting turns relax and `mj_bot_no_fasthour` is sent. Every operation first
applies the timeline's events due at the clock's `now`: state is a function of the clock, tests
move time instead of sleeping, and instant mode runs a create's every event before it answers.
Where a task runs: `emulator.placement`; account state changes: `emulator.pool`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from emulator.accounts import Account, build_accounts
from emulator.config import EmulatorConfig
from emulator.durations import Durations
from emulator.errors import BadRequest, EmulatorError, InjectedFault, NotFound
from emulator.facts import Costs
from emulator.faults import Faults
from emulator.outputs import completed_output, progress_output
from emulator.placement import place
from emulator.tasks import Status, Task, received_entry, render
from emulator.timeline import Step, Timeline
from emulator.validation import CreateRequest, parse_create, summary
from emulator.webhooks import WebhookSender

CANCELED_MESSAGE = "task canceled"


@dataclass(frozen=True, slots=True)
class Created:
    """A create's task and how its answer is to be delayed by a fault."""

    task: Task
    slow_seconds: float | None = None
    hang: bool = False


class Emulator:
    def __init__(
        self, config: EmulatorConfig, *, clock: Callable[[], float], sender: WebhookSender
    ) -> None:
        self.config = config
        self.durations = Durations(config)
        self.clock = clock
        self.sender = sender
        self.costs = Costs(config.cost_overrides)
        self.accounts: dict[int, Account] = build_accounts(config.accounts)
        self.tasks: dict[str, Task] = {}
        self.received: deque[dict[str, Any]] = deque(maxlen=config.max_received)
        self.gets: dict[str, list[float]] = {}  # when each task was fetched (GET), for tests
        self.notifications: deque[dict[str, Any]] = deque(maxlen=1000)
        self.faults = Faults()
        self.timeline = Timeline()

    # --- GoAPI operations --------------------------------------------------------------------

    def create(self, raw: bytes, base_url: str) -> Created:
        now = self.clock()
        self.advance(now)
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        info = summary(body)
        try:
            fault = self.faults.take_status()
            if fault is not None:
                status, retry_after = fault
                raise InjectedFault(f"injected fault: HTTP {status}", status, retry_after)
            if body is None:
                raise BadRequest("request body is not valid JSON")
            task = self._new_task(parse_create(body), base_url, now)
        except EmulatorError as exc:
            self.received.append(received_entry(info, None, exc, now))
            raise
        self.received.append(received_entry(info, task, None, now))
        self._submit(task, now)
        self.advance(now)
        self.timeline.poke()
        hang = self.faults.take_hang()
        return Created(task, None if hang else self.faults.take_slow(), hang)

    def get(self, task_id: str) -> Task:
        self.advance()
        task = self.tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        self.gets.setdefault(task_id, []).append(self.clock())
        return task

    def cancel(self, task_id: str) -> Task:
        task = self.get(task_id)
        if task.status is not Status.PENDING:
            raise BadRequest(
                f"task {task_id} is {task.status.value}: only pending tasks can be canceled"
            )
        now = self.clock()
        self.fail(task, now, CANCELED_MESSAGE)
        self.advance(now)
        self.timeline.poke()
        return task

    def render(self, task: Task) -> dict[str, Any]:
        return render(task)

    # --- time --------------------------------------------------------------------------------

    def advance(self, now: float | None = None) -> None:
        """Apply every transition due at `now` (the clock's time by default), in order."""
        if now is None:
            now = self.clock()
        while (event := self.timeline.pop_due(now)) is not None:
            at, _, step, progress, task = event
            if step is Step.START:
                self._start(task, at)
            elif step is Step.PROGRESS:
                if task.status is Status.PROCESSING:
                    task.output = progress_output(progress)
                    self._task_webhook(task, at)
            else:
                self._end(task, at)

    # --- control -----------------------------------------------------------------------------

    def configure(self, config: EmulatorConfig) -> None:
        """A new speed, for the tasks that take a slot from now on (the draws restart from the
        seed)."""
        self.config = config
        self.durations = Durations(config)

    def reset(self) -> None:
        """Forget tasks, the received log, faults and peaks; keep the accounts."""
        self.tasks.clear()
        self.gets.clear()
        self.received.clear()
        self.notifications.clear()
        self.faults.clear()
        self.timeline.clear()
        for account in self.accounts.values():
            account.forget_tasks(clear_peaks=True)

    def account(self, bot_id: int) -> Account:
        account = self.accounts.get(bot_id)
        if account is None:
            raise NotFound(f"no account with bot_id {bot_id}")
        return account

    def admit_queued(self, account: Account, at: float) -> None:
        """Give free slots to queued tasks, first in first out (after a release or a patch)."""
        for kind, queue in account.queues.items():
            while queue and account.has_free_slot(kind):
                task = self.tasks.get(queue.popleft())
                if task is None or task.terminal:
                    continue
                account.occupy(kind)
                self._admit(task, at)

    def fail(self, task: Task, at: float, message: str) -> None:
        if task.terminal:
            return
        task.status = Status.FAILED
        task.error_message = message
        task.ended_at = at
        self._release(task, at)
        self._task_webhook(task, at)

    # --- lifecycle ---------------------------------------------------------------------------

    def _new_task(self, request: CreateRequest, base_url: str, now: float) -> Task:
        placement = place(request, self.tasks, self.accounts, self.costs, now)
        task = Task(
            task_id=str(uuid.uuid4()),
            request=request,
            mode=placement.mode,
            account=placement.account,
            base_url=base_url,
            created_at=now,
            fail_message=self.faults.take_fail(),
        )
        self.tasks[task.task_id] = task
        if len(self.tasks) > self.config.max_tasks:
            self._evict()
        self._task_webhook(task, now)
        return task

    def _submit(self, task: Task, now: float) -> None:
        account = task.account
        if account is None:
            self._admit(task, now)
            return
        kind = task.mode.slot
        account.submit(kind)
        queue = account.queues[kind]
        if not queue and account.has_free_slot(kind):
            account.occupy(kind)
            self._admit(task, now)
        else:
            queue.append(task.task_id)

    def _admit(self, task: Task, at: float) -> None:
        task.admitted_at = at
        request = task.request
        phases = self.durations.draw(request.task_type, task.mode, request.index)
        task.processing_seconds = phases.processing
        self.timeline.schedule(at + phases.pending, Step.START, task)

    def _start(self, task: Task, at: float) -> None:
        if task.status is not Status.PENDING:
            return
        task.status = Status.PROCESSING
        task.started_at = at
        task.output = progress_output(0)
        duration, steps = task.processing_seconds, self.config.progress_steps
        if duration > 0:
            for step in range(1, steps + 1):
                fraction = step / (steps + 1)
                progress = round(100 * fraction)
                self.timeline.schedule(at + duration * fraction, Step.PROGRESS, task, progress)
        self.timeline.schedule(at + duration, Step.END, task)
        self._task_webhook(task, at)

    def _end(self, task: Task, at: float) -> None:
        if task.status is not Status.PROCESSING:
            return
        if task.fail_message is not None:
            self.fail(task, at, task.fail_message)
            return
        task.status = Status.COMPLETED
        task.ended_at = at
        request = task.request
        task.output = completed_output(
            task.output_kind, task.task_id, task.base_url, parent_id=request.origin_task_id
        )
        account = task.account
        if account is not None:
            account.completed += 1
            cost = self.costs.charge(request.task_type, task.mode, request.index)
            if account.charge(cost):
                self.notify(
                    "mj_bot_no_fasthour",
                    f"Midjourney account {account.name} has run out of fast hours",
                    {
                        "bot_id": account.bot_id,
                        "bot_name": account.name,
                        "subscription_plan": account.plan.value,
                    },
                    at,
                )
        self._release(task, at)
        self._task_webhook(task, at)

    def _release(self, task: Task, at: float) -> None:
        account = task.account
        if account is None:
            return
        kind = task.mode.slot
        held = task.admitted_at is not None
        account.finish(kind, held)
        if held:
            self.admit_queued(account, at)
        else:
            with contextlib.suppress(ValueError):  # a queued task leaves its queue
                account.queues[kind].remove(task.task_id)

    def notify(self, kind: str, message: str, detail: dict[str, Any], at: float) -> None:
        """An HYA account notification, kept for inspection and POSTed if a URL is set."""
        notification = {"type": kind, "time": int(at), "message": message, "detail": detail}
        self.notifications.append(notification)
        url = self.config.notifications_url
        if url:
            secret = self.config.notifications_secret
            self.sender.send("notifications", url, secret, orjson.dumps(notification))

    def _task_webhook(self, task: Task, at: float) -> None:
        endpoint = task.request.webhook_endpoint
        if endpoint:
            body = orjson.dumps({"timestamp": int(at), "data": render(task)})
            self.sender.send(task.task_id, endpoint, task.request.webhook_secret, body)

    def _evict(self) -> None:
        """Drop the oldest finished tasks beyond `max_tasks` (bounded memory in benchmarks)."""
        for _ in range(len(self.tasks)):
            if len(self.tasks) <= self.config.max_tasks:
                return
            task_id = next(iter(self.tasks))
            task = self.tasks.pop(task_id)
            if not task.terminal:
                self.tasks[task_id] = task  # still running: keep it, at the young end
            else:
                self.gets.pop(task_id, None)
