"""Entity bounds: at most so many entities per table partition (issue 16 part 4)."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from app.runtime import entity_bound
from app.runtime.entity_bound import EntityBound, home_partition
from app.runtime.lanes import REPARTITIONED


def test_home_partition_is_the_java_clients_and_fausts() -> None:
    partitioner = DefaultPartitioner()
    keys = [f"facility-{n:04d}" for n in range(500)] + ["", "a", "ab", "abc", "zone-é", "🏭" * 7]
    for key in keys:
        for partitions in (1, 6, 7, 12):
            wanted = partitioner(key.encode(), list(range(partitions)), [])
            assert home_partition(key, partitions) == wanted, (key, partitions)


def test_indexing_every_partition_hashes_each_key_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a restart every partition is indexed from one table: hashing each key once per
    partition blocked the event loop for seconds on large tables."""
    hashed: list[str] = []

    def counting(key: str, partitions: int) -> int:
        hashed.append(key)
        return home_partition(key, partitions)

    monkeypatch.setattr(entity_bound, "home_partition", counting)
    table = {f"facility-{n}": n for n in range(600)}
    bound = EntityBound("t", table.keys, 6, limit=1_000)
    assert sum(bound.held(p) for p in range(6)) == 600
    assert sorted(hashed) == sorted(table)


def test_known_entities_pass_and_new_ones_stop_at_the_limit() -> None:
    table: dict[str, int] = {}
    bound = EntityBound("t", table.keys, 6, limit=3)
    assert [bound.admit(0, f"e{n}") for n in range(5)] == [True, True, True, False, False]
    assert bound.admit(0, "e1") and bound.admit(0, "e2")  # those it holds always pass
    assert bound.admit(1, "other")  # another partition has its own room
    assert bound.admit(REPARTITIONED + 1, "other-2")  # a forwarded record's table partition
    assert bound.held(0) == 3 and bound.held(1) == 2
    assert bound.fill() == 1.0


def test_a_partition_is_counted_from_its_table_when_it_comes_back() -> None:
    """After a restart or a rebalance the count comes from the table: entities this worker
    never admitted itself count, journal (outbox, dedup) keys do not."""
    keys = [f"tenant-{n}" for n in range(40)]
    table = {k: 1 for k in keys} | {"@q:0:5": 1}
    in_2 = [k for k in keys if home_partition(k, 6) == 2]
    bound = EntityBound("t", table.keys, 6, limit=len(in_2) + 1)
    assert bound.held(2) == len(in_2)
    assert bound.admit(2, "new-one") and not bound.admit(2, "one-more")
    bound.drop_partition(2)
    assert bound.held(2) == len(in_2)  # "new-one" wrote nothing to the table
    assert bound.admit(2, in_2[0])


def test_room_is_judged_only_for_partitions_handled_here() -> None:
    """A synchronous path asks before publishing; a partition this worker has not handled
    is left to its owner (its changelog may still be recovering here), and asking indexes
    nothing: the partition is counted from its table when its first record comes."""
    table: dict[str, int] = {}
    bound = EntityBound("t", table.keys, 6, limit=2)
    a, b, c = [k for k in (f"tenant-{n}" for n in range(100)) if home_partition(k, 6) == 0][:3]
    assert bound.has_room_for(a) and bound.has_room_for(c)
    table[a] = table[b] = 1  # recovered after the question
    assert not bound.admit(0, c)
    assert bound.admit(0, a) and bound.has_room_for(b) and not bound.has_room_for(c)
