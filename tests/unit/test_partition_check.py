"""The Faust bug behind ``app.runtime.partition_check``: a group metadata snapshot that
has not seen a topic yet reports 0 partitions, and Faust's check calls that a mismatch."""

from __future__ import annotations

from typing import Any

import faust
import pytest
from faust.exceptions import PartitionsMismatch

from app.runtime.state import WriteBehindTable


class Snapshot:
    """Stands in for ``Consumer.topic_partitions``: the group's metadata snapshot."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def topic_partitions(self, topic: str) -> int | None:
        return self.counts.get(topic)


def table_with(table_class: Any, source_n: int, change_n: int) -> tuple[Any, Snapshot]:
    """A table fed from "source", with the snapshot's counts for the source and changelog."""
    app = faust.App("partition-check-test", store="memory://", Table=table_class)
    table = app.Table("t", default=None, partitions=6)
    snapshot = Snapshot({"source": source_n, table.changelog_topic_name: change_n})
    app.consumer = snapshot  # type: ignore[assignment]
    return table, snapshot


def test_faust_table_calls_an_unseen_changelog_a_mismatch() -> None:
    table, _ = table_with(faust.Table, 6, 0)
    with pytest.raises(PartitionsMismatch, match="has 0 partitions"):
        table._verify_source_topic_partitions("source")


def test_an_unseen_topic_is_checked_again_once_its_metadata_arrives() -> None:
    table, snapshot = table_with(WriteBehindTable, 6, 0)
    table._verify_source_topic_partitions("source")  # 0 is "not known yet"
    assert "source" not in table._verified_source_topics_for_partitions
    snapshot.counts[table.changelog_topic_name] = 3
    with pytest.raises(PartitionsMismatch, match="has 3 partitions"):
        table._verify_source_topic_partitions("source")


def test_matching_counts_are_verified_once() -> None:
    table, snapshot = table_with(WriteBehindTable, 6, 6)
    table._verify_source_topic_partitions("source")
    assert "source" in table._verified_source_topics_for_partitions
    snapshot.counts[table.changelog_topic_name] = 2  # not read again
    table._verify_source_topic_partitions("source")
