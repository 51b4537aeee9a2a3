"""The AI cost governance pipelines' metrics and structured audit lines."""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from agents.fusion.rules import overlay as overlays
from agents.fusion.rules.budget import TenantOutputs
from agents.fusion.rules.overlay import ScopeOutputs, ScopeState
from app.metrics import LabelGuard, Metrics
from schemas.energy import DecisionKind, Outcome
from schemas.overlay import BreakerState, GateState, OverlayObservation

audit_log = logging.getLogger("governor.audit")

BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
GATE_GAUGE = {GateState.PASS: 0, GateState.WARN: 1, GateState.BLOCK: 2}


class FusionMetrics:
    """The AI cost pipelines' metrics, on the process's registry; every label set passes
    one guard (``fusion.max_label_sets_per_metric`` and ``_total``), since producers name
    scenarios, overlays, tenants and scopes."""

    def __init__(self, metrics: Metrics, per_metric: int, total: int) -> None:
        overflow = Counter(
            "governor_metric_label_overflow_total",
            "Observations reported under _other because their label set was past the cap.",
            ["metric"],
            registry=metrics.registry,
        )
        self.labels = LabelGuard(per_metric, total, overflow)
        bounded = ["scenario", "overlay", "result"]
        self.decisions = Counter(
            "governor_fusion_decisions_total",
            "Energy decisions (admissions, settlements, expiries) by scenario, overlay and"
            " outcome.",
            bounded,
            registry=metrics.registry,
        )
        self.routing = Counter(
            "governor_fusion_routing_total",
            "Admissions by the routing they got: overlay, downgraded, or baseline_only (a"
            " feature flag off for the run's routing key, or the overlay's breaker open).",
            ["scenario", "overlay", "routing"],
            registry=metrics.registry,
        )
        self.energy = Counter(
            "governor_fusion_energy_units_total",
            "Energy units charged at settlement (actual units x multipliers).",
            bounded,
            registry=metrics.registry,
        )
        self.latency = Histogram(
            "governor_fusion_latency_seconds",
            "Latency of finished runs.",
            bounded,
            buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
            registry=metrics.registry,
        )
        self.token_delta = Histogram(
            "governor_fusion_token_delta_ratio",
            "Token use of finished runs against the baseline, minus one (0.12 = 12 % more).",
            bounded,
            buckets=(-0.25, 0.0, 0.05, 0.12, 0.25, 0.5, 1.0),
            registry=metrics.registry,
        )
        self.quality = Histogram(
            "governor_fusion_quality_score",
            "Quality score of finished runs (0..1).",
            bounded,
            buckets=(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0),
            registry=metrics.registry,
        )
        self.cost_efficiency = Histogram(
            "governor_fusion_cost_efficiency_ratio",
            "Estimated units over actual units of finished runs (the AI cost reference's cost"
            " efficiency: below 1, runs cost more than estimated; it alerts below 0.7).",
            bounded,
            buckets=(0.25, 0.5, 0.7, 0.85, 1.0, 1.25, 2.0, 4.0),
            registry=metrics.registry,
        )
        self.tripwire_events = Counter(
            "governor_fusion_tripwire_events_total",
            "Budget tripwire events by scope and kind (activated, reset, recovered).",
            bounded,
            registry=metrics.registry,
        )
        self.breaker_state = Gauge(
            "governor_fusion_breaker_state",
            "Overlay circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["scenario", "overlay"],
            registry=metrics.registry,
        )
        self.gate_state = Gauge(
            "governor_fusion_gate_state",
            "Worst fusion budget gate: 0 pass, 1 warn, 2 block.",
            ["scenario", "overlay"],
            registry=metrics.registry,
        )
        self.budget_used = Gauge(
            "governor_fusion_budget_used_ratio",
            "A tenant's energy budget used in its period, spent and reserved (1 = the limit),"
            " after its latest decision on this worker.",
            ["tenant"],
            registry=metrics.registry,
        )
        self.consecutive_breaches = Gauge(
            "governor_fusion_tripwire_consecutive_breaches",
            "A tripwire scope's token-delta breaches in a row (reset by a run under the"
            " threshold), after its latest run on this worker.",
            ["scope"],
            registry=metrics.registry,
        )
        self.observations = Counter(
            "governor_fusion_observations_total",
            "Runs the overlay stage took, by how: in_order (released in event-time order),"
            " late (arrived after their time was released: applied at once, may differ from"
            " replay), early (released before their time: the partition's buffer was full)"
            " or duplicate (a run re-sent after a restart: ignored).",
            ["how"],
            registry=metrics.registry,
        )
        self.waiting = Gauge(
            "governor_fusion_observations_waiting",
            "Runs held by the overlay stage until every fusion-results partition has passed"
            " their event time, per fusion-observations partition on this worker.",
            ["partition"],
            registry=metrics.registry,
        )
        self.progress_records = Counter(
            "governor_fusion_progress_records_total",
            "Progress and idle records this worker sent to fusion-observations for its"
            " fusion-results partitions (one per fusion-observations partition each).",
            ["kind"],
            registry=metrics.registry,
        )


