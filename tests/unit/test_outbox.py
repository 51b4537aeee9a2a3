"""The outbox keeps recent outputs beside the state, bounded per partition."""

from __future__ import annotations

from typing import Any

from app.outbox import Outbox, outbox_key
from app.rules.dedup import Position


class Table(dict[str, Any]):
    name = "t"


def test_outbox_keeps_the_newest_entries_per_partition_and_rebuilds_its_index() -> None:
    table = Table(state="not an outbox entry")
    box: Outbox[str] = Outbox(table, lambda o: {"out": o}, lambda v: v["out"], 100)
    for offset in range(150):
        box.record(Position(partition=1, offset=offset), f"p1-{offset}")
    box.record(Position(partition=2, offset=7), "p2-7")
    box.record(Position(partition=2, offset=7), "again")  # a replay writes nothing new
    assert box.get(Position(partition=2, offset=7)) == "p2-7"
    assert box.get(Position(partition=1, offset=149)) == "p1-149"
    # Deletes are paced (2 per new entry): the backlog of 50 drains as entries arrive.
    kept = [k for k in table if k.startswith("@1:")]
    assert len(kept) == 100
    for offset in range(150, 200):
        box.record(Position(partition=1, offset=offset), f"p1-{offset}")
    assert sorted(int(k[3:]) for k in table if k.startswith("@1:")) == list(range(100, 200))
    assert table["state"] == "not an outbox entry"

    rebuilt: Outbox[str] = Outbox(table, lambda o: {"out": o}, lambda v: v["out"], 100)
    rebuilt.ensure_indexed(1)
    rebuilt.record(Position(partition=1, offset=200), "p1-200")
    rebuilt.record(Position(partition=1, offset=201), "p1-201")
    assert outbox_key(Position(partition=1, offset=100)) not in table
    assert outbox_key(Position(partition=1, offset=101)) not in table
    assert rebuilt.get(Position(partition=1, offset=102)) == "p1-102"
