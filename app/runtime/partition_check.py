"""Workaround for a faust-streaming bug: ``PartitionsMismatch`` raised against a topic the
consumer has not seen metadata for yet.

``Table.partition_for_key`` checks, on the first write per source topic, that the source
and the changelog topic have the same number of partitions. It reads both counts from
``Consumer.topic_partitions``, which returns aiokafka's group metadata snapshot. That
snapshot holds every topic of the group's subscription, with ``0`` for a topic whose
metadata this client has not received yet (``_get_metadata_snapshot`` uses
``partitions_for_topic(topic) or []``). Faust only skips the check when a count is
``None``, so a worker that joins a group while another member's changelog topic is fresh
in the subscription reads "6 partitions against 0" and stops on a record it could have
processed (seen in CI: the second of two workers, Kafka 4.1.1).

The fix: a count of ``0`` means "not known yet", the same as ``None`` -- no Kafka topic
has zero partitions. The check is then not cached and runs again on the next write, so a
real mismatch (6 against 3) is still refused.
"""

from __future__ import annotations

from typing import Any

from faust.exceptions import PartitionsMismatch
from faust.tables.base import E_SOURCE_PARTITIONS_MISMATCH


class PartitionCheckIgnoresUnseenTopics:
    """Mixin for a Faust table: the partition check treats a count of 0 as unknown."""

    app: Any
    name: str
    changelog_topic_name: str
    _verified_source_topics_for_partitions: set[str]

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        if source_topic in self._verified_source_topics_for_partitions:
            return
        change_topic = self.changelog_topic_name
        source_n = self.app.consumer.topic_partitions(source_topic)
        change_n = self.app.consumer.topic_partitions(change_topic)
        if not source_n or not change_n:
            return  # metadata not here yet: check again on the next write
        if source_n != change_n:
            raise PartitionsMismatch(
                E_SOURCE_PARTITIONS_MISMATCH.format(
                    source_topic=source_topic,
                    table_name=self.name,
                    source_n=source_n,
                    change_topic=change_topic,
                    change_n=change_n,
                )
            )
        self._verified_source_topics_for_partitions.add(source_topic)
