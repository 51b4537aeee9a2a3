"""The bounded event-id index."""

from __future__ import annotations

from app.rules.dedup import DedupIndex, DedupSegment, Position


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
    assert index.lookup("a") is first
    assert index.lookup("z") is None
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
    assert index.lookup("a") is None
    assert index.lookup("b") is not None


def test_count_bound_evicts_oldest_per_partition() -> None:
    index = DedupIndex(window_s=1e9, max_events_per_partition=3)
    index.add(segment(1, ["a", "b"], 1))
    index.add(segment(1, ["x"], 1, partition=1))
    evicted = index.add(segment(2, ["c", "d"], 2))
    assert [s.position.offset for s in evicted] == [1]
    assert index.lookup("a") is None
    assert index.lookup("x") is not None


def test_drop_partition_forgets_its_events() -> None:
    index = DedupIndex(window_s=100, max_events_per_partition=10)
    index.add(segment(1, ["a"], 1, partition=3))
    index.drop_partition(3)
    assert index.lookup("a") is None
