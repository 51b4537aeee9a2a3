"""One routed request → its decision, breaker transitions, burn-rate alerts and new state.

The reference's pipeline, in order: observation, contract pairing, risk assessment, policy
boundaries, decision execution, stability control (breaker and burn rate), ledger append
(the decision topic is a ledger topic). Idempotency: the endpoint state records the source
offsets applied to it, so a re-delivered request changes nothing; the agent re-sends its
outputs, byte-identical, from the outbox kept beside the state (:mod:`app.runtime.outbox`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from agents.traffic.rules import breaker as breakers
from agents.traffic.rules import invariants as checks
from agents.traffic.rules import risk as risks
from agents.traffic.rules.breaker import Breaker, Transition
from agents.traffic.rules.contracts import endpoint_key
from agents.traffic.rules.policy import ActivePolicy
from agents.traffic.rules.slo import (
    ERROR_RATE_WINDOW_S,
    HOUR_S,
    baseline_rpm,
    burn_alerts,
    burn_rate,
    endpoint_baseline,
)
from agents.traffic.rules.windows import Windows
from app.core.dedup import DedupSegment, Position
from app.core.outbox_entry import Entry
from app.core.sketch import RollingSketch
from app.core.watermark import Watermarked
from schemas.request_event import RequestEvent
from schemas.traffic import (
    BurnRateAlert,
    CircuitState,
    CircuitTransition,
    RoutedRequest,
    TrafficDecision,
)
from schemas.traffic_policy import (
    RiskTuning,
    ServiceContract,
)


class TrafficOutputs(BaseModel):
    """Everything one request sends, kept so a re-delivery re-sends the same bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: TrafficDecision
    transitions: tuple[CircuitTransition, ...] = ()
    alerts: tuple[BurnRateAlert, ...] = ()


class EndpointState(Watermarked):
    """One endpoint's baseline, breaker and alert state (table value, key ``endpoint_key``)."""

    endpoint_key: str
    requests: int = 0
    errors: int = 0
    first_seen_s: float | None = None
    watermark_s: float | None = None
    windows: Windows
    recent: RollingSketch | None = None
    baseline: RollingSketch | None = None
    breaker: Breaker = Breaker()
    burn_firing: dict[str, bool] = {}
    burn_changes: dict[str, int] = {}
    last_event_id: str | None = None

    @classmethod
    def new(cls, endpoint_key: str, slo_window_days: int) -> EndpointState:
        return cls(endpoint_key=endpoint_key, windows=Windows.empty(slo_window_days))


EndpointEntry = Entry[EndpointState, TrafficOutputs]
"""A value of the endpoints table: an endpoint's state, or an outbox entry (the outputs
of one source record; see :mod:`app.runtime.outbox`)."""


