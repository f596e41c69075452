"""Store operations are named in one place: every operation that can fail with a StoreError
(the catalog's and the pacing default's included) has its `mjgate_store_errors_total` series
at 0 from the first scrape, and the names in the code are the declared ones."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.keys.client import StaticKeys
from gateway.keys.store import KeyStore
from gateway.metrics import Metrics
from routing.catalog import Catalog
from routing.errors import StoreError
from routing.keys import Keys
from routing.model import Strategy
from routing.pipe import Pipe
from routing.store import PoolStore

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = [*(ROOT / "routing").rglob("*.py"), *(ROOT / "gateway").rglob("*.py")]


@pytest.fixture
async def dead() -> AsyncIterator[Redis]:
    """A Redis nothing listens on: every call fails at once."""
    client = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def failed_op(call: Callable[[], Awaitable[Any]]) -> str:
    with pytest.raises(StoreError) as failed:
        await call()
    return str(failed.value.op)


async def test_every_failing_operation_is_exported_before_its_first_error(
    dead: Redis, keys: Keys
) -> None:
    store = PoolStore(dead, keys, timeout=2.0)
    catalog = Catalog(store)
    pipe = Pipe.of(dead)
    keystore = KeyStore(dead, keys, static=StaticKeys(()), pipe=pipe)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: catalog.get_account(1),
        catalog.list_accounts,
        lambda: catalog.remove_account(1),
        catalog.get_strategy,
        lambda: catalog.set_strategy(Strategy.MOST_FAST_LEFT),
        catalog.pacing_default,
        lambda: catalog.set_pacing_default(None),
        catalog.pool_snapshot,
        store.staged_count,
        lambda: keystore.get("k1"),
        keystore.list,
        lambda: keystore.update("k1", lambda stored: stored),
        lambda: keystore.revoke("k1"),
    ]
    try:
        ops = {await failed_op(call) for call in calls}
    finally:
        await store.aclose()
        await pipe.aclose()
    registry = CollectorRegistry()
    Metrics(registry)
    exported = {
        op: registry.get_sample_value("mjgate_store_errors_total", {"op": op}) for op in ops
    }
    assert exported == dict.fromkeys(ops, 0.0)


def storeop_uses() -> set[str]:
    """The `StoreOp.X` members the code names."""
    used: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "StoreOp"
            ):
                used.add(node.attr)
    return used


def test_every_declared_operation_is_one_the_code_names() -> None:
    from routing.storeops import StoreOp

    assert {op.name for op in StoreOp} == storeop_uses()


NAMING = {"store_errors", "translated", "StoreError", "store_error", "_call", "_reply"}


def test_no_operation_is_named_by_a_bare_string() -> None:
    """mypy refuses a `str` where a StoreOp is due; this says so without it."""
    bare = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in NAMING and isinstance(first, ast.Constant) and isinstance(first.value, str):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}: {first.value}")
    assert bare == []
