"""Builders of valid test records; tests change only the fields they are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.common import EnergySource
from schemas.meter_reading import MeterReading, MeterReadingBatch

BASE_TIME = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def reading(n: int = 0, **overrides: Any) -> MeterReading:
    """The n-th reading of meter-001 at facility-001, one minute apart."""
    fields: dict[str, Any] = {
        "event_id": f"evt-{n:06d}",
        "meter_id": "meter-001",
        "facility_id": "facility-001",
        "zone_id": "zone-a",
        "energy_source": EnergySource.GRID,
        "consumption_kwh": 150.5,
        "voltage_v": 400.0,
        "current_a": 62.5,
        "power_factor": 0.95,
        "timestamp": BASE_TIME + timedelta(minutes=n),
    }
    fields.update(overrides)
    return MeterReading(**fields)


def batch(readings: list[MeterReading], batch_id: str = "batch-1") -> MeterReadingBatch:
    return MeterReadingBatch(
        batch_id=batch_id, facility_id=readings[0].facility_id, readings=readings
    )
