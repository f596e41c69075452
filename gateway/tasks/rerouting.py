"""Rerouter: the one retry path of a create the upstream refused for the account's sake (or
never received): the task is reserved again on another account.

Up to MJGATE_CREATE_ATTEMPTS accounts are tried, never one that refused it already; if every
candidate is busy it is staged again; the retry is charged to the key's quota again (the
release refunded it). Child tasks can't move (their parent's account is the only one), nor
tasks pinned to an account by their key: they fail with the client's error.
"""

from __future__ import annotations

from typing import Protocol

from gateway.errors import NoAccountAcceptedError, UpstreamNotSentError
from gateway.keys.policy import KeyInfo
from gateway.records import RecordStore
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord, TaskStatus
from gateway.tasks.refusals import Refusal
from gateway.tasks.tracking import Tracker
from routing.costs import CostTable
from routing.errors import NoRelaxCapableAccountError, QuotaExceededError
from routing.model import Mode, TaskType
from routing.results import Decision, Reservation, Staged
from routing.store import PoolStore


class KeyPolicies(Protocol):
    """The managed keys' policies by key id (gateway.keys.store.KeyStore)."""

    async def get(self, kid: str) -> KeyInfo | None: ...


class Rerouter:
    def __init__(
        self,
        settings: Settings,
        *,
        store: PoolStore,
        records: RecordStore,
        tracker: Tracker,
        costs: CostTable,
        policies: KeyPolicies,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.tracker = tracker
        self.costs = costs
        self.policies = policies

    async def another_account(
        self, record: TaskRecord, parent: TaskRecord | None, attempts: int, refusal: Refusal | None
    ) -> Reservation | TaskRecord:
        """The one retry path: another account, or staged again, or the client's error."""
        tried = tuple(
            int(event["bot_id"]) for event in record.history if event.get("what") == "refused"
        ) + ((record.bot_id,) if record.bot_id is not None else ())
        record = record.with_event("refused", bot_id=record.bot_id, refusal=str(refusal))
        pinned = record.decision is not None and record.decision.pinned
        if parent is not None or pinned or attempts >= self.settings.create_attempts:
            if refusal is None:
                await self.tracker.fail(
                    record, "upstream_unavailable", "the upstream could not be reached"
                )
                raise UpstreamNotSentError("the upstream could not be reached")
            raise await self._no_account(record, attempts)
        mode = Mode(record.requested_mode or Mode.RELAX)
        index = record.request.get("input", {}).get("index")
        # the release gave the key's quota charge back: the retry is charged again, under
        # the key's policy of now (a job is never free because an account refused it)
        info = await self.policies.get(record.client_id) if record.client_id else None
        policy = info.policy if info is not None else None
        try:
            decision = await self.store.reserve_root(
                record.task_id,
                mode,
                self.costs.cost(TaskType(record.task_type), mode, index),
                client_id=record.client_id,
                lease_seconds=self.settings.lease_seconds,
                staged_limit=1_000_000,  # already accepted: staging again is never refused
                staged_timeout=self.settings.staged_timeout,
                exclude=tried,
                tags=record.tags,
                weight=policy.weight if policy is not None else 1,
                quota=policy.quota if policy is not None and policy.quota.limited else None,
            )
        except NoRelaxCapableAccountError as exc:  # every candidate refused it: their fault
            raise await self._no_account(record, attempts) from exc
        except QuotaExceededError as exc:  # spent meanwhile by the key's other tasks
            await self.tracker.fail(record, "quota_exceeded", str(exc))
            raise
        if isinstance(decision, Staged):
            record = record.evolve(
                status=TaskStatus.STAGED, decision=Decision.STAGED, bot_id=None, mode=""
            ).with_event("staged", reason=decision.reason)
            await self.records.save(record)
            return record
        await self.records.save(record)  # the refusals so far, for the next exclusion list
        return decision

    async def _no_account(self, record: TaskRecord, attempts: int) -> NoAccountAcceptedError:
        """Fail a task every account tried refused; the error for the client."""
        await self.tracker.fail(record, "no_account_accepted", "no account accepted the task")
        return NoAccountAcceptedError(attempts)
