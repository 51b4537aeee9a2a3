"""The AI cost governance pipelines' metrics and structured audit lines."""

from __future__ import annotations

import json
import logging
from typing import Any

from app.metrics import Metrics
from app.rules.fusion import overlay as overlays
from app.rules.fusion.budget import TenantOutputs
from app.rules.fusion.overlay import ScopeOutputs, ScopeState
from schemas.energy import DecisionKind, Outcome
from schemas.overlay import BreakerState, GateState, OverlayObservation

audit_log = logging.getLogger("governor.audit")

BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
GATE_GAUGE = {GateState.PASS: 0, GateState.WARN: 1, GateState.BLOCK: 2}


def audit_event(event_type: str, **fields: Any) -> None:
    """One structured JSON audit line (decisions, breaches); never carries secrets. Built
    only when the audit logger writes it (two per run on the hot path)."""
    if audit_log.isEnabledFor(logging.INFO):
        audit_log.info(
            json.dumps({"event_type": event_type, **fields}, sort_keys=True, default=str)
        )


def count_decisions(m: Metrics, outputs: TenantOutputs) -> None:
    """Decisions by outcome, energy charged, and their audit lines."""
    for d in outputs.decisions:
        labels = m.fusion_labels("governor_fusion_decisions_total", d.scenario_type, d.overlay)
        m.fusion_decisions.labels(*labels, d.outcome.value).inc()
        if d.final_units and d.kind.value == "settlement":
            m.fusion_energy.labels(*labels, d.outcome.value).inc(d.final_units)
        if d.kind is DecisionKind.ADMISSION:
            m.fusion_routing.labels(*labels, d.routing.value).inc()
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
    m: Metrics, obs: OverlayObservation, state: ScopeState, outputs: ScopeOutputs
) -> None:
    """A scope's breaker and gate gauges, tripwire events, and their audit lines."""
    labels = m.fusion_labels("governor_fusion_breaker_state", obs.scenario_type, obs.overlay)
    if not overlays.is_tenant_scope(obs.scope):
        m.fusion_breaker_state.labels(*labels).set(BREAKER_GAUGE[state.breaker.state])
        gate = state.gates.state() if state.gates is not None else GateState.PASS
        m.fusion_gate_state.labels(*labels).set(GATE_GAUGE[gate])
    for event in outputs.tripwire_events:
        m.fusion_tripwire_events.labels(*labels, event.kind.value).inc()
        audit_event(
            "budget_tripwire", scope=event.scope, kind=event.kind,
            consecutive_breaches=event.consecutive_breaches,
            token_delta_pct=event.token_delta_pct, threshold=event.breach_threshold_pct,
        )  # fmt: skip
    for t in outputs.breaker_transitions:
        audit_event("overlay_breaker", scope=t.scope, to_state=t.to_state, reason=t.reason)
