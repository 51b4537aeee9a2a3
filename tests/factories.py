"""Builders of valid test records; tests change only the fields they are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.common import EnergySource
from schemas.control_tick import ControlTick
from schemas.energy import EnergyBudget
from schemas.fusion_result import FusionRequest, FusionResult, RunResult
from schemas.meter_reading import MeterReading, MeterReadingBatch
from schemas.request_event import RequestEvent
from schemas.traffic_policy import PlatformTier, ServiceContract, TrafficPolicy

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


def request(n: int = 0, **overrides: Any) -> RequestEvent:
    """The n-th request to GET /api/v1/status on platform gitlab, one second apart."""
    fields: dict[str, Any] = {
        "event_id": f"req-{n:06d}",
        "platform": "gitlab",
        "url": "https://api.example.com/api/v1/status",
        "method": "GET",
        "status_code": 200,
        "latency_ms": 50.0,
        "timestamp": BASE_TIME + timedelta(seconds=n),
        "client_id": "client-1",
    }
    fields.update(overrides)
    return RequestEvent(**fields)


def contracts() -> tuple[ServiceContract, ...]:
    """The reference's status contract plus a templated deployments contract."""
    return (
        ServiceContract(
            contract_id="status_v1",
            endpoint_pattern="GET /api/v1/status",
            allowed_methods=("GET",),
            max_latency_ms=100.0,
            rate_limit_rpm=1000.0,
        ),
        ServiceContract(
            contract_id="deployments_v1",
            endpoint_pattern="GET /api/v1/deployments/{id}",
            max_latency_ms=500.0,
            rate_limit_rpm=60.0,
        ),
    )


def traffic_policy(**overrides: Any) -> TrafficPolicy:
    """Version 1.0.0 with the two contracts; github observes, gitlab controls."""
    fields: dict[str, Any] = {
        "version": "1.0.0",
        "contracts": contracts(),
        "platform_tiers": {"github": PlatformTier.OBSERVE_ONLY, "gitlab": PlatformTier.CONTROL},
    }
    fields.update(overrides)
    return TrafficPolicy(**fields)


def fusion_request(n: int = 0, **overrides: Any) -> FusionRequest:
    """The n-th admission request of tenant-a (refund_processing with rollback_first)."""
    fields: dict[str, Any] = {
        "event_id": f"run-{n:06d}",
        "tenant": "tenant-a",
        "scenario_type": "refund_processing",
        "overlay": "rollback_first",
        "overlay_version": "0.1.1",
        "estimated_units": 100.0,
        "timestamp": BASE_TIME + timedelta(seconds=n),
    }
    fields.update(overrides)
    return FusionRequest(**fields)


def fusion_result(n: int = 0, **overrides: Any) -> FusionResult:
    """The result of :func:`fusion_request` ``n``: as estimated, 5 % tokens over baseline."""
    fields: dict[str, Any] = {
        "event_id": f"run-{n:06d}",
        "tenant": "tenant-a",
        "scenario_type": "refund_processing",
        "overlay": "rollback_first",
        "overlay_version": "0.1.1",
        "estimated_units": 100.0,
        "actual_units": 100.0,
        "token_delta_pct": 5.0,
        "latency_ms": 150.0,
        "quality_score": 0.8,
        "result": RunResult.SUCCESS,
        "timestamp": BASE_TIME + timedelta(seconds=n, milliseconds=500),
    }
    fields.update(overrides)
    return FusionResult(**fields)


def energy_budget(limit_units: float = 1000.0, **overrides: Any) -> EnergyBudget:
    fields: dict[str, Any] = {
        "tenant": "tenant-a",
        "limit_units": limit_units,
        "updated_at": BASE_TIME - timedelta(days=1),
    }
    fields.update(overrides)
    return EnergyBudget(**fields)
