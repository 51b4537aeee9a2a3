"""The dedup store: index eviction at once, table deletes paced."""

from __future__ import annotations

from app.dedup_store import DELETES_PER_RECORD, DedupStore
from app.rules.dedup import DedupSegment, Position


class FakeTable(dict[str, DedupSegment]):
    name = "dedup"


def segment(offset: int, event_time_s: float, partition: int = 0) -> DedupSegment:
    return DedupSegment(
        entity_id="site-1",
        position=Position(partition=partition, offset=offset),
        max_event_time_s=event_time_s,
        event_ids=(f"e-{partition}-{offset}",),
    )


def test_a_jump_past_the_window_forgets_at_once_and_deletes_gradually() -> None:
    table = FakeTable()
    store = DedupStore(table, window_s=100.0, max_events_per_partition=1_000)
    for offset in range(50):
        store.record(segment(offset, event_time_s=float(offset)))
    assert len(table) == 50 and store.pending_deletes == 0

    store.record(segment(50, event_time_s=10_000.0))  # every older segment leaves the window
    assert store.first_position("site-1", "e-0-0") is None and len(store) == 1
    assert len(table) == 51 - DELETES_PER_RECORD and store.pending_deletes == 50 - 4

    offset = 51
    while store.pending_deletes:
        store.record(segment(offset, event_time_s=10_000.0 + offset))
        offset += 1
    assert sorted(table) == [f"0:{o}" for o in range(50, offset)]
    assert offset - 51 <= 50 // (DELETES_PER_RECORD - 1) + 1


def test_a_rebuilt_index_queues_what_recovery_brought_back_beyond_the_window() -> None:
    table = FakeTable({s.key: s for s in (segment(0, 0.0), segment(1, 500.0))})
    store = DedupStore(table, window_s=100.0, max_events_per_partition=1_000)
    store.ensure_indexed(0)
    assert store.first_position("site-1", "e-0-0") is None
    assert store.first_position("site-1", "e-0-1") == Position(partition=0, offset=1)
    assert store.pending_deletes == 1
    store.drop_partition(0)
    assert store.pending_deletes == 0 and store.first_position("site-1", "e-0-1") is None
