"""The topics a pipeline takes records from, and where in them it stands: what the fail-stop
consume loop in :mod:`app.runtime.stage` needs to handle every offset once, in order, after a
SIGKILL, a rebalance, or records faust-streaming passed over.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from faust.streams import _current_event

from app.core.dedup import Position
from app.core.origin import REPARTITION_SUFFIX, origin_of


class _ReadBackEvent:
    """Stands in for Faust's current stream event while a record read back outside the
    stream is handled: tables write a key's changelog to that event's partition."""

    def __init__(self, message: Any) -> None:
        self.message = message


@contextmanager
def handled_as_current(record: Any) -> Iterator[None]:
    """A record read back outside the stream, as Faust's current event."""
    with as_current(_ReadBackEvent(record)):
        yield


@contextmanager
def as_current(event: Any) -> Iterator[None]:
    """``event`` as Faust's current stream event (what ``faust.current_event()`` returns)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def passed_over(
    offset: int, expected: int | None, first_of_partition: bool, compacted: bool
) -> bool:
    """Whether records before ``offset`` were passed over and must be read back: Faust
    delivered ``offset`` while ``expected`` is the first offset still to handle.

    A compacted source has holes by design (records compaction removed), so after the
    first record of an assignment its offsets are taken as delivered; its first record is
    still checked, since that is where faust-streaming 0.15 was seen to pass records over.
    """
    if expected is None or offset <= expected:
        return False
    return first_of_partition or not compacted


def first_unhandled(last_processed: int | None, resume: int | None) -> int | None:
    """The first offset of a partition that a worker has to handle before Faust has given
    it any record of that partition; ``None`` when nothing is known.

    The earlier of ``resume``, where the group resumed the partition (outputs below it were
    flushed before it was committed), and the offset after ``last_processed``, the newest
    record the recovered state shows as processed: records from ``resume`` on may have
    lost their outputs even if their state survived, and handling them again re-sends
    those outputs; records after ``last_processed`` were never processed, even when Faust
    committed past them.
    """
    after_state = None if last_processed is None else last_processed + 1
    if resume is None or after_state is None:
        return after_state if resume is None else resume
    return min(resume, after_state)


REPARTITIONED = 1 << 20
"""Added to the partition numbers of a repartition topic's records in their positions, so
that in watermarks, outboxes and dedup segments they never collide with the source's own
(no Kafka topic has a million partitions)."""


@dataclass(eq=False)
class Lane:
    """A topic a pipeline takes records from: its source, or the source's repartition topic
    (records Governor forwarded to their key's partition, :mod:`app.runtime.placement`)."""

    topic: Any
    base: int
    """0 for the source; :data:`REPARTITIONED` for the repartition topic."""
    compacted: bool
    expected: dict[int, int] = field(default_factory=dict)
    """Partition → the next offset to handle, once a record of it was handled."""
    waiting: dict[int, int] = field(default_factory=dict)
    """Partition → the first unprocessed offset at the last idle check."""
    stalled_checks: dict[int, int] = field(default_factory=dict)
    """Partition → idle checks in a row that found it waiting at the same offset."""

    @property
    def name(self) -> str:
        return str(self.topic.get_topic_name())

    def position_of(self, message: Any) -> Position:
        """Where ``message`` sits, as state, outboxes and dedup segments record it: a
        forwarded record's partition is offset by :data:`REPARTITIONED` and carries the
        source coordinates its producer wrote it at."""
        if self.base == 0:
            return Position(partition=message.partition, offset=message.offset)
        origin = origin_of(message.topic, getattr(message, "headers", None))
        return Position(
            partition=message.partition + self.base,
            offset=message.offset,
            forwarded_from=(origin.partition, origin.offset) if origin else None,
        )


def lane_of(topic_name: str) -> int:
    """The position base of records of ``topic_name``."""
    return REPARTITIONED if topic_name.endswith(REPARTITION_SUFFIX) else 0
