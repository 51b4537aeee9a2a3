"""A partition with one writer at a time: a transactional producer that fences the ones
before it, and a check that each record lands at the offset its writer expects.

Two processes can believe they own a partition at once: one paused past its session
timeout (a zombie) still writes while the partition's new owner does. Checking where each
record lands detects that only after both wrote. So the partition is written through a
producer whose transactional id is the owner's role (for the ledger,
``<app id>-ledger-<partition>``): when the next owner starts it, the broker aborts the
zombie's open transaction and refuses its writes from then on (``ProducerFenced``), and
readers see committed records only (:data:`app.runtime.topic_reader.COMMITTED`). Each
commit writes a marker that takes an offset of the partition, which the expected offsets
count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer

from app.runtime.retry import started

RecordBytes = tuple[bytes | None, bytes]
Queued = list[tuple[Any, int]]
"""Batches sent and not yet confirmed: each one's future with the offset it must land at."""


class FencedWriter:
    """One owned partition of ``topic``: its transactional producer and its next offset."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partition: int) -> None:
        self._producer = producer
        self.topic = topic
        self.partition = partition
        self.next_offset = 0
        self.last_offset = -1
        """The offset of its last record (-1: none)."""
        self._sent = False

    @classmethod
    async def fence(
        cls, options: dict[str, Any], transactional_id: str, topic: str, partition: int
    ) -> FencedWriter:
        """The writer, started: starting it fences every earlier producer with the same
        transactional id and aborts its open transaction. Read the partition's end only
        after this returns (then no earlier writer's record can still land), and pass it to
        :meth:`resume_at`."""
        producer = AIOKafkaProducer(
            **options, transactional_id=transactional_id, enable_idempotence=True, acks="all",
            linger_ms=5, max_batch_size=1_048_576, max_request_size=8_388_608,
        )  # fmt: skip
        await started(producer)
        return cls(producer, topic, partition)

    def resume_at(self, next_offset: int, last_offset: int) -> None:
        """Where the partition ends: its next record's offset and its last record's."""
        self.next_offset = next_offset
        self.last_offset = last_offset

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Send what the block sends as one transaction. On an error the transaction stays
        open: the process stops, and the partition's next owner aborts it as it fences."""
        await self._producer.begin_transaction()
        self._sent = False
        yield
        await self._producer.commit_transaction()
        if self._sent:
            self.next_offset += 1  # the commit marker

    async def enqueue(self, records: list[RecordBytes]) -> Queued:
        """Queue records for the partition, in order, without waiting for them."""
        sent: Queued = []
        base, in_batch = self.next_offset, 0
        batch = self._producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                sent.append((await self._send_batch(batch), base))
                base, in_batch = base + in_batch, 0
                batch = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record of {len(value)} bytes exceeds a batch")
            in_batch += 1
        sent.append((await self._send_batch(batch), base))
        self.next_offset = base + in_batch
        self.last_offset = self.next_offset - 1
        self._sent = True
        return sent

    async def confirm(self, sent: Queued) -> None:
        """Wait for queued batches; each must have landed exactly where the writer expects."""
        for future, expected in sent:
            landed = (await future).offset
            if landed != expected:
                raise RuntimeError(
                    f"{self.topic} partition {self.partition}: records landed at {landed},"
                    f" expected {expected}: another writer appended to this partition"
                )

    async def send_beside(self, topic: str, value: bytes, key: bytes, partition: int) -> None:
        """Send one record to another topic in the open transaction, acknowledged."""
        await (await self._producer.send(topic, value, key=key, partition=partition))

    async def stop(self) -> None:
        await self._producer.stop()

    async def _send_batch(self, batch: Any) -> Any:
        return await self._producer.send_batch(batch, self.topic, partition=self.partition)
