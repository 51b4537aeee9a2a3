"""Reading topics outside Faust: a whole topic as it is now (every partition from its start
to its current end), a topic as records arrive, ranges of one partition, and partitions'
end and resume offsets.

For command-line tools (dead letters, the audit log) and for the agents' repair of records
Faust passed over: no consumer group joined, nothing committed. A whole topic is yielded
batch by batch, so a large one is never held in memory at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.runtime.retry import started


async def partitions_of(options: dict[str, Any], topic: str) -> list[int]:
    """A topic's partition numbers, from a metadata request; raises if it does not exist."""
    admin = AIOKafkaAdminClient(**options)
    await started(admin)
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not described or described[0]["error_code"] != 0:
        raise LookupError(f"topic {topic} does not exist")
    return sorted(p["partition"] for p in described[0]["partitions"])


class Found(NamedTuple):
    """One record as read back."""

    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


COMMITTED = {"isolation_level": "read_committed"}
"""Every read here sees committed records only: the ledger's chains are written in
transactions (one producer per chain, fenced by its transactional id), and a zombie
writer's aborted records must not count as the chain's. Topics written without
transactions read the same either way."""
BULK_FETCH = {
    "max_partition_fetch_bytes": 8_388_608,
    "fetch_max_bytes": 52_428_800,
    "fetch_max_wait_ms": 20,
}
"""Fetches for reading a topic back to its end: large (the defaults, 1 MiB per partition,
made reading the ledger five times slower than consuming it allows), and not held by the
broker for new data (a fetch of a partition already read to its end waited 500 ms)."""


class Reader:
    """One consumer for several reads in turn (a command that reads a few topics once: each
    new client costs a bootstrap and a metadata round trip)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.consumer = AIOKafkaConsumer(
            **options, **BULK_FETCH, enable_auto_commit=False, group_id=None, **COMMITTED
        )

    async def __aenter__(self) -> Reader:
        await started(self.consumer)
        # One metadata request for every topic (the consumer's own cache holds only the
        # topics it is assigned).
        self._cluster = await self.consumer._client.fetch_all_metadata()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    def partitions(self, topic: str) -> list[int]:
        found = self._cluster.partitions_for_topic(topic)
        if not found:
            raise LookupError(f"topic {topic} does not exist")
        return sorted(found)

    async def ends(self, topic: str) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in self.partitions(topic)]
        return {tp.partition: end for tp, end in (await self.consumer.end_offsets(tps)).items()}

    async def read_one(self, topic: str, partition: int, offset: int) -> Found | None:
        """The record at ``offset``, if it is there (fetched alone: a record batch is
        unpacked lazily, and a whole batch of a busy topic is thousands of records)."""
        tp = TopicPartition(topic, partition)
        self.consumer.assign([tp])
        ends = await self.consumer.end_offsets([tp])
        if offset >= ends[tp]:
            return None
        self.consumer.seek(tp, offset)
        while True:
            batch = await self.consumer.getmany(tp, timeout_ms=1000, max_records=1)
            for message in batch.get(tp, []):
                if message.offset == offset:
                    return Found(message.offset, message.key, message.value, message.timestamp)
                if message.offset > offset:
                    return None
            if await self.consumer.position(tp) > offset:
                return None

    async def read(
        self,
        topic: str,
        start: dict[int, int] | None = None,
        stop: dict[int, int] | None = None,
        only: list[int] | None = None,
    ) -> dict[int, list[Found]]:
        """Records of each partition (or of ``only`` these) from ``start`` (default: its
        beginning) up to ``stop`` (default: its end as of the call)."""
        consumer = self.consumer
        tps = [TopicPartition(topic, p) for p in (only or self.partitions(topic))]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        firsts = await consumer.beginning_offsets(tps)
        until = {tp: min(ends[tp], (stop or {}).get(tp.partition, ends[tp])) for tp in tps}
        found: dict[int, list[Found]] = {tp.partition: [] for tp in tps}
        remaining = set()
        for tp in tps:
            position = max(firsts[tp], (start or {}).get(tp.partition, firsts[tp]))
            if position < until[tp]:
                consumer.seek(tp, position)
                remaining.add(tp)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=50_000)
            for tp, messages in batch.items():
                end = until[tp]
                found[tp.partition] += [
                    Found(m.offset, m.key, m.value, m.timestamp) for m in messages if m.offset < end
                ]
            for tp in list(remaining):
                if await consumer.position(tp) >= until[tp]:
                    remaining.discard(tp)
        return found


async def read_partitions(
    options: dict[str, Any], topic: str, start: dict[int, int] | None = None
) -> dict[int, list[Found]]:
    """The records of every partition, from ``start`` (default: its beginning) to its end
    as of the call, read with one consumer in large fetches."""
    async with Reader(options) as reader:
        return await reader.read(topic, start)


async def read_topic(
    options: dict[str, Any], topic: str, start: dict[int, int] | None = None
) -> AsyncIterator[Any]:
    """Every record present when called (up to the end offsets read first), from ``start``
    (partition → offset; default: the beginning), partitions interleaved as fetched; in
    offset order within a partition."""
    consumer = AIOKafkaConsumer(
        **options, **BULK_FETCH, enable_auto_commit=False, group_id=None, **COMMITTED
    )
    await started(consumer)
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(options, topic)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        # An explicit seek: after end_offsets(), seek_to_beginning() left getmany() empty here.
        for tp, first in starts.items():
            starts[tp] = max(first, (start or {}).get(tp.partition, first))
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset < ends[tp]:
                        yield message
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def follow(
    options: dict[str, Any], topic: str, from_beginning: bool
) -> AsyncGenerator[list[Any], None]:
    """Each fetch of every partition's new records, from the topic's end (or its beginning),
    for as long as the caller reads, ordered by (timestamp, partition) within a fetch; empty
    lists when nothing arrived for half a second. Records of open transactions are shown."""
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None)
    await started(consumer)
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(options, topic)]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=500)
            yield sorted(
                (m for ms in batch.values() for m in ms), key=lambda m: (m.timestamp, m.partition)
            )
    finally:
        await consumer.stop()


async def read_partition(
    options: dict[str, Any], topic: str, partition: int, start: int | None = None
) -> tuple[list[tuple[int, bytes]], int]:
    """(offset, value) of one partition from ``start`` (default: its beginning) to its end
    as of the call, and that end offset."""
    found, end = await read_keyed(options, topic, partition, start)
    return [(f.offset, f.value) for f in found], end


async def read_keyed(
    options: dict[str, Any],
    topic: str,
    partition: int,
    start: int | None = None,
    stop: int | None = None,
) -> tuple[list[Found], int]:
    """The records of one partition from ``start`` (default: its beginning) up to
    ``stop`` or its end as of the call, whichever is first; and that end offset."""
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None, **COMMITTED)
    await started(consumer)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        first = (await consumer.beginning_offsets([tp]))[tp]
        position = max(first, start if start is not None else first)
        until = end if stop is None else min(stop, end)
        consumer.seek(tp, position)
        found: list[Found] = []
        while position < until:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for message in batch.get(tp, []):
                if message.offset < until:
                    found.append(
                        Found(message.offset, message.key, message.value, message.timestamp)
                    )
            position = await consumer.position(tp)
        return found, end
    finally:
        await consumer.stop()


async def partition_end(options: dict[str, Any], topic: str, partition: int) -> int:
    """The offset the next record of a partition will get."""
    return (await partition_ends(options, topic, [partition]))[partition]


async def partition_ends(
    options: dict[str, Any], topic: str, partitions: list[int]
) -> dict[int, int]:
    """The offset the next record of each of ``partitions`` will get."""
    tps = [TopicPartition(topic, p) for p in partitions]
    return {tp.partition: end for tp, end in (await _offsets(options, tps, first=False)).items()}


async def resume_offsets(
    options: dict[str, Any], group: str, partitions: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Where ``group`` resumes each of ``partitions`` (topic, partition): its committed
    offset, or the partition's first offset when it has none (``auto_offset_reset`` is
    ``earliest``)."""
    if not partitions:
        return {}
    tps = [TopicPartition(topic, p) for topic, p in partitions]
    admin = AIOKafkaAdminClient(**options)
    await started(admin)
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    found = {(tp.topic, tp.partition): m.offset for tp, m in committed.items() if m.offset >= 0}
    missing = [tp for tp in tps if (tp.topic, tp.partition) not in found]
    if missing:
        starts = await _offsets(options, missing, first=True)
        found.update({(tp.topic, tp.partition): first for tp, first in starts.items()})
    return found


