"""Changelog records of the write-behind tables, sent in per-partition batches straight to the
aiokafka producer that Faust's commit flushes.

Why not Faust's ``Table.send_changelog``: it puts each record on Faust's ``ProducerBuffer``,
which a background task drains one ``send`` at a time. A large flush (the 1,000,000-key
restart benchmark queued ~800,000 records) drained at about 1,300 records/s, one commit took
332 s. And ``ProducerBuffer.flush`` (faust-streaming 0.15.3, transport/producer.py,
``flush_atmost``) returns as soon as no record went out for 0.1 s, so the producer flush
that ``Consumer._commit_offsets`` awaits before committing can return with changelog records
still queued: a commit could then cover writes whose changelog records were never sent.

Here a flush serialises its records with the table's codecs and appends them to aiokafka
record batches, one partition at a time, in flush order. The sends run as one chain of
tasks (a flush's records never overtake an earlier flush's), and the app's
``producer.flush`` is wrapped to wait for the chain first, so every offset commit still
comes after the changelog records that cover it (the wrapper is installed with the first
send). A send that fails is the infrastructure's fault: the worker fail-stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from app.runtime.delivery import delivery_guard
from app.runtime.failstop import fail_stop

log = logging.getLogger(__name__)

Record = tuple[bytes | None, bytes | None]
"""A changelog record: key bytes, value bytes (``None``: a tombstone)."""
Delivered = Callable[[int, int], None]
"""Told (partition, offset of its last record) once the broker has acknowledged a batch."""


class ChangelogSender:
    """One per app: every write-behind table's changelog sends, in one ordered chain."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._tail: asyncio.Future[None] | None = None
        self._installed = False
        self._unacknowledged = 0
        """Batches handed to the producer whose acknowledgement has not arrived."""
        self._failed = False

    def send(
        self,
        topic: str,
        batches: Sequence[tuple[int, list[Record]]],
        delivered: Delivered | None = None,
    ) -> None:
        """Queue ``batches`` (partition, records in order) after everything queued before;
        ``delivered`` hears of each acknowledged batch."""
        if not self._installed:
            self._install()
        previous = self._tail
        self._tail = asyncio.ensure_future(self._send(previous, topic, batches, delivered))

    @property
    def idle(self) -> bool:
        """Whether every record queued so far has been acknowledged by the broker (and none
        failed): the local store may then call its stop clean."""
        queued = self._tail is None or self._tail.done()
        return queued and self._unacknowledged == 0 and not self._failed

    async def wait(self) -> None:
        """Until every record queued so far is with the producer (and then in its flush)."""
        while self._tail is not None and not self._tail.done():
            await asyncio.shield(self._tail)

    def _install(self) -> None:
        """Make the producer flush that precedes every offset commit wait for the chain."""
        producer = self.app.producer
        original = producer.flush

        async def flush() -> None:
            await self.wait()
            await original()

        producer.flush = flush
        self._installed = True

    async def _send(
        self,
        previous: asyncio.Future[None] | None,
        topic: str,
        batches: Sequence[tuple[int, list[Record]]],
        delivered: Delivered | None,
    ) -> None:
        if previous is not None:
            await previous
        try:
            producer = self.app.producer._ensure_producer()
            for partition, records in batches:
                await self._send_partition(producer, topic, partition, records, delivered)
        except Exception as exc:  # a producer that cannot send: stop before any commit
            fail_stop("changelog", exc)

    async def _send_partition(
        self,
        producer: Any,
        topic: str,
        partition: int,
        records: list[Record],
        delivered: Delivered | None,
    ) -> None:
        """``records`` to one partition, in order: as few batches as fit; a record too large
        for a batch goes alone through ``send`` (which allows up to the maximum request
        size)."""
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is not None:
                continue
            if batch.record_count():
                sent = await producer.send_batch(batch, topic, partition=partition)
                self._track(sent, batch.record_count(), delivered)
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    continue
            sent = await producer.send(topic, value, key=key, partition=partition)
            self._track(sent, 1, delivered)
        if batch.record_count():
            sent = await producer.send_batch(batch, topic, partition=partition)
            self._track(sent, batch.record_count(), delivered)

    def _track(self, future: asyncio.Future[Any], count: int, delivered: Delivered | None) -> None:
        """Count ``future`` as unacknowledged until it resolves, then tell ``delivered`` the
        partition and offset of the last of its ``count`` records (a batch's metadata gives
        its first offset)."""
        self._unacknowledged += 1
        delivery_guard(self.app).watch(future)

        def done(f: asyncio.Future[Any]) -> None:
            self._unacknowledged -= 1
            if f.cancelled() or f.exception() is not None:
                self._failed = True
            elif delivered is not None:
                metadata = f.result()
                delivered(metadata.partition, metadata.offset + count - 1)

        future.add_done_callback(done)
