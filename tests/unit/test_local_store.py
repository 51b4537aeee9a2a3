"""The RocksDB store behind a record cache: writes stay in memory until the table's flush,
which writes the changelog's bytes to RocksDB; reads decode once; the local databases
survive a clean stop only; recovery and rebalances invalidate what they change."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP
from pydantic import BaseModel

from app.runtime.codecs import ModelCodec, Utf8KeyCodec
from app.runtime.lanes import handled_as_current
from app.runtime.local_store import ABSENT, CachedRocksStore
from app.runtime.state import WriteBehindTable


class Count(BaseModel):
    n: int


def make_table(data_dir: Path, cache_keys: int = 100) -> WriteBehindTable:
    app = faust.App("local-store-test", store="rocksdb://", datadir=str(data_dir))
    app.conf.Table = WriteBehindTable
    table: WriteBehindTable = app.Table("counts", default=None, partitions=2)
    table.key_serializer = Utf8KeyCodec()
    table.value_serializer = ModelCodec(Count)
    table.cache_keys = cache_keys
    return table


def record(partition: int, offset: int = 0) -> Any:
    return SimpleNamespace(topic="src", partition=partition, offset=offset, tp=TP("src", partition))


def write(table: WriteBehindTable, partition: int, key: str, n: int | None) -> None:
    with handled_as_current(record(partition)):
        if n is None:
            del table[key]
        else:
            table[key] = Count(n=n)


def on_disk(store: CachedRocksStore, partition: int, key: str) -> bytes | None:
    value: bytes | None = store._db_for_partition(partition).get(key.encode())
    return value


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteBehindTable:
    table = make_table(tmp_path)
    sent: list[Any] = []
    monkeypatch.setattr(table, "changelog_sender", sender(sent))
    table.sent_batches = sent  # type: ignore[attr-defined]
    return table


def sender(sent: list[Any]) -> Any:
    """A changelog sender that keeps what it is given and has nothing in flight."""

    def send(topic: str, batches: Any, delivered: Any = None) -> None:
        sent.append((topic, batches, delivered))

    return SimpleNamespace(send=send, idle=True)


def test_writes_wait_in_the_cache_and_the_flush_writes_the_changelog_bytes(
    table: WriteBehindTable,
) -> None:
    store = table.data
    assert isinstance(store, CachedRocksStore)
    write(table, 0, "a", 1)
    write(table, 1, "b", 2)
    write(table, 0, "a", 3)
    assert table["a"] == Count(n=3) and table["b"] == Count(n=2)
    assert on_disk(store, 0, "a") is None  # not written before the flush
    assert table.flush_changelog() == 2
    assert on_disk(store, 0, "a") == b'{"n":3}' and on_disk(store, 1, "b") == b'{"n":2}'
    (topic, batches, delivered), = table.sent_batches  # type: ignore[attr-defined]  # fmt: skip
    assert sorted(batches) == [(0, [(b"a", b'{"n":3}')]), (1, [(b"b", b'{"n":2}')])]
    assert store.persisted_offset(TP(topic, 0)) is None
    delivered(0, 17)  # the broker acknowledged partition 0's batch, up to offset 17
    assert store.persisted_offset(TP(topic, 0)) == 17
    write(table, 0, "a", None)
    assert "a" not in table and table.get("a") is None
    table.flush_changelog()
    assert on_disk(store, 0, "a") is None


def test_a_read_decodes_once_and_evicted_values_come_back_from_rocksdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = make_table(tmp_path, cache_keys=2)
    monkeypatch.setattr(table, "changelog_sender", sender([]))
    for i in range(5):
        write(table, i % 2, f"k{i}", i)
    table.flush_changelog()
    store = table.data
    assert len(store._cache) == 2  # the least recently used evicted after the flush
    decoded: list[bytes] = []
    decode = store._decode_value
    monkeypatch.setattr(store, "_decode_value", lambda raw: decoded.append(raw) or decode(raw))
    assert table["k0"] == Count(n=0) and table["k0"] == Count(n=0)
    assert decoded == [b'{"n":0}']  # the second read came from the cache
    assert "missing" not in table and table.get("missing") is None
    assert store._cache["missing"][1] is ABSENT
    assert sorted(table.keys()) == [f"k{i}" for i in range(5)]
    assert dict(table.items())["k3"] == Count(n=3) and len(table) == 5


def test_iteration_sees_writes_the_flush_has_not_reached(table: WriteBehindTable) -> None:
    write(table, 0, "a", 1)
    write(table, 1, "b", 2)
    assert sorted(table.keys()) == ["a", "b"] and len(table) == 2
    assert table.dirty == 2  # the changelog still gets them at the flush
    assert table.flush_changelog() == 2


def test_counting_keys_writes_nothing_and_counts_unwritten_sets_and_deletes(
    table: WriteBehindTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, partition in (("a", 0), ("b", 1), ("c", 0)):
        write(table, partition, key, 1)
    table.flush_changelog()
    store = table.data
    assert len(table) == 3 and not store._unwritten
    write(table, 0, "a", 2)  # a stored key set again: no new key
    write(table, 1, "b", None)  # a stored key deleted
    write(table, 1, "d", 4)  # a new key
    write(table, 0, "e", 5)  # a new key, deleted before any write
    write(table, 0, "e", None)
    with monkeypatch.context() as patched:
        patched.setattr(store, "write", lambda *a: pytest.fail("len() wrote to RocksDB"))
        patched.setattr(store, "_encode_value", lambda v: pytest.fail("len() encoded a value"))
        assert len(table) == 3  # a, c, d
    assert sorted(table.keys()) == ["a", "c", "d"]  # iteration writes the cache first
    assert not store._unwritten and len(table) == 3


def test_the_local_databases_survive_a_clean_stop_only(tmp_path: Path) -> None:
    first = make_table(tmp_path)
    first.changelog_sender = sender([])  # type: ignore[assignment]
    write(first, 0, "a", 1)
    first.flush_changelog()
    store = first.data
    first.loop.run_until_complete(store.stop())
    assert store.clean_marker.exists()

    kept = make_table(tmp_path)
    with handled_as_current(record(0)):
        assert kept["a"] == Count(n=1)  # a clean stop: kept, and the marker taken back
    assert not kept.data.clean_marker.exists()
    kept.data._dbs.clear()  # killed: no stop, no marker

    neighbour = Path(store.path) / "counts-extra-0.db"  # another table's database
    neighbour.mkdir()
    wiped = make_table(tmp_path)
    with handled_as_current(record(0)):
        assert "a" not in wiped and list(wiped.keys()) == []
    assert neighbour.exists()


def test_an_unsent_changelog_record_leaves_no_clean_marker(table: WriteBehindTable) -> None:
    write(table, 0, "a", 1)  # dirty: its changelog record was never queued
    store = table.data
    table.loop.run_until_complete(store.stop())
    assert not store.clean_marker.exists()


def test_recovery_and_rebalances_invalidate_what_they_change(table: WriteBehindTable) -> None:
    write(table, 0, "a", 1)
    write(table, 1, "b", 1)
    table.flush_changelog()
    store = table.data
    changelog = table.changelog_topic.get_topic_name()
    restored = SimpleNamespace(
        message=SimpleNamespace(key=b"a", value=b'{"n":7}', partition=0, offset=41,
                                tp=TP(changelog, 0))
    )  # fmt: skip
    store.apply_changelog_batch([restored], to_key=None, to_value=None)
    assert table["a"] == Count(n=7) and store.persisted_offset(TP(changelog, 0)) == 41
    assert "c" not in table  # a cached absence
    table.loop.run_until_complete(store.on_rebalance(set(), {TP(changelog, 1)}, set()))
    assert "b" not in store._cache and "c" not in store._cache and "a" in store._cache
    store.set_persisted_offset(TP(changelog, 1), 99)  # revoked: its database stays as it was
    assert 1 not in store._dbs
