"""fusion-requests and fusion-results: AI workflow or overlay runs (AI cost governance inputs).

A request asks for admission before a run (estimated units); a result reports a finished run
(actual units, token delta, latency, quality). Both are keyed by tenant, the budget key, so
one partition holds a tenant's budget, reservations and spend in event order. A result whose
``event_id`` was admitted settles that reservation; one that was never admitted is admitted
and settled at once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime


class ComplexityLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class RunResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"


InputsHash = str
"""SHA-256 hex of the scenario's canonical inputs: the insight cache key."""


class FusionRequest(Contract):
    """A run asking for admission against its tenant's budget. Kafka key: ``tenant``."""

    schema_version: Literal[1] = 1
    event_id: EventId
    tenant: EntityId
    scenario_type: EntityId
    overlay: EntityId
    overlay_version: str = Field(min_length=1, max_length=64)
    complexity_level: ComplexityLevel = ComplexityLevel.MEDIUM
    trust_score: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    entropy_score: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    emergency_mode: bool = False
    estimated_units: float = Field(gt=0, allow_inf_nan=False)
    inputs_hash: InputsHash | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    routing_key: str | None = Field(default=None, max_length=256)
    """What feature-flag rollout hashes (a user or session id); the event id if absent."""
    signal_id: EntityId | None = None
    """The signal (the unit of work) this run is an attempt at: at most
    ``fusion.limits.max_collapse_attempts`` runs are admitted per signal."""
    manual_approval_id: str | None = Field(default=None, max_length=128)
    """Set by Governor's approval endpoint after checking an HMAC token; not by producers."""
    timestamp: UtcDatetime


class FusionResult(Contract):
    """A finished run. ``token_delta_pct`` is its token use against the baseline's, in
    percent (12.0 = 12 % more). Kafka key: ``tenant``."""

    schema_version: Literal[1] = 1
    event_id: EventId
    tenant: EntityId
    scenario_type: EntityId
    overlay: EntityId
    overlay_version: str = Field(min_length=1, max_length=64)
    complexity_level: ComplexityLevel = ComplexityLevel.MEDIUM
    trust_score: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    entropy_score: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    emergency_mode: bool = False
    estimated_units: float = Field(gt=0, allow_inf_nan=False)
    actual_units: float = Field(ge=0, allow_inf_nan=False)
    token_delta_pct: float = Field(allow_inf_nan=False)
    latency_ms: float = Field(ge=0, allow_inf_nan=False)
    quality_score: float = Field(ge=0, le=1, allow_inf_nan=False)
    result: RunResult
    inputs_hash: InputsHash | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    signal_id: EntityId | None = None
    """As on the request: the signal this run was an attempt at."""
    timestamp: UtcDatetime

    def as_request(self) -> FusionRequest:
        """The admission request this run would have made."""
        return FusionRequest(
            event_id=self.event_id,
            tenant=self.tenant,
            scenario_type=self.scenario_type,
            overlay=self.overlay,
            overlay_version=self.overlay_version,
            complexity_level=self.complexity_level,
            trust_score=self.trust_score,
            entropy_score=self.entropy_score,
            emergency_mode=self.emergency_mode,
            estimated_units=self.estimated_units,
            inputs_hash=self.inputs_hash,
            signal_id=self.signal_id,
            timestamp=self.timestamp,
        )
