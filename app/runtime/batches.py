"""A pipeline's source records as batches: what Faust delivers within a short window, taken
at once, so that the rules run over many records and each key touched is written and sent
once.

A batch starts with the first record delivered and takes what follows while records keep
arriving (each within ``idle_ms`` of the last look), until it holds ``max_records`` or
``max_wait_ms`` have passed since its first record. Why not Faust's
``Stream.take_events``: its window restarts after every batch whether or not anything
arrived, so an idle agent wakes every window to find nothing (twelve agents at 10 ms cost
about 4 % of a worker each, measured with py-spy); here an idle agent sleeps until a record
arrives. Why wait at all: Faust's consumer hands records to the agent's queue one at a
time, interleaved with the agent's own work, so "what is queued now" is mostly one record;
handled one by one, a paced stream of single records fell behind at 700 records/s while the
same worker took 1,400/s from a backlog (issue 17).

Records are acknowledged only after their batch has been handled (the stream's own acks
are off), so an offset Faust commits covers only handled records, and the wait for the next
record always has a limit while a batch is held: Faust's revocation waits for every
unacknowledged record. One batch mixes the partitions assigned to the agent; state is per
partition, so it is handled as one run per partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from faust.types import ChannelT, EventT


def batches_of(
    stream: Any, max_records: int, max_wait_ms: float, idle_ms: float
) -> AsyncIterator[Sequence[Any]]:
    """The stream's events in batches of what Faust delivered, or one by one when
    ``max_records`` is 1."""
    if max_records > 1:
        return _buffered(stream, max_records, max_wait_ms / 1000.0, idle_ms / 1000.0)
    return _one_by_one(stream)


async def _one_by_one(stream: Any) -> AsyncIterator[Sequence[Any]]:
    """Each event of ``stream`` as a batch of its own (Faust acknowledges it when the next is
    asked for)."""
    async for event in stream.events():
        yield (event,)


async def _buffered(
    stream: Any, max_records: int, max_wait_s: float, idle_s: float
) -> AsyncIterator[Sequence[Any]]:
    """Batches that grow while records keep arriving: a batch opens with the next record
    and closes when it holds ``max_records``, when ``idle_s`` passed without a new record,
    or ``max_wait_s`` after it opened. Its events are acknowledged once the consumer asks
    for the next batch.

    Between looks the batcher sleeps, so that the consumer delivers meanwhile, and each
    look takes everything delivered (:class:`QueuedEvents`): the cost is per look, not per
    record. A backlog therefore comes in large batches (up to ``max_records`` within
    ``max_wait_s``), which the rules group by key, while a trickle of live records closes
    its batch after ``idle_s`` and adds no more than that to their latency.
    """
    stream.enable_acks = False
    loop = asyncio.get_running_loop()
    events = stream.events().__aiter__()
    queued = QueuedEvents.of(stream)
    following: asyncio.Future[Any] = asyncio.ensure_future(events.__anext__())

    def grow(batch: list[Any]) -> bool:
        """Add what was delivered since the last look; whether anything was. The event the
        stream's iterator holds comes first: what is queued arrived after it."""
        nonlocal following
        before = len(batch)
        if following.done():
            if following.exception() is not None:
                return False  # the stream stopped: the next ``await following`` says so
            batch.append(following.result())
            following = asyncio.ensure_future(events.__anext__())
        if queued is not None and not following.done():
            batch.extend(queued.take(max_records - len(batch)))
        return len(batch) > before

    try:
        while True:
            try:
                batch = [await following]
            except StopAsyncIteration:  # the stream stopped (the worker is stopping)
                return
            following = asyncio.ensure_future(events.__anext__())
            closes = loop.time() + max_wait_s
            looked_after_wait = False
            while len(batch) < max_records:
                if not grow(batch) and looked_after_wait:
                    break
                remaining = closes - loop.time()
                if len(batch) >= max_records or remaining <= 0:
                    break
                await asyncio.sleep(min(idle_s, remaining))
                looked_after_wait = True
            yield batch
            for event in batch:
                await stream.ack(event)
    finally:
        following.cancel()


class QueuedEvents:
    """Takes the events Faust has already queued for a stream, as the stream's iterator
    would hand them over one by one, but all at once.

    Why: the iterator costs at least one event-loop iteration per event (a ``sleep(0)``,
    then a queue get; the batcher adds a task and a wait), and each loop iteration also
    runs the consumer's delivery of the next messages. A batch window of 10-50 ms therefore
    took 20-40 events while 500 and more sat in the queue (measured on the carbon pipeline
    draining a backlog, 2026-12-03), so the rules ran over batches too small to group by
    key. Taken here, what is queued costs no loop iteration at all.

    What it repeats of Faust (``faust/_cython/streams.pyx``, ``StreamIterator.next`` and
    ``_prepare_event``; ``Stream._py_aiter``): an event delivered before the current
    rebalance generation or while flow control is suspended is skipped, as the iterator
    skips it; an event is tracked as unacknowledged (the consumer commits no offset past
    it until it is acked) and the sensors see it arrive. Acks stay with the batcher.
    Items are taken only while the stream's own iterator is not holding one (the batcher
    checks), so order is the queue's.
    """

    def __init__(self, stream: Any, queue: Any) -> None:
        self._stream = stream
        self._queue = queue
        self._app = stream.app
        self._acking_topics: set[str] = stream.app.topics._acking_topics
        self._add_unacked = stream.app.consumer._unacked_messages.add

    @classmethod
    def of(cls, stream: Any) -> QueuedEvents | None:
        """For a stream over a channel (a topic's in a worker); else ``None``."""
        channel = stream.channel
        if not isinstance(channel, ChannelT) or not isinstance(channel.queue, asyncio.Queue):
            return None
        return cls(stream, channel.queue)

    def take(self, limit: int) -> list[EventT[Any]]:
        """Up to ``limit`` queued events, in order, without waiting; none if the queue holds
        an error (the iterator raises it)."""
        queue, stream, app = self._queue, self._stream, self._app
        taken: list[EventT[Any]] = []
        pending = queue._queue  # asyncio.Queue's deque: to look at the head before taking it
        while len(taken) < limit and pending and not queue._errors:
            if not isinstance(pending[0], EventT):
                break  # a plain value, not a delivered record: the iterator's to hand over
            event = queue.get_nowait()
            message = event.message
            if (
                not app.flow_control.is_active()
                or message.generation_id != app.consumer_generation_id
            ):
                continue
            tp, offset = message.tp, message.offset
            if message.topic in self._acking_topics and not message.tracked:
                message.tracked = True
                self._add_unacked(message)
                stream._on_message_in(tp, offset, message)
            stream._on_stream_event_in(tp, offset, stream, event)
            taken.append(event)
        stream.events_total += len(taken)
        return taken


def runs_by_partition(events: Iterable[Any]) -> list[list[Any]]:
    """A batch's events as one run per (topic, partition), each in the batch's order, the
    runs in the order of their first event."""
    runs: dict[tuple[str, int], list[Any]] = {}
    for event in events:
        message = event.message
        runs.setdefault((message.topic, message.partition), []).append(event)
    return list(runs.values())
