"""Sending many records with one key as one Kafka record batch, through Faust's producer.

Faust's per-record send path (channel, FutureMessage, one future per record) costs more than
the whole carbon rule per reading; the emissions of one input batch share one key and so one
partition, so they can travel as one record batch with one future. The batch goes through
Faust's own aiokafka producer, which Faust flushes before committing offsets: the
at-least-once guarantee is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


async def send_same_key(app: Any, topic: str, key: bytes, values: Sequence[bytes]) -> None:
    """Queue ``values`` (all with ``key``) on ``topic``, in as few record batches as fit."""
    if not values:
        return
    faust_producer = app.producer
    if len(values) == 1:
        await faust_producer.send(topic, key, values[0], None, None, None)
        return
    # Faust exposes no batch API; this is the aiokafka producer its commits flush.
    producer = faust_producer._ensure_producer()
    partition = faust_producer.key_partition(topic, key).partition
    batch = producer.create_batch()
    for value in values:
        if batch.append(key=key, value=value, timestamp=None) is None:
            await producer.send_batch(batch, topic, partition=partition)
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"record of {len(value)} bytes exceeds the producer batch size")
    await producer.send_batch(batch, topic, partition=partition)
