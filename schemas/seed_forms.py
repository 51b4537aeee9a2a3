"""The reference designs' own payloads, accepted as alternative input forms.

Teams moving from the reference systems (../shared/seeds) publish what those systems took:
a seed 004 reading (``consumption``, ``voltage``, ``current``, no ``zone_id``), a seed 000
request (``complexity``, ``estimated_cost``; no tenant or overlay), a seed 002 request event
(no ``event_id`` or ``platform``) and a seed 001 tick (its controller's attribute names).
Each form here is strict (unknown fields are refused, as in every contract) and maps
explicitly to Governor's contract, which is what every pipeline decides on and every output
carries. The README's "Reference payloads" table lists the mapping field by field.

What a form lacks:
- ``event_id``: derived from the payload, so the same payload published twice is one
  event (:func:`derived_event_id`: a hash of the canonical JSON and the topic);
- the entity a topic is keyed by (``platform``, ``site_id``, ``tenant``): the record's Kafka
  key, which must name it anyway; with no key the record is refused naming the field;
- an event time: the Kafka record's timestamp (part of the record, so a re-read decides the
  same), or over HTTP the time the request arrived (the endpoint is the producer);
- anything else: the documented defaults below.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.common import EnergySource, EntityId, UtcDatetime
from schemas.control_tick import ControlTick
from schemas.fusion_result import ComplexityLevel, FusionRequest
from schemas.meter_reading import MeterReading, MeterReadingBatch, meter_record_of
from schemas.request_event import HttpMethod, RequestEvent

SEED_ZONE = "main"
"""zone_id of a seed 004 reading (the reference has no zones below a facility)."""
SEED_TENANT = "default"
"""tenant of a seed 000 request over HTTP, which has no key to name one."""
SEED_OVERLAY = "none"
"""overlay of a seed 000 request (the reference admits scenarios, not overlays)."""
SEED_OVERLAY_VERSION = "0"
SEED_ESTIMATED_COST = 100.0
"""The reference's own default for a request without ``estimated_cost``."""


class MissingField(ValueError):
    """A seed payload lacks a field its topic needs and the record cannot supply."""


def derived_event_id(topic: str, payload: dict[str, Any], stamp_ms: int | None = None) -> str:
    """``seed-<32 hex>``: SHA-256 of the topic, the canonical JSON of ``payload`` (sorted
    keys) and, for a form without its own time, the record time it was given."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    stamp = b"" if stamp_ms is None else str(stamp_ms).encode()
    digest = hashlib.sha256(topic.encode() + b"\n" + canonical + b"\n" + stamp).hexdigest()
    return f"seed-{digest[:32]}"


def _entity(key: bytes | None, field: str) -> str:
    if not key:
        raise MissingField(
            f"{field}: the reference payload has none; key the record by its {field}"
        )
    return key.decode("utf-8", "replace")


def _time(stamp_ms: int | None, field: str = "timestamp") -> datetime:
    if stamp_ms is None:
        raise MissingField(f"{field}: the reference payload has none and neither has the record")
    return datetime.fromtimestamp(stamp_ms / 1000, UTC)


class _SeedForm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeedReading(_SeedForm):
    """Seed 004's reading (``POST /api/v1/readings`` in its README)."""

    meter_id: EntityId
    facility_id: EntityId
    energy_source: EnergySource
    consumption: float = Field(allow_inf_nan=False)
    voltage: float = Field(allow_inf_nan=False)
    current: float = Field(allow_inf_nan=False)
    power_factor: float = Field(allow_inf_nan=False)
    timestamp: UtcDatetime

    @staticmethod
    def matches(payload: Any) -> bool:
        return (
            isinstance(payload, dict) and "consumption" in payload
            and "consumption_kwh" not in payload
        )  # fmt: skip

    def to_contract(self, payload: dict[str, Any]) -> MeterReading:
        return MeterReading(
            event_id=derived_event_id("meter-readings", payload),
            meter_id=self.meter_id, facility_id=self.facility_id, zone_id=SEED_ZONE,
            energy_source=self.energy_source, consumption_kwh=self.consumption,
            voltage_v=self.voltage, current_a=self.current, power_factor=self.power_factor,
            timestamp=self.timestamp,
        )  # fmt: skip


