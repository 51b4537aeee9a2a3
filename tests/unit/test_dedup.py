"""The bounded event-id index."""

from __future__ import annotations

from app.core.dedup import DedupIndex, DedupSegment, Position


def segment(offset: int, ids: list[str], t: float, partition: int = 0) -> DedupSegment:
    return DedupSegment(
        entity_id="f",
        position=Position(partition=partition, offset=offset),
        max_event_time_s=t,
        event_ids=tuple(ids),
    )


def test_lookup_returns_the_first_segment() -> None:
    index = DedupIndex(window_s=100, max_events_per_partition=10)
    first = segment(1, ["a", "b"], 10)
    index.add(first)
    assert index.lookup("f", "a") is first
    assert index.lookup("f", "z") is None
    assert index.contains_segment(Position(partition=0, offset=1))
    assert not index.contains_segment(Position(partition=0, offset=2))


def test_replayed_segment_is_ignored() -> None:
    index = DedupIndex(window_s=100, max_events_per_partition=10)
    index.add(segment(5, ["a"], 10))
    assert index.add(segment(5, ["a"], 10)) == []
    assert len(index) == 1


def test_event_time_window_evicts_old_segments() -> None:
    index = DedupIndex(window_s=100, max_events_per_partition=1_000)
    old = segment(1, ["a"], 0)
    index.add(old)
    index.add(segment(2, ["b"], 100))
    evicted = index.add(segment(3, ["c"], 101))
    assert evicted == [old]
    assert index.lookup("f", "a") is None
    assert index.lookup("f", "b") is not None


def test_count_bound_evicts_oldest_per_partition() -> None:
    index = DedupIndex(window_s=1e9, max_events_per_partition=3)
    index.add(segment(1, ["a", "b"], 1))
    index.add(segment(1, ["x"], 1, partition=1))
    evicted = index.add(segment(2, ["c", "d"], 2))
    assert [s.position.offset for s in evicted] == [1]
    assert index.lookup("f", "a") is None
    assert index.lookup("f", "x") is not None


def test_drop_partition_forgets_its_events() -> None:
    index = DedupIndex(window_s=100, max_events_per_partition=10)
    index.add(segment(1, ["a"], 1, partition=3))
    index.drop_partition(3)
    assert index.lookup("f", "a") is None


def test_event_ids_are_each_entitys_own() -> None:
    """Issue 16: a tenant reusing another tenant's event id must not suppress its record."""
    index = DedupIndex(window_s=100, max_events_per_partition=10)
    mine = DedupSegment(entity_id="tenant-a", position=Position(partition=0, offset=1),
                        max_event_time_s=10, event_ids=("e-1",))  # fmt: skip
    index.add(mine)
    assert index.lookup("tenant-a", "e-1") is mine
    assert index.lookup("tenant-b", "e-1") is None
    theirs = DedupSegment(entity_id="tenant-b", position=Position(partition=0, offset=2),
                          max_event_time_s=11, event_ids=("e-1",))  # fmt: skip
    index.add(theirs)
    assert index.lookup("tenant-b", "e-1") is theirs and index.lookup("tenant-a", "e-1") is mine
