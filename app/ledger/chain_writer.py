"""One chain's writer: its head, where its next record lands, and its own transactional
producer, which fences every earlier writer of the chain.

Two appenders can believe they own a chain at once: a worker paused past its session
timeout (a zombie) still appends while the chain's new owner does. Checking where each
record lands detects that only after both wrote, and the chain is forked in the log. So
each chain is written through a producer whose transactional id is the chain's
(``<app id>-ledger-<partition>``): when the next owner starts it, the broker aborts the
zombie's open transaction and refuses its writes from then on (``ProducerFenced``), and
readers see committed records only (:data:`app.runtime.topic_reader.COMMITTED`). Records and the
checkpoints that cover them commit together. Each commit writes a marker that takes an
offset of the ledger partition, so a leaf's offset is its index plus the commits before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from app.ledger.chain import ChainHead
from app.runtime.retry import started

RecordBytes = tuple[bytes | None, bytes]


@dataclass(slots=True)
class ChainWriter:
    """One owned chain: its head, the next ledger offset, when it was last checkpointed."""

    partition: int
    head: ChainHead
    next_offset: int
    checkpointed_at: float
    last_offset: int
    """The offset of its last record (-1: none): where a checkpoint says it ends."""
    producer: AIOKafkaProducer
    """Its transactional producer (:func:`chain_producer`)."""
    topic: str
    sent: bool = field(default=False)
    """Whether the open transaction holds records of the ledger partition."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Send what the block sends as one transaction. On an error the transaction stays
        open: the process stops, and the chain's next owner aborts it as it fences."""
        await self.producer.begin_transaction()
        self.sent = False
        yield
        await self.producer.commit_transaction()
        if self.sent:
            self.next_offset += 1  # the commit marker

    async def enqueue(self, records: list[RecordBytes]) -> list[tuple[Any, int]]:
        """Queue records for the chain's partition, in order; each batch's future with the
        offset its first record must land at."""
        sent: list[tuple[Any, int]] = []
        base, in_batch = self.next_offset, 0
        batch = self.producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                sent.append((await self._send_batch(batch), base))
                base, in_batch = base + in_batch, 0
                batch = self.producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"ledger record of {len(value)} bytes exceeds a batch")
            in_batch += 1
        sent.append((await self._send_batch(batch), base))
        self.next_offset = base + in_batch
        self.last_offset = self.next_offset - 1
        self.sent = True
        return sent

    async def confirm(self, sent: list[tuple[Any, int]]) -> None:
        """Wait for queued batches; each must have landed exactly where the chain expects."""
        for future, expected in sent:
            landed = (await future).offset
            if landed != expected:
                raise RuntimeError(
                    f"ledger partition {self.partition}: records landed at {landed}, expected"
                    f" {expected}: another writer appended to this chain"
                )

    async def _send_batch(self, batch: Any) -> Any:
        return await self.producer.send_batch(batch, self.topic, partition=self.partition)


async def chain_producer(options: dict[str, Any], transactional_id: str) -> AIOKafkaProducer:
    """The chain's producer, started: starting it fences every earlier producer with the
    same transactional id and aborts its open transaction."""
    producer = AIOKafkaProducer(
        **options, transactional_id=transactional_id, enable_idempotence=True, acks="all",
        linger_ms=5, max_batch_size=1_048_576, max_request_size=8_388_608,
    )  # fmt: skip
    await started(producer)
    return producer
