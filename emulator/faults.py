"""Injected faults for the next creates, from `POST /_emulator/faults`.

- `{"status": 500|502|429|503|504, "count": N}`: answer that status, create nothing; with
  `"retry_after": S` (whole seconds) the answer carries `Retry-After: S`, as GoAPI's 429 and
  a 503 that says when to come back do;
- `{"slow_seconds": S, "count": N}`: create, then answer after S seconds;
- `{"hang": N}`: create and record, then never answer (a timeout *after sending*);
- `{"fail_tasks": N, "message": "..."}`: the tasks end `failed` with that message.
Each kind is a first-in-first-out list of (value, remaining) so successive posts add up.
A status fault comes first (nothing is created); a hang wins over a slow answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, TypeVar

from emulator.errors import BadRequest

FAULT_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_FAIL_MESSAGE = "Midjourney error: the job failed (injected)"
T = TypeVar("T")


def _count(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name} must be a positive integer")
    return value


class Faults:
    def __init__(self) -> None:
        self.statuses: deque[list[int]] = deque()  # [status, remaining, retry_after or -1]
        self.slow: deque[tuple[float, list[int]]] = deque()
        self.hang = 0
        self.fail: deque[tuple[str, list[int]]] = deque()

    def add(self, body: Any) -> None:
        if not isinstance(body, Mapping):
            raise BadRequest("a fault is a JSON object")
        known = {"status", "count", "retry_after", "slow_seconds", "hang", "fail_tasks", "message"}
        unknown = sorted(set(body) - known)
        if unknown or not set(body) & {"status", "slow_seconds", "hang", "fail_tasks"}:
            raise BadRequest("a fault needs one of status, slow_seconds, hang or fail_tasks")
        if "status" in body:
            status = body["status"]
            if status not in FAULT_STATUSES or isinstance(status, bool):
                names = ", ".join(str(s) for s in sorted(FAULT_STATUSES))
                raise BadRequest(f"status must be one of {names}")
            retry_after = body.get("retry_after", -1)
            if "retry_after" in body and (
                isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
            ):
                raise BadRequest("retry_after must be a whole number of seconds, 0 or more")
            self.statuses.append([status, _count(body, "count"), retry_after])
        elif "retry_after" in body:
            raise BadRequest("retry_after goes with a status fault")
        if "slow_seconds" in body:
            seconds = body["slow_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise BadRequest("slow_seconds must be a non-negative number")
            self.slow.append((float(seconds), [_count(body, "count")]))
        if "hang" in body:
            self.hang += _count(body, "hang")
        if "fail_tasks" in body:
            message = body.get("message") or DEFAULT_FAIL_MESSAGE
            if not isinstance(message, str):
                raise BadRequest("message must be a string")
            self.fail.append((message, [_count(body, "fail_tasks")]))

    def take_status(self) -> tuple[int, int | None] | None:
        """The next status fault: (status, its Retry-After seconds or None)."""
        if not self.statuses:
            return None
        entry = self.statuses[0]
        entry[1] -= 1
        if entry[1] == 0:
            self.statuses.popleft()
        return entry[0], (entry[2] if entry[2] >= 0 else None)

    def take_slow(self) -> float | None:
        return _take(self.slow)

    def take_hang(self) -> bool:
        if self.hang == 0:
            return False
        self.hang -= 1
        return True

    def take_fail(self) -> str | None:
        return _take(self.fail)

    def clear(self) -> None:
        self.statuses.clear()
        self.slow.clear()
        self.hang = 0
        self.fail.clear()

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": [
                {"status": s, "count": n, **({"retry_after": r} if r >= 0 else {})}
                for s, n, r in self.statuses
            ],
            "slow": [{"slow_seconds": s, "count": n[0]} for s, n in self.slow],
            "hang": self.hang,
            "fail_tasks": [{"message": m, "count": n[0]} for m, n in self.fail],
        }


def _take(entries: deque[tuple[T, list[int]]]) -> T | None:
    if not entries:
        return None
    value, remaining = entries[0]
    remaining[0] -= 1
    if remaining[0] == 0:
        entries.popleft()
    return value
