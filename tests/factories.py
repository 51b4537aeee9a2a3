"""Builders of valid test records; tests change only the fields they are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.common import EnergySource
from schemas.control_tick import ControlTick
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


def tick(n: int = 0, **overrides: Any) -> ControlTick:
    """The n-th 5-minute slot of site-001's controller, from midnight of BASE_TIME's day."""
    fields: dict[str, Any] = {
        "event_id": f"tick-{n:06d}",
        "site_id": "site-001",
        "timestamp": BASE_TIME.replace(hour=0, minute=0) + timedelta(minutes=5 * n),
        "slot_index": n % 288,
        "planned_offset_deg": 2.0,
        "actual_offset_deg": 1.5,
        "energy_cost_kwh": 0.25,
        "budget_spent_kwh": 0.25 * (n + 1),
        "budget_remaining_kwh": 100.0 - 0.25 * (n + 1),
        "gate_passed": n % 2 == 0,
        "source": "controller",
        "stage_id": "stage-1",
    }
    fields.update(overrides)
    return ControlTick(**fields)
