"""Load rules: zone utilization against the targets, and load-balancing decisions.

Pure: ``(state, event, config) -> (new state, outputs)`` on event time only; zones are
visited in a fixed order, so the same metrics and commands give the same decisions.

Without flapping:

* hysteresis: a zone that triggered a scale-up (above ``scale_up_threshold``) triggers
  again only after it has been back within the target band (at or below
  ``target_utilization_max``); a scale-down (below ``scale_down_threshold``) re-arms at or
  above ``target_utilization_min``;
* cooldown: no automatic decision touches a zone within ``cooldown_s`` of event time after
  the last decision that touched it.

An overloaded zone sheds load to the zone with the most headroom below the target maximum
when that zone can take enough to bring it to the target midpoint without leaving the band
itself; otherwise it scales up by the capacity that puts it at the midpoint. An
underutilized zone scales down to the midpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from agents.facility.settings import LoadSettings
from app.core.dedup import Position
from app.core.watermark import SourcesWatermarked
from schemas.load import (
    BalancingAction,
    CommandResult,
    DecisionOrigin,
    DecisionStatus,
    LoadDecision,
    LoadMetric,
)

METRICS = "m"
COMMANDS = "c"
MIN_ACTION_KW = 0.1


class ZoneState(StrEnum):
    OVERLOADED = "overloaded"
    """Above the scale-up threshold."""
    HIGH = "high"
    """Above the target band."""
    OPTIMAL = "optimal"
    LOW = "low"
    """Below the target band."""
    UNDERUTILIZED = "underutilized"
    """Below the scale-down threshold."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ZoneLoad(_Frozen):
    zone_id: str
    load_kw: float
    capacity_kw: float
    at: datetime
    armed_up: bool = True
    armed_down: bool = True
    last_decision_at: datetime | None = None

    @property
    def utilization_pct(self) -> float:
        return round(100.0 * self.load_kw / self.capacity_kw, 6)


class FacilityLoad(SourcesWatermarked):
    facility_id: str
    zones: dict[str, ZoneLoad] = {}
    decisions: dict[str, LoadDecision] = {}
    """Pending decisions and the newest executed ones."""
    sequence: int = 0
    newest: datetime | None = None

    def pending(self) -> list[LoadDecision]:
        return [d for d in self.decisions.values() if d.status is DecisionStatus.PENDING]


class LoadOutputs(_Frozen):
    decisions: tuple[LoadDecision, ...] = ()
    result: CommandResult | None = None


@dataclass(slots=True)
class LoadOutcome:
    state: FacilityLoad | None = None
    outputs: LoadOutputs = field(default_factory=LoadOutputs)
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ZoneEvaluation:
    zone_id: str
    load_kw: float
    capacity_kw: float
    utilization_pct: float
    state: ZoneState
    at: datetime
    stale: bool


@dataclass(frozen=True, slots=True)
class FacilityEvaluation:
    """GET /load/evaluate: each zone against the targets and the facility overall."""

    facility_id: str
    utilization_pct: float
    state: ZoneState
    balanced: bool
    zones: tuple[ZoneEvaluation, ...]
    pending_decisions: int


def zone_state(utilization_pct: float, config: LoadSettings) -> ZoneState:
    if utilization_pct > config.scale_up_threshold:
        return ZoneState.OVERLOADED
    if utilization_pct > config.target_utilization_max:
        return ZoneState.HIGH
    if utilization_pct >= config.target_utilization_min:
        return ZoneState.OPTIMAL
    if utilization_pct >= config.scale_down_threshold:
        return ZoneState.LOW
    return ZoneState.UNDERUTILIZED


def _fresh(state: FacilityLoad, config: LoadSettings) -> list[ZoneLoad]:
    """Zones with a recent metric, in zone id order."""
    if state.newest is None:
        return []
    return [
        z
        for _, z in sorted(state.zones.items())
        if (state.newest - z.at).total_seconds() <= config.stale_after_s
    ]


