"""The scripts themselves: package files with headers, one key layout, re-registration after
SCRIPT FLUSH, and Redis failures turned into StoreError."""

from __future__ import annotations

import pickle
import re
import socket
import time
from collections.abc import Awaitable, Callable
from importlib import resources

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routing.catalog import Catalog
from routing.errors import (
    AccountBusyError,
    AccountNotFoundError,
    NoRelaxCapableAccountError,
    ParentAccountUnavailableError,
    PoolFileError,
    StagedLimitError,
    StoreError,
)
from routing.keys import Keys
from routing.model import Mode, Plan, Strategy
from routing.prelude import LIBRARIES, compose
from routing.results import Outcome
from routing.scripts import SCRIPT_NAMES, Script
from routing.store import PoolStore
from tests.routing.helpers import add, reserved, root


def test_every_script_is_a_package_file_with_a_header() -> None:
    folder = resources.files("routing").joinpath("lua")
    names = {item.name for item in folder.iterdir() if item.name.endswith(".lua")}
    assert names == {f"{name}.lua" for name in (*SCRIPT_NAMES, *LIBRARIES)}
    for name in SCRIPT_NAMES:
        header = folder.joinpath(f"{name}.lua").read_text().split("\n\n")[0]
        assert header.startswith(f"-- {name}: ")
        for part in ("KEYS[1]", "ARGV[1]", "ARGV[2]", "Returns"):
            assert part in header, (name, part)


async def test_the_lua_key_layout_is_the_one_in_keys(redis: Redis, keys: Keys) -> None:
    probe = compose(
        "return {K.meta, K.agg, K.all, K.fs, K.ff, K.fb, K.rs, K.renew, K.cool, K.lease, K.stq,"
        " K.stdl, K.stc, k_acct('7'), k_hist('7'), k_res('t'), k_stg('t')}"
    )
    got = await redis.eval(probe, 1, keys.pool_meta(), keys.base, 0)
    assert [item.decode() for item in got] == [
        keys.pool_meta(),
        keys.pool_totals(),
        keys.accounts(),
        *(keys.index(name) for name in ("fs", "ff", "fb", "rs", "renew", "cool")),
        keys.leases(),
        keys.staged_queue(),
        keys.staged_deadlines(),
        keys.staged_per_client(),
        keys.account(7),
        keys.account_history(7),
        keys.reservation("t"),
        keys.staged_entry("t"),
    ]
    assert all(re.match(r"^[^{]*\{pool\}:", key.decode()) for key in got)


async def test_scripts_work_again_after_script_flush(store: PoolStore, redis: Redis) -> None:
    await add(store, 1, Plan.PRO)
    reserved(await root(store, "t1"))
    await redis.script_flush()
    assert reserved(await root(store, "t2")).bot_id == 1
    assert await store.settle("t1", Outcome.COMPLETED)


async def test_every_kind_of_script_runs_again_after_script_flush(
    store: PoolStore, redis: Redis, keys: Keys
) -> None:
    """One loader, two runners: a pool script and the records' scripts on the pipe, the
    outbox's script on a redis-py client; each cached again by its first call."""
    record_save = Script.from_package("gateway", "record_save")
    idempotency_claim = Script.from_package("gateway", "idempotency_claim")
    outbox_claim = Script.from_package("gateway", "outbox_claim")
    await add(store, 1, Plan.PRO)
    await redis.script_flush()
    reserved(await root(store, "t1"))
    written = record_save.on_pipe(store.pipe, (keys.task("t1"),), (60, "1", "pending", "{}"))
    assert await written == 1
    key = keys.idempotency("c", "k")
    assert await idempotency_claim.on_pipe(store.pipe, (key,), ("t1 p", 60)) is None
    assert await idempotency_claim.on_pipe(store.pipe, (key,), ("t2 q", 60)) == b"t1 p"
    await redis.zadd(keys.outbox(), {"t1": 5})
    assert await outbox_claim.on_redis(redis, (keys.outbox(),), (10, 5, 1000)) == [b"t1"]
    shas = [s.sha for s in (record_save, idempotency_claim, outbox_claim)]
    assert await redis.script_exists(*shas) == [True, True, True]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_redis_raises_store_error_quickly(keys: Keys) -> None:
    client = Redis(
        host="127.0.0.1",
        port=_closed_port(),
        socket_connect_timeout=0.2,
        socket_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )
    store = PoolStore(client, keys)
    try:
        calls: list[Callable[[], Awaitable[object]]] = [
            store.load_scripts,
            lambda: root(store, "t1", Mode.FAST, 60),
            lambda: store.settle("t1", Outcome.FAILED),
            lambda: Catalog(store).get_account(1),
            Catalog(store).list_accounts,
            store.staged_count,
            lambda: Catalog(store).pool_snapshot(per_account=True),
            lambda: Catalog(store).set_strategy(Strategy.WEIGHTED),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                await call()
            assert time.monotonic() - started < 0.5
            assert caught.value.op
            assert isinstance(caught.value.__cause__, Exception)
    finally:
        await store.aclose()
        await client.aclose()


async def test_a_redis_error_reply_becomes_store_error(store: PoolStore, redis: Redis) -> None:
    await add(store, 1, Plan.PRO)
    await redis.set(store.keys.index("fs"), "not a sorted set")
    with pytest.raises(StoreError) as caught:
        await root(store, "t1")
    assert caught.value.op == "reserve_root"
    assert "WRONGTYPE" in str(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        StoreError("reserve_root", "boom"),
        ParentAccountUnavailableError(3, "account_disabled"),
        StagedLimitError(50),
        AccountNotFoundError(4),
        AccountBusyError(5, 2),
        PoolFileError(7, "bad"),
        NoRelaxCapableAccountError("none"),
    ],
)
def test_routing_errors_cross_process_boundaries(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), vars(copy)) == (type(error), str(error), vars(error))
