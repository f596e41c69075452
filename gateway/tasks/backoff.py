"""The upstream's rate limit, shared by every replica.

GoAPI rate-limits the operator's API key, which every replica uses: when one replica is told
to wait (a 429 with `Retry-After`), all of them should. The replica that got it pauses at
once and writes the pause's end to Redis (`Keys.upstream_backoff`, expiring with it); the
others read it at every upkeep pass (MJGATE_RECONCILE_INTERVAL) and pause until then too.
During a pause a create is refused before anything is reserved (429 `upstream_rate_limited`,
`Retry-After`), and a staged task handed a slot waits for its end. A replica that can't
write the pause (Redis failing) still pauses itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from gateway.errors import UpstreamRateLimitedError
from routing.errors import StoreError, translated
from routing.keys import Keys
from routing.pipe import Pipe
from routing.storeops import StoreOp


class UpstreamBackoff:
    def __init__(self, pipe: Pipe, keys: Keys, *, clock: Callable[[], float] = time.time) -> None:
        self.pipe = pipe
        self.key = keys.upstream_backoff()
        self.clock = clock
        self._until = 0.0  # time.monotonic() at which this replica's pause ends

    def remaining(self) -> float:
        """Seconds left of the pause (0: none)."""
        return max(0.0, self._until - time.monotonic())

    def check(self) -> None:
        """Raise before anything is reserved while the upstream asked mjgate to back off."""
        wait = self.remaining()
        if wait > 0:
            raise UpstreamRateLimitedError(round(wait + 0.5))

    async def pause(self, seconds: float) -> None:
        """Pause this replica for `seconds`, and every other one at its next refresh."""
        self._until = max(self._until, time.monotonic() + seconds)
        ends = round((self.clock() + seconds) * 1000)
        with contextlib.suppress(StoreError):  # paused here all the same
            sent = self.pipe.send(b"SET", self.key, ends, b"PX", max(1, round(seconds * 1000)))
            await translated(StoreOp.UPSTREAM_BACKOFF, sent)

    async def refresh(self) -> None:
        """Pause until the end another replica wrote, if that is later than this one's."""
        raw = await translated(StoreOp.UPSTREAM_BACKOFF, self.pipe.send(b"GET", self.key))
        if raw:
            left = int(raw) / 1000 - self.clock()
            if left > 0:
                self._until = max(self._until, time.monotonic() + left)