def evaluate(state: FacilityLoad, config: LoadSettings) -> FacilityEvaluation:
    """Every zone's utilization and state; overall from the fresh zones' sums."""
    fresh = {z.zone_id for z in _fresh(state, config)}
    zones = tuple(
        ZoneEvaluation(
            zone_id=z.zone_id,
            load_kw=z.load_kw,
            capacity_kw=z.capacity_kw,
            utilization_pct=z.utilization_pct,
            state=zone_state(z.utilization_pct, config),
            at=z.at,
            stale=z.zone_id not in fresh,
        )
        for _, z in sorted(state.zones.items())
    )
    live = [z for z in zones if not z.stale]
    capacity = sum(z.capacity_kw for z in live)
    overall = round(100.0 * sum(z.load_kw for z in live) / capacity, 6) if capacity else 0.0
    return FacilityEvaluation(
        facility_id=state.facility_id,
        utilization_pct=overall,
        state=zone_state(overall, config),
        balanced=all(z.state is ZoneState.OPTIMAL for z in live),
        zones=zones,
        pending_decisions=len(state.pending()),
    )


def _cooled(zone: ZoneLoad, now: datetime, config: LoadSettings) -> bool:
    if zone.last_decision_at is None:
        return True
    return (now - zone.last_decision_at).total_seconds() >= config.cooldown_s


def _rearm(zone: ZoneLoad, config: LoadSettings) -> ZoneLoad:
    u = zone.utilization_pct
    update: dict[str, bool] = {}
    if not zone.armed_up and u <= config.target_utilization_max:
        update["armed_up"] = True
    if not zone.armed_down and u >= config.target_utilization_min:
        update["armed_down"] = True
    return zone.model_copy(update=update) if update else zone


def decision_of(
    state: FacilityLoad,
    action: BalancingAction,
    zone: ZoneLoad,
    amount_kw: float,
    reason: str,
    now: datetime,
    expected: dict[str, float],
    origin: DecisionOrigin,
    target: ZoneLoad | None = None,
    command_id: str | None = None,
) -> LoadDecision:
    decision_id = f"{state.facility_id}.d{state.sequence + 1}"
    before = {zone.zone_id: zone.utilization_pct}
    if target is not None:
        before[target.zone_id] = target.utilization_pct
    return LoadDecision(
        record_id=f"{decision_id}:{DecisionStatus.PENDING.value}",
        decision_id=decision_id,
        facility_id=state.facility_id,
        action=action,
        zone_id=zone.zone_id,
        target_zone_id=target.zone_id if target else None,
        amount_kw=round(amount_kw, 3),
        reason=reason,
        origin=origin,
        status=DecisionStatus.PENDING,
        utilization_pct=before,
        expected_utilization_pct=expected,
        decided_at=now,
        command_id=command_id,
    )


def with_decision(
    state: FacilityLoad, decision: LoadDecision, touched: list[str], now: datetime,
    config: LoadSettings,
) -> FacilityLoad:  # fmt: skip
    """Record a new decision: mark the zones it touches, keep the decisions bounded."""
    zones = dict(state.zones)
    for zone_id in touched:
        zones[zone_id] = zones[zone_id].model_copy(update={"last_decision_at": now})
    decisions = {**state.decisions, decision.decision_id: decision}
    executed = [d for d in decisions.values() if d.status is DecisionStatus.EXECUTED]
    for old in executed[: max(0, len(executed) - config.recent_decisions_per_facility)]:
        decisions.pop(old.decision_id)
    return state.model_copy(
        update={"zones": zones, "decisions": decisions, "sequence": state.sequence + 1}
    )


def pct_of(load_kw: float, capacity_kw: float) -> float:
    return round(100.0 * load_kw / capacity_kw, 3)


