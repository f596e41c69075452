"""ScriptCalls: how a Pipe calls scripts, and what it does when the server lacks them.

A pool script is called as a Redis Function (FCALL of its function in the library
`routing.functions` builds, loaded once per server) while `functions` is on, else as EVALSHA
(`routing.scripts`). Either way the server may not have it:

- EVALSHA meeting `NOSCRIPT` (a restart, SCRIPT FLUSH, a failover) is sent again as EVAL with
  the script's source;
- FCALL meeting `ERR Function not found` (restarted empty, FUNCTION FLUSH) is sent again as
  EVAL too, and the library is loaded again on that connection (once at a time); FCALL on a
  server without Functions (Redis 6.2), or a FUNCTION LOAD refused for lack of the right
  (`NOPERM`), turns `functions` off: EVALSHA from then on.

The EVAL is queued on the same connection as soon as the error is read, so scripts sent in a
row still run in that order (`routing.redirects` tells the replies apart and rewrites the
commands).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from routing import redirects
from routing.address import Arg
from routing.functions import Library
from routing.redirects import FunctionSources, ScriptSources, no_functions
from routing.wire import Connection, Pending, pack

_EXISTS = "already exists"  # FUNCTION LOAD of a library another process loaded first


def unable(error: ResponseError) -> bool:
    """Does this FUNCTION LOAD error mean the server will never run our functions (no
    Functions before Redis 7.0; a user without the right)? Other errors pass (a failover)."""
    return no_functions(str(error)) or str(error).startswith("NOPERM")


class ScriptCalls:
    """The commands that call scripts, and the answers to a server that lacks them."""

    def __init__(self, functions: bool) -> None:
        self.functions = functions
        self._sources = ScriptSources()  # for NOSCRIPT
        self._functions = FunctionSources()  # for NOFUNCTION
        self._libraries: dict[str, Library] = {}  # by name, to load again
        self._loading: set[str] = set()  # libraries being loaded again

    def evalsha(
        self, sha: str | bytes, source: str, keys: Sequence[Arg], args: Sequence[Arg]
    ) -> tuple[Arg, ...]:
        self._sources.remember(sha, source)
        return (b"EVALSHA", sha, len(keys), *keys, *args)

    def fcall(
        self,
        library: Library,
        script: str,
        sha: str,
        source: str,
        keys: Sequence[Arg],
        args: Sequence[Arg],
    ) -> tuple[Arg, ...]:
        """FCALL of `script`'s function, or EVALSHA when functions are off."""
        if not self.functions:
            return self.evalsha(sha, source, keys, args)
        function = library.function(script)
        self._functions.remember(function, library.name, source)
        self._libraries[library.name] = library
        return (b"FCALL", function, len(keys), *keys, *args)

    def to_load(self, library: Library) -> bool:
        """Should `library` be loaded (FUNCTION LOAD)? It is remembered, to load again."""
        self._libraries[library.name] = library
        return self.functions

    def load_refused(self, error: ResponseError) -> None:
        """FUNCTION LOAD answered `error`: functions off if the server can't; raised unless
        the library is there already."""
        if unable(error):
            self.functions = False
        elif _EXISTS not in str(error):
            raise error

    def resend(
        self, connection: Connection, pending: Pending, error: ResponseError, kind: bytes
    ) -> bool:
        """Answer a NOSCRIPT or NOFUNCTION reply (see the module's docstring); False for
        any other kind."""
        if kind == b"NOSCRIPT":
            sources: ScriptSources | FunctionSources = self._sources
        elif kind == b"NOFUNCTION":
            sources = self._functions
        else:
            return False
        as_eval = sources.as_eval(pending.packed) if pending.attempt >= 0 else None
        if as_eval is None:
            pending.future.set_exception(redirects.error(error))
            return True
        # same connection, same server, queued now: the order is kept
        connection.send(as_eval, pending.future, pending.slot, pending.started, pending.attempt)
        if kind == b"NOFUNCTION":
            if no_functions(str(error)):
                self.functions = False
            else:
                self._reload(connection, self._functions.library_of(pending.packed))
        return True

    def _reload(self, connection: Connection, name: str | None) -> None:
        """Load library `name` again on `connection`'s server, once at a time."""
        library = self._libraries.get(name or "")
        if library is None or library.name in self._loading:
            return
        self._loading.add(library.name)

        def loaded(reply: asyncio.Future[Any]) -> None:
            self._loading.discard(library.name)
            failed = None if reply.cancelled() else reply.exception()
            if isinstance(failed, ResponseError) and unable(failed):
                self.functions = False

        connection.send(pack((b"FUNCTION", b"LOAD", library.code))).add_done_callback(loaded)