class ClientRate(Watermarked):
    """One client's requests to one endpoint in this and the previous event-time minute."""

    key: str
    minute: int
    current: int = 0
    previous: int = 0

    def add(self, at_s: float) -> ClientRate:
        minute = int(at_s // 60)
        if minute < self.minute - 1:
            return self
        if minute == self.minute - 1:
            return self.model_copy(update={"previous": self.previous + 1})
        if minute == self.minute:
            return self.model_copy(update={"current": self.current + 1})
        previous = self.current if minute == self.minute + 1 else 0
        return self.model_copy(update={"minute": minute, "current": 1, "previous": previous})

    def rpm(self, now_s: float) -> float:
        """Sliding one-minute rate at ``now_s``."""
        minute = int(now_s // 60)
        weight = 1 - (now_s % 60) / 60
        if minute == self.minute:
            return self.current + self.previous * weight
        if minute == self.minute + 1:
            return self.current * weight
        return 0.0


def route(event: RequestEvent, position: Position, active: ActivePolicy) -> RoutedRequest:
    """The router stage: pair a request with its contract and name the endpoint whose
    partition decides it."""
    match = active.index.match(event.method, event.path)
    return RoutedRequest(
        event=event,
        endpoint_key=endpoint_key(event.platform, match),
        contract_id=match.contract_id,
        paired_under=active.hash,
        source_partition=position.partition,
        source_offset=position.offset,
    )


def client_key(endpoint_key: str, client_id: str | None) -> str:
    return f"{endpoint_key}|{client_id or '-'}"


@dataclass(slots=True)
class TrafficOutcome:
    """What one routed request decided: outputs to send, state to write."""

    outputs: TrafficOutputs | None = None
    endpoint: EndpointState | None = None
    client: ClientRate | None = None
    segment: DedupSegment | None = None
    duplicate: bool = False
    replayed: bool = False


def process_request(
    routed: RoutedRequest,
    position: Position,
    endpoint: EndpointState | None,
    client: ClientRate | None,
    first_seen_at: Position | None,
    active: ActivePolicy,
) -> TrafficOutcome:
    """Decide one request against its endpoint's and client's state (``None``: none yet).

    ``first_seen_at`` is where the dedup index says this event id was first applied.
    """
    if first_seen_at is not None and first_seen_at != position:
        return TrafficOutcome(duplicate=True)
    event = routed.event
    at_s = event.timestamp.timestamp()
    segment = DedupSegment(
        entity_id=routed.endpoint_key,
        position=position,
        max_event_time_s=at_s,
        event_ids=(event.event_id,),
    )
    policy = active.policy
    state = endpoint or EndpointState.new(routed.endpoint_key, policy.tuning.slo_window_days)
    if state.has_applied(position):
        # Already in the state: its outputs are re-sent from the outbox, never recomputed.
        return TrafficOutcome(segment=segment, replayed=True)

    # Phase 2: pairing. The router paired it; the contract is looked up in the policy in force.
    contract = active.index.by_id.get(routed.contract_id) if routed.contract_id else None
    method_allowed = contract is None or event.method in contract.methods()
    invariants = checks.before_deciding(routed, contract is not None, active)

    # Phase 1 and 6: observe the request, then let the breaker see it.
    now_s = max(state.watermark_s or at_s, at_s)
    failed = event.status_code >= policy.breaker.failure_status_min or event.error_count > 0
    state = _observe(state, at_s, now_s, failed, event.latency_ms, policy.tuning)
    breaker = state.breaker
    moves: list[Transition] = []
    if contract is not None:
        breaker, moves = breakers.advance_time(breaker, now_s, policy.breaker)
        if breakers.permits(breaker, policy.breaker):
            breaker, move = breakers.record(
                breaker, now_s, failed, contract.circuit_threshold, policy.breaker
            )
            if move is not None:
                moves.append(move)
    state = state.model_copy(update={"breaker": breaker})
    transitions = tuple(
        _transition_record(routed, contract, m, event.event_id, at_s) for m in moves
    )

    ckey = client_key(routed.endpoint_key, event.client_id)
    rate = client or ClientRate(key=ckey, minute=int(at_s // 60))
    if not rate.has_applied(position):
        rate = rate.add(at_s).stamped(position)

    # Phase 3: risk.
    p95_recent = state.recent.merged().quantile(0.95) if state.recent else None
    # The baseline is the last complete generation (an hour by default), so a regression is
    # measured against behaviour before it started, not diluted by it.
    baseline_sketch = state.baseline.previous if state.baseline else None
    p95_baseline = (
        baseline_sketch.quantile(0.95)
        if baseline_sketch is not None
        and baseline_sketch.count >= policy.tuning.min_baseline_requests
        else None
    )
    total_5m, errors_5m = state.windows.window(now_s, ERROR_RATE_WINDOW_S)
    error_rate = errors_5m / total_5m if total_5m else 0.0
    burn_1h = burn_rate(state, now_s, HOUR_S, contract)
    obs = risks.Observations(
        latency_ms=event.latency_ms,
        max_latency_ms=contract.max_latency_ms
        if contract
        else policy.tuning.default_max_latency_ms,
        error_rate=error_rate,
        rpm_now=state.windows.requests_per_minute(now_s),
        rpm_baseline=baseline_rpm(state, now_s, policy.tuning.min_baseline_requests),
        client_rpm=rate.rpm(now_s),
        rate_limit_rpm=contract.rate_limit_rpm if contract else None,
        circuit_score=breakers.state_score(breaker.state) if contract else 0.0,
        burn_rate_1h=burn_1h,
        p95_recent_ms=p95_recent,
        p95_baseline_ms=p95_baseline,
        unknown_endpoint=contract is None,
        method_disallowed=not method_allowed,
        retry_count=event.retry_count,
    )
    factors = risks.factors(obs, policy.tuning)
    risk_score = risks.score(factors, policy)

    # Phases 4 and 5: thresholds, critical factors, tier.
    tier = policy.tier_of(event.platform)
    verdict = risks.decide(factors, risk_score, tier, policy)
    verdict = checks.refuse_unless_held(verdict, invariants, set(policy.tier_actions[tier]))

    state, alerts = burn_alerts(state, routed, contract, now_s, event.event_id, at_s, policy)
    decision = TrafficDecision(
        decision_id=event.event_id,
        event_id=event.event_id,
        event_time=event.timestamp,
        platform=event.platform,
        client_id=event.client_id,
        method=event.method,
        endpoint_key=routed.endpoint_key,
        contract_id=contract.contract_id if contract else None,
        policy_version=policy.version,
        policy_hash=active.hash,
        platform_tier=tier,
        risk_score=risk_score,
        risk_factors=factors,
        decision=verdict.decision,
        reason_codes=verdict.reasons,
        recommended_actions=verdict.recommended,
        actions_taken=verdict.taken,
        circuit_state=breaker.state if contract else CircuitState.CLOSED,
        baseline=endpoint_baseline(state, now_s, error_rate, contract, policy.tuning),
        phases=checks.phases_run(contract is not None),
        invariants=tuple(invariants),
    )
    outputs = TrafficOutputs(decision=decision, transitions=transitions, alerts=alerts)
    state = state.stamped(position).model_copy(update={"last_event_id": event.event_id})
    return TrafficOutcome(outputs=outputs, endpoint=state, client=rate, segment=segment)


def _observe(
    state: EndpointState,
    at_s: float,
    now_s: float,
    failed: bool,
    latency_ms: float,
    tuning: RiskTuning,
) -> EndpointState:
    """Count the request and its latency (the sketches rotate on the event-time watermark)."""
    recent = state.recent or RollingSketch.start(
        tuning.recent_window_s, now_s, tuning.sketch_relative_accuracy
    )
    baseline = state.baseline or RollingSketch.start(
        tuning.baseline_window_s, now_s, tuning.sketch_relative_accuracy
    )
    return state.model_copy(
        update={
            "requests": state.requests + 1,
            "errors": state.errors + int(failed),
            "first_seen_s": state.first_seen_s if state.first_seen_s is not None else at_s,
            "watermark_s": now_s,
            "windows": state.windows.add(at_s, failed, now_s),
            "recent": recent.add(now_s, latency_ms),
            "baseline": baseline.add(now_s, latency_ms),
        }
    )


def _transition_record(
    routed: RoutedRequest,
    contract: ServiceContract | None,
    move: Transition,
    event_id: str,
    at_s: float,
) -> CircuitTransition:
    return CircuitTransition(
        transition_id=f"{routed.endpoint_key}|{move.number}",
        endpoint_key=routed.endpoint_key,
        contract_id=contract.contract_id if contract else None,
        from_state=move.from_state,
        to_state=move.to_state,
        reason=move.reason,
        event_id=event_id,
        event_time=datetime.fromtimestamp(at_s, UTC),
        failure_rate=round(move.failure_rate, 6) if move.failure_rate is not None else None,
        calls_in_window=move.calls,
    )