def audit_event(event_type: str, **fields: Any) -> None:
    """One structured JSON audit line (decisions, breaches); never carries secrets. Built
    only when the audit logger writes it (two per run on the hot path)."""
    if audit_log.isEnabledFor(logging.INFO):
        audit_log.info(
            json.dumps({"event_type": event_type, **fields}, sort_keys=True, default=str)
        )


def count_decisions(m: FusionMetrics, outputs: TenantOutputs) -> None:
    """Decisions by outcome, energy charged, and their audit lines."""
    for d in outputs.decisions:
        labels = m.labels("governor_fusion_decisions_total", d.scenario_type, d.overlay)
        m.decisions.labels(*labels, d.outcome.value).inc()
        if d.final_units and d.kind.value == "settlement":
            m.energy.labels(*labels, d.outcome.value).inc(d.final_units)
        if d.kind is DecisionKind.ADMISSION:
            m.routing.labels(*labels, d.routing.value).inc()
        if d.budget.used_ratio is not None:
            tenant = m.labels("governor_fusion_budget_used_ratio", d.tenant)
            m.budget_used.labels(*tenant).set(d.budget.used_ratio)
        audit_event(
            "energy_decision", decision_id=d.decision_id, tenant=d.tenant, kind=d.kind,
            outcome=d.outcome, reasons=list(d.reasons), final_units=d.final_units,
            multipliers={x.name: x.factor for x in d.multipliers},
            tripwire_active=d.tripwire_active,
            manual_approval_required=d.requires_manual_approval,
        )  # fmt: skip
        if d.outcome is Outcome.REJECTED:
            audit_event(
                "budget_breach", decision_id=d.decision_id, tenant=d.tenant,
                reasons=list(d.reasons), used_ratio=d.budget.used_ratio,
                state=d.budget.state,
            )  # fmt: skip


def count_scope(
    m: FusionMetrics, obs: OverlayObservation, state: ScopeState, outputs: ScopeOutputs
) -> None:
    """A scope's breaker and gate gauges, tripwire events, and their audit lines."""
    labels = m.labels("governor_fusion_breaker_state", obs.scenario_type, obs.overlay)
    if not overlays.is_tenant_scope(obs.scope):
        m.breaker_state.labels(*labels).set(BREAKER_GAUGE[state.breaker.state])
        gate = state.gates.state() if state.gates is not None else GateState.PASS
        m.gate_state.labels(*labels).set(GATE_GAUGE[gate])
    scope = m.labels("governor_fusion_tripwire_consecutive_breaches", obs.scope)
    m.consecutive_breaches.labels(*scope).set(state.tripwire.consecutive_breaches)
    for event in outputs.tripwire_events:
        m.tripwire_events.labels(*labels, event.kind.value).inc()
        audit_event(
            "budget_tripwire", scope=event.scope, kind=event.kind,
            consecutive_breaches=event.consecutive_breaches,
            token_delta_pct=event.token_delta_pct, threshold=event.breach_threshold_pct,
        )  # fmt: skip
    for t in outputs.breaker_transitions:
        audit_event("overlay_breaker", scope=t.scope, to_state=t.to_state, reason=t.reason)
