"""fusion-observations (internal), tripwire-events, fusion-gate-events,
overlay-breaker-events and overlay-routing: the per scenario-and-overlay side of AI cost
governance."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import orjson
from pydantic import Field, model_validator

from schemas.common import Contract, EntityId, EventId, UtcDatetime
from schemas.energy import RoutingMode
from schemas.fusion_result import RunResult


class ObservationKind(StrEnum):
    RUN = "run"
    """A finished run's figures."""
    TRIPWIRE_RESET = "tripwire_reset"
    """An authenticated reset of the scope's tripwire."""
    PROGRESS = "progress"
    """A fusion-results partition's progress, sent to every partition: every run it sends
    from now on has an event time at or after ``watermark`` (keyless)."""
    IDLE = "idle"
    """A fusion-results partition with nothing to send for a while: the overlay stage stops
    waiting for it until its next progress record (keyless)."""


class OverlayObservation(Contract):
    """What the overlay stage needs of a run, or a reset command. Kafka key: ``scope``."""

    schema_version: Literal[1] = 1
    kind: ObservationKind
    event_id: EventId
    scope: str = Field(min_length=3, max_length=300)
    """``<scenario_type>|<overlay>``."""
    scenario_type: EntityId
    overlay: EntityId
    token_delta_pct: float | None = None
    latency_ms: float | None = None
    quality_score: float | None = None
    result: RunResult | None = None
    approval_id: str | None = Field(default=None, max_length=64)
    """A reset: the id of the approval token it was made with; the scope's state keeps the
    ids it has used, so one token resets once, whichever worker it reaches."""
    source_partition: int | None = Field(default=None, ge=0)
    """Progress and idle records: the fusion-results partition they speak for."""
    watermark: UtcDatetime | None = None
    """Progress records: the event time the partition has passed."""
    timestamp: UtcDatetime

    @model_validator(mode="after")
    def _marker_fields(self) -> OverlayObservation:
        marker = self.kind in (ObservationKind.PROGRESS, ObservationKind.IDLE)
        if marker and self.source_partition is None:
            raise ValueError(f"a {self.kind.value} record names its source_partition")
        if (self.kind is ObservationKind.PROGRESS) != (self.watermark is not None):
            raise ValueError("a progress record, and only one, carries a watermark")
        if self.kind is ObservationKind.RUN and None in (
            self.token_delta_pct,
            self.latency_ms,
            self.quality_score,
            self.result,
        ):
            raise ValueError("a run carries token_delta_pct, latency_ms, quality_score, result")
        return self

    @property
    def is_marker(self) -> bool:
        return self.kind in (ObservationKind.PROGRESS, ObservationKind.IDLE)

    def to_json_bytes(self) -> bytes:
        """Runs and resets without the progress fields, byte for byte as workers before
        them wrote them (so a rolling upgrade's old workers still read them)."""
        if self.is_marker:
            return super().to_json_bytes()
        fields = self.model_dump(mode="python", exclude={"source_partition", "watermark"})
        return orjson.dumps(fields, option=orjson.OPT_UTC_Z)


class TripwireKind(StrEnum):
    ACTIVATED = "activated"
    RESET = "reset"
    RECOVERED = "recovered"


class TripwireEvent(Contract):
    """A tripwire's downgrade started or ended. Kafka key: the tripwire's scope."""

    schema_version: Literal[1] = 1
    tripwire_event_id: str
    """``<scope>|<n>``: the scope's n-th tripwire event."""
    scope: str
    kind: TripwireKind
    consecutive_breaches: int
    token_delta_pct: float | None
    breach_threshold_pct: float
    reason: str
    event_id: EventId
    event_time: UtcDatetime


class GateName(StrEnum):
    TOKEN_DELTA = "token_delta"
    P95_LATENCY = "p95_latency"


class GateState(StrEnum):
    PASS = "pass"
    WARN = "warn"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return {"pass": 0, "warn": 1, "block": 2}[self.value]


class GateTransition(Contract):
    """A budget gate changed state. Kafka key: ``scope``."""

    schema_version: Literal[1] = 1
    transition_id: str
    """``<scope>|<gate>|<n>``."""
    scope: str
    gate: GateName
    from_state: GateState
    to_state: GateState
    value: float
    warn_at: float
    block_at: float
    window_runs: int
    quality_mean: float | None
    event_id: EventId
    event_time: UtcDatetime


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class OverlayBreakerTransition(Contract):
    """An overlay's circuit breaker changed state. Kafka key: ``scope``."""

    schema_version: Literal[1] = 1
    transition_id: str
    """``<scope>|<n>``."""
    scope: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    consecutive_failures: int
    event_id: EventId
    event_time: UtcDatetime


class OverlayRouting(Contract):
    """How runs of a scenario and overlay are routed now. Compacted, key ``scope``: every
    worker reads it to admit requests."""

    schema_version: Literal[1] = 1
    routing_id: str
    """``<scope>|<version>``."""
    scope: str
    version: int = Field(ge=1)
    """Increases with every change of this scope's routing."""
    mode: RoutingMode
    downgrade_active: bool
    breaker_state: BreakerState
    gate_state: GateState
    parameters: dict[str, float]
    """Overlay parameters in force: the downgraded ones while the tripwire is active."""
    reason: str
    event_id: EventId
    event_time: UtcDatetime
