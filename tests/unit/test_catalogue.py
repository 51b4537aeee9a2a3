"""The topic catalogue pins who stamps an input record's time (issue 16 part 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.origin import REPARTITION_SUFFIX
from app.topics import Catalogue, TimestampType, TopicRole


def test_every_input_is_stamped_by_the_broker_and_every_other_topic_by_its_writer() -> None:
    catalogue = Catalogue.load()
    for spec in catalogue.topics:
        want = "LogAppendTime" if spec.role is TopicRole.INPUT else "CreateTime"
        assert spec.configs()["message.timestamp.type"] == want, spec.name
    # A forward keeps the source record's (broker-set) timestamp: its topic must not restamp.
    assert catalogue["meter-readings-repartition"].record_clock() is TimestampType.CREATE_TIME


def test_an_input_with_the_producers_clock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(
        "defaults: {partitions: 1, replication_factor: 1}\n"
        "topics:\n"
        "  - {name: readings, role: input, key: k,"
        " value_schema: 'schemas.meter_reading:MeterReading',"
        " cleanup_policy: delete, retention_ms: 1, timestamp_type: CreateTime}\n"
    )
    with pytest.raises(ValueError, match="needs LogAppendTime"):
        Catalogue.load(path)


KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


def test_a_repartition_topic_takes_any_record_its_source_took_with_the_origin_header() -> None:
    """Which records are processed must not depend on the producer's partitioner: a record
    a librdkafka client put on another partition is forwarded with a header, so its
    repartition topic must take more than its source does."""
    catalogue = Catalogue.load()
    pairs = [
        (catalogue[spec.name.removesuffix(REPARTITION_SUFFIX)], spec)
        for spec in catalogue.topics
        if spec.name.endswith(REPARTITION_SUFFIX)
    ]
    assert len(pairs) == 8
    for source, repartition in pairs:
        took = source.max_message_bytes or KAFKA_DEFAULT_MAX_MESSAGE_BYTES
        assert repartition.max_message_bytes is not None
        assert repartition.max_message_bytes >= took + 65_536, repartition.name
        assert repartition.configs()["max.message.bytes"] == str(repartition.max_message_bytes)
