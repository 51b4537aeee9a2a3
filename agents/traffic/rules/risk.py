"""Risk: ten factors 0..1, a weighted score, critical factors, the decision and its actions.

The decision is the mildest one whose threshold the score stays below, raised to what any
critical factor forces. Actions taken are the recommended ones the platform's tier allows:
never more (OBSERVE_ONLY only ever logs).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.traffic import ReasonCode, RiskFactors
from schemas.traffic_policy import (
    Action,
    Decision,
    PlatformTier,
    RiskFactor,
    RiskThresholds,
    RiskTuning,
    TrafficPolicy,
)

REASON_OF = {
    RiskFactor.LATENCY_SCORE: ReasonCode.HIGH_LATENCY,
    RiskFactor.ERROR_RATE: ReasonCode.ERROR_RATE,
    RiskFactor.TRAFFIC_ANOMALY: ReasonCode.TRAFFIC_ANOMALY,
    RiskFactor.RATE_LIMIT_VIOLATION: ReasonCode.RATE_LIMIT_EXCEEDED,
    RiskFactor.CIRCUIT_STATE: ReasonCode.CIRCUIT_OPEN,
    RiskFactor.ERROR_BUDGET_BURN_RATE: ReasonCode.ERROR_BUDGET_BURN,
    RiskFactor.LATENCY_REGRESSION: ReasonCode.LATENCY_REGRESSION,
    RiskFactor.UNKNOWN_ENDPOINT: ReasonCode.UNKNOWN_ENDPOINT,
    RiskFactor.METHOD_DISALLOWED: ReasonCode.METHOD_DISALLOWED,
    RiskFactor.RETRY_STORM: ReasonCode.RETRY_STORM,
}

RECOMMENDED = {
    Decision.ALLOW: (Action.LOG,),
    Decision.THROTTLE: (Action.LOG, Action.RATE_LIMIT),
    Decision.QUARANTINE: (Action.LOG, Action.ALERT, Action.QUARANTINE),
    Decision.DROP: (Action.LOG, Action.ALERT, Action.BLOCK),
}


def clamp(value: float) -> float:
    return 0.0 if value < 0 else 1.0 if value > 1 else value


@dataclass(frozen=True, slots=True)
class Observations:
    """What the factors are computed from, gathered by the engine."""

    latency_ms: float
    max_latency_ms: float
    error_rate: float
    rpm_now: float
    rpm_baseline: float | None
    client_rpm: float
    rate_limit_rpm: float | None
    circuit_score: float
    burn_rate_1h: float | None
    p95_recent_ms: float | None
    p95_baseline_ms: float | None
    unknown_endpoint: bool
    method_disallowed: bool
    retry_count: int


def factors(obs: Observations, tuning: RiskTuning) -> RiskFactors:
    """Each factor's score."""
    over_budget = obs.latency_ms / obs.max_latency_ms - 1
    anomaly = 0.0
    if obs.rpm_baseline and obs.rpm_now >= tuning.anomaly_min_rpm:
        anomaly = clamp((obs.rpm_now / obs.rpm_baseline - 1) / (tuning.anomaly_spike_ratio - 1))
    regression = 0.0
    if obs.p95_recent_ms is not None and obs.p95_baseline_ms:
        ratio = obs.p95_recent_ms / obs.p95_baseline_ms
        regression = clamp((ratio - 1) / (tuning.regression_ratio - 1))
    violated = obs.rate_limit_rpm is not None and obs.client_rpm > obs.rate_limit_rpm
    return RiskFactors(
        latency_score=clamp(over_budget / tuning.latency_over_budget_full),
        error_rate=clamp(obs.error_rate),
        traffic_anomaly=anomaly,
        rate_limit_violation=1.0 if violated else 0.0,
        circuit_state=obs.circuit_score,
        error_budget_burn_rate=(
            clamp(obs.burn_rate_1h / tuning.burn_rate_full) if obs.burn_rate_1h else 0.0
        ),
        latency_regression=regression,
        unknown_endpoint=1.0 if obs.unknown_endpoint else 0.0,
        method_disallowed=1.0 if obs.method_disallowed else 0.0,
        retry_storm=clamp(obs.retry_count / tuning.retry_storm_retries),
    )


def score(risk: RiskFactors, policy: TrafficPolicy) -> float:
    """Weighted mean of the factors, rounded so that the record is stable across
    platforms' float printing."""
    weights = policy.risk_weights
    total = 0.0
    weighted = 0.0
    for factor in RiskFactor:
        weight: float = getattr(weights, factor.value)
        total += weight
        weighted += weight * risk.value(factor)
    return round(weighted / total, 6)


def by_threshold(value: float, thresholds: RiskThresholds) -> Decision:
    if value >= thresholds.drop:
        return Decision.DROP
    if value >= thresholds.quarantine:
        return Decision.QUARANTINE
    if value >= thresholds.throttle:
        return Decision.THROTTLE
    return Decision.ALLOW


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    reasons: tuple[ReasonCode, ...]
    recommended: tuple[Action, ...]
    taken: tuple[Action, ...]


def decide(
    risk: RiskFactors, risk_score: float, tier: PlatformTier, policy: TrafficPolicy
) -> Verdict:
    """Decision, reason codes, recommended actions and the actions the tier lets us take."""
    decision = by_threshold(risk_score, policy.risk_thresholds)
    reasons = [REASON_OF[f] for f in RiskFactor if risk.value(f) >= policy.tuning.reason_threshold]
    for critical in policy.critical_factors:
        forced = risk.value(critical.factor) >= critical.at
        if forced and critical.decision.severity > decision.severity:
            decision = critical.decision
            if ReasonCode.CRITICAL_FACTOR not in reasons:
                reasons.append(ReasonCode.CRITICAL_FACTOR)
    recommended = RECOMMENDED[decision]
    if risk.circuit_state >= 1.0:
        recommended = (*recommended, Action.FAIL_FAST)
    allowed = set(policy.tier_actions[tier])
    taken = tuple(a for a in recommended if a in allowed)
    if len(taken) < len(recommended):
        reasons.append(ReasonCode.TIER_LIMITED)
    if not reasons:
        reasons.append(ReasonCode.WITHIN_POLICY)
    return Verdict(decision, tuple(reasons), recommended, taken)
