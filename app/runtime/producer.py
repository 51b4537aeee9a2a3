"""What the pipelines need from Faust's producer that Faust does not expose.

Sending many records with one key as one Kafka record batch: Faust's per-record send path
(channel, FutureMessage, one future per record) costs more than the whole carbon rule per
reading, and the emissions of one input batch share one key and so one partition, so they
can travel as one record batch with one future. The batch goes through Faust's own aiokafka
producer, which Faust flushes before committing offsets: the at-least-once guarantee is
unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from app.runtime.delivery import delivery_guard


async def await_metadata(app: Any, topics: Iterable[str]) -> None:
    """Wait until the producer's metadata knows ``topics``, and keep them in it.

    On a new app Faust creates the changelog topics at start, then checks each table's
    changelog partition count against this cached metadata at the first write; if the new
    topic is not in it yet, that check fails ("0 partitions") and the worker would stop.
    """
    producer = app.producer._ensure_producer()
    for topic in topics:
        # partitions_for alone does not keep a topic in later metadata refreshes when it was
        # known from an all-topics fetch; add_topic makes the client track it for good.
        await producer.client.add_topic(topic)
        await producer.partitions_for(topic)


BATCH_FROM = 64
"""From this many values on, :func:`send_same_key` builds its own record batch."""


async def send_same_key(app: Any, topic: str, key: bytes, values: Sequence[bytes]) -> None:
    """Queue ``values`` (all with ``key``) on ``topic``, in order.

    Through Faust's aiokafka producer, whose flush precedes every offset commit, but not
    through Faust's per-record path (channel, FutureMessage, one future per record), which
    costs more than the whole carbon rule per reading. Many values (an input batch's
    emissions) go as record batches of their own; a few are appended to the partition's
    open batch: aiokafka adds a batch of ours only after the partition's previous batch has
    been drained to the broker, so a pipeline sending a few records per key and batch
    waited a round trip per send (issue 17: batched carbon at 480 records/s with the worker
    idle 17 % of the time)."""
    if not values:
        return
    producer = app.producer._ensure_producer()
    guard = delivery_guard(app)
    # key_partition reads cached metadata without waiting for it; partitions_for waits.
    await producer.partitions_for(topic)
    partition = app.producer.key_partition(topic, key).partition
    if len(values) < BATCH_FROM:
        for value in values:
            guard.watch(await producer.send(topic, value, key=key, partition=partition))
        return
    batch = producer.create_batch()
    for value in values:
        if batch.append(key=key, value=value, timestamp=None) is None:
            guard.watch(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"record of {len(value)} bytes exceeds the producer batch size")
    guard.watch(await producer.send_batch(batch, topic, partition=partition))


async def send_to_partition(app: Any, topic: str, partition: int, value: bytes) -> None:
    """Queue one keyless ``value`` on ``topic``'s ``partition`` (a record that speaks for a
    partition, not for a key)."""
    delivery_guard(app).watch(await app.producer.send(topic, None, value, partition, None, None))
