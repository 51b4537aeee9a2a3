"""The topic catalogue pins who stamps an input record's time (issue 16 part 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