def auto_balance(
    state: FacilityLoad, now: datetime, config: LoadSettings
) -> tuple[FacilityLoad, list[LoadDecision]]:
    """The automatic decisions the facility's zones call for at event time ``now``."""
    decisions: list[LoadDecision] = []
    mid = config.target_midpoint
    pending = len(state.pending())  # each decision made below adds one
    for zone in sorted(_fresh(state, config), key=lambda z: (-z.utilization_pct, z.zone_id)):
        current = state.zones[zone.zone_id]
        if pending + len(decisions) >= config.max_pending_per_facility:
            break
        u = current.utilization_pct
        if u > config.scale_up_threshold and current.armed_up and _cooled(current, now, config):
            excess = current.load_kw - mid / 100 * current.capacity_kw
            target = _shift_target(state, current, now, config)
            room = (
                config.target_utilization_max / 100 * target.capacity_kw - target.load_kw
                if target
                else 0.0
            )
            if target is not None and room >= excess:
                expected = {
                    current.zone_id: pct_of(current.load_kw - excess, current.capacity_kw),
                    target.zone_id: pct_of(target.load_kw + excess, target.capacity_kw),
                }
                reason = (
                    f"{current.zone_id} at {u:.1f}% > {config.scale_up_threshold:g}%;"
                    f" {target.zone_id} has {room:.1f} kW below"
                    f" {config.target_utilization_max:g}%"
                )
                d = decision_of(state, BalancingAction.SHIFT, current, excess, reason, now,
                              expected, DecisionOrigin.AUTO, target)  # fmt: skip
                touched = [current.zone_id, target.zone_id]
            else:
                added = current.load_kw / (mid / 100) - current.capacity_kw
                expected = {current.zone_id: round(mid, 3)}
                reason = (
                    f"{current.zone_id} at {u:.1f}% > {config.scale_up_threshold:g}%"
                    " and no zone can take the excess"
                )
                d = decision_of(state, BalancingAction.SCALE_UP, current, added, reason, now,
                              expected, DecisionOrigin.AUTO)  # fmt: skip
                touched = [current.zone_id]
            state = with_decision(state, d, touched, now, config)
            zones = dict(state.zones)
            zones[current.zone_id] = zones[current.zone_id].model_copy(update={"armed_up": False})
            state = state.model_copy(update={"zones": zones})
            decisions.append(d)
        elif (
            u < config.scale_down_threshold
            and current.armed_down
            and _cooled(current, now, config)
            and current.load_kw > 0
        ):
            released = current.capacity_kw - current.load_kw / (mid / 100)
            if released < MIN_ACTION_KW:
                continue
            reason = f"{current.zone_id} at {u:.1f}% < {config.scale_down_threshold:g}%"
            d = decision_of(state, BalancingAction.SCALE_DOWN, current, released, reason, now,
                          {current.zone_id: round(mid, 3)}, DecisionOrigin.AUTO)  # fmt: skip
            state = with_decision(state, d, [current.zone_id], now, config)
            zones = dict(state.zones)
            zones[current.zone_id] = zones[current.zone_id].model_copy(update={"armed_down": False})
            state = state.model_copy(update={"zones": zones})
            decisions.append(d)
    return state, decisions


def _shift_target(
    state: FacilityLoad, hot: ZoneLoad, now: datetime, config: LoadSettings
) -> ZoneLoad | None:
    """The fresh, cooled zone with the most headroom below the target maximum."""
    best: ZoneLoad | None = None
    best_room = 0.0
    for zone in _fresh(state, config):
        current = state.zones[zone.zone_id]
        if current.zone_id == hot.zone_id or not _cooled(current, now, config):
            continue
        room = config.target_utilization_max / 100 * current.capacity_kw - current.load_kw
        if room > best_room:
            best, best_room = current, room
    return best


def apply_metric(
    state: FacilityLoad | None, metric: LoadMetric, position: Position, config: LoadSettings
) -> LoadOutcome:
    """A zone's new load: update it, re-arm its hysteresis, decide if automatic."""
    current = state or FacilityLoad(facility_id=metric.facility_id)
    if current.has_applied(METRICS, position):
        return LoadOutcome(replayed=True)
    previous = current.zones.get(metric.zone_id)
    if previous is not None and metric.timestamp < previous.at:
        return LoadOutcome(state=current.stamped(METRICS, position))  # an older metric
    zone = ZoneLoad(
        zone_id=metric.zone_id,
        load_kw=metric.current_load_kw,
        capacity_kw=metric.capacity_kw,
        at=metric.timestamp,
        armed_up=previous.armed_up if previous else True,
        armed_down=previous.armed_down if previous else True,
        last_decision_at=previous.last_decision_at if previous else None,
    )
    newest = max(current.newest or metric.timestamp, metric.timestamp)
    zones = {**current.zones, zone.zone_id: _rearm(zone, config)}
    # stamped in the same copy: the decisions below leave the watermarks alone
    current = current.model_copy(
        update={"zones": zones, "newest": newest, **current.stamp(METRICS, position)}
    )
    decisions: list[LoadDecision] = []
    if config.auto_decisions:
        current, decisions = auto_balance(current, metric.timestamp, config)
    return LoadOutcome(state=current, outputs=LoadOutputs(decisions=tuple(decisions)))
