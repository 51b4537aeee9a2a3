"""Event-id deduplication over a bounded window, kept as append-only segments.

Each processed Kafka record contributes one :class:`DedupSegment` (its event ids), persisted as
one table entry, so a batch of 500 readings costs one changelog write rather than 500.
:class:`DedupIndex` is the in-memory lookup derived from those segments; it is rebuilt from the
table after recovery. Eviction depends only on event time and counts, so a replay of the same
input evicts the same segments and reaches the same decisions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict


class Position(BaseModel):
    """Where a record sits in its source topic: the identity Kafka re-delivers."""

    model_config = ConfigDict(frozen=True)

    partition: int
    offset: int
    forwarded_from: tuple[int, int] | None = None
    """For a record Governor forwarded to its key's partition (``app.runtime.placement``):
    the (partition, offset) its producer wrote it at in the source topic. Forwards from one
    source partition reach a key's state in source-offset order, so state that remembers the
    highest one it applied recognises a forward repeated after a crash."""


class DedupSegment(BaseModel):
    """The event ids applied from one source record, with its newest event time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_id: str
    """The key the source record was partitioned by (a facility, a site): names its state."""
    position: Position
    max_event_time_s: float
    event_ids: tuple[str, ...]

    @property
    def key(self) -> str:
        """Table key; unique per source record."""
        return f"{self.position.partition}:{self.position.offset}"


@dataclass(slots=True)
class _PartitionSegments:
    segments: deque[DedupSegment] = field(default_factory=deque)
    event_count: int = 0
    max_event_time_s: float = float("-inf")


class DedupIndex:
    """event id → the segment that first applied it, bounded per partition."""

    def __init__(self, window_s: float, max_events_per_partition: int) -> None:
        self._window_s = window_s
        self._max_events = max_events_per_partition
        self._by_event: dict[tuple[str, str], DedupSegment] = {}
        """(entity, event id) → segment: ids are an entity's own, so one tenant reusing
        another's event id cannot suppress the other's record."""
        self._by_position: dict[Position, DedupSegment] = {}
        self._partitions: dict[int, _PartitionSegments] = {}

    def __len__(self) -> int:
        return len(self._by_event)

    def lookup(self, entity_id: str, event_id: str) -> DedupSegment | None:
        """The segment holding ``entity_id``'s ``event_id``, while inside the window."""
        return self._by_event.get((entity_id, event_id))

    def contains_segment(self, position: Position) -> bool:
        """Whether the record at ``position`` already has its segment (replay check)."""
        return position in self._by_position

    def add(self, segment: DedupSegment) -> list[DedupSegment]:
        """Index a segment and return the segments evicted to keep the bounds.

        Segments must arrive in offset order per partition, as a partition's records do;
        a segment already present (a replay) is ignored.
        """
        part = self._partitions.setdefault(segment.position.partition, _PartitionSegments())
        if part.segments and part.segments[-1].position.offset >= segment.position.offset:
            return []
        part.segments.append(segment)
        self._by_position[segment.position] = segment
        part.event_count += len(segment.event_ids)
        part.max_event_time_s = max(part.max_event_time_s, segment.max_event_time_s)
        for event_id in segment.event_ids:
            self._by_event.setdefault((segment.entity_id, event_id), segment)
        return self._evict(part)

    def outside_window(self, segment: DedupSegment) -> bool:
        """Whether ``segment`` is older in event time than its partition's window reaches:
        added now, it would be evicted at once, so not holding it loses nothing the window
        promises (a record re-handled after a restart, whose segment has left the window)."""
        part = self._partitions.get(segment.position.partition)
        return (
            part is not None and segment.max_event_time_s < part.max_event_time_s - self._window_s
        )

    def last_offset(self, partition: int) -> int | None:
        """The newest source offset with a segment in ``partition``."""
        part = self._partitions.get(partition)
        return part.segments[-1].position.offset if part and part.segments else None

    def drop_partition(self, partition: int) -> None:
        """Forget a partition's segments (it was revoked from this worker)."""
        part = self._partitions.pop(partition, None)
        if part is None:
            return
        for segment in part.segments:
            self._forget(segment)

    def _evict(self, part: _PartitionSegments) -> list[DedupSegment]:
        evicted: list[DedupSegment] = []
        horizon = part.max_event_time_s - self._window_s
        while part.segments and (
            part.segments[0].max_event_time_s < horizon or part.event_count > self._max_events
        ):
            oldest = part.segments.popleft()
            part.event_count -= len(oldest.event_ids)
            self._forget(oldest)
            evicted.append(oldest)
        return evicted

    def _forget(self, segment: DedupSegment) -> None:
        self._by_position.pop(segment.position, None)
        for event_id in segment.event_ids:
            if self._by_event.get((segment.entity_id, event_id)) is segment:
                del self._by_event[(segment.entity_id, event_id)]
