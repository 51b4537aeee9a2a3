"""Sample meter readings and control ticks for the demo and the benchmark: plausible,
deterministic, varied."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from schemas.common import EnergySource
from schemas.control_tick import ControlTick
from schemas.fusion_result import FusionRequest, FusionResult
from schemas.meter_reading import MeterReading, MeterReadingBatch
from schemas.request_event import RequestEvent
from schemas.traffic_policy import BreakerPolicy, PlatformTier, ServiceContract, TrafficPolicy

SOURCE_MIX = (
    EnergySource.GRID, EnergySource.GRID, EnergySource.GRID, EnergySource.SOLAR,
    EnergySource.WIND, EnergySource.NATURAL_GAS, EnergySource.BATTERY, EnergySource.HYDRO,
    EnergySource.NUCLEAR, EnergySource.COAL,
)  # fmt: skip


def sample_reading(n: int, start: datetime, facilities: int, run: str = "s") -> MeterReading:
    """The n-th reading: facilities round-robin, 4 zones and 20 meters each, 1 s apart."""
    facility = n % facilities
    meter = (n // facilities) % 20
    kwh = round(0.2 + ((n * 7919) % 5000) / 1000.0, 3)
    return MeterReading(
        event_id=f"{run}-{n:09d}",
        meter_id=f"meter-{facility:03d}-{meter:02d}",
        facility_id=f"facility-{facility:03d}",
        zone_id=f"zone-{meter % 4}",
        energy_source=SOURCE_MIX[(n // facilities) % len(SOURCE_MIX)],
        consumption_kwh=kwh,
        voltage_v=400.0,
        current_a=round(kwh * 4.1, 2),
        power_factor=0.93,
        timestamp=start + timedelta(seconds=n // facilities),
    )


def sample_records(
    count: int, start: datetime, facilities: int, batch_size: int, run: str = "s"
) -> Iterator[tuple[bytes, bytes, int]]:
    """(key, value, readings in it) records: single readings, or per-facility batches."""
    if batch_size <= 1:
        for n in range(count):
            r = sample_reading(n, start, facilities, run)
            yield r.facility_id.encode(), r.to_json_bytes(), 1
        return
    pending: dict[str, list[MeterReading]] = {}
    for n in range(count):
        r = sample_reading(n, start, facilities, run)
        items = pending.setdefault(r.facility_id, [])
        items.append(r)
        if len(items) == batch_size:
            yield _batch(r.facility_id, items, run)
            pending[r.facility_id] = []
    for facility_id, items in pending.items():
        if items:
            yield _batch(facility_id, items, run)


def _batch(facility_id: str, items: list[MeterReading], run: str) -> tuple[bytes, bytes, int]:
    envelope = MeterReadingBatch(
        batch_id=f"{run}-batch-{items[0].event_id}", facility_id=facility_id, readings=items
    )
    return facility_id.encode(), envelope.to_json_bytes(), len(items)


def sample_tick(n: int, start: datetime, sites: int, run: str = "s") -> ControlTick:
    """The n-th control tick: sites round-robin, one 5-minute slot each per round; the gate
    passes on about a third of slots, and a passed gate spends more."""
    site = n % sites
    slot = n // sites
    gate = (n * 7919) % 3 == 0
    cost = round((0.4 if gate else 0.05) + ((n * 104729) % 100) / 1000.0, 3)
    return ControlTick(
        event_id=f"{run}-tick-{n:09d}",
        site_id=f"site-{site:03d}",
        timestamp=start + timedelta(minutes=5 * slot),
        slot_index=slot % 288,
        planned_offset_deg=round(((n * 31) % 300) / 10.0 - 15.0, 1),
        actual_offset_deg=round(((n * 37) % 300) / 10.0 - 15.0, 1),
        energy_cost_kwh=cost,
        budget_spent_kwh=round(cost * (slot % 288 + 1), 3),
        budget_remaining_kwh=round(50.0 - cost * (slot % 288 + 1), 3),
        gate_passed=gate,
        source="sample",
        stage_id=f"stage-{slot % 3}",
    )


def sample_tick_records(
    count: int, start: datetime, sites: int, run: str = "s"
) -> Iterator[tuple[bytes, bytes, int]]:
    """(key, value, 1) records of :func:`sample_tick`, in slot order."""
    for n in range(count):
        t = sample_tick(n, start, sites, run)
        yield t.site_id.encode(), t.to_json_bytes(), 1


def sample_policy(version: str = "1.0.0") -> TrafficPolicy:
    """A small API's contracts; github observes, gitlab controls (the reference's split)."""
    contracts = (
        ServiceContract(
            contract_id="status_v1", endpoint_pattern="GET /api/v1/status",
            max_latency_ms=100.0, rate_limit_rpm=1000.0,
        ),
        ServiceContract(
            contract_id="deployment_get_v1", endpoint_pattern="GET /api/v1/deployments/{id}",
            max_latency_ms=300.0, rate_limit_rpm=120.0,
        ),
        ServiceContract(
            contract_id="deployment_create_v1", endpoint_pattern="POST /api/v1/deployments",
            max_latency_ms=800.0, rate_limit_rpm=30.0, error_budget=0.01,
        ),
        ServiceContract(
            contract_id="pipelines_v1", endpoint_pattern="GET /api/v1/projects/{p}/pipelines",
            allowed_methods=("GET", "HEAD"), max_latency_ms=500.0, rate_limit_rpm=300.0,
        ),
    )  # fmt: skip
    return TrafficPolicy(
        version=version,
        contracts=contracts,
        platform_tiers={"github": PlatformTier.OBSERVE_ONLY, "gitlab": PlatformTier.CONTROL},
        # A small API: breakers judge after 20 calls rather than resilience4j's 100.
        breaker=BreakerPolicy(sliding_window_calls=50, minimum_calls=20, wait_open_s=30.0),
    )


_ROUTES = (
    ("GET", "/api/v1/status"), ("GET", "/api/v1/status"), ("GET", "/api/v1/deployments/{n}"),
    ("GET", "/api/v1/deployments/{n}"), ("POST", "/api/v1/deployments"),
    ("GET", "/api/v1/projects/{n}/pipelines"), ("DELETE", "/api/v1/status"),
    ("GET", "/api/v2/unknown/{n}"),
)  # fmt: skip


def sample_request(n: int, start: datetime, run: str = "s") -> RequestEvent:
    """The n-th request, 10 per second: mostly healthy, with a failing spell on the
    deployments endpoint (an incident), retries, and some unknown or disallowed calls."""
    method, template = _ROUTES[n * 7 % len(_ROUTES)]
    at = start + timedelta(milliseconds=100 * n)
    incident = template.startswith("/api/v1/deployments/") and 400 <= n % 4000 < 1600
    status = 503 if incident and n % 3 else (500 if n % 997 == 0 else 200)
    return RequestEvent(
        event_id=f"{run}-req-{n:08d}",
        platform=("gitlab", "github")[n % 5 == 0],
        url="https://api.example.com" + template.replace("{n}", str(n % 13)),
        method=method,
        status_code=status,
        latency_ms=float(20 + (n * 7919) % 180 + (900 if incident else 0)),
        timestamp=at,
        retry_count=3 if incident else n % 2,
        client_id=f"client-{n % 6}",
    )


def sample_request_records(
    count: int, start: datetime, run: str = "s"
) -> Iterator[tuple[bytes, bytes, int]]:
    """(key, value, 1) records of :func:`sample_request`, keyed by platform."""
    for n in range(count):
        r = sample_request(n, start, run)
        yield r.platform.encode(), r.to_json_bytes(), 1


_SCENARIOS = ("refund_processing", "security_incident_containment", "regulatory_audit_prep")
_OVERLAYS = ("rollback_first", "state_model_first")


def sample_fusion_run(
    n: int,
    start: datetime,
    run: str = "s",
    tenants: int = 3,
    regressions: bool = True,
    spacing_s: float = 2.0,
) -> tuple[FusionRequest, FusionResult]:
    """The n-th AI run (one every ``spacing_s`` of event time): its admission request and
    its result. With ``regressions``, refund_processing/rollback_first spends 20-30 % more
    tokens for a while (a tripwire downgrade) and security_incident_containment/
    state_model_first times out in a burst (its breaker opens)."""
    scenario = _SCENARIOS[n % len(_SCENARIOS)]
    overlay = _OVERLAYS[(n // len(_SCENARIOS)) % len(_OVERLAYS)]
    at = start + timedelta(seconds=spacing_s * n)
    regressing = (
        regressions
        and scenario == _SCENARIOS[0]
        and overlay == _OVERLAYS[0]
        and (60 <= n % 600 < 240)
    )
    failing = (
        regressions
        and scenario == _SCENARIOS[1]
        and overlay == _OVERLAYS[1]
        and (300 <= n % 600 < 420)
    )
    common = {
        "event_id": f"{run}-run-{n:07d}",
        "tenant": f"tenant-{n % tenants}",
        "scenario_type": scenario,
        "overlay": overlay,
        "overlay_version": "0.1.1",
        "complexity_level": ("low", "medium", "high")[n * 7 % 3],
        "trust_score": 0.5 if n % 5 == 0 else 0.9,
        "entropy_score": 0.8 if n % 7 == 0 else 0.3,
        "emergency_mode": n % 50 == 0,
        "estimated_units": float(40 + (n * 37) % 120),
    }
    request = FusionRequest(**common, timestamp=at)
    result = FusionResult(
        **common,
        actual_units=float(30 + (n * 53) % 130),
        token_delta_pct=20.0 + n % 10 if regressing else float(n % 9) - 2.0,
        latency_ms=float(300 + (n * 7919) % 1500),
        quality_score=round(0.7 + (n % 30) / 100, 2),
        result="timeout" if failing else ("failure" if n % 97 == 0 else "success"),
        timestamp=at + timedelta(seconds=1),
    )
    return request, result
