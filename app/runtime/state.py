"""Write-behind tables: one changelog record per dirty key per commit, not one per write.

A faust-streaming table sends a changelog record on every write (``Table.on_key_set`` ->
``send_changelog``), about 350 us each through Faust's producer buffer; a pipeline that
writes three values per event is held to a few hundred events/s by that alone. Kafka
Streams solves this with a record cache in front of the changelog, Quix Streams with a
per-checkpoint transaction; this is the same idea in Faust's terms:

- a write updates the table's store at once (reads, the HTTP API and the next record see
  it) and marks the key dirty, remembering the value and the partition it belongs to;
- the dirty keys are sent to the changelog, one record each, in the order of their last
  write, when Faust is about to commit offsets, when there are ``max_dirty`` of them, and
  when partitions are revoked.

Where the flush hooks in: ``Consumer.force_commit`` (faust/transport/consumer.py) calls
``app.sensors.on_commit_initiated`` synchronously before ``_commit_tps``, whose
``_commit_offsets`` awaits ``app.runtime.producer.flush()`` and only then commits the offsets. A
sensor's ``on_commit_initiated`` is therefore the one place that runs before every offset
commit (the periodic one, the one on revocation in ``wait_empty``, the one on stop), and
the flush only queues sends that the wrapped ``producer.flush`` waits for
(:mod:`app.runtime.changelog`). So the changelog records
that cover a committed offset are always in the log before the commit: a crash between a
flush and its commit replays records whose effect is already there, which the offset
watermarks in every state value (:mod:`app.core.watermark`) recognise.

Order: recovery relies on a record's outputs surviving whenever state that says the record
was applied survives (:mod:`app.runtime.outbox`). Outbox entries live in blocks under keys that
start with :data:`JOURNAL_PREFIX`, rewritten in place as records are added, so a block's last
write comes after the state written for its earlier records. A flush therefore sends the
journal keys first, then the others in order of last write: a block as flushed holds the
outputs of every record handled so far, and any prefix of the flush that holds a state
value holds them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import faust
from faust.sensors import Sensor
from faust.types import TP
from yarl import URL

from app.runtime.changelog import ChangelogSender, Record
from app.runtime.local_store import CachedRocksStore
from app.runtime.partition_check import PartitionCheckIgnoresUnseenTopics

log = logging.getLogger(__name__)

DEFAULT_MAX_DIRTY = 10_000
JOURNAL_PREFIX = "@"
"""Keys flushed before all others (outbox blocks); state keys never start with it."""
BOOKKEEPING_PREFIX = "~"
"""Keys of a partition's own bookkeeping (written in the partition being handled, not in
their key's home partition; flushed in order of last write like state); never entities."""
_DELETED = object()


