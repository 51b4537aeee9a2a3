"""The dedup store: segments in blocks (one key per block, not per record), index eviction
at once, block deletes paced."""

from __future__ import annotations

from app.core.dedup import DedupSegment, Position
from app.runtime.dedup_store import (
    BLOCK_EVENTS,
    BLOCK_SEGMENTS,
    DELETES_PER_RECORD,
    DedupBlock,
    DedupStore,
)


class FakeTable(dict[str, DedupBlock]):
    name = "dedup"

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.writes = 0

    def __setitem__(self, key: str, value: DedupBlock) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def segment(offset: int, event_time_s: float, partition: int = 0, ids: int = 1) -> DedupSegment:
    return DedupSegment(
        entity_id="site-1",
        position=Position(partition=partition, offset=offset),
        max_event_time_s=event_time_s,
        event_ids=tuple(f"e-{partition}-{offset}-{i}" for i in range(ids)),
    )


def test_consecutive_records_share_a_block_until_it_is_full() -> None:
    table = FakeTable()
    store = DedupStore(table, window_s=1e9, max_events_per_partition=1_000_000)
    for offset in range(2 * BLOCK_SEGMENTS + 1):
        store.record(segment(offset, float(offset)))
    assert sorted(table, key=lambda k: int(k.split(":")[1])) == [
        "0:0",
        f"0:{BLOCK_SEGMENTS}",
        f"0:{2 * BLOCK_SEGMENTS}",
    ]
    assert [s.position.offset for s in table["0:0"].segments] == list(range(BLOCK_SEGMENTS))
    # a block of batch records closes on its event ids, not its record count
    store.record(segment(1_000, 1_000.0, ids=BLOCK_EVENTS))
    store.record(segment(1_001, 1_001.0))
    assert "0:1001" in table
    # a re-delivered record adds nothing
    writes = table.writes
    store.record(segment(1_001, 1_001.0))
    store.record(segment(5, 5.0))
    assert table.writes == writes


def test_a_rebuilt_index_continues_the_last_block_and_reads_single_segment_values() -> None:
    legacy = segment(0, 0.0)
    written = DedupStore(FakeTable(), window_s=1e9, max_events_per_partition=1_000_000)
    for offset in range(1, 4):
        written.record(segment(offset, float(offset)))
    table = FakeTable({"0:0": DedupBlock.model_validate(legacy.model_dump())})
    for key, block in written.table.items():
        table[key] = DedupBlock.model_validate_json(block.model_dump_json())
    store = DedupStore(table, window_s=1e9, max_events_per_partition=1_000_000)
    assert store.last_offset(0) == 3
    assert store.first_position("site-1", "e-0-0-0") == Position(partition=0, offset=0)
    store.record(segment(4, 4.0))
    assert sorted(table) == ["0:0", "0:1"] and len(table["0:1"].segments) == 4


def test_a_jump_past_the_window_forgets_at_once_and_deletes_blocks_gradually() -> None:
    table = FakeTable()
    store = DedupStore(table, window_s=100.0, max_events_per_partition=1_000_000)
    blocks = 10
    for offset in range(blocks * BLOCK_SEGMENTS):
        store.record(segment(offset, event_time_s=float(offset) / 1_000))
    assert len(table) == blocks and store.pending_deletes == 0

    jump = blocks * BLOCK_SEGMENTS
    store.record(segment(jump, event_time_s=10_000.0))  # every older segment leaves the window
    assert store.first_position("site-1", "e-0-0-0") is None and len(store) == 1
    assert len(table) == blocks + 1 - DELETES_PER_RECORD
    assert store.pending_deletes == blocks - DELETES_PER_RECORD

    store.record(segment(jump + 1, event_time_s=10_001.0))
    store.record(segment(jump + 2, event_time_s=10_002.0))
    assert store.pending_deletes == 0 and sorted(table) == [f"0:{jump}"]


def test_a_rebuilt_index_queues_blocks_recovery_brought_back_beyond_the_window() -> None:
    old = DedupBlock(segments=[segment(0, 0.0), segment(1, 1.0)])
    table = FakeTable({"0:0": old, "0:2": DedupBlock(segments=[segment(2, 500.0)])})
    store = DedupStore(table, window_s=100.0, max_events_per_partition=1_000)
    store.ensure_indexed(0)
    assert store.first_position("site-1", "e-0-1-0") is None
    assert store.first_position("site-1", "e-0-2-0") == Position(partition=0, offset=2)
    assert store.pending_deletes == 1
    store.drop_partition(0)
    assert store.pending_deletes == 0 and store.first_position("site-1", "e-0-2-0") is None


def test_a_block_partly_out_of_the_window_stays_until_its_last_segment_leaves() -> None:
    table = FakeTable()
    store = DedupStore(table, window_s=100.0, max_events_per_partition=1_000_000)
    for offset in range(BLOCK_SEGMENTS + 1):
        store.record(segment(offset, event_time_s=float(offset)))
    # the first block's oldest segments left the window; its newest have not
    assert store.first_position("site-1", "e-0-0-0") is None
    assert store.first_position("site-1", f"e-0-{BLOCK_SEGMENTS - 1}-0") is not None
    assert "0:0" in table and store.pending_deletes == 0


def test_a_segment_older_than_one_recorded_is_refused_and_counted() -> None:
    refused: list[int] = []
    store = DedupStore(FakeTable(), 1e9, 1_000_000, out_of_order=lambda: refused.append(1))
    store.record(segment(5, 5.0))
    store.record(segment(5, 5.0))  # a re-delivery: already there, nothing refused
    assert refused == []
    store.record(segment(3, 3.0))  # after a later record of its partition: refused, counted
    assert refused == [1] and store.last_offset(0) == 5


def test_records_handled_again_after_a_restart_refuse_only_segments_still_in_the_window() -> None:
    """As CI saw after a SIGKILL (Kafka 4.1.1): the group resumed a partition at offset 497
    while the recovered store held segments through 596, the oldest of them evicted and
    their blocks deleted before the kill. Handling 497.. again refuses their segments
    without counting them; a segment missing inside the window is counted."""
    table = FakeTable()
    store = DedupStore(table, window_s=50.0, max_events_per_partition=1_000_000)
    for offset in range(3 * BLOCK_SEGMENTS):
        store.record(segment(offset, event_time_s=float(offset)))
    for n in range(3 * BLOCK_SEGMENTS):  # let the paced deletes finish, as records would
        store.record(segment(10_000 + n, event_time_s=float(3 * BLOCK_SEGMENTS)))
    refused: list[int] = []
    restarted = DedupStore(table, 50.0, 1_000_000, out_of_order=lambda: refused.append(1))
    newest = restarted.last_offset(0)
    assert newest is not None and "0:0" not in table  # the oldest block was deleted
    for offset in range(BLOCK_SEGMENTS):  # handled again from the resume point
        restarted.record(segment(offset, event_time_s=float(offset)))
    assert refused == [] and restarted.last_offset(0) == newest

    inside = 3 * BLOCK_SEGMENTS - 5  # its segment lost although inside the window
    table[f"0:{2 * BLOCK_SEGMENTS}"].segments.pop(-5)
    again = DedupStore(table, 50.0, 1_000_000, out_of_order=lambda: refused.append(1))
    again.record(segment(inside, event_time_s=float(inside)))
    assert refused == [1]
