"""Entity bounds: at most so many entities per table partition (issue 16 part 4)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from app.runtime.entity_bound import EntityBound, home_partition
from app.runtime.lanes import REPARTITIONED


def test_home_partition_is_the_java_clients_and_fausts() -> None:
    partitioner = DefaultPartitioner()
    for n in range(500):
        key = f"facility-{n:04d}"
        assert home_partition(key, 6) == partitioner(key.encode(), list(range(6)), [])


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
