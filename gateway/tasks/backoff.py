"""The upstream's pauses, shared by every replica: its rate limit (a 429) and its own outage (a
503 with `Retry-After`).

GoAPI rate-limits the operator's API key, which every replica uses: when one replica is told
to wait (a 429 with `Retry-After`), all of them should. A 503 that says how long GoAPI expects
to be unavailable (RFC 9110, 15.6.4: `Retry-After`) is the same word to every replica: sending
more creates meanwhile only collects more 503s. The replica that got it pauses at once and
writes the pause's end to Redis (`Keys.upstream_backoff` / `Keys.upstream_down`, expiring
with it); the others read them at every upkeep pass (MJGATE_RECONCILE_INTERVAL) and pause
until then too. During a pause a create is refused before anything is reserved (429
`upstream_rate_limited` or 503 `upstream_unavailable`, `Retry-After`), and a staged task
handed a slot waits for its end. A replica that can't write the pause (Redis failing) still
pauses itself. A 503's pause is bounded to DOWN_PAUSE_MAX: it stops every create on the word
of one answer, and the first create after it is the probe that pauses again if GoAPI is
still down.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from enum import Enum

from gateway.errors import UpstreamPausedError, UpstreamRateLimitedError
from routing.errors import StoreError, translated
from routing.keys import Keys
from routing.pipe import Pipe
from routing.storeops import StoreOp

DOWN_PAUSE_MAX = 300.0  # seconds: the longest pause one 503 starts


class Pause(Enum):
    RATE_LIMITED = "rate_limited"  # a 429: the GoAPI key is over its rate limit
    DOWN = "down"  # a 503 with Retry-After: GoAPI unavailable


class UpstreamBackoff:
    def __init__(self, pipe: Pipe, keys: Keys, *, clock: Callable[[], float] = time.time) -> None:
        self.pipe = pipe
        self.keys = {Pause.RATE_LIMITED: keys.upstream_backoff(), Pause.DOWN: keys.upstream_down()}
        self.clock = clock
        # time.monotonic() at which this replica's pause of each kind ends
        self._until = {Pause.RATE_LIMITED: 0.0, Pause.DOWN: 0.0}

    def remaining(self) -> float:
        """Seconds left of the longer pause (0: none)."""
        return max(0.0, max(self._until.values()) - time.monotonic())

    def check(self) -> None:
        """Raise before anything is reserved while the upstream asked mjgate to wait: the
        error of the pause that ends last."""
        wait = self.remaining()
        if wait <= 0:
            return
        if self._until[Pause.DOWN] >= self._until[Pause.RATE_LIMITED]:
            raise UpstreamPausedError(round(wait + 0.5))
        raise UpstreamRateLimitedError(round(wait + 0.5))

    async def pause(self, seconds: float, kind: Pause = Pause.RATE_LIMITED) -> None:
        """Pause this replica for `seconds`, and every other one at its next refresh."""
        if kind is Pause.DOWN:
            seconds = min(seconds, DOWN_PAUSE_MAX)
        self._until[kind] = max(self._until[kind], time.monotonic() + seconds)
        ends = round((self.clock() + seconds) * 1000)
        with contextlib.suppress(StoreError):  # paused here all the same
            key, ttl = self.keys[kind], max(1, round(seconds * 1000))
            sent = self.pipe.send(b"SET", key, ends, b"PX", ttl)
            await translated(StoreOp.UPSTREAM_BACKOFF, sent)

    async def refresh(self) -> None:
        """Pause until the ends another replica wrote, where later than this one's."""
        kinds = list(self.keys)
        sent = self.pipe.send(b"MGET", *(self.keys[k] for k in kinds))
        raw = await translated(StoreOp.UPSTREAM_BACKOFF, sent)
        for kind, value in zip(kinds, raw, strict=True):
            if value:
                left = int(value) / 1000 - self.clock()
                if left > 0:
                    self._until[kind] = max(self._until[kind], time.monotonic() + left)
