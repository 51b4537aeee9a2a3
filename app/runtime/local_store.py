"""A durable local store for the write-behind tables: RocksDB per partition (faust-streaming's
own store, through ``rocksdict``) behind a record cache of decoded values.

Why: the memory store keeps every key in the worker's memory and replays every changelog on
each start (1,000,000 keys: 7 minutes and 3 GiB, benchmarks/README.md). With RocksDB a
restart replays only the changelog records after the offset the local store has persisted.

Why not Faust's RocksDB store as it is: it encodes and writes every ``table[key] = value``
to RocksDB at once and decodes a pydantic model on every read, which costs more per record
than the pipelines spend on their rules. So, as Kafka Streams puts a record cache in front of
its stores:

- reads see the cache first (decoded values, least recently used evicted beyond
  ``cache_keys``); a miss reads RocksDB once and caches the decoded value, or its absence;
- writes go to the cache only; the table's flush before each offset commit
  (:mod:`app.runtime.state`) encodes every dirty key once, writes the bytes to RocksDB
  (one ``WriteBatch`` per partition) and sends the same bytes to the changelog;
- the changelog offset a partition's RocksDB holds (Faust's ``set_persisted_offset``, from
  which its recovery replays) is set when the broker acknowledged the changelog records, so
  it never claims more than the changelog holds.

Trust: the local store is kept only after a clean stop. A worker that stopped cleanly wrote
its last flush and left a marker file beside the databases; a worker that was killed left
none, and the next start deletes the table's databases, so its state comes whole from the
changelog (what the memory store always does). A killed worker's RocksDB may hold one
table's flush and not another's, or writes whose changelog records were never sent; the
changelog, written in flush order before every commit, is the record the crash-safety
design reasons about (:mod:`app.runtime.outbox`).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores import rocksdb
from faust.streams import current_event
from faust.types import TP

log = logging.getLogger(__name__)

ABSENT: Any = object()
"""Cached: the key has no value (deleted, or looked up and not found)."""

CLEAN_MARKER_SUFFIX = ".clean"

MEMTABLE_BYTES = 4 * 1_048_576
"""One memtable's size: RocksDB flushes it to a file when full (or when the shared budget is)."""


class SharedMemoryOptions(rocksdb.RocksDBOptions):
    """Faust's options for each partition database, except that every database of the worker
    shares one block cache and one memtable budget. Faust's defaults (64 MiB write buffers,
    up to three, and a 2 GiB block cache per database) are sized for one large table; a
    worker opens about 20 tables of 6 partitions each, which alone could reach gigabytes."""

    def __init__(self, cache: Any, write_buffers: Any) -> None:
        super().__init__(use_rocksdict=True)
        self.cache = cache
        self.write_buffers = write_buffers

    def as_options(self) -> Any:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_write_buffer_size(MEMTABLE_BYTES)
        options.set_max_write_buffer_number(2)
        options.set_write_buffer_manager(self.write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(10, False)
        table.set_block_cache(self.cache)
        options.set_block_based_table_factory(table)
        return options


_SHARED: dict[int, SharedMemoryOptions] = {}


def shared_options(memory_bytes: int) -> SharedMemoryOptions:
    """The process's options for ``memory_bytes`` of RocksDB memory: a block cache of that
    size, in which the memtables (at most half of it) are charged too."""
    found = _SHARED.get(memory_bytes)
    if found is None:
        cache = rocksdict.Cache(memory_bytes)
        buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            memory_bytes // 2, False, cache
        )
        found = _SHARED[memory_bytes] = SharedMemoryOptions(cache, buffers)
    return found


EXACT_COUNT_UP_TO = 10_000
"""``len(table)`` counts keys one by one up to about this many; beyond, RocksDB's estimate."""


