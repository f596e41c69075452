"""`StoreOp`: the name of every store operation, the one vocabulary of `StoreError.op` and of
the `op` label of `mjgate_store_errors_total`.

Every store (the pool's, the catalog, task records, client keys, the check schedule, the
outbox, start-up) names its Redis calls with a member: `store_errors`, `translated` and
`StoreError` take a `StoreOp`, so mypy refuses an operation that is not declared here, and the
metrics export every member at 0 from the first scrape. The gateway's operations are listed
too (as `Decision` lists the gateway's decisions): routing never imports the gateway.
"""

from __future__ import annotations

from enum import StrEnum


class StoreOp(StrEnum):
    # the pool's hot path (routing.store.PoolStore)
    LOAD_SCRIPTS = "load_scripts"
    RESERVE_ROOT = "reserve_root"
    RESERVE_CHILD = "reserve_child"
    SETTLE = "settle"
    EXTEND_LEASE = "extend_lease"
    CLAIM_EXPIRED_LEASES = "claim_expired_leases"
    DISPATCH_STAGED = "dispatch_staged"
    RESTAGE_KEY = "restage_key"
    RUN_RELAX = "run_relax"
    CANCEL_STAGED = "cancel_staged"
    STAGED_COUNT = "staged_count"
    TICK = "tick"
    RECOUNT_FAST = "recount_fast"
    SET_STATE = "set_state"
    SET_FAST_TIME = "set_fast_time"
    # what the pool is (routing.catalog.Catalog)
    APPLY_ACCOUNT = "apply_account"
    GET_ACCOUNT = "get_account"
    LIST_ACCOUNTS = "list_accounts"
    REMOVE_ACCOUNT = "remove_account"
    GET_STRATEGY = "get_strategy"
    SET_STRATEGY = "set_strategy"
    PACING_DEFAULT = "pacing_default"
    SET_PACING_DEFAULT = "set_pacing_default"
    POOL_SNAPSHOT = "pool_snapshot"
    # the check schedule and learnt durations (routing.schedule.CheckSchedule)
    SCHEDULE = "schedule"
    DURATIONS = "durations"
    TRACK_CLAIM = "track_claim"
    TRACK_TAKE = "track_take"
    # the gateway's: task records, idempotency, client keys, the webhook outbox, start-up
    RECORD_SAVE = "record_save"
    RECORD_LOAD = "record_load"
    RECORD_LOOKUP = "record_lookup"
    RECORD_INDEX = "record_index"
    SWEEP = "sweep"
    UPSTREAM_BACKOFF = "upstream_backoff"
    RECORD_DELETE = "record_delete"
    IDEMPOTENCY = "idempotency"
    KEY_LOOKUP = "key_lookup"
    RATE_LIMIT = "rate_limit"
    KEY_CREATE = "key_create"
    KEY_GET = "key_get"
    KEY_LIST = "key_list"
    KEY_UPDATE = "key_update"
    KEY_REVOKE = "key_revoke"
    OUTBOX = "outbox"
    EPOCH = "epoch"
    UPGRADE = "upgrade"
