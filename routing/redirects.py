"""Redirects: the error replies that mean "not here" or "not now" (the command did not run),
and how the Pipe sends such a command again.

- `MOVED` updates the slot map and sends the command to the named node; `ASK` sends it there
  behind `ASKING`;
- `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` and `READONLY` (a demoted primary: the
  resolver asks again) send it again after a backoff of 10 ms doubling to 200 ms, for as long
  as the pipe's timeout after it was first sent; then the error reply is the command's;
- `NOSCRIPT` (a server that lost its scripts: a restart, a failover) is answered with EVAL and
  the source at once, on the same connection, so scripts sent in a row still run in that
  order (`ScriptSources`);
- an FCALL whose function the server lacks (`ERR Function not found`: restarted empty,
  FUNCTION FLUSH) or that doesn't know FCALL (Redis 6.2) is answered the same way: EVAL of the
  script's source at once (`FunctionSources`); the Pipe then loads the library again, or
  stops calling functions on a server without them (kind `NOFUNCTION`).

A connection (`routing.wire`) hands such a reply to the Pipe's `redirect` callback with the
command instead of failing its future.
"""

from __future__ import annotations

from redis.exceptions import NoScriptError, ResponseError

REDIRECTS = (
    b"MOVED", b"ASK", b"TRYAGAIN", b"CLUSTERDOWN", b"LOADING", b"READONLY", b"MASTERDOWN",
    b"NOSCRIPT",
)  # fmt: skip
# (and NOFUNCTION: `redirection` tells it by its message; see the module's docstring)
_SCRIPT_READONLY = "READONLY You can't write against a read only replica"
_NO_FUNCTION = "ERR Function not found"
_FCALL = b"$5\r\nFCALL\r\n"  # how a packed FCALL starts, after its `*<n>`
_EVALSHA = b"$7\r\nEVALSHA\r\n$40\r\n"  # how a packed EVALSHA starts, after its `*<n>`
RETRY_FIRST, RETRY_MAX = 0.01, 0.2  # the backoff of "not now" replies, seconds
DEFAULT_DEADLINE = 2.0  # how long to retry "not now" replies when the pipe has no timeout


def redirection(reply: ResponseError) -> bytes | None:
    """The kind of a "not here, not now" error reply (see the module docstring), else None."""
    message = str(reply)
    head = message.split(" ", 1)[0].encode()
    if head in REDIRECTS:
        return head
    if _SCRIPT_READONLY in message:  # a script's write refused on a replica: nothing ran
        return b"READONLY"
    if message.startswith(_NO_FUNCTION) or no_functions(message):
        return b"NOFUNCTION"
    return None


def no_functions(message: str) -> bool:
    """Is this the error of a server without Redis Functions (before 7.0)?"""
    lowered = message.lower()
    return lowered.startswith("err unknown command") and (
        "fcall" in lowered or "function" in lowered
    )


def error(reply: ResponseError) -> ResponseError:
    """redis-py's exception for an error reply."""
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return reply


def moved_to(error: ResponseError) -> tuple[int, str, int]:
    """The slot, host and port a `MOVED` or `ASK` reply names."""
    _, slot_text, where = str(error).split(" ", 2)
    host, _, port = where.rpartition(":")
    return int(slot_text), host, int(port)


def backoff(attempt: int) -> float:
    """How long to wait before sending a command again after a "not now" reply."""
    return min(RETRY_FIRST * 2.0 ** max(attempt, 0), RETRY_MAX)


class ScriptSources:
    """Script sources by SHA, so that an EVALSHA meeting `NOSCRIPT` is sent again as EVAL."""

    def __init__(self) -> None:
        self._sources: dict[bytes, bytes] = {}

    def remember(self, sha: str | bytes, source: str) -> None:
        key = sha if isinstance(sha, bytes) else sha.encode()
        if key not in self._sources:
            self._sources[key] = source.encode()

    def as_eval(self, packed: bytes) -> bytes | None:
        """The EVAL equivalent of a packed EVALSHA whose source is known, else None."""
        start = packed.find(b"\r\n") + 2
        end = start + len(_EVALSHA)
        if packed[start:end].upper() != _EVALSHA:
            return None
        source = self._sources.get(packed[end : end + 40])
        if source is None:
            return None
        head = b"$4\r\nEVAL\r\n$%d\r\n%s\r\n" % (len(source), source)
        return packed[:start] + head + packed[end + 42 :]


class FunctionSources:
    """What an FCALL stands for, by function name: its library (to load it again) and the
    script's EVAL source (sent at once instead of an FCALL the server could not run)."""

    def __init__(self) -> None:
        self._sources: dict[bytes, tuple[str, bytes]] = {}

    def remember(self, function: str, library: str, source: str) -> None:
        key = function.encode()
        if key not in self._sources:
            self._sources[key] = (library, source.encode())

    def _function(self, packed: bytes) -> tuple[bytes, int] | None:
        """The function a packed FCALL names, and where the rest of the command starts."""
        start = packed.find(b"\r\n") + 2
        head = start + len(_FCALL)
        if packed[start:head] != _FCALL:
            return None
        size_end = packed.find(b"\r\n", head)
        size = int(packed[head + 1 : size_end])
        name_start = size_end + 2
        return packed[name_start : name_start + size], name_start + size + 2

    def library_of(self, packed: bytes) -> str | None:
        found = self._function(packed)
        entry = self._sources.get(found[0]) if found else None
        return entry[0] if entry else None

    def as_eval(self, packed: bytes) -> bytes | None:
        """The EVAL equivalent of a packed FCALL whose script is known, else None."""
        found = self._function(packed)
        entry = self._sources.get(found[0]) if found else None
        if found is None or entry is None:
            return None
        start = packed.find(b"\r\n") + 2
        source = entry[1]
        head = b"$4\r\nEVAL\r\n$%d\r\n%s\r\n" % (len(source), source)
        return packed[:start] + head + packed[found[1] :]
