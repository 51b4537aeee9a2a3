"""A fusion energy decision as published: the request's figures, the outcome, the tenant's
budget after it (:func:`snapshot`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agents.fusion.rules.routing import Routing
from agents.fusion.settings import FusionSettings
from schemas.energy import (
    BudgetSnapshot,
    BudgetState,
    DecisionKind,
    EnergyDecision,
    Multiplier,
    Outcome,
    Reason,
)
from schemas.fusion_result import FusionRequest

if TYPE_CHECKING:
    from agents.fusion.rules.budget import TenantState


def snapshot(
    state: TenantState, config: FusionSettings, reserved: float | None = None
) -> BudgetSnapshot:
    """The tenant's budget as decisions report it (``reserved``: ``state.reserved_units``,
    when the caller has it already)."""
    if reserved is None:
        reserved = state.reserved_units
    if state.budget is None:
        return BudgetSnapshot(
            limit_units=None, period_start=None, spent_units=state.spent_units,
            reserved_units=reserved, used_ratio=None, state=BudgetState.NO_BUDGET,
        )  # fmt: skip
    ratio = (state.spent_units + reserved) / state.budget.limit_units
    return BudgetSnapshot(
        limit_units=state.budget.limit_units,
        period_start=state.period_start,
        spent_units=state.spent_units,
        reserved_units=reserved,
        used_ratio=round(ratio, 6),
        state=_state_of(ratio * 100, config),
    )


def _state_of(used_pct: float, config: FusionSettings) -> BudgetState:
    limits = config.limits
    if used_pct >= limits.emergency_pct:
        return BudgetState.EMERGENCY
    if used_pct >= limits.hard_limit_pct:
        return BudgetState.HARD_LIMIT
    if used_pct >= limits.auto_review_pct:
        return BudgetState.REVIEW
    return BudgetState.OK


def decision_of(
    request: FusionRequest,
    base: float,
    kind: DecisionKind,
    outcome: Outcome,
    reasons: tuple[Reason, ...],
    applied: tuple[Multiplier, ...],
    cost: float,
    final: float,
    route: Routing,
    state: TenantState,
    now_s: float,
    config: FusionSettings,
    reserved: float | None = None,
    **extra: object,
) -> EnergyDecision:
    return EnergyDecision(
        decision_id=f"{request.event_id}|{kind.value}",
        event_id=request.event_id,
        tenant=request.tenant,
        kind=kind,
        outcome=outcome,
        reasons=reasons,
        scenario_type=request.scenario_type,
        overlay=request.overlay,
        overlay_version=request.overlay_version,
        routing=route.mode,
        base_units=base,
        multipliers=applied,
        cost_units=cost,
        final_units=final,
        tripwire_active=route.tripwire_active,
        budget=snapshot(state, config, reserved),
        event_time=datetime.fromtimestamp(now_s, UTC)
        if kind is DecisionKind.EXPIRY
        else request.timestamp,
        **extra,
    )
