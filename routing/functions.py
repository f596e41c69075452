"""Redis Functions: the pool's scripts as one library, loaded once per server (Redis 7+).

Redis runs an EVAL script's whole text at every call, so each call of a pool script first
creates the library definitions it carries (routing/prelude.py): 60-70 functions and tables,
about 20 µs of Redis's time before the script does anything (docs/benchmarks.md). A Redis
Functions library is run once, when it is loaded (FUNCTION LOAD): its definitions then live
in the server, and a call (FCALL) runs only the script's body. The library holds every pool
script (`routing.scripts.SCRIPT_NAMES`) as a function; each body is the same text as the
EVAL script's, started with the same `begin(ARGV)`, which resets everything a call may
learn (the libraries' locals outlive a call here), so both ways run the same code.

Names carry the library's content hash (`mjgate_<12 hex>`, functions `<library>__<script>`),
so two mjgate versions sharing a server (a rolling upgrade) each call their own code; an
older version's library stays loaded until an operator deletes it (`FUNCTION DELETE`,
docs/redis.md). A server without Functions (Redis 6.2: the embedded server), one that lost
them (restarted empty, FUNCTION FLUSH) or a user not allowed to load them is met by
`routing.scriptcalls`: the call is sent as EVAL at once, and the library loaded again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from routing import prelude


@dataclass(frozen=True)
class Library:
    """A functions library: its name, its code (FUNCTION LOAD's argument) and the function
    each pool script is registered as."""

    name: str
    code: str
    functions: dict[str, str]

    def function(self, script: str) -> str:
        return self.functions[script]


def build(bodies: dict[str, str]) -> Library:
    """The library of the scripts `bodies` (script name -> body), named by its content."""
    digest = hashlib.sha1(prelude.library("mjgate", bodies).encode()).hexdigest()[:12]
    name = f"mjgate_{digest}"
    functions = {script: f"{name}__{script}" for script in bodies}
    code = prelude.library(name, {functions[script]: body for script, body in bodies.items()})
    return Library(name, code, functions)
