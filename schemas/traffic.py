"""traffic-routed, traffic-decisions, circuit-breaker-events, traffic-alerts: the traffic
pipeline's internal hop and its outputs."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime
from schemas.request_event import RequestEvent
from schemas.traffic_policy import (
    Action,
    Decision,
    Invariant,
    Phase,
    PlatformTier,
    RiskFactor,
    Severity,
)


class RoutedRequest(Contract):
    """A request event paired with its contract, keyed by endpoint (internal topic).

    The router stage writes it so that all of an endpoint's requests meet in one
    partition; ``source_*`` say where the request came from.
    Kafka key: ``endpoint_key``.
    """

    schema_version: Literal[1] = 1
    event: RequestEvent
    endpoint_key: str = Field(min_length=1, max_length=300)
    contract_id: EntityId | None
    paired_under: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Hash of the policy the router paired it under."""
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)


class CircuitState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class RiskFactors(Contract):
    """Every factor's score, 0..1."""

    latency_score: float
    error_rate: float
    traffic_anomaly: float
    rate_limit_violation: float
    circuit_state: float
    error_budget_burn_rate: float
    latency_regression: float
    unknown_endpoint: float
    method_disallowed: float
    retry_storm: float

    def value(self, factor: RiskFactor) -> float:
        value: float = getattr(self, factor.value)
        return value


class ReasonCode(StrEnum):
    """Why a decision is what it is; one per strong factor, plus forcing and tier notes."""

    HIGH_LATENCY = "HIGH_LATENCY"
    ERROR_RATE = "ERROR_RATE"
    TRAFFIC_ANOMALY = "TRAFFIC_ANOMALY"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    ERROR_BUDGET_BURN = "ERROR_BUDGET_BURN"
    LATENCY_REGRESSION = "LATENCY_REGRESSION"
    UNKNOWN_ENDPOINT = "UNKNOWN_ENDPOINT"
    METHOD_DISALLOWED = "METHOD_DISALLOWED"
    RETRY_STORM = "RETRY_STORM"
    CRITICAL_FACTOR = "CRITICAL_FACTOR"
    WITHIN_POLICY = "WITHIN_POLICY"
    TIER_LIMITED = "TIER_LIMITED"
    """The tier allowed fewer actions than recommended."""
    INVARIANT_VIOLATED = "INVARIANT_VIOLATED"
    """A policy-boundary or execution invariant failed (see ``invariants``): no action was
    taken."""


class InvariantCheck(Contract):
    phase: Phase
    invariant: Invariant
    held: bool


class Baseline(Contract):
    """The endpoint's statistics as this decision saw them."""

    request_count: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    requests_per_minute: float
    error_budget_remaining: float | None


class TrafficDecision(Contract):
    """One request's decision. Kafka key: ``endpoint_key``."""

    schema_version: Literal[1] = 1
    decision_id: str
    """``<event_id>``: one decision per request event."""
    event_id: EventId
    event_time: UtcDatetime
    platform: EntityId
    client_id: EntityId | None
    method: str
    endpoint_key: str
    contract_id: EntityId | None
    policy_version: str
    policy_hash: str
    platform_tier: PlatformTier
    risk_score: float
    risk_factors: RiskFactors
    decision: Decision
    reason_codes: tuple[ReasonCode, ...]
    recommended_actions: tuple[Action, ...]
    actions_taken: tuple[Action, ...]
    circuit_state: CircuitState
    baseline: Baseline
    phases: tuple[Phase, ...]
    invariants: tuple[InvariantCheck, ...]


class CircuitTransition(Contract):
    """An endpoint's breaker changed state. Kafka key: ``endpoint_key``."""

    schema_version: Literal[1] = 1
    transition_id: str
    """``<endpoint_key>|<n>``: the breaker's n-th transition."""
    endpoint_key: str
    contract_id: EntityId | None
    from_state: CircuitState
    to_state: CircuitState
    reason: str
    event_id: EventId
    event_time: UtcDatetime
    failure_rate: float | None
    calls_in_window: int


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class BurnRateAlert(Contract):
    """A multi-window burn-rate rule started or stopped firing for an endpoint.
    Kafka key: ``endpoint_key``."""

    schema_version: Literal[1] = 1
    alert_id: str
    """``<endpoint_key>|<rule>|<n>``: the rule's n-th change for the endpoint."""
    endpoint_key: str
    contract_id: EntityId
    rule: str
    severity: Severity
    state: AlertState
    long_window_s: int
    short_window_s: int
    threshold: float
    long_burn_rate: float
    short_burn_rate: float
    slo_error_budget: float
    event_id: EventId
    event_time: UtcDatetime
