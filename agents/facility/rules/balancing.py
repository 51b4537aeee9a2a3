"""Operators' balancing commands against a facility's load state: create a manual
decision, execute a pending one (once: a repeat says it already was), or balance now.

Pure, like :mod:`agents.facility.rules.load`, whose state and automatic rules they share.
"""

from __future__ import annotations

from agents.facility.rules.load import (
    COMMANDS,
    FacilityLoad,
    LoadOutcome,
    LoadOutputs,
    auto_balance,
    decision_of,
    pct_of,
    with_decision,
)
from agents.facility.settings import LoadSettings
from app.core.dedup import Position
from schemas.load import (
    BalancingAction,
    BalancingCommand,
    CommandKind,
    CommandResult,
    DecisionOrigin,
    DecisionStatus,
)


def apply_command(
    state: FacilityLoad | None, command: BalancingCommand, position: Position, config: LoadSettings
) -> LoadOutcome:
    """An operator's command: create a manual decision, execute one, or balance now."""
    current = state or FacilityLoad(facility_id=command.facility_id)
    if current.has_applied(COMMANDS, position):
        return LoadOutcome(replayed=True)
    if command.kind is CommandKind.AUTO:
        current, decisions = auto_balance(current, command.timestamp, config)
        result = CommandResult(
            command_id=command.command_id, accepted=True, decisions=tuple(decisions),
            message=f"{len(decisions)} decision(s) taken",
        )  # fmt: skip
        return LoadOutcome(
            state=current.stamped(COMMANDS, position),
            outputs=LoadOutputs(decisions=tuple(decisions), result=result),
        )
    if command.kind is CommandKind.CREATE:
        current, outputs = _create(current, command, config)
    else:
        current, outputs = _execute(current, command)
    return LoadOutcome(state=current.stamped(COMMANDS, position), outputs=outputs)


def _refused(command: BalancingCommand, message: str) -> LoadOutputs:
    return LoadOutputs(
        result=CommandResult(command_id=command.command_id, accepted=False, message=message)
    )


def _create(
    state: FacilityLoad, command: BalancingCommand, config: LoadSettings
) -> tuple[FacilityLoad, LoadOutputs]:
    manual = command.decision
    assert manual is not None
    zone = state.zones.get(manual.zone_id)
    if zone is None:
        return state, _refused(command, f"unknown zone {manual.zone_id!r}: no load metric yet")
    if len(state.pending()) >= config.max_pending_per_facility:
        return state, _refused(command, "too many pending decisions for this facility")
    target = state.zones.get(manual.target_zone_id) if manual.target_zone_id else None
    if manual.target_zone_id is not None and target is None:
        return state, _refused(command, f"unknown zone {manual.target_zone_id!r}")
    amount = manual.amount_kw
    if manual.action is BalancingAction.SHIFT and target is not None:
        expected = {
            zone.zone_id: pct_of(max(0.0, zone.load_kw - amount), zone.capacity_kw),
            target.zone_id: pct_of(target.load_kw + amount, target.capacity_kw),
        }
    elif manual.action is BalancingAction.SCALE_UP:
        expected = {zone.zone_id: pct_of(zone.load_kw, zone.capacity_kw + amount)}
    else:
        if amount >= zone.capacity_kw:
            return state, _refused(command, "amount_kw would release all of the zone's capacity")
        expected = {zone.zone_id: pct_of(zone.load_kw, zone.capacity_kw - amount)}
    decision = decision_of(state, manual.action, zone, amount, manual.reason, command.timestamp,
                         expected, DecisionOrigin.MANUAL, target, command.command_id)  # fmt: skip
    touched = [zone.zone_id] + ([target.zone_id] if target else [])
    state = with_decision(state, decision, touched, command.timestamp, config)
    result = CommandResult(
        command_id=command.command_id, accepted=True, decisions=(decision,),
        message=f"decision {decision.decision_id} is pending",
    )  # fmt: skip
    return state, LoadOutputs(decisions=(decision,), result=result)


def _execute(state: FacilityLoad, command: BalancingCommand) -> tuple[FacilityLoad, LoadOutputs]:
    """pending → executed once; a second execute says it was already executed."""
    decision_id = command.decision_id or ""
    decision = state.decisions.get(decision_id)
    if decision is None:
        return state, _refused(command, f"no decision {decision_id!r} (unknown or expired)")
    if decision.status is DecisionStatus.EXECUTED:
        result = CommandResult(
            command_id=command.command_id, accepted=True, already_executed=True,
            decisions=(decision,),
            message=f"decision {decision_id} was already executed at"
            f" {decision.executed_at.isoformat() if decision.executed_at else '?'}",
        )  # fmt: skip
        return state, LoadOutputs(result=result)
    executed = decision.model_copy(
        update={
            "status": DecisionStatus.EXECUTED,
            "record_id": f"{decision_id}:{DecisionStatus.EXECUTED.value}",
            "executed_at": command.timestamp,
            "command_id": command.command_id,
        }
    )
    state = state.model_copy(update={"decisions": {**state.decisions, decision_id: executed}})
    result = CommandResult(
        command_id=command.command_id, accepted=True, executed=True, decisions=(executed,),
        message=f"decision {decision_id} executed",
    )  # fmt: skip
    return state, LoadOutputs(decisions=(executed,), result=result)
