"""A producer of Governor's own for records sent outside Faust's agents (the ledger's dead
letters, a published traffic policy, the tools' sample traffic): idempotent, acknowledged
by every in-sync replica."""

from __future__ import annotations

import asyncio
from asyncio import Future
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer

from app.runtime.retry import started


class Sender:
    """Sends records to their key's partition: one and wait (:meth:`send`), or many queued
    and confirmed together (:meth:`queue`, :meth:`flush`)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._unsettled: set[Future[Any]] = set()
        """Queued records whose delivery is not known yet."""
        self._failures: list[BaseException] = []
        """Deliveries that failed since the last :meth:`flush`."""

    @classmethod
    async def start(cls, options: dict[str, Any], max_request_size: int = 8_388_608) -> Sender:
        producer = AIOKafkaProducer(
            **options, enable_idempotence=True, acks="all", linger_ms=5,
            max_batch_size=1_048_576, max_request_size=max_request_size,
        )  # fmt: skip
        await started(producer)
        return cls(producer)

    @classmethod
    @asynccontextmanager
    async def opened(
        cls, options: dict[str, Any], max_request_size: int = 8_388_608
    ) -> AsyncIterator[Sender]:
        """A started sender for the block, stopped when it ends, however it ends."""
        sender = await cls.start(options, max_request_size)
        try:
            yield sender
        finally:
            await sender.stop()

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> int:
        """Send one record to the key's partition; its offset once it is in the log."""
        metadata = await self._producer.send_and_wait(topic, value, key=key)
        return int(metadata.offset)

    async def queue(self, topic: str, value: bytes, key: bytes | None = None) -> Future[Any]:
        """Queue one record (waits only while the producer's buffer is full); the future
        resolves once it is in the log."""
        future: Future[Any] = await self._producer.send(topic, value, key=key)
        self._unsettled.add(future)
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: Future[Any]) -> None:
        self._unsettled.discard(future)
        failure = None if future.cancelled() else future.exception()
        if failure is not None:
            self._failures.append(failure)

    async def flush(self) -> None:
        """Wait until every queued record is in the log; raise if any was refused.

        aiokafka's flush returns once every batch is sent or has failed, and says which only
        on each record's future: a caller that queued records and flushed would otherwise
        report them sent when the broker refused them (a record too large, a topic gone).
        """
        await self._producer.flush()
        if self._unsettled:  # their callbacks are due; let them run
            await asyncio.gather(*self._unsettled, return_exceptions=True)
        failures, self._failures = self._failures, []
        if failures:
            raise RuntimeError(
                f"{len(failures)} queued record(s) were not delivered; the first: {failures[0]!r}"
            ) from failures[0]

    async def stop(self) -> None:
        await self._producer.stop()
