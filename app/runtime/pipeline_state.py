"""The state a pipeline owns: its tables and the in-memory indexes over them (dedup store,
outboxes, expiring keys, entity bounds), each rebuilt per partition when it comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from app.core.outbox_entry import Entry
from app.core.watermark import Watermarked
from app.runtime.dedup_store import DedupBlock, DedupStore
from app.runtime.entity_bound import EntityBound
from app.runtime.expiry import ExpiringKeys, watermarked_partition
from app.runtime.faust_app import Governor
from app.runtime.outbox import Outbox
from app.runtime.table_view import StateTable

W = TypeVar("W", bound=Watermarked)
V = TypeVar("V")


class PartitionIndex(Protocol):
    """An in-memory index over a table's partition, rebuilt when the partition comes back."""

    def drop_partition(self, partition: int) -> None: ...


class PipelineState:
    """Tables co-partitioned with one source topic, and their indexes."""

    def __init__(self, gov: Governor, source: str) -> None:
        self.gov = gov
        self.source_name = source
        self._tables: list[Any] = []
        self.dedup: DedupStore | None = None
        self._outboxes: list[Outbox[Any]] = []
        self._indexes: list[PartitionIndex] = []
        """Indexes over the tables, rebuilt for a partition when it comes back."""

    def table(self, name: str, model: type[V], help: str) -> StateTable[V]:
        """A table of ``model`` values co-partitioned with this pipeline's source topic."""
        table = self.gov.table(name, model, help, self.source_name)
        self._tables.append(table)
        return table  # type: ignore[no-any-return]

    def owned_partitions(self, topic: str) -> set[int] | None:
        """The partitions of ``topic`` (its full name) assigned to this worker; ``None``
        while a rebalance is in progress, when the assignment is about to change."""
        if self.gov.faust.rebalancing:
            return None
        return self._assigned(topic)

    def _assigned(self, topic: str) -> set[int]:
        """The partitions of ``topic`` in this worker's consumer assignment."""
        return {tp.partition for tp in self.gov.faust.consumer.assignment() if tp.topic == topic}

    def on_rebalance(self, starting: Callable[[], None], complete: Callable[[], None]) -> None:
        """Call ``starting`` when partitions are being assigned to this worker, and
        ``complete`` once the rebalance is over (Faust's app signals)."""

        async def assigning(sender: Any, *_: Any, **__: Any) -> None:
            starting()

        async def completed(sender: Any, *_: Any, **__: Any) -> None:
            complete()

        self.gov.faust.on_partitions_assigned.connect(cast(Any, assigning))
        self.gov.faust.on_rebalance_complete.connect(cast(Any, completed))

    def actively_owned_keys(self, table: StateTable[Any]) -> list[str]:
        """The keys of ``table`` in partitions this worker actively owns, sorted: with
        standby replicas a worker also holds copies of other partitions, which may lag.

        A key's partition as Faust's router computes it, on the table's changelog topic
        (whose metadata the producer has: it writes there), co-partitioned with the source.
        """
        active = self._assigned(self.gov.topic_name(self.source_name))
        app = self.gov.faust
        changelog = cast(Any, table).changelog_topic.get_topic_name()
        return sorted(
            key
            for key in table
            if app.producer.key_partition(changelog, key.encode()).partition in active
        )

    def shares(self, table: Any) -> None:
        """Write ``table`` too, although another pipeline's source made it: it must have this
        source's partition count, since Faust writes a table in the partition of the record
        being handled (a facility's partition is the same in every topic keyed by facility
        only when their counts agree)."""
        partitions = self.gov.catalogue[self.source_name].partitions
        if table.partitions != partitions:
            raise ValueError(
                f"{self.source_name} has {partitions} partitions and {table.name}, which its"
                f" pipeline writes, has {table.partitions}: give them the same count"
            )
        self._tables.append(table)

    def dedup_store(self, name: str, window_s: float, max_events_per_partition: int) -> DedupStore:
        """This pipeline's event-id dedup table and index (dropped per revoked partition)."""
        help = "Event ids applied per source record, in blocks (bounded window)"
        refused = self.gov.metrics.out_of_order_writes.labels(table=name)
        self.dedup = DedupStore(
            self.table(name, DedupBlock, help), window_s, max_events_per_partition, refused.inc
        )
        self._indexes.append(self.dedup)
        return self.dedup

    def expiring(
        self, table: Any, ttl_s: float, last_used_s: Callable[[W], float]
    ) -> ExpiringKeys[W]:
        """Keys of ``table`` deleted ``ttl_s`` of event time after their last use (see
        :mod:`app.runtime.expiry`); values must be :class:`Watermarked` (their partition)."""
        keys: ExpiringKeys[W] = ExpiringKeys(table, ttl_s, last_used_s, watermarked_partition)
        self._indexes.append(keys)
        return keys

    def entity_bound(self, table: Any, limit: int) -> EntityBound:
        """At most ``limit`` entities (keys) of ``table`` per partition; see
        :meth:`admitted` and :mod:`app.runtime.entity_bound`."""
        bound = self.gov.entity_bound(table, limit)
        self._indexes.append(bound)
        return bound

    def outbox(
        self, table: Any, entry: type[Entry[Any, Any]], keep_per_partition: int, name: str = ""
    ) -> Outbox[Any]:
        """An outbox in ``table``, whose values are ``entry`` (see :mod:`app.runtime.outbox`),
        dropped per revoked partition; ``name`` tells apart the outboxes of pipelines that
        share a table."""
        refused = self.gov.metrics.out_of_order_writes.labels(table=table.name)
        box: Outbox[Any] = Outbox(table, entry, keep_per_partition, name, refused.inc)
        self._outboxes.append(box)
        self._indexes.append(box)
        return box

    def drop_indexes(self, partition: int) -> None:
        """A revoked partition's indexes: its state may change elsewhere meanwhile."""
        for index in self._indexes:
            index.drop_partition(partition)