class CachedRocksStore(rocksdb.Store):
    """Faust's RocksDB store with a record cache of decoded values in front (see module)."""

    def __init__(
        self, url: Any, app: Any, table: Any, *, cache_keys: int, memory_bytes: int, **kwargs: Any
    ) -> None:
        kwargs["options"] = {"driver": "rocksdict"}
        super().__init__(url, app, table, **kwargs)
        self.rocksdb_options = shared_options(memory_bytes)
        self.cache_keys = cache_keys
        self._cache: OrderedDict[Any, tuple[int | None, Any]] = OrderedDict()
        """key -> (partition or None when unknown, decoded value or ABSENT)."""
        self._unwritten: dict[Any, int] = {}
        """Keys set or deleted in the cache and not yet written to RocksDB: their partition."""
        self._wipe_unless_stopped_cleanly()

    # -- trust across restarts -------------------------------------------------------------

    @property
    def clean_marker(self) -> Path:
        return Path(self.path) / f"{self.basename}{CLEAN_MARKER_SUFFIX}"

    def _wipe_unless_stopped_cleanly(self) -> None:
        """Keep the databases only if the last worker on this directory stopped cleanly; the
        marker is removed now, so a crash from here on leaves none."""
        marker = self.clean_marker
        if marker.exists():
            marker.unlink()
            return
        mine = re.compile(rf"{re.escape(str(self.basename))}-\d+\.db")
        stale = sorted(p for p in Path(self.path).glob("*.db") if mine.fullmatch(p.name))
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        if stale:
            log.warning(
                "%s: no clean stop recorded: %d local databases deleted, the state is"
                " restored from the changelog", self.table_name, len(stale),
            )  # fmt: skip

    async def stop(self) -> None:
        """Write what the cache holds, close the databases and, when every write is also on
        its way to the changelog, leave the marker that lets the next start keep them."""
        self.write_unwritten()
        clean = getattr(self.table, "dirty", 0) == 0
        sender = getattr(self.table, "changelog_sender", None)
        if sender is not None and not sender.idle:
            clean = False
        for db in self._dbs.values():
            db.close()
        await super().stop()
        if clean:
            self.clean_marker.parent.mkdir(parents=True, exist_ok=True)
            self.clean_marker.touch()
        else:
            log.warning("%s: stopped with unsent changelog records", self.table_name)

    # -- the mapping the table sees ----------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        value = self._lookup(key)
        if value is ABSENT:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self._lookup(key) is not ABSENT

    def __setitem__(self, key: Any, value: Any) -> None:
        self._remember(key, self._partition_of_current_event(), value)

    def __delitem__(self, key: Any) -> None:
        self._remember(key, self._partition_of_current_event(), ABSENT)

    def _dbs_for_actives(self) -> Iterator[Any]:
        """The open databases of partitions that are not standbys (Faust's own store asks
        the assignor for active ones, which a worker's test context has none of)."""
        topic = self.table.changelog_topic.get_topic_name()
        standbys = self.app.assignor.assigned_standbys()
        for partition, db in list(self._dbs.items()):
            if TP(topic, partition) not in standbys:
                yield db

    def __len__(self) -> int:
        """What RocksDB holds, corrected by the cache's unwritten keys, without writing them.

        Why not write the cache first: every /metrics scrape counts every table
        (``governor_table_keys``), and writing encoded every unwritten value, which the
        table's flush encodes again at the commit: with fusion's large tenant states and
        /metrics read every 50 ms, 7 % of the worker's samples (benchmarks/README.md)."""
        dbs = list(self._dbs_for_actives())
        estimate = sum(db.property_int_value("rocksdb.estimate-num-keys") or 0 for db in dbs)
        stored = int(estimate) if estimate > EXACT_COUNT_UP_TO else sum(map(self._size1, dbs))
        return stored + self._unwritten_change()

    def _unwritten_change(self) -> int:
        """Keys the unwritten cache entries add (new keys) or take away (deleted stored
        keys). Unwritten entries are never evicted from the cache (see ``_trim``)."""
        change = 0
        for key, partition in self._unwritten.items():
            db = self._dbs.get(partition)
            raw_key = self._encode_key(key)
            stored = db is not None and db.key_may_exist(raw_key) and db.get(raw_key) is not None
            deleted = self._cache[key][1] is ABSENT
            change += (not deleted and not stored) - (deleted and stored)
        return change

    def _keys_decoded(self) -> Iterator[Any]:
        self.write_unwritten()
        for key in self._iterkeys():
            yield self._decode_key(key)

    def _values_decoded(self) -> Iterator[Any]:
        for _, value in self._items_decoded():
            yield value

    def _items_decoded(self) -> Iterator[tuple[Any, Any]]:
        self.write_unwritten()
        for raw_key, raw_value in self._iteritems():
            key = self._decode_key(raw_key)
            cached = self._cache.get(key)
            if cached is not None and cached[1] is not ABSENT:
                yield key, cached[1]
            else:
                yield key, self._decode_value(raw_value)

    def _lookup(self, key: Any) -> Any:
        """The key's value from the cache, else from RocksDB (then cached), else ABSENT."""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached[1]
        partition, raw = self._read(self._encode_key(key))
        value = ABSENT if raw is None else self._decode_value(raw)
        self._cache[key] = (partition, value)
        if len(self._cache) > 2 * self.cache_keys:
            self._trim()
        return value

    def _read(self, raw_key: bytes) -> tuple[int | None, bytes | None]:
        """The stored bytes and their partition: the current record's partition first (where
        a co-partitioned key lives), then every open partition database."""
        event = current_event()
        first = None if event is None else event.message.partition
        if first is not None:
            raw = self._db_for_partition(first).get(raw_key)
            if raw is not None:
                return first, raw
        for partition, db in list(self._dbs.items()):
            if partition != first and db.key_may_exist(raw_key):
                raw = db.get(raw_key)
                if raw is not None:
                    return partition, raw
        return None, None

    def _partition_of_current_event(self) -> int:
        event = current_event()
        if event is None:
            raise TypeError(f"{self.table_name}: written outside a source record")
        return int(event.message.partition)

    def _remember(self, key: Any, partition: int, value: Any) -> None:
        self._cache[key] = (partition, value)
        self._cache.move_to_end(key)
        self._unwritten[key] = partition

    # -- writing to RocksDB --------------------------------------------------------------------

    def write(self, partition: int, records: Iterable[tuple[Any, bytes, bytes | None]]) -> None:
        """Write ``(key, key bytes, value bytes or None)`` records of one partition to its
        database in one batch (the table's flush, with the bytes it sends to the changelog)."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, raw_key, raw_value in records:
            if raw_value is None:
                batch.delete(raw_key)
            else:
                batch.put(raw_key, raw_value)
            if self._unwritten.get(key) == partition:
                del self._unwritten[key]
        self._db_for_partition(partition).write(batch)
        self._trim()

    def write_unwritten(self) -> None:
        """Write every cached write to RocksDB now (before iterating the databases)."""
        by_partition: dict[int, list[tuple[Any, bytes, bytes | None]]] = {}
        for key, partition in list(self._unwritten.items()):
            by_partition.setdefault(partition, []).append(self._encoded(key))
        for partition, records in by_partition.items():
            self.write(partition, records)

    def _encoded(self, key: Any) -> tuple[Any, bytes, bytes | None]:
        value = self._cache[key][1]
        return key, self._encode_key(key), None if value is ABSENT else self._encode_value(value)

    def _trim(self) -> None:
        """Evict the least recently used entries beyond ``cache_keys`` (unwritten ones stay)."""
        cache = self._cache
        skipped = 0
        while len(cache) > self.cache_keys and skipped < len(cache):
            key = next(iter(cache))
            if key in self._unwritten:
                cache.move_to_end(key)
                skipped += 1
            else:
                del cache[key]

    # -- recovery and rebalances ---------------------------------------------------------------

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Record a changelog offset (the broker acknowledged it) for a partition this worker
        still has open; a revoked partition's database stays as it was."""
        if tp.partition in self._dbs:
            super().set_persisted_offset(tp, offset)

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Any, to_value: Any) -> None:
        """Faust's recovery and standby writes go to RocksDB directly: forget cached values
        of the keys they change."""
        events = list(batch)
        super().apply_changelog_batch(events, to_key, to_value)
        if self._cache:
            for event in events:
                key = self._decode_key(event.message.key)
                if key not in self._unwritten:
                    self._cache.pop(key, None)

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        """Forget cached values of partitions that change hands, and cached absences (a key
        absent here may arrive with a partition's recovery)."""
        moving = {tp.partition for tp in revoked} | {tp.partition for tp in newly_assigned}
        for partition in {tp.partition for tp in revoked}:
            self._write_partition(partition)
        for key, (partition, value) in list(self._cache.items()):
            if key in self._unwritten:
                continue
            if value is ABSENT or partition is None or partition in moving:
                del self._cache[key]
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    def _write_partition(self, partition: int) -> None:
        """Write a revoked partition's cached writes while its database is still open."""
        keys = [key for key, p in self._unwritten.items() if p == partition]
        if keys and partition in self._dbs:
            self.write(partition, [self._encoded(key) for key in keys])
        for key in keys:
            self._unwritten.pop(key, None)