class WriteBehindTable(PartitionCheckIgnoresUnseenTopics, faust.Table):  # type: ignore[type-arg]
    """A Faust table whose changelog writes coalesce per key until the next flush."""

    max_dirty: int = DEFAULT_MAX_DIRTY
    cache_keys: int = 20_000
    """With the RocksDB store: decoded values kept in memory (:mod:`app.runtime.local_store`)."""
    rocksdb_memory_bytes: int = 64 * 1_048_576
    """With the RocksDB store: its block cache and memtables, shared by every table."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dirty: dict[Any, tuple[int, Any]] = {}
        self.flushed_records = 0
        self.sent_counter: Any = None
        """A metric child with ``inc(n)``, counting changelog records sent."""
        self.restored_counter: Any = None
        """A metric child with ``inc(n)``, counting changelog records applied on recovery."""
        self.changelog_sender: ChangelogSender | None = None

    def _new_store_by_url(self, url: str | URL) -> Any:
        """``rocksdb://`` is RocksDB behind a record cache; any other store is Faust's."""
        if URL(str(url)).scheme != "rocksdb":
            return super()._new_store_by_url(url)
        return CachedRocksStore(
            url, self.app, self,
            cache_keys=self.cache_keys,
            memory_bytes=self.rocksdb_memory_bytes,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
        )  # fmt: skip

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        """Faust's recovery (and standby) applies changelog records: counted, so that how
        much of the changelog a start replays is visible."""
        events = list(batch)
        super().apply_changelog_batch(events)
        if self.restored_counter is not None and events:
            self.restored_counter.inc(len(events))

    def on_key_set(self, key: Any, value: Any) -> None:
        """Faust calls this after a write reached the store: mark the key, send nothing."""
        self._mark(key, value)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        self._mark(key, _DELETED)
        self._sensor_on_del(self, key)

    def _mark(self, key: Any, value: Any) -> None:
        partition = self.partition_for_key(key)
        assert partition is not None, "write-behind tables are co-partitioned with a source"
        self._dirty.pop(key, None)  # re-inserted last: the flush follows the last write
        self._dirty[key] = (partition, value)
        if len(self._dirty) >= self.max_dirty:
            self.flush_changelog()

    @property
    def dirty(self) -> int:
        return len(self._dirty)

    def flush_changelog(self, partitions: Iterable[int] | None = None) -> int:
        """Queue one changelog record per dirty key (of ``partitions``, or all), journal
        keys first, then in order of last write; return how many. Synchronous: it only
        queues the sends, which the producer flush before every commit waits for
        (:mod:`app.runtime.changelog`)."""
        wanted = None if partitions is None else set(partitions)
        dirty = list(self._dirty.items())
        journal = [item for item in dirty if _is_journal(item[0])]
        if journal:
            dirty = journal + [item for item in dirty if not _is_journal(item[0])]
        records: list[tuple[int, Any, Any]] = []
        for key, (partition, value) in dirty:
            if wanted is not None and partition not in wanted:
                continue
            del self._dirty[key]
            records.append((partition, key, None if value is _DELETED else value))
        if records:
            self._queue(records)
        self.flushed_records += len(records)
        if records and self.sent_counter is not None:
            self.sent_counter.inc(len(records))
        return len(records)

    def _queue(self, records: list[tuple[int, Any, Any]]) -> None:
        """Send (partition, key, value) records, ``None`` values as tombstones (tables here
        never hold ``None``): one batch per partition through the app's
        :class:`~app.runtime.changelog.ChangelogSender`, or, without one, Faust's own
        ``send_changelog`` per record."""
        if self.changelog_sender is None:
            for partition, key, value in records:
                if value is None:
                    self.send_changelog(partition, key, None, value_serializer="raw")
                else:
                    self.send_changelog(partition, key, value)
            return
        topic = self.changelog_topic
        by_partition: dict[int, list[tuple[Any, bytes, bytes | None]]] = {}
        for partition, key, value in records:
            key_bytes, _ = topic.prepare_key(key, self.key_serializer)
            value_bytes = None
            if value is not None:
                value_bytes, _ = topic.prepare_value(value, self.value_serializer)
            by_partition.setdefault(partition, []).append((key, key_bytes, value_bytes))
        store = self.data
        delivered = None
        if isinstance(store, CachedRocksStore):
            for partition, encoded in by_partition.items():
                store.write(partition, encoded)
            name = topic.get_topic_name()
            delivered = lambda partition, offset: store.set_persisted_offset(  # noqa: E731
                TP(name, partition), offset
            )
        batches: list[tuple[int, list[Record]]] = [
            (partition, [(k, v) for _, k, v in encoded])
            for partition, encoded in by_partition.items()
        ]
        self.changelog_sender.send(topic.get_topic_name(), batches, delivered)


def _is_journal(key: Any) -> bool:
    return isinstance(key, str) and key.startswith(JOURNAL_PREFIX)


class FlushBeforeCommit(Sensor):
    """Flushes every write-behind table when Faust starts an offset commit."""

    def __init__(self, tables: list[WriteBehindTable]) -> None:
        super().__init__()
        self.tables = tables

    def on_commit_initiated(self, consumer: Any) -> Any:
        for table in self.tables:
            table.flush_changelog()
        return None


def flush_revoked(tables: Iterable[WriteBehindTable], partitions: Iterable[int]) -> int:
    """Queue the dirty keys of revoked partitions (Faust's revocation commit flushed them
    already unless nothing was left to commit; this makes sure before the new owner reads
    the changelog)."""
    chosen = set(partitions)
    return sum(table.flush_changelog(chosen) for table in tables)
