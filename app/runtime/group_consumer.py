"""A consumer group of Governor's own beside Faust's (the ledger's), aligned by partition.

With the range assignor, partition ``p`` of every subscribed topic goes to the same member
(the topics have equal partition counts), so one member alone owns "partition p" across
them all: the ledger's chain ``p``. Rebalance callbacks therefore get partition numbers.
Offsets are committed only when the owner says so; a commit refused because the group
rebalanced meanwhile only means re-delivery, which the owner must skip anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError

from app.runtime.retry import started

log = logging.getLogger(__name__)

OnPartitions = Callable[[set[int]], Awaitable[None]]


class Fetched(NamedTuple):
    """The records of one topic partition in one fetch, in offset order."""

    topic: str
    partition: int
    records: list[Any]
    """aiokafka ``ConsumerRecord``s: ``partition``, ``offset``, ``timestamp``, ``key``,
    ``value``."""


class GroupConsumer:
    """One member of the group ``group_id`` over ``topics``, committing by hand."""

    def __init__(self, options: dict[str, Any], group_id: str, topics: list[str]) -> None:
        self._options = options
        self._group_id = group_id
        self._topics = topics
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, on_assigned: OnPartitions, on_revoked: OnPartitions) -> None:
        """Join the group. The callbacks run inside a rebalance: they must not wait on a
        fetch in progress, and the revocation may wait for the owner's batch to finish."""
        consumer = AIOKafkaConsumer(
            **self._options,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=1_048_576,
        )
        await started(consumer)
        consumer.subscribe(self._topics, listener=_Listener(on_assigned, on_revoked))
        self._consumer = consumer

    async def fetch(self, timeout_ms: int, max_records: int) -> list[Fetched]:
        """What arrived, up to ``max_records``, waiting at most ``timeout_ms`` for any."""
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [Fetched(tp.topic, tp.partition, records) for tp, records in batch.items()]

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        """Commit ``(topic, partition) -> next offset``. Called outside the owner's lock: a
        commit can wait on a rebalance, whose revocation waits on that lock."""
        assert self._consumer is not None
        offsets = {TopicPartition(t, p): o for (t, p), o in next_offsets.items()}
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("%s: offsets not committed (%s); re-delivery follows", self._group_id, exc)

    def pause(self, partition: int) -> None:
        """Fetch nothing more of partition ``partition`` of any topic (until a rebalance)."""
        assert self._consumer is not None
        owned = self._consumer.assignment()
        self._consumer.pause(*(tp for tp in owned if tp.partition == partition))

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assigned: OnPartitions, on_revoked: OnPartitions) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._on_revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._on_assigned({tp.partition for tp in assigned})