async def _offsets(
    options: dict[str, Any], tps: list[TopicPartition], first: bool
) -> dict[TopicPartition, int]:
    """The first offset (``first``) or the next offset of each of ``tps``.

    The partitions are assigned before asking, so the metadata of all their topics comes in
    one request; otherwise aiokafka finds one topic unknown at a time and waits out a
    metadata refresh for each (a worker's resume offsets, 60 partitions of 10 topics, took
    1.0 s that way and 20 ms assigned).
    """
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None, **COMMITTED)
    await started(consumer)
    try:
        consumer.assign(tps)
        found = await (consumer.beginning_offsets(tps) if first else consumer.end_offsets(tps))
        return {tp: int(offset) for tp, offset in found.items()}
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A record read outside Faust, shaped like the Faust messages agents handle
    (``timestamp`` in seconds)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


async def read_range(
    options: dict[str, Any], topic: str, partition: int, start: int, stop: int
) -> list[SourceRecord]:
    """The records of one partition with ``start <= offset < stop``, in order."""
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None, **COMMITTED)
    await started(consumer)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        position = max(first, start)
        consumer.seek(tp, position)
        found: list[SourceRecord] = []
        while position < stop:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for m in batch.get(tp, []):
                if m.offset < stop:
                    stamp = m.timestamp / 1000.0 if m.timestamp is not None else None
                    found.append(
                        SourceRecord(
                            m.topic,
                            m.partition,
                            m.offset,
                            m.key,
                            m.value,
                            stamp,
                            list(m.headers or ()),
                        )
                    )
            position = await consumer.position(tp)
        return found
    finally:
        await consumer.stop()


async def read_last(options: dict[str, Any], topic: str, partition: int) -> Found | None:
    """The newest committed record of one partition (``None`` if it holds none). The offset
    before the end is not always a record: a transaction's commit marker takes one too."""
    end = await partition_end(options, topic, partition)
    back = 8
    while True:
        start = max(0, end - back)
        found, _ = await read_keyed(options, topic, partition, start=start)
        if found or start == 0:
            return found[-1] if found else None
        back *= 8
