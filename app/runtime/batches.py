"""A pipeline's source records as batches: what Faust delivers within a short window, taken
at once, so that the rules run over many records and each key touched is written and sent
once.

A batch starts with the first record delivered and takes what follows until it holds
``max_records`` or ``max_wait_ms`` have passed since its first record. Why not Faust's
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


def batches_of(stream: Any, max_records: int, max_wait_ms: float) -> AsyncIterator[Sequence[Any]]:
    """The stream's events in batches of what Faust buffered, or one by one when
    ``max_records`` is 1."""
    if max_records > 1:
        return _buffered(stream, max_records, max_wait_ms / 1000.0)
    return _one_by_one(stream)


async def _one_by_one(stream: Any) -> AsyncIterator[Sequence[Any]]:
    """Each event of ``stream`` as a batch of its own (Faust acknowledges it when the next is
    asked for)."""
    async for event in stream.events():
        yield (event,)


async def _buffered(
    stream: Any, max_records: int, max_wait_s: float
) -> AsyncIterator[Sequence[Any]]:
    """Batches of the events delivered within ``max_wait_s`` of a batch's first; each
    batch's events are acknowledged once the consumer asks for the next batch."""
    stream.enable_acks = False
    loop = asyncio.get_running_loop()
    events = stream.events().__aiter__()
    following: asyncio.Future[Any] = asyncio.ensure_future(events.__anext__())
    batch: list[Any] = []
    closes = 0.0
    try:
        while True:
            if batch:
                remaining = closes - loop.time()
                done: set[Any] = set()
                if len(batch) < max_records and remaining > 0:
                    done, _ = await asyncio.wait({following}, timeout=remaining)
                if not done:
                    yield batch
                    for event in batch:
                        await stream.ack(event)
                    batch = []
                    continue
            try:
                event = await following
            except StopAsyncIteration:  # the stream stopped (the worker is stopping)
                return
            if not batch:
                closes = loop.time() + max_wait_s
            batch.append(event)
            following = asyncio.ensure_future(events.__anext__())
    finally:
        following.cancel()


def runs_by_partition(events: Iterable[Any]) -> list[list[Any]]:
    """A batch's events as one run per (topic, partition), each in the batch's order, the
    runs in the order of their first event."""
    runs: dict[tuple[str, int], list[Any]] = {}
    for event in events:
        message = event.message
        runs.setdefault((message.topic, message.partition), []).append(event)
    return list(runs.values())
