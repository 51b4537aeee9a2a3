"""traffic-policies: signed, versioned traffic-governance policies (contracts, weights, tiers).

A :class:`PolicyArtifact` is what producers publish (compacted, key ``active``) and what
``governor policy sign`` writes: the policy, the SHA-256 of its canonical JSON, and an
Ed25519 signature over that hash. Defaults are the reference design's where it names one
and are documented beside resilience4j's and the SRE workbook's where it does not.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.common import Contract, EntityId
from schemas.request_event import HttpMethod


class Decision(StrEnum):
    """What the engine decides for one request, mildest first."""

    ALLOW = "ALLOW"
    THROTTLE = "THROTTLE"
    QUARANTINE = "QUARANTINE"
    DROP = "DROP"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Decision.ALLOW: 0, Decision.THROTTLE: 1, Decision.QUARANTINE: 2, Decision.DROP: 3}


class PlatformTier(StrEnum):
    """How much a platform lets the engine do (the reference's GitHub observes, GitLab
    controls)."""

    OBSERVE_ONLY = "OBSERVE_ONLY"
    CONTROL = "CONTROL"
    AUTONOMOUS = "AUTONOMOUS"


class Action(StrEnum):
    """An action a decision recommends; a tier allows a subset of them."""

    LOG = "log"
    ALERT = "alert"
    RATE_LIMIT = "rate_limit"
    QUARANTINE = "quarantine"
    BLOCK = "block"
    FAIL_FAST = "fail_fast"
    """Reject at the edge while the endpoint's circuit is open (autonomous only)."""


class RiskFactor(StrEnum):
    """The risk factors, each scored 0..1."""

    LATENCY_SCORE = "latency_score"
    ERROR_RATE = "error_rate"
    TRAFFIC_ANOMALY = "traffic_anomaly"
    RATE_LIMIT_VIOLATION = "rate_limit_violation"
    CIRCUIT_STATE = "circuit_state"
    ERROR_BUDGET_BURN_RATE = "error_budget_burn_rate"
    LATENCY_REGRESSION = "latency_regression"
    UNKNOWN_ENDPOINT = "unknown_endpoint"
    METHOD_DISALLOWED = "method_disallowed"
    RETRY_STORM = "retry_storm"


class Phase(StrEnum):
    """The reference's lifecycle phases; a decision records the ones it passed."""

    PHASE_0_VOID = "PHASE_0_VOID"
    PHASE_1_OBSERVATION = "PHASE_1_OBSERVATION"
    PHASE_2_CONTRACT_PAIRING = "PHASE_2_CONTRACT_PAIRING"
    PHASE_3_RISK_ASSESSMENT = "PHASE_3_RISK_ASSESSMENT"
    PHASE_4_POLICY_BOUNDARIES = "PHASE_4_POLICY_BOUNDARIES"
    PHASE_5_DECISION_EXECUTION = "PHASE_5_DECISION_EXECUTION"
    PHASE_6_STABILITY_CONTROL = "PHASE_6_STABILITY_CONTROL"
    PHASE_7_STRESS_TESTING = "PHASE_7_STRESS_TESTING"
    PHASE_8_LEDGER_APPEND = "PHASE_8_LEDGER_APPEND"
    PHASE_9_POSTMORTEM_LEARNING = "PHASE_9_POSTMORTEM_LEARNING"


class Invariant(StrEnum):
    """Checks a decision must pass at a phase boundary; each result is recorded."""

    CONTRACT_ID_REQUIRED = "contract_id_required"
    """Phase 2: the request was paired with a contract of the policy."""
    PAIRED_UNDER_ACTIVE_POLICY = "paired_under_active_policy"
    """Phase 2: it was paired under the policy that decides it (else it is paired again)."""
    POLICY_HASH_VERIFIED = "policy_hash_verified"
    """Phase 4: the deciding policy's hash was verified when it was applied."""
    ACTIONS_WITHIN_TIER = "actions_within_tier"
    """Phase 5: actions taken are a subset of those the platform's tier allows."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_PATTERN = re.compile(r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/[^\s?#]*)$")


class ServiceContract(_Model):
    """An endpoint's contract: its route template, methods and SLOs."""

    contract_id: EntityId
    endpoint_pattern: str = Field(pattern=_PATTERN.pattern)
    """``"METHOD /path/{param}"``: literal segments match exactly, ``{name}`` one segment."""
    allowed_methods: tuple[HttpMethod, ...] = ()
    """Empty: only the pattern's own method."""
    max_latency_ms: float = Field(default=1000.0, gt=0, allow_inf_nan=False)
    error_budget: float = Field(default=0.001, gt=0, lt=1)
    """Share of requests allowed to fail (0.001 = a 99.9 % SLO)."""
    rate_limit_rpm: float = Field(default=1000.0, gt=0, allow_inf_nan=False)
    """Requests per minute per client (per endpoint when the client is unknown)."""
    circuit_threshold: float = Field(default=0.5, gt=0, le=1)
    """Failure rate that opens the endpoint's circuit (resilience4j: 50 %)."""

    @property
    def method(self) -> str:
        return self.endpoint_pattern.split(" ", 1)[0]

    @property
    def path_template(self) -> str:
        return self.endpoint_pattern.split(" ", 1)[1]

    def methods(self) -> tuple[str, ...]:
        return self.allowed_methods or (self.method,)