class SeedFusionRequest(_SeedForm):
    """Seed 000's request (``POST /fusion/execute`` in its README)."""

    scenario_type: EntityId
    complexity: ComplexityLevel = ComplexityLevel.MEDIUM
    trust_score: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    estimated_cost: float = Field(default=SEED_ESTIMATED_COST, gt=0, allow_inf_nan=False)

    @staticmethod
    def matches(payload: Any) -> bool:
        """Governor's request always names its event and tenant; the reference's never."""
        return isinstance(payload, dict) and "event_id" not in payload and "tenant" not in payload

    def to_contract(
        self, payload: dict[str, Any], tenant: str, stamp_ms: int | None
    ) -> FusionRequest:
        return FusionRequest(
            event_id=derived_event_id("fusion-requests", payload, stamp_ms), tenant=tenant,
            scenario_type=self.scenario_type, overlay=SEED_OVERLAY,
            overlay_version=SEED_OVERLAY_VERSION, complexity_level=self.complexity,
            trust_score=self.trust_score, estimated_units=self.estimated_cost,
            timestamp=_time(stamp_ms),
        )  # fmt: skip


class SeedRequestEvent(_SeedForm):
    """Seed 002's ``RequestEvent`` (its ``timestamp`` is Unix seconds, and optional)."""

    url: str
    method: HttpMethod
    status_code: int
    latency_ms: float = Field(allow_inf_nan=False)
    timestamp: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    error_count: int = 0
    retry_count: int = 0

    @staticmethod
    def matches(payload: Any) -> bool:
        return isinstance(payload, dict) and "event_id" not in payload and "platform" not in payload

    def to_contract(
        self, payload: dict[str, Any], key: bytes | None, stamp_ms: int | None
    ) -> RequestEvent:
        own = self.timestamp
        at = datetime.fromtimestamp(own, UTC) if own is not None else _time(stamp_ms)
        return RequestEvent(
            event_id=derived_event_id(
                "request-events", payload, None if own is not None else stamp_ms
            ),
            platform=_entity(key, "platform"), url=self.url, method=self.method,
            status_code=self.status_code, latency_ms=self.latency_ms, timestamp=at,
            error_count=self.error_count, retry_count=self.retry_count,
        )  # fmt: skip


class SeedTick(_SeedForm):
    """Seed 001's controller tick, by the attribute names its audit log reads."""

    timestamp: UtcDatetime
    slot_index: int
    plan_offset_deg: float = Field(allow_inf_nan=False)
    target_angle: float = Field(allow_inf_nan=False)
    energy_cost_kwh: float = Field(allow_inf_nan=False)
    budget_spent_kwh: float = Field(allow_inf_nan=False)
    budget_remaining_kwh: float = Field(allow_inf_nan=False)
    live_gate_passed: bool
    source: str
    stage_id: str

    @staticmethod
    def matches(payload: Any) -> bool:
        return (
            isinstance(payload, dict)
            and "event_id" not in payload
            and ("plan_offset_deg" in payload or "live_gate_passed" in payload)
        )

    def to_contract(self, payload: dict[str, Any], key: bytes | None) -> ControlTick:
        return ControlTick(
            event_id=derived_event_id("control-ticks", payload), site_id=_entity(key, "site_id"),
            timestamp=self.timestamp, slot_index=self.slot_index,
            planned_offset_deg=self.plan_offset_deg, actual_offset_deg=self.target_angle,
            energy_cost_kwh=self.energy_cost_kwh, budget_spent_kwh=self.budget_spent_kwh,
            budget_remaining_kwh=self.budget_remaining_kwh, gate_passed=self.live_gate_passed,
            source=self.source, stage_id=self.stage_id,
        )  # fmt: skip


def parse_reading_record(data: bytes) -> MeterReading | MeterReadingBatch:
    """A meter-readings value: Governor's reading or batch, or seed 004's reading."""
    payload = orjson.loads(data)
    if SeedReading.matches(payload):
        return SeedReading.model_validate(payload).to_contract(payload)
    return meter_record_of(payload)


def parse_request_event(data: bytes, key: bytes | None, stamp_ms: int | None) -> RequestEvent:
    """A request-events value: Governor's contract, or seed 002's form."""
    payload = orjson.loads(data)
    if SeedRequestEvent.matches(payload):
        return SeedRequestEvent.model_validate(payload).to_contract(payload, key, stamp_ms)
    return RequestEvent.model_validate(payload)


def parse_tick(data: bytes, key: bytes | None) -> ControlTick:
    """A control-ticks value: Governor's contract, or seed 001's tick."""
    payload = orjson.loads(data)
    if SeedTick.matches(payload):
        return SeedTick.model_validate(payload).to_contract(payload, key)
    return ControlTick.model_validate(payload)


def parse_fusion_request(data: bytes, key: bytes | None, stamp_ms: int | None) -> FusionRequest:
    """A fusion-requests value: Governor's contract, or seed 000's request (its tenant is
    the record's key)."""
    payload = orjson.loads(data)
    if SeedFusionRequest.matches(payload):
        form = SeedFusionRequest.model_validate(payload)
        return form.to_contract(payload, _entity(key, "tenant"), stamp_ms)
    return FusionRequest.model_validate(payload)
