"""Every Redis key mjgate uses, built in one place, laid out for Redis Cluster.

Only what one script or transaction must touch atomically shares a hash tag, so each lands in
one cluster slot and the rest spreads over the shards:

    <prefix>:{pool}:...          the pool: accounts, indexes, reservations, staging, leases
    <prefix>:{t:<task id>}:task  one task record
    <prefix>:{u:<upstream id>}:up          the upstream task id -> mjgate's id map
    <prefix>:{i:<client>:<key>}:idem       one Idempotency-Key
    <prefix>:{r:<key id>}:<minute>         a client key's rate counters (one transaction
                                           reads the previous minute's, so one tag per key)
    <prefix>:{ckeys}:key:<id>, :index      managed client keys and their index (created and
                                           revoked together, in one transaction)
    <prefix>:{outbox}:due, :attempts       the webhook outbox

Pool scripts build keys from ids at run time (staged dispatch, lease expiry) from the base
`<prefix>:{pool}:`, spelt in `routing/lua/accounts.lua`; change both together. No script or
transaction touches keys of two tags (tests/routing/test_cluster_slots.py proves it on a
real cluster, which refuses cross-slot access). The prefix must not contain `{` or `}`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "mjgate"

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError("the key prefix must not contain { or }: they make hash tags")

    @property
    def base(self) -> str:
        """`<prefix>:{pool}:`: every pool key starts with this; scripts receive it as ARGV."""
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

    def pacing_default(self) -> str:
        """The pool's default pacing profile (JSON; absent: none)."""
        return f"{self.base}pacedef"

    def pacing_own(self) -> str:
        """Each account's own pacing as declared: bot_id -> inherit | off | JSON keys."""
        return f"{self.base}paceown"

    def renewed(self) -> str:
        """bot_id -> the last renewal instant granted to it (ms; apply_account.lua): kept
        after the account's removal, so no pool file grants one renewal twice."""
        return f"{self.base}renewed"

    def accounts(self) -> str:
        """The set of every bot_id in the pool."""
        return f"{self.base}accts"

    def index(self, name: str) -> str:
        """A sorted set of accounts: fs, ff, fb, rs (selection), renew, cool (deadlines), pace,
        gap, capo (pacing; accounts.lua's key layout names them all)."""
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

    # -- tasks (written by the gateway, each in its own slot) ---------------------------------
    def task(self, task_id: str) -> str:
        return f"{self.prefix}:{{t:{task_id}}}:task"

    def upstream_task(self, upstream_id: str) -> str:
        """Maps an upstream (GoAPI) task id to mjgate's id."""
        return f"{self.prefix}:{{u:{upstream_id}}}:up"

    def open_tasks(self, client_id: str) -> str:
        """A client's tasks not finished yet, by creation time (for the batch cancel)."""
        return f"{self.prefix}:{{o:{client_id}}}:open"

    def idempotency(self, client_id: str, key: str) -> str:
        return f"{self.prefix}:{{i:{client_id}:{key}}}:idem"

    # -- client keys ------------------------------------------------------------------------
    def client_key(self, key_id: str) -> str:
        return f"{self.prefix}:{{ckeys}}:key:{key_id}"

    def client_keys(self) -> str:
        return f"{self.prefix}:{{ckeys}}:index"

    def client_rate(self, key_id: str, window: int) -> str:
        """One client's request count in one minute (`window` = unix minutes)."""
        return f"{self.prefix}:{{r:{key_id}}}:{window}"

    # -- webhook deliveries -----------------------------------------------------------------
    def outbox(self) -> str:
        """Deliveries due: task id -> due time (ms)."""
        return f"{self.prefix}:{{outbox}}:due"

    def outbox_attempts(self) -> str:
        """Delivery attempts so far, per task id."""
        return f"{self.prefix}:{{outbox}}:attempts"

    # -- the sweep of open tasks nothing holds (gateway.tasks.sweeping) ---------------------
    def sweep_lock(self) -> str:
        """Held by the replica sweeping now, for one pass's length."""
        return f"{self.prefix}:{{sweep}}:lock"

    # -- the upstream's rate limit, shared by replicas (gateway.tasks.backoff) --------------
    def upstream_backoff(self) -> str:
        """When the pause the upstream asked for ends (unix ms); expires with it."""
        return f"{self.prefix}:{{backoff}}:until"

    def upstream_down(self) -> str:
        """When the pause a 503 with `Retry-After` started ends (unix ms); expires with it."""
        return f"{self.prefix}:{{backoff}}:down"
