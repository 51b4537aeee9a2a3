"""The outbox keeps recent outputs beside the state, in blocks, bounded per partition."""

from __future__ import annotations

from typing import Any

from app.core.dedup import Position
from app.core.outbox_entry import Entry
from app.runtime.outbox import BLOCK_ENTRIES, DELETES_PER_RECORD, Outbox, outbox_key

Value = Entry[str, str]


class Table(dict[str, Any]):
    name = "t"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def at(offset: int, partition: int = 1) -> Position:
    return Position(partition=partition, offset=offset)


def roundtrip(table: Table) -> Table:
    """The table as recovery reads it back from the changelog."""
    return Table({k: Value.model_validate_json(v.model_dump_json()) for k, v in table.items()})


def test_records_share_blocks_and_the_newest_are_kept_per_partition() -> None:
    table = Table(state=Value(state="not an outbox entry"))
    keep = 2 * BLOCK_ENTRIES
    box: Outbox[str] = Outbox(table, Value, keep, name="b")
    for offset in range(3 * BLOCK_ENTRIES):
        box.record(at(offset), f"p1-{offset}")
    box.record(at(7, partition=2), "p2-7")
    writes = table.writes
    box.record(at(7, partition=2), "again")  # a replay writes nothing new
    assert table.writes == writes
    assert box.get(at(7, partition=2)) == "p2-7"
    assert box.get(at(3 * BLOCK_ENTRIES - 1)) == "p1-191"
    # three blocks of partition 1 were written; the oldest went once the two newer held
    # ``keep`` entries
    assert {k for k in table if k.startswith("@b:1:")} == {
        outbox_key(at(BLOCK_ENTRIES), "b"), outbox_key(at(2 * BLOCK_ENTRIES), "b"),
    }  # fmt: skip
    assert box.get(at(0)) is None and box.last_offset(1) == 3 * BLOCK_ENTRIES - 1
    assert table["state"].state == "not an outbox entry"
    assert DELETES_PER_RECORD >= 1


def test_a_rebuilt_outbox_reads_blocks_and_values_from_before_blocks() -> None:
    written = Table()
    box: Outbox[str] = Outbox(written, Value, 1_000)
    for offset in range(10, 13):
        box.record(at(offset), f"p1-{offset}")
    table = roundtrip(written)
    table[outbox_key(at(5))] = Value(outputs="p1-5")  # one record's entry, before blocks

    rebuilt: Outbox[str] = Outbox(table, Value, 1_000)
    assert rebuilt.last_offset(1) == 12
    assert rebuilt.get(at(5)) == "p1-5" and rebuilt.get(at(11)) == "p1-11"
    assert rebuilt.get(at(8)) is None
    rebuilt.record(at(13), "p1-13")
    assert set(table) == {outbox_key(at(10)), outbox_key(at(5))}
    assert roundtrip(table)[outbox_key(at(10))].block.entries[13] == "p1-13"  # type: ignore[union-attr]


def test_a_value_from_before_blocks_is_never_added_to() -> None:
    table = Table({outbox_key(at(5)): Value(outputs="p1-5")})
    box: Outbox[str] = Outbox(table, Value, 1_000)
    box.record(at(6), "p1-6")
    assert table[outbox_key(at(5))] == Value(outputs="p1-5")
    assert box.get(at(6)) == "p1-6" and outbox_key(at(6)) in table


def test_an_entry_older_than_one_recorded_is_refused_and_counted_unless_it_is_there() -> None:
    refused: list[int] = []
    box: Outbox[str] = Outbox(Table(), Value, 100, out_of_order=lambda: refused.append(1))
    box.record(at(5), "five")
    box.record(at(5), "five again")  # a re-delivery: its outputs are there, nothing refused
    assert refused == [] and box.get(at(5)) == "five"
    box.record(at(3), "three")  # after a later record of its partition: refused, counted
    assert refused == [1] and box.get(at(3)) is None
