"""A :class:`DedupIndex` backed by a Faust table of segments, one entry per source record.

The table (and its changelog) is the durable state; the index is the fast lookup derived
from it. After recovery, or when a partition comes back to this worker, the partition's
segments are re-indexed before its first record is decided.

Eviction is immediate in the index (decisions never see an evicted segment, so they are
the same however the deletes are scheduled) but the table deletes, one changelog write
each, are paced: at most ``DELETES_PER_RECORD`` per recorded segment. In steady state one
segment leaves per segment that enters; after a jump in event time past the window (a
quiet weekend, say) every segment leaves at once, and deleting them all inside one record
stalled the stream for seconds (see benchmarks/README.md).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from app.rules.dedup import DedupIndex, DedupSegment, Position

log = logging.getLogger(__name__)

DELETES_PER_RECORD = 4
"""Table deletes of evicted segments done per recorded segment: more than the one segment
that enters, so a backlog drains."""


class DedupStore:
    """Keeps a pipeline's dedup table and in-memory index in step."""

    def __init__(self, table: Any, window_s: float, max_events_per_partition: int) -> None:
        self.table = table
        self.index = DedupIndex(window_s, max_events_per_partition)
        self._indexed_partitions: set[int] = set()
        self._unpersisted_evictions: deque[str] = deque()

    def __len__(self) -> int:
        return len(self.index)

    def ensure_indexed(self, partition: int) -> None:
        """Rebuild the index of ``partition`` from its recovered segments, once."""
        if partition in self._indexed_partitions:
            return
        mine = sorted(
            (s for s in self.table.values() if s.position.partition == partition),
            key=lambda s: s.position.offset,
        )
        for segment in mine:
            self._unpersisted_evictions.extend(e.key for e in self.index.add(segment))
        self._indexed_partitions.add(partition)
        log.info(
            "dedup index %s[%d] rebuilt from %d segments", self.table.name, partition, len(mine)
        )

    def record(self, segment: DedupSegment | None) -> None:
        """Persist a new segment and drop the ones it pushed out of the window.

        A re-delivered record's segment is already there: writing nothing keeps it idempotent.
        """
        if segment is None or self.index.contains_segment(segment.position):
            return
        self.table[segment.key] = segment
        self._unpersisted_evictions.extend(e.key for e in self.index.add(segment))
        for _ in range(min(DELETES_PER_RECORD, len(self._unpersisted_evictions))):
            self.table.pop(self._unpersisted_evictions.popleft(), None)

    @property
    def pending_deletes(self) -> int:
        """Evicted segments still in the table, waiting for their paced delete."""
        return len(self._unpersisted_evictions)

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition: its segments may change on another worker."""
        self.index.drop_partition(partition)
        self._indexed_partitions.discard(partition)
        prefix = f"{partition}:"
        self._unpersisted_evictions = deque(
            k for k in self._unpersisted_evictions if not k.startswith(prefix)
        )

    def last_offset(self, partition: int) -> int | None:
        """The newest source offset with a recovered or recorded segment."""
        self.ensure_indexed(partition)
        return self.index.last_offset(partition)

    def first_position(self, entity_id: str, event_id: str) -> Position | None:
        """Where ``entity_id``'s ``event_id`` was first applied, while inside the window."""
        segment = self.index.lookup(entity_id, event_id)
        return segment.position if segment is not None else None
