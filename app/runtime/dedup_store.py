"""A :class:`DedupIndex` backed by a Faust table of blocks of segments.

The table (and its changelog) is the durable state; the index is the fast lookup derived
from it. After recovery, or when a partition comes back to this worker, the partition's
segments are re-indexed before its first record is decided.

Why blocks: one table key per source record would be one changelog record per source
record, however the table coalesces writes (:mod:`app.runtime.state`). Consecutive segments
of a source partition share one key instead (``<partition>:<first offset>``), rewritten in
place until it holds ``BLOCK_SEGMENTS`` segments or ``BLOCK_EVENTS`` event ids, so a commit
interval's records of a partition cost one or two changelog records. A block's size bounds
the bytes each flush rewrites.

Eviction is immediate in the index (decisions never see an evicted segment, so they are
the same however the deletes are scheduled). A block is deleted from the table once all of
its segments have left the window; one that still holds some keeps its evicted ones, which
a rebuilt index evicts again, since eviction depends only on the segments themselves. The
deletes are paced, at most ``DELETES_PER_RECORD`` per recorded segment: after a jump in
event time past the window (a quiet weekend, say) every block leaves at once, and deleting
them all inside one record stalled the stream (see benchmarks/README.md).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from app.core.dedup import DedupIndex, DedupSegment, Position

log = logging.getLogger(__name__)

DELETES_PER_RECORD = 4
"""Table deletes of evicted blocks done per recorded segment, so a backlog drains."""
BLOCK_SEGMENTS = 128
"""Segments (source records) per block before the next one starts."""
BLOCK_EVENTS = 1_000
"""Event ids per block before the next one starts (a batch record brings hundreds)."""


class DedupBlock(BaseModel):
    """A table value: consecutive segments of one source partition, oldest first."""

    model_config = ConfigDict(extra="forbid")

    segments: list[DedupSegment]

    @model_validator(mode="before")
    @classmethod
    def _one_segment(cls, data: Any) -> Any:
        """A value written before blocks existed is one segment: a block of one."""
        if isinstance(data, dict) and "position" in data:
            return {"segments": [data]}
        return data


@dataclass(slots=True)
class _Block:
    key: str
    value: DedupBlock
    events: int

    @property
    def last_offset(self) -> int:
        return self.value.segments[-1].position.offset

    def full(self) -> bool:
        return len(self.value.segments) >= BLOCK_SEGMENTS or self.events >= BLOCK_EVENTS


def _events(block: DedupBlock) -> int:
    return sum(len(s.event_ids) for s in block.segments)


class DedupStore:
    """Keeps a pipeline's dedup table and in-memory index in step."""

    def __init__(
        self,
        table: Any,
        window_s: float,
        max_events_per_partition: int,
        out_of_order: Callable[[], None] = lambda: None,
    ) -> None:
        self.table = table
        self._out_of_order = out_of_order
        """Called for each segment refused as older than one recorded (counted, logged)."""
        self.index = DedupIndex(window_s, max_events_per_partition)
        self._blocks: dict[int, deque[_Block]] = {}
        """Per partition, the blocks still in the table and not queued for deletion."""
        self._unpersisted_evictions: deque[str] = deque()

    def __len__(self) -> int:
        return len(self.index)

    def ensure_indexed(self, partition: int) -> None:
        """Rebuild the index of ``partition`` from its recovered blocks, once."""
        if partition in self._blocks:
            return
        prefix = f"{partition}:"
        found = sorted(
            (int(key[len(prefix) :]), key, value)
            for key, value in self.table.items()
            if key.startswith(prefix) and value.segments
        )
        blocks = self._blocks[partition] = deque()
        for _, key, value in found:
            blocks.append(_Block(key, value, _events(value)))
            for segment in value.segments:
                self._expire(partition, self.index.add(segment))
        log.info(
            "dedup index %s[%d] rebuilt from %d blocks", self.table.name, partition, len(found)
        )

    def record(self, segment: DedupSegment | None) -> None:
        """Persist a new segment and drop the blocks it pushed out of the window.

        A re-delivered record's segment is already there: writing nothing keeps it idempotent.
        So is one whose segment has left the window: after a SIGKILL a worker handles again
        the records from its group's resume point on, and the oldest of them may have been
        evicted (their blocks deleted) before the kill. Any other segment older than one
        recorded means a segment went missing: it is refused, counted and logged.
        """
        if segment is None or self.index.contains_segment(segment.position):
            return
        partition = segment.position.partition
        self.ensure_indexed(partition)
        last = self.index.last_offset(partition)
        if last is not None and segment.position.offset <= last:
            # older than a recorded segment: the index would not take it either
            if self.index.outside_window(segment):
                return  # its segment left the window (and maybe the table) before: not lost
            log.warning(
                "dedup %s[%d]: segment at offset %d refused, offset %d recorded already",
                self.table.name, partition, segment.position.offset, last,
            )  # fmt: skip
            self._out_of_order()
            return
        blocks = self._blocks[partition]
        if not blocks or blocks[-1].full():
            blocks.append(_Block(segment.key, DedupBlock(segments=[]), 0))
        block = blocks[-1]
        block.value.segments.append(segment)
        block.events += len(segment.event_ids)
        self.table[block.key] = block.value  # the same object: marks the block dirty
        self._expire(partition, self.index.add(segment))
        for _ in range(min(DELETES_PER_RECORD, len(self._unpersisted_evictions))):
            self.table.pop(self._unpersisted_evictions.popleft(), None)

    def _expire(self, partition: int, evicted: list[DedupSegment]) -> None:
        """Queue the deletion of blocks whose every segment has been evicted."""
        if not evicted:
            return
        through = max(s.position.offset for s in evicted)
        blocks = self._blocks[partition]
        while blocks and blocks[0].last_offset <= through:
            self._unpersisted_evictions.append(blocks.popleft().key)

    @property
    def pending_deletes(self) -> int:
        """Evicted blocks still in the table, waiting for their paced delete."""
        return len(self._unpersisted_evictions)

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition: its segments may change on another worker."""
        self.index.drop_partition(partition)
        self._blocks.pop(partition, None)
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


class StagedIds:
    """A batch's view of a :class:`DedupStore` while its records are decided together
    (nothing written yet): an event id an earlier record of the batch applied is found as
    one in the store is, and the batch's segments are recorded when it is written, in the
    order they were added (its records' offset order)."""

    def __init__(self, store: DedupStore) -> None:
        self._store = store
        self._first: dict[tuple[str, str], Position] = {}
        self._segments: list[DedupSegment] = []

    def first_position(self, entity_id: str, event_id: str) -> Position | None:
        """Where ``entity_id``'s ``event_id`` was first applied: in the batch, or before it."""
        found = self._first.get((entity_id, event_id))
        return found if found is not None else self._store.first_position(entity_id, event_id)

    def add(self, segment: DedupSegment) -> None:
        """A decided record's segment, to be recorded with the batch."""
        self._segments.append(segment)
        for event_id in segment.event_ids:
            self._first.setdefault((segment.entity_id, event_id), segment.position)

    def write(self) -> None:
        """Record the batch's segments in the store."""
        for segment in self._segments:
            self._store.record(segment)
        self._segments.clear()
        self._first.clear()
