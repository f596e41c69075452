"""Task records: the codec, `evolve`, ids, and the store's write rules on the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import fields, replace

import pytest
from redis.asyncio import Redis

from gateway.records import RecordStore
from gateway.taskrecord import TaskRecord, new_task_id
from routing.keys import Keys
from routing.pipe import Pipe

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


def _record(**changes: object) -> TaskRecord:
    base = TaskRecord(
        task_id=new_task_id(),
        client_id="c1",
        task_type="imagine",
        status="pending",
        request={"input": {"prompt": "a cat --fast"}, "config": {}},
        requested_mode="fast",
        mode="fast",
        bot_id=7,
        decision="routed",
        upstream_id="up-1",
        task={"task_id": "up-1", "status": "pending", "output": {"image_url": "x" * 300}},
        created_at=1.5,
        updated_at=2.5,
        tags=("eu",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def records(redis: Redis, keys: Keys) -> AsyncIterator[RecordStore]:
    pipe = Pipe.of(redis)
    yield RecordStore(redis, keys, ttl=60, pipe=pipe)
    await pipe.aclose()


def test_new_task_ids_are_random_version_4_uuids() -> None:
    ids = {new_task_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:50]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_evolve_is_replace() -> None:
    record = _record()
    changes = {"status": "completed", "bot_id": 9, "history": ({"what": "x"},)}
    assert record.evolve(**changes) == replace(record, **changes)  # type: ignore[arg-type]
    assert record.status == "pending"  # the original is untouched
    with pytest.raises(TypeError, match="no field stauts"):
        record.evolve(stauts="completed")


@pytest.mark.parametrize("status", ["pending", "completed"])
def test_encode_decode_round_trip(status: str) -> None:
    record = _record(status=status).with_event("sent", bot_id=7)
    blob = record.encode()
    assert blob[:1] == (b"z" if record.terminal else b"j")
    decoded = TaskRecord.decode(record.task_id, status, blob)
    assert {f.name: getattr(decoded, f.name) for f in fields(TaskRecord)} == {
        f.name: getattr(record, f.name) for f in fields(TaskRecord)
    }


async def test_terminal_records_are_never_overwritten(records: RecordStore) -> None:
    record = _record()
    assert await records.save_unless_terminal(record)
    done = record.evolve(status="completed")
    assert await records.save_unless_terminal(done)
    assert not await records.save_unless_terminal(record.evolve(status="processing"))
    loaded = await records.load(record.task_id)
    assert loaded is not None and loaded.status == "completed"
    assert await records.save(record.evolve(status="failed"))  # a local decision may
    again = await records.load(record.task_id)
    assert again is not None and again.status == "failed"


async def test_writes_sent_in_a_row_land_in_that_order(records: RecordStore) -> None:
    record = _record()
    first = records.save(record.evolve(status="processing"))
    second = records.save_unless_terminal(record.evolve(status="completed"))
    third = records.save_unless_terminal(record.evolve(status="processing"))
    assert (await third, await second, await first) == (False, True, True)
    loaded = await records.load(record.task_id)
    assert loaded is not None and loaded.status == "completed"
    mapped = await records.by_upstream_id("up-1")  # a finished task's upstream id stays mjgate's
    assert mapped is not None and mapped.status == "completed"
