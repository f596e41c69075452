"""The routing package's exception tree. The gateway maps each to a GoAPI envelope.

RoutingError
├── StoreError                      Redis unreachable or failing (503 store_unavailable)
├── NoRelaxCapableAccountError      relax requested, no active non-basic account (503)
├── ParentAccountUnavailableError   child task, parent's account can't take it (409)
├── StagedLimitError                the client already has its limit of staged tasks (429)
├── QuotaExceededError              the client key's quota for the period is spent (429)
├── PacedUnavailableError           pacing holds every account past the staged timeout (503)
├── PinnedAccountUnavailableError   a task pinned to an account that can never run it (409)
├── AccountNotFoundError            no account with that bot_id (404)
├── AccountBusyError                removing an account with tasks in flight (409)
└── PoolFileError                   a pool file that can't be applied (400; CLI exit 2)
(PoolEmptyError, the pool has no account at all, is a NoRelaxCapableAccountError: 503.)

Bad input met while parsing is a ValueError, so that a caller reading any value catches it:

ValueError
├── UnknownModeError                `process_mode` is not a mode (400 invalid_request)
├── CostTableError                  a cost override that can't be read (MJGATE_COSTS)
└── SentinelCredentialsError        sentinel credentials for a URL without sentinels

`store_errors(op, timeout)` is the one place a Redis error becomes a `StoreError`: every store
(the pool's, the catalog, task records, client keys, the check schedule, the start-up epoch)
runs its Redis calls inside it, or awaits them through `translated`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

from redis.exceptions import RedisClusterException, RedisError

from routing.storeops import StoreOp

T = TypeVar("T")


class RoutingError(Exception):
    """Base of everything the routing package raises on purpose."""


class StoreError(RoutingError):
    """Redis could not be reached or answered with an error. `op` names the operation."""

    def __init__(self, op: StoreOp, message: str) -> None:
        super().__init__(f"{op}: {message}")
        self.op = op
        self.message = message

    def __reduce__(self) -> tuple[type[StoreError], tuple[StoreOp, str]]:
        return type(self), (self.op, self.message)  # picklable across processes


@asynccontextmanager
async def store_errors(op: StoreOp, timeout: float | None = None) -> AsyncIterator[None]:
    """Redis errors (a cluster's included) become `StoreError(op, message)`; so does no
    answer within `timeout` seconds when a deadline is given (the service leaves it to the
    client's socket timeout, which costs nothing extra per call; tests and tools may set
    one)."""
    try:
        if timeout is None:
            yield
        else:
            async with asyncio.timeout(timeout):
                yield
    except (RedisError, RedisClusterException) as exc:
        raise StoreError(op, str(exc) or type(exc).__name__) from exc
    except TimeoutError as exc:
        raise StoreError(op, f"no answer within {timeout} s" if timeout else "timed out") from exc


async def translated(op: StoreOp, reply: Awaitable[T], timeout: float | None = None) -> T:
    """`reply` awaited inside `store_errors(op, timeout)`."""
    async with store_errors(op, timeout):
        return await reply


class NoRelaxCapableAccountError(RoutingError):
    """Relax work needs an active account on a plan other than basic, and there is none."""


class TaggedAccountsUnavailableError(NoRelaxCapableAccountError):
    """For a key limited to some account tags: none of those accounts can run the task (none
    active, or none that can run relax). Its message names the tags."""


class PoolEmptyError(NoRelaxCapableAccountError):
    """The pool has no account at all (never loaded, or the store was reset)."""


class ParentAccountUnavailableError(RoutingError):
    def __init__(self, bot_id: int, reason: str) -> None:
        super().__init__(f"account {bot_id} can't take child tasks: {reason}")
        self.bot_id = bot_id
        self.reason = reason

    def __reduce__(self) -> tuple[type[ParentAccountUnavailableError], tuple[int, str]]:
        return type(self), (self.bot_id, self.reason)


class StagedLimitError(RoutingError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} staged tasks per client key")
        self.limit = limit

    def __reduce__(self) -> tuple[type[StagedLimitError], tuple[int]]:
        return type(self), (self.limit,)


class QuotaExceededError(RoutingError):
    """`quota`: jobs_day, jobs_month, fast_seconds_day or fast_seconds_month; `retry_after`:
    whole seconds until that period resets."""

    def __init__(self, quota: str, retry_after: int) -> None:
        super().__init__(f"this key's {quota} quota is spent; it resets in {retry_after} s")
        self.quota = quota
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[QuotaExceededError], tuple[str, int]]:
        return type(self), (self.quota, self.retry_after)


class PacedUnavailableError(RoutingError):
    """Pacing holds every account that could run the task (`reason`, paced:...) and nothing
    time-driven frees one within the staged timeout: staged, it could only time out.
    `retry_after`: whole seconds until the first account's pacing, cooling or renewal change."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(
            f"every account that could run this task is held by pacing ({reason}) for longer "
            f"than a task may wait staged (backup accounts stay idle while a primary could run "
            f"it); the first can change in {retry_after} s"
        )
        self.reason = reason
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[PacedUnavailableError], tuple[str, int]]:
        return type(self), (self.reason, self.retry_after)


class PinnedAccountUnavailableError(RoutingError):
    """A root task pinned to an account (`input.bot_id`) that can never run it: removed,
    disabled, draining, outside the key's tags, or relax on a basic plan."""

    def __init__(self, bot_id: int, reason: str) -> None:
        super().__init__(f"account {bot_id} can't take this pinned task: {reason}")
        self.bot_id = bot_id
        self.reason = reason

    def __reduce__(self) -> tuple[type[PinnedAccountUnavailableError], tuple[int, str]]:
        return type(self), (self.bot_id, self.reason)


class AccountNotFoundError(RoutingError):
    def __init__(self, bot_id: int) -> None:
        super().__init__(f"no account with bot_id {bot_id}")
        self.bot_id = bot_id

    def __reduce__(self) -> tuple[type[AccountNotFoundError], tuple[int]]:
        return type(self), (self.bot_id,)


class AccountBusyError(RoutingError):
    def __init__(self, bot_id: int, in_flight: int) -> None:
        super().__init__(
            f"account {bot_id} has {in_flight} task(s) in flight; set it draining and remove it "
            "once idle, or remove it now with force (?force=true, CLI --force)"
        )
        self.bot_id = bot_id
        self.in_flight = in_flight

    def __reduce__(self) -> tuple[type[AccountBusyError], tuple[int, int]]:
        return type(self), (self.bot_id, self.in_flight)


class PoolFileError(RoutingError):
    """`line` is 1-based, 0 when the problem is not tied to a line; `source` names the file
    (`pool file <path>`) when it is known: `<source>: line <n>: <reason>`."""

    def __init__(self, line: int, reason: str, source: str = "") -> None:
        text = f"line {line}: {reason}" if line else reason
        super().__init__(f"{source}: {text}" if source else text)
        self.line = line
        self.reason = reason
        self.source = source

    def __reduce__(self) -> tuple[type[PoolFileError], tuple[int, str, str]]:
        return type(self), (self.line, self.reason, self.source)


class UnknownModeError(ValueError):
    """`process_mode` holds something other than relax, fast, turbo, mixed or empty."""


class CostTableError(ValueError):
    """An override names an unknown task type or gives a negative or non-integer cost."""


class SentinelCredentialsError(ValueError):
    """The sentinels' credentials were given for a URL that has no sentinels."""
