"""Every Redis key mjgate uses, built in one place.

All keys share the `{pool}` hash tag, so every Lua script touches a single Redis Cluster slot:
one pool's decisions, reservations, staged queue and task records live on one shard (DESIGN.md
section 5). Scripts that build keys from ids at run time (staged dispatch, lease expiry) use the
same layout, spelt in `routing/lua/lib.lua`; change both together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "mjgate"

    @property
    def base(self) -> str:
        """`<prefix>:{pool}:`: every key starts with this; scripts receive it as ARGV."""
        return f"{self.prefix}:{{pool}}:"

    # -- pool (written by routing.store's scripts) ------------------------------------------
    def account(self, bot_id: int) -> str:
        return f"{self.base}acct:{bot_id}"

    def account_history(self, bot_id: int) -> str:
        return f"{self.base}hist:{bot_id}"

    def reservation(self, task_id: str) -> str:
        return f"{self.base}res:{task_id}"

    def staged_entry(self, task_id: str) -> str:
        return f"{self.base}stg:{task_id}"

    def pool_meta(self) -> str:
        """Strategy, staged sequence, account incarnations. KEYS[1] of every pool script."""
        return f"{self.base}meta"

    def pool_totals(self) -> str:
        """Pool-wide aggregates kept by the scripts (counts, fast time, slots)."""
        return f"{self.base}agg"

    def accounts(self) -> str:
        """The set of every bot_id in the pool."""
        return f"{self.base}accts"

    def index(self, name: str) -> str:
        """A sorted set of accounts: fs, ff, fb, rs (selection), renew, cool (deadlines)."""
        return f"{self.base}ix:{name}"

    def leases(self) -> str:
        return f"{self.base}leases"

    def staged_queue(self) -> str:
        return f"{self.base}stq"

    def staged_deadlines(self) -> str:
        return f"{self.base}stdl"

    def staged_per_client(self) -> str:
        return f"{self.base}stc"

    def check_schedule(self) -> str:
        """Tasks sent upstream, by the time of their next completion check (ms)."""
        return f"{self.base}track"

    def check_budget(self) -> str:
        """The deployment's token bucket of upstream GETs (`t` tokens, `at` ms)."""
        return f"{self.base}trackb"

    def durations(self, task_type: str, mode: str) -> str:
        """The latest durations (ms) of finished tasks of one type and mode, newest first."""
        return f"{self.base}dur:{task_type}:{mode}"

    # -- tasks (written by the gateway; staged transitions also by scripts) ------------------
    def task(self, task_id: str) -> str:
        return f"{self.base}task:{task_id}"

    def upstream_task(self, upstream_id: str) -> str:
        """Maps an upstream (GoAPI) task id to mjgate's id."""
        return f"{self.base}up:{upstream_id}"

    def idempotency(self, client_id: str, key: str) -> str:
        return f"{self.base}idem:{client_id}:{key}"

    def client_key(self, key_id: str) -> str:
        return f"{self.base}ckey:{key_id}"

    def client_keys(self) -> str:
        return f"{self.base}ckeys"

    def client_rate(self, key_id: str, window: int) -> str:
        """One client's request count in one minute (`window` = unix minutes)."""
        return f"{self.base}rate:{key_id}:{window}"
