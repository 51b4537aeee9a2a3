"""Changelog records in per-partition batches (app.runtime.changelog): flush order kept within
and across flushes, and the producer flush before a commit waits for every queued record."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
import pytest

from app.runtime.changelog import ChangelogSender
from app.runtime.state import WriteBehindTable


class Batch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[Any, Any]] = []

    def append(self, *, key: Any, value: Any, timestamp: Any) -> object | None:
        if len(self.records) == self.room or (value is not None and len(value) > 100):
            return None
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class Producer:
    """aiokafka's producer as the sender uses it; the first batch it takes is slow. Each send
    returns the future of its acknowledgement (offsets counted per partition)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, Any, Any]] = []
        self.calls = 0
        self.acks: list[asyncio.Future[Any]] = []

    def create_batch(self) -> Batch:
        return Batch(room=2)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Any:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(0.05)
        first = self._offset(partition)
        self.log += [(topic, partition, k, v) for k, v in batch.records]
        return self._ack(partition, first)

    async def send(self, topic: str, value: Any, *, key: Any, partition: int) -> Any:
        first = self._offset(partition)
        self.log.append((topic, partition, key, value))
        return self._ack(partition, first)

    def _offset(self, partition: int) -> int:
        return sum(1 for _, p, _, _ in self.log if p == partition)

    def _ack(self, partition: int, offset: int) -> asyncio.Future[Any]:
        """An acknowledgement the test resolves (aiokafka's RecordMetadata: the batch's first
        offset)."""
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ack.metadata = SimpleNamespace(partition=partition, offset=offset)  # type: ignore[attr-defined]
        self.acks.append(ack)
        return ack

    def acknowledge_all(self) -> None:
        for ack in self.acks:
            if not ack.done():
                ack.set_result(ack.metadata)  # type: ignore[attr-defined]


class FaustProducer:
    def __init__(self) -> None:
        self.aiokafka = Producer()
        self.flushed_with: list[int] = []

    def _ensure_producer(self) -> Producer:
        return self.aiokafka

    async def flush(self) -> None:
        self.flushed_with.append(len(self.aiokafka.log))


class App:
    def __init__(self) -> None:
        self.producer = FaustProducer()


async def test_flushes_keep_their_order_and_the_commit_flush_waits_for_them() -> None:
    app = App()
    sender = ChangelogSender(app)
    big = b"x" * 200  # too large for a batch: sent alone, still in its place
    acknowledged: list[tuple[int, int]] = []
    sender.send(
        "t",
        [(0, [(b"a", b"1"), (b"b", b"1"), (b"c", big), (b"d", None)]), (1, [(b"e", b"1")])],
        lambda partition, offset: acknowledged.append((partition, offset)),
    )
    sender.send("t", [(0, [(b"a", b"2")])])  # a later flush: never ahead of the first
    await app.producer.flush()  # what Faust awaits before committing offsets
    assert app.producer.flushed_with == [6]
    assert [(p, k, v) for _, p, k, v in app.producer.aiokafka.log] == [
        (0, b"a", b"1"), (0, b"b", b"1"), (0, b"c", big), (0, b"d", None), (1, b"e", b"1"),
        (0, b"a", b"2"),
    ]  # fmt: skip
    assert not sender.idle and acknowledged == []  # with the producer, not yet acknowledged
    app.producer.aiokafka.acknowledge_all()
    await asyncio.sleep(0)
    # The last offset of each acknowledged batch: [a b] ends at 1, c alone at 2, [d] at 3.
    assert acknowledged == [(0, 1), (0, 2), (0, 3), (1, 0)] and sender.idle


async def test_a_table_queues_its_codecs_bytes_per_partition_in_flush_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = App()
    faust_app = faust.App("changelog-test", store="memory://", Table=WriteBehindTable)
    table: WriteBehindTable = faust_app.Table("t", default=None, partitions=2)
    table.changelog_sender = ChangelogSender(app)
    partition_of = {"a": 0, "b": 0, "@box:1": 1}
    monkeypatch.setattr(table, "partition_for_key", lambda key: partition_of[key])
    table["b"] = {"n": 0}
    table["a"] = {"n": 1}
    table["@box:1"] = {"n": 2}
    del table["b"]
    assert table.flush_changelog() == 3
    await app.producer.flush()
    topic = table.changelog_topic.get_topic_name()
    assert app.producer.aiokafka.log == [
        (topic, 1, b'"@box:1"', b'{"n":2}'),  # journal keys first (Faust's json codec)
        (topic, 0, b'"a"', b'{"n":1}'),
        (topic, 0, b'"b"', None),  # a delete, the last write to b: a tombstone
    ]
