"""Every keyed record handled in the partition its key belongs to, whatever partitioner its
producer used.

Faust, aiokafka and the Java client place a key by murmur2; librdkafka clients
(confluent-kafka, kcat, the Go and .NET clients, node-rdkafka) place it by CRC32 unless
configured with ``partitioner=murmur2_random``. Governor keeps an entity's state in the
partition murmur2 names: its tables, the worker the HTTP API asks, and the entity's records
on the other topics all follow it. A record found on another partition would start a second
copy of its entity's state on whichever worker owns that partition.

So a pipeline first checks each source record's partition (one cached hash per key; records
in the right place pay nothing else). A misplaced record is forwarded, before it touches any
state, to its key's partition of the source's repartition topic (``<source>-repartition``,
written only by Governor, co-partitioned with the source), with its bytes, key, timestamp
and headers, plus a header naming the source coordinates (:mod:`app.core.origin`). The
pipeline takes the repartition topic as a second lane, as Kafka Streams does after a key
change.

The forward goes through Faust's producer, which Faust flushes before it commits the source
offset, so a SIGKILL loses no forward. It may repeat one: the source record is handled again
after a restart and forwarded again. Forwards from one source partition reach a key's
partition in source-offset order, and state remembers the highest source offset it applied
through a forward (:mod:`app.core.watermark`), so the repeat changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

from app.core.origin import FORWARDED_FROM, Origin, header_items
from app.runtime.delivery import delivery_guard

log = logging.getLogger(__name__)

CACHE_LIMIT = 100_000
"""Keys whose partition is remembered; past this the cache starts over (a hostile producer
with random keys cannot make it grow without bound)."""


FORWARD_MAX_BYTES = 1_000_000
"""A record this large (key, value and headers, the origin header included) is forwarded
without asking: every topic takes it at Kafka's defaults. A larger one is held to the
repartition topic's ``max.message.bytes`` as the broker reports it (topics.yaml creates
them at twice the default, so any record their source took fits with the header), less
:data:`BATCH_BYTES`. Checked here rather than left to the producer, whose limit is set for
the tables' large state values (``worker.state_max_record_bytes``): refused by the broker,
a forward would stop the worker at the same record on every restart."""
BATCH_BYTES = 1_024
"""Room for a record batch's own bytes beside its one record."""
LIMIT_RETRY_S = 60.0
"""After the broker could not say the topic's limit, how long larger records are held to
:data:`FORWARD_MAX_BYTES` before it is asked again."""

ReadLimit = Callable[[], Awaitable[int | None]]
"""Asks the broker for the repartition topic's ``max.message.bytes``."""


class TooLargeToForward(Exception):
    """The producer refuses a record this size (``max_request_size``): the record itself is
    at fault, so the pipeline dead-letters it rather than stopping on it."""


class Record(Protocol):
    """What placement reads of a consumed record (a Faust message or a read-back record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None
    headers: Any


class Placement:
    """Checks the records of one source topic and forwards misplaced ones to ``topic``, its
    repartition topic (same partition count)."""

    def __init__(
        self, app: Any, topic: str, counter: Any, read_limit: ReadLimit | None = None
    ) -> None:
        self._app = app
        self._topic = topic
        self._counter = counter
        self._homes: dict[bytes, int] = {}
        self._read_limit = read_limit
        self._limit: int | None = None
        self._asked_at = -LIMIT_RETRY_S

    async def home(self, key: bytes) -> int:
        """The partition Faust's partitioner gives ``key`` (murmur2, as the Java client)."""
        home = self._homes.get(key)
        if home is None:
            # key_partition reads cached metadata without waiting; partitions_for waits.
            await self._app.producer._ensure_producer().partitions_for(self._topic)
            if len(self._homes) >= CACHE_LIMIT:
                self._homes.clear()
            home = self._homes[key] = self._app.producer.key_partition(self._topic, key).partition
        return int(home)

    async def _max_bytes(self) -> int:
        """The largest record the repartition topic takes, asked of the broker once (again
        after :data:`LIMIT_RETRY_S` if it could not answer); :data:`FORWARD_MAX_BYTES`
        until known."""
        if self._limit is None and self._read_limit is not None:
            now = time.monotonic()
            if now - self._asked_at >= LIMIT_RETRY_S:
                self._asked_at = now
                try:
                    found = await self._read_limit()
                except Exception as exc:  # the broker unreachable: held to the default
                    log.warning("%s: max.message.bytes unknown: %r", self._topic, exc)
                    found = None
                if found is not None:
                    self._limit = max(FORWARD_MAX_BYTES, found - BATCH_BYTES)
        return self._limit or FORWARD_MAX_BYTES

    def forget(self) -> None:
        """Drop cached partitions (called on a rebalance: the partition count may change)."""
        self._homes.clear()

    async def forward_if_misplaced(self, record: Record) -> bool:
        """Forward ``record`` to its key's partition if it is elsewhere; ``True`` if it was.

        A record without a key stays where it is: the pipeline's key check dead-letters it.
        """
        if record.key is None:
            return False
        home = await self.home(record.key)
        if home == record.partition:
            return False
        origin = Origin(record.topic, record.partition, record.offset)
        headers = [(k, v) for k, v in header_items(record.headers) if k != FORWARDED_FROM]
        headers.append((FORWARDED_FROM, origin.encode()))
        size = len(record.key) + len(record.value or b"")
        size += sum(len(k) + len(v or b"") for k, v in headers)
        if size > FORWARD_MAX_BYTES and size > (limit := await self._max_bytes()):
            raise TooLargeToForward(f"{size:,} bytes with its headers, over {limit:,}")
        try:
            sent = await self._app.producer.send(
                self._topic, record.key, record.value, home, record.timestamp, headers
            )
        except Exception as exc:
            # Faust wraps aiokafka's MessageSizeTooLargeError, raised before anything is
            # queued; any other send error is the infrastructure's and stops the worker.
            if isinstance(exc, MessageSizeTooLargeError) or isinstance(
                exc.__cause__, MessageSizeTooLargeError
            ):
                raise TooLargeToForward(str(exc)) from exc
            raise
        delivery_guard(self._app).watch(sent)
        self._counter.inc()
        return True
