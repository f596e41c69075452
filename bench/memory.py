"""Redis memory per account and per finished task record.

Per account: `MEMORY USAGE ... SAMPLES 0` of sampled account hashes, plus the pool-wide
structures (the set of ids, the selection indexes, the aggregates) divided by the number of
accounts. `used_memory`'s growth over the load is given beside it as a cross-check (it moves
with whatever else the server does meanwhile). An account's history list is empty until its
state, setting or fast time changes; once full (10 events) it is measured on its own.

Per task record: tasks created through mjgate in front of the instant emulator (finished at
once: the create's answer is already `completed`, with its outputs), then the record hash
(`task:<id>`) and the upstream-id map key (`up:<upstream id>`) of each.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, cast

import httpx
from redis.asyncio import Redis

from bench.lab import Lab
from bench.pools import load_accounts, new_pool
from bench.report import Report, Row
from bench.traffic import Side
from routing.keys import Keys
from routing.model import AccountState
from routing.store import PoolStore

SAMPLE = 500
HISTORY_TURNS = 20  # state changes per account: more than the 10 entries a history keeps


async def _usage(redis: Redis, key: str) -> int:
    return int(await redis.memory_usage(key, samples=0) or 0)


async def account_memory(redis: Redis, count: int) -> dict[str, Any]:
    async with new_pool(redis, "memory") as store:
        keys = store.keys
        before = int((await redis.info("memory"))["used_memory"])
        await load_accounts(store, count)
        after = int((await redis.info("memory"))["used_memory"])
        chosen = random.Random(7).sample(range(1, count + 1), min(SAMPLE, count))
        hashes = [await _usage(redis, keys.account(bot_id)) for bot_id in chosen]
        names = ("fs", "ff", "fb", "rs", "renew", "cool")
        shared_keys = [keys.accounts(), keys.pool_totals(), keys.pool_meta()]
        shared_keys += [keys.index(name) for name in names]
        shared = {key.rsplit(":", 1)[-1]: await _usage(redis, key) for key in shared_keys}
        history = await _full_history(store, count)
    hash_mean = sum(hashes) / len(hashes)
    return {
        "accounts": count,
        "account_hash_bytes": round(hash_mean, 1),
        "pool_structures_bytes": shared,
        "per_account_bytes": round(hash_mean + sum(shared.values()) / count, 1),
        "used_memory_delta_per_account": round((after - before) / count, 1),
        "history_bytes_full": history,
    }


async def _full_history(store: PoolStore, count: int) -> float:
    sizes = []
    for bot_id in range(1, min(5, count) + 1):
        for turn in range(HISTORY_TURNS):
            state = AccountState.PAUSED if turn % 2 == 0 else AccountState.ACTIVE
            await store.set_state(bot_id, state, reason="bench: operator pause")
        sizes.append(await _usage(store.redis, store.keys.account_history(bot_id)))
    return round(sum(sizes) / len(sizes), 1)


def create_records(lab: Lab, count: int) -> tuple[str, list[str]]:
    """Create `count` tasks through mjgate and GET a few (as clients would); returns mjgate's
    key prefix and the task ids."""
    gateway = lab.main_gateway()
    side = Side.gateway(gateway.url)
    ids = side.create_ids(count)
    for task_id in ids[:10]:
        httpx.get(f"{gateway.url}/api/v1/task/{task_id}", headers=side.headers, timeout=10)
    return gateway.prefix, ids


async def record_memory(redis: Redis, prefix: str, task_ids: Sequence[str]) -> dict[str, Any]:
    keys = Keys(prefix)
    records: list[int] = []
    upstream: list[int] = []
    field_bytes: dict[str, int] = {}
    statuses: dict[str, int] = {}
    reservations = 0
    for task_id in task_ids:
        records.append(await _usage(redis, keys.task(task_id)))
        raw = cast(dict[bytes, bytes], await redis.hgetall(keys.task(task_id)))
        fields = {name.decode(): value for name, value in raw.items()}
        status = fields.get("status", b"?").decode()
        statuses[status] = statuses.get(status, 0) + 1
        for name, value in fields.items():
            field_bytes[name] = field_bytes.get(name, 0) + len(value)
        if fields.get("up"):
            upstream.append(await _usage(redis, keys.upstream_task(fields["up"].decode())))
        reservations += int(await redis.exists(keys.reservation(task_id)))
    count = max(1, len(task_ids))
    record, up = sum(records) / count, sum(upstream) / max(1, len(upstream))
    return {
        "tasks": len(task_ids),
        "statuses": statuses,
        "task_hash_bytes": round(record, 1),
        "upstream_key_bytes": round(up, 1),
        "per_record_bytes": round(record + up, 1),
        "fields": len(field_bytes),
        "mean_field_bytes": {k: round(v / count) for k, v in sorted(field_bytes.items())},
        "reservations_still_held": reservations,
    }


def memory_rows(report: Report, accounts: dict[str, Any], records: dict[str, Any] | None) -> None:
    report.details["memory"] = {"accounts": accounts, "task_records": records}
    per = accounts["per_account_bytes"]
    report.add(
        Row(
            part="memory",
            metric=f"per account ({accounts['accounts']:,} accounts)",
            mjgate=per,
            reference=None,
            value=per,
            unit="B",
            target="<= 1024 B",
            passed=per <= 1024,
            note=f"hash {accounts['account_hash_bytes']:.0f} B + pool structures; "
            f"used_memory delta {accounts['used_memory_delta_per_account']:.0f} B",
        )
    )
    report.add(
        Row(
            part="memory",
            metric="account history, once full (the last 10 changes)",
            mjgate=accounts["history_bytes_full"],
            reference=None,
            value=accounts["history_bytes_full"],
            unit="B",
            note="on top of the above, for an account whose state/setting/fast time changed",
        )
    )
    if records is None:
        return
    per_task = records["per_record_bytes"]
    note = (
        f"record hash {records['task_hash_bytes']:.0f} B ({records['fields']} fields, "
        f"upstream task object {records['mean_field_bytes'].get('task', 0)} B) "
        f"+ upstream-id key {records['upstream_key_bytes']:.0f} B"
    )
    report.add(
        Row(
            part="memory",
            metric=f"per finished task record ({records['tasks']} tasks)",
            mjgate=per_task,
            reference=None,
            value=per_task,
            unit="B",
            target="<= 2048 B",
            passed=per_task <= 2048,
            note=note,
        )
    )
