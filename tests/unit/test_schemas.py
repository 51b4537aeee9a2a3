"""Topic contracts: unknown fields, time zones, units, round trips."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from schemas.meter_reading import MeterReading, MeterReadingBatch
from tests.factories import batch, reading


def test_round_trip_is_lossless() -> None:
    original = reading(4)
    assert MeterReading.from_json_bytes(original.to_json_bytes()) == original


def test_unknown_fields_are_rejected() -> None:
    data = orjson.loads(reading().to_json_bytes())
    data["consumption"] = 1.0
    with pytest.raises(ValidationError, match="consumption"):
        MeterReading.model_validate(data)


def test_naive_timestamps_are_rejected_and_offsets_normalised() -> None:
    data = orjson.loads(reading().to_json_bytes())
    data["timestamp"] = "2024-01-15T10:30:00"
    with pytest.raises(ValidationError, match="timezone"):
        MeterReading.model_validate(data)
    data["timestamp"] = "2024-01-15T12:30:00+02:00"
    assert MeterReading.model_validate(data).timestamp.isoformat() == "2024-01-15T10:30:00+00:00"


def test_non_finite_numbers_are_rejected() -> None:
    data = orjson.loads(reading().to_json_bytes())
    data["consumption_kwh"] = "NaN"
    with pytest.raises(ValidationError):
        MeterReading.model_validate(data)


def test_unknown_schema_version_is_rejected() -> None:
    data = orjson.loads(reading().to_json_bytes())
    data["schema_version"] = 2
    with pytest.raises(ValidationError, match="schema_version"):
        MeterReading.model_validate(data)


def test_batch_round_trip_and_bounds() -> None:
    envelope = batch([reading(0), reading(1)])
    assert MeterReadingBatch.from_json_bytes(envelope.to_json_bytes()) == envelope
    with pytest.raises(ValidationError):
        MeterReadingBatch(batch_id="b", facility_id="f", readings=[])
