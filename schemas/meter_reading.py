"""meter-readings: one reading, or an atomic batch of readings of one facility."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import Field

from schemas.common import Contract, EnergySource, EntityId, EventId, UtcDatetime

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class MeterReading(Contract):
    """One meter's consumption over its reporting interval, ending at ``timestamp``.

    Physical plausibility (non-negative consumption, power factor in 0..1, no timestamps from
    the future) is checked by the carbon rules, so that a rejection names its reason.
    Kafka key: ``facility_id`` (UTF-8). Every per-facility total relies on that key.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    meter_id: EntityId
    facility_id: EntityId
    zone_id: EntityId
    energy_source: EnergySource
    consumption_kwh: FiniteFloat
    voltage_v: FiniteFloat
    current_a: FiniteFloat
    power_factor: FiniteFloat
    timestamp: UtcDatetime
    grid_zone: EntityId | None = None
    """The grid zone whose carbon intensity applies to grid electricity (grid-intensity)."""


class MeterReadingBatch(Contract):
    """Optional envelope: many readings of one facility in one Kafka record.

    A batch is atomic: if one reading is invalid the whole record goes to dead-letters
    with its original bytes, so the producer can fix and re-publish it as it was.
    Each reading still has its own ``event_id`` and yields its own emission record.
    Recognised by the presence of ``readings``. Kafka key: ``facility_id``.
    """

    schema_version: Literal[1] = 1
    batch_id: EventId
    facility_id: EntityId
    readings: list[MeterReading] = Field(min_length=1, max_length=10_000)


def parse_meter_record(data: bytes) -> MeterReading | MeterReadingBatch:
    """Decode one meter-readings value: a batch when it carries ``readings``, else a reading.

    Raises ``orjson.JSONDecodeError`` for bytes that are not JSON and ``ValueError`` (pydantic's
    ``ValidationError`` included) for JSON that breaks the contract.
    """
    return meter_record_of(orjson.loads(data))


def meter_record_of(parsed: Any) -> MeterReading | MeterReadingBatch:
    """:func:`parse_meter_record` of an already decoded JSON value."""
    if not isinstance(parsed, dict):
        raise ValueError(f"expected a JSON object, got {type(parsed).__name__}")
    if "readings" in parsed:
        return MeterReadingBatch.model_validate(parsed)
    return MeterReading.model_validate(parsed)
