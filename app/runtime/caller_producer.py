"""The producer a worker publishes with on its HTTP callers' behalf (readings posted to the
API, synchronous admissions, balancing commands, policies, resets).

Why not Faust's producer: that one carries the worker's own output and changelog records,
lingers 5 ms to batch them, and aiokafka keeps one produce request in flight per broker. A
caller's record therefore waited out the linger and then queued behind the worker's
batches: ``POST /api/v1/fusion/validate`` spent p50 6 ms, p99 99 ms between the handler
and the broker's append (issue 17, measured with a probe on 2026-12-04). This producer has
no linger and a connection of its own; records still batch while one request is in flight.

Callers are told a record is published only once the broker has acknowledged it (acks
all, idempotent). Keys are placed by aiokafka's default partitioner, murmur2 as Faust's
producer and the Java client, so a record lands in the partition whose owner answers it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from app.runtime.connection import aiokafka_options
from app.settings import KafkaSettings


class CallerProducer:
    """Started on the first record, stopped with the worker."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def send(
        self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None = None
    ) -> RecordMetadata:
        """Publish one record and return where it landed, once acknowledged (aiokafka
        retries within its request timeout; then the caller gets the error, not a promise)."""
        producer = await self._started()
        metadata: RecordMetadata = await producer.send_and_wait(
            topic, value, key=key, timestamp_ms=timestamp_ms
        )
        return metadata

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **aiokafka_options(self._kafka),
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=0,
                    max_request_size=1_048_576,
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def stop(self, *_: Any, **__: Any) -> None:
        """Flush and close (what was acknowledged stays published)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
