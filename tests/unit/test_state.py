"""Write-behind tables: writes reach the store at once and the changelog once per key per
flush, in order of last write; Faust's commit path flushes them before committing."""

from __future__ import annotations

from typing import Any

import faust
import pytest

from app.runtime.state import FlushBeforeCommit, WriteBehindTable, flush_revoked
from app.runtime.topology import build
from app.settings import load_settings


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> WriteBehindTable:
    app = faust.App("state-test", store="memory://", Table=WriteBehindTable)
    table: WriteBehindTable = app.Table("t", default=None, partitions=4)
    partition_of = {"a": 0, "b": 1, "c": 0, "d": 1, "@box:0:5": 0}
    monkeypatch.setattr(table, "partition_for_key", lambda key: partition_of[key])
    return table


def sends(table: WriteBehindTable, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What the table's flushes queue: (partition, key, value; ``None`` a tombstone)."""
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(table, "_queue", sent.extend)
    return sent


def test_writes_coalesce_per_key_and_flush_in_order_of_last_write(
    table: WriteBehindTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sends(table, monkeypatch)
    table["a"] = 1
    table["b"] = 1
    table["a"] = 2
    table["c"] = 1
    del table["b"]
    table["a"] = 3
    assert sent == [] and table["a"] == 3 and "b" not in table  # reads see the writes
    assert table.dirty == 3
    assert table.flush_changelog() == 3
    # a last: its last write came after c's and b's (so an outbox entry stays ahead of the
    # state written after it); b's delete is a tombstone.
    assert sent == [(0, "c", 1), (1, "b", None), (0, "a", 3)]
    assert table.flush_changelog() == 0 and table.flushed_records == 3


def test_journal_blocks_flush_before_the_state_written_after_them(
    table: WriteBehindTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An outbox block is rewritten in place: record 5's outputs, then its state a, then
    # record 6's outputs into the same block, then its state c. Whatever prefix of the flush
    # survives a crash, a state value in it comes after the block that holds its outputs.
    sent = sends(table, monkeypatch)
    table["@box:0:5"] = "outputs 5"
    table["a"] = "state after 5"
    table["@box:0:5"] = "outputs 5, 6"
    table["c"] = "state after 6"
    table.flush_changelog()
    assert sent == [
        (0, "@box:0:5", "outputs 5, 6"), (0, "a", "state after 5"), (0, "c", "state after 6"),
    ]  # fmt: skip


def test_a_full_cache_flushes_early_and_revocation_flushes_only_its_partitions(
    table: WriteBehindTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sends(table, monkeypatch)
    table.max_dirty = 3
    table["a"] = 1
    table["b"] = 1
    assert sent == []
    table["c"] = 1
    assert [key for _, key, _ in sent] == ["a", "b", "c"] and table.dirty == 0
    sent.clear()
    table["a"] = 2
    table["b"] = 2
    assert flush_revoked([table], {1}) == 1
    assert sent == [(1, "b", 2)] and table.dirty == 1


def test_the_commit_sensor_flushes_every_table(
    table: WriteBehindTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sends(table, monkeypatch)
    table["d"] = 7
    FlushBeforeCommit([table]).on_commit_initiated(consumer=None)
    assert sent == [(1, "d", 7)]


async def test_faust_calls_the_sensor_before_it_commits_offsets(
    table: WriteBehindTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook this relies on: Consumer.force_commit runs on_commit_initiated before
    _commit_tps (whose _commit_offsets flushes the producer, then commits)."""
    from faust.transport.consumer import Consumer

    order: list[str] = []
    sensor = FlushBeforeCommit([table])
    monkeypatch.setattr(sensor, "on_commit_initiated", lambda consumer: order.append("flush"))
    table.app.sensors.add(sensor)

    async def commit_tps(self: Any, tps: Any, start_new_transaction: bool) -> bool:
        order.append("commit")
        return True

    monkeypatch.setattr(Consumer, "_commit_tps", commit_tps)
    monkeypatch.setattr(Consumer, "_filter_tps_with_pending_acks", lambda self, topics: [])
    consumer = table.app.consumer
    await Consumer.force_commit(consumer)
    assert order == ["flush", "commit"]


def test_changelog_topics_and_the_producer_take_state_values_up_to_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kafka's default limit (1 MB) was within reach of one tenant's bounded state."""
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_WORKER__STATE_MAX_RECORD_BYTES", "3000000")
    gov = build(load_settings()).gov
    assert gov.tables and all(
        t.changelog_topic.config["max.message.bytes"] == "3000000" for t in gov.tables
    )
    assert gov.faust.conf.producer_max_request_size > 3_000_000