class RiskWeights(_Model):
    """Weight of each factor in the score (normalised by their sum)."""

    latency_score: float = Field(default=0.15, ge=0)
    error_rate: float = Field(default=0.15, ge=0)
    traffic_anomaly: float = Field(default=0.10, ge=0)
    rate_limit_violation: float = Field(default=0.15, ge=0)
    circuit_state: float = Field(default=0.10, ge=0)
    error_budget_burn_rate: float = Field(default=0.10, ge=0)
    latency_regression: float = Field(default=0.05, ge=0)
    unknown_endpoint: float = Field(default=0.10, ge=0)
    method_disallowed: float = Field(default=0.05, ge=0)
    retry_storm: float = Field(default=0.05, ge=0)

    @model_validator(mode="after")
    def _positive_sum(self) -> RiskWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("risk weights must not all be zero")
        return self


class RiskThresholds(_Model):
    """Score boundaries: below ``throttle`` ALLOW, then THROTTLE, QUARANTINE, DROP."""

    throttle: float = Field(default=0.3, gt=0, le=1)
    quarantine: float = Field(default=0.6, gt=0, le=1)
    drop: float = Field(default=0.8, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> RiskThresholds:
        if not self.throttle < self.quarantine < self.drop:
            raise ValueError("risk thresholds must rise: throttle < quarantine < drop")
        return self


class CriticalFactor(_Model):
    """A factor that, at or above ``at``, forces at least ``decision`` whatever the score."""

    factor: RiskFactor
    at: float = Field(default=1.0, gt=0, le=1)
    decision: Decision


def _default_critical() -> tuple[CriticalFactor, ...]:
    return (
        CriticalFactor(factor=RiskFactor.METHOD_DISALLOWED, decision=Decision.DROP),
        CriticalFactor(factor=RiskFactor.CIRCUIT_STATE, decision=Decision.DROP),
        CriticalFactor(factor=RiskFactor.RATE_LIMIT_VIOLATION, decision=Decision.THROTTLE),
        CriticalFactor(factor=RiskFactor.RETRY_STORM, decision=Decision.QUARANTINE),
    )


def _default_tier_actions() -> dict[PlatformTier, tuple[Action, ...]]:
    enforce = (Action.LOG, Action.ALERT, Action.RATE_LIMIT, Action.QUARANTINE, Action.BLOCK)
    return {
        PlatformTier.OBSERVE_ONLY: (Action.LOG,),
        PlatformTier.CONTROL: enforce,
        PlatformTier.AUTONOMOUS: (*enforce, Action.FAIL_FAST),
    }


class BreakerPolicy(_Model):
    """Per-endpoint circuit breaker, in event time. resilience4j's defaults beside ours:
    failure rate 50 % (ours: the contract's ``circuit_threshold``, 50 % by default), count
    window 100 (same), minimum calls 100 (same), wait in OPEN 60 s (same), 10 calls in
    HALF_OPEN (same), max wait in HALF_OPEN 0 = forever (ours 60 s: a HALF_OPEN breaker
    that sees too few probes re-opens instead of sticking). Slow calls are not a breaker
    input here; latency is a risk factor."""

    sliding_window_calls: int = Field(default=100, ge=1, le=1000)
    minimum_calls: int = Field(default=100, ge=1)
    wait_open_s: float = Field(default=60.0, gt=0)
    permitted_half_open_calls: int = Field(default=10, ge=1)
    max_wait_half_open_s: float = Field(default=60.0, gt=0)
    failure_status_min: int = Field(default=500, ge=400, le=599)
    """Responses with this status or above count as failures (4xx are the caller's)."""

    @model_validator(mode="after")
    def _window_holds_minimum(self) -> BreakerPolicy:
        if self.minimum_calls > self.sliding_window_calls:
            raise ValueError("breaker minimum_calls cannot exceed sliding_window_calls")
        return self


class Severity(StrEnum):
    PAGE = "page"
    TICKET = "ticket"


class BurnRateRule(_Model):
    """One multi-window burn-rate alert: fires while both windows burn at ``burn_rate`` or
    faster (SRE workbook, chapter 5)."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    severity: Severity
    long_window_s: int = Field(gt=0)
    short_window_s: int = Field(gt=0)
    burn_rate: float = Field(gt=0)


def _default_burn_rules() -> tuple[BurnRateRule, ...]:
    return (
        BurnRateRule(
            name="page_fast",
            severity=Severity.PAGE,
            long_window_s=3600,
            short_window_s=300,
            burn_rate=14.4,
        ),
        BurnRateRule(
            name="page_slow",
            severity=Severity.PAGE,
            long_window_s=21600,
            short_window_s=1800,
            burn_rate=6.0,
        ),
        BurnRateRule(
            name="ticket",
            severity=Severity.TICKET,
            long_window_s=259200,
            short_window_s=21600,
            burn_rate=1.0,
        ),
    )


class RiskTuning(_Model):
    """How raw observations become factor scores."""

    default_max_latency_ms: float = Field(default=1000.0, gt=0)
    """Latency budget of requests with no contract."""
    latency_over_budget_full: float = Field(default=1.0, gt=0)
    """Latency score reaches 1 at (1 + this) x the budget; 0 within the budget."""
    min_baseline_requests: int = Field(default=20, ge=1)
    """Anomaly and regression need this many requests in the baseline first."""
    anomaly_spike_ratio: float = Field(default=3.0, gt=1)
    """Traffic anomaly is 1 when the last minute's rate is this multiple of the hour's."""
    anomaly_min_rpm: float = Field(default=30.0, ge=0)
    """Below this many requests per minute nothing is an anomaly (too few to judge)."""
    regression_ratio: float = Field(default=2.0, gt=1)
    """Latency regression is 1 when recent p95 is this multiple of the baseline p95."""
    retry_storm_retries: int = Field(default=5, ge=1)
    """Retry storm is 1 at this many retries of one request."""
    burn_rate_full: float = Field(default=14.4, gt=0)
    """Burn-rate factor is 1 at this 1-hour burn rate (the fast page)."""
    recent_window_s: int = Field(default=300, gt=0)
    """Generation length of the recent latency sketch (p95 over 1-2 generations)."""
    baseline_window_s: int = Field(default=3600, gt=0)
    """Generation length of the baseline latency sketch."""
    sketch_relative_accuracy: float = Field(default=0.02, gt=0, lt=0.5)
    slo_window_days: int = Field(default=30, ge=1, le=31)
    """Error budget remaining is over this many days."""
    reason_threshold: float = Field(default=0.5, gt=0, le=1)
    """A factor at or above this names a reason code in the decision."""


class TrafficPolicy(_Model):
    """A versioned policy: everything a traffic decision depends on besides the events."""

    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    contracts: tuple[ServiceContract, ...] = ()
    risk_weights: RiskWeights = RiskWeights()
    risk_thresholds: RiskThresholds = RiskThresholds()
    critical_factors: tuple[CriticalFactor, ...] = Field(default_factory=_default_critical)
    tier_actions: dict[PlatformTier, tuple[Action, ...]] = Field(
        default_factory=_default_tier_actions
    )
    platform_tiers: dict[str, PlatformTier] = Field(default_factory=dict)
    default_tier: PlatformTier = PlatformTier.OBSERVE_ONLY
    """Tier of a platform not listed: observe only, so a new platform is never acted on."""
    breaker: BreakerPolicy = BreakerPolicy()
    burn_rules: tuple[BurnRateRule, ...] = Field(default_factory=_default_burn_rules)
    tuning: RiskTuning = RiskTuning()

    @model_validator(mode="after")
    def _consistent(self) -> TrafficPolicy:
        ids = [c.contract_id for c in self.contracts]
        if len(ids) != len(set(ids)):
            raise ValueError("contract ids must be unique")
        patterns = [c.endpoint_pattern for c in self.contracts]
        if len(patterns) != len(set(patterns)):
            raise ValueError("endpoint patterns must be unique")
        missing = set(PlatformTier) - set(self.tier_actions)
        if missing:
            raise ValueError(f"tier_actions lacks tiers: {', '.join(sorted(missing))}")
        if Action.LOG not in self.tier_actions[PlatformTier.OBSERVE_ONLY] or set(
            self.tier_actions[PlatformTier.OBSERVE_ONLY]
        ) - {Action.LOG}:
            raise ValueError("OBSERVE_ONLY must allow exactly the log action")
        longest = max((r.long_window_s for r in self.burn_rules), default=0)
        if longest > 3 * 86_400:
            raise ValueError("burn-rate windows longer than 3 days are not tracked")
        return self

    def version_tuple(self) -> tuple[int, int, int]:
        major, minor, patch = (int(p) for p in self.version.split("."))
        return major, minor, patch

    def tier_of(self, platform: str) -> PlatformTier:
        return self.platform_tiers.get(platform, self.default_tier)


class PolicyArtifact(Contract):
    """A policy as published: its canonical hash and an Ed25519 signature over the hash.

    Kafka key: ``active`` (the topic is compacted; the newest valid artifact governs).
    """

    schema_version: Literal[1] = 1
    policy: TrafficPolicy
    policy_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    key_id: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=1, max_length=256)
    """Base64 Ed25519 signature over the ASCII ``policy_hash``."""

    def to_json_bytes(self) -> bytes:
        """JSON with enum-keyed maps (tiers) written by value."""
        return orjson.dumps(self.model_dump(mode="json"))
