"""One scope (a scenario and overlay, or a tenant) → tripwire, gates, breaker, routing.

Runs of a scope are applied in event-time order (:mod:`agents.fusion.rules.ordering`).
Scenario-and-overlay scopes keep gates and a breaker, and the tripwire when
``tripwire.scope`` is ``scenario_overlay``; tenant scopes (``tenant:<id>``, when it is
``tenant``) keep only the tripwire. Every change is an event, and a changed routing (mode,
downgrade, breaker or gate state) is a new version on overlay-routing, which every worker
reads to admit requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from agents.fusion.rules import breaker as breakers
from agents.fusion.rules import gates as gating
from agents.fusion.rules import tripwire as tripwires
from agents.fusion.rules.breaker import OverlayBreaker
from agents.fusion.rules.gates import GateWindow
from agents.fusion.rules.tripwire import Tripwire
from agents.fusion.settings import FusionSettings
from app.core.dedup import Position
from app.core.watermark import Watermarked
from schemas.energy import RoutingMode
from schemas.fusion_result import RunResult
from schemas.overlay import (
    BreakerState,
    GateState,
    GateTransition,
    ObservationKind,
    OverlayBreakerTransition,
    OverlayObservation,
    OverlayRouting,
    TripwireEvent,
    TripwireKind,
)


class ScopeState(Watermarked):
    """Table value per scope."""

    scope: str
    watermark_s: float | None = None
    tripwire: Tripwire = Tripwire()
    gates: GateWindow | None = None
    breaker: OverlayBreaker = OverlayBreaker()
    routing: OverlayRouting | None = None
    used_resets: dict[str, float] = {}
    """Approval token id → event time of the reset it made (kept for twice a token's life)."""


class ScopeOutputs(BaseModel):
    """What one source record of the overlay stage sends: the records of every run it
    applied (each keyed by its own scope)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tripwire_events: tuple[TripwireEvent, ...] = ()
    gate_transitions: tuple[GateTransition, ...] = ()
    breaker_transitions: tuple[OverlayBreakerTransition, ...] = ()
    routings: tuple[OverlayRouting, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _one_routing(cls, data: Any) -> Any:
        """Outbox entries written before runs were released in batches held one routing."""
        if isinstance(data, dict) and "routing" in data:
            data = dict(data)
            routing = data.pop("routing")
            data["routings"] = () if routing is None else (routing,)
        return data

    def merged(self, other: ScopeOutputs) -> ScopeOutputs:
        return ScopeOutputs(
            tripwire_events=self.tripwire_events + other.tripwire_events,
            gate_transitions=self.gate_transitions + other.gate_transitions,
            breaker_transitions=self.breaker_transitions + other.breaker_transitions,
            routings=self.routings + other.routings,
        )


@dataclass(slots=True)
class ScopeOutcome:
    state: ScopeState | None = None
    outputs: ScopeOutputs = field(default_factory=ScopeOutputs)
    replayed: bool = False


def is_tenant_scope(scope: str) -> bool:
    return scope.startswith("tenant:")


def observe(
    state: ScopeState | None,
    obs: OverlayObservation,
    position: Position,
    config: FusionSettings,
) -> ScopeOutcome:
    """One run or reset command of ``obs.scope``."""
    return observe_all(state, (obs,), position, config)


def observe_all(
    state: ScopeState | None,
    observations: Sequence[OverlayObservation],
    position: Position,
    config: FusionSettings,
    on_error: Callable[[OverlayObservation, Exception], None] | None = None,
) -> ScopeOutcome:
    """Runs (or a reset) of one scope that one source record applies, in order. With
    ``on_error``, a run the rules raise on is left out and reported (the scope goes on from
    the state before it), so a rules bug does not hold back every run after it."""
    current = state or ScopeState(scope=observations[0].scope)
    if current.has_applied(position):
        return ScopeOutcome(replayed=True)
    outputs = ScopeOutputs()
    for obs in observations:
        try:
            current, step = _apply(current, obs, config)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(obs, exc)
            continue
        outputs = outputs.merged(step)
    return ScopeOutcome(state=current.stamped(position), outputs=outputs)


def _apply(
    current: ScopeState, obs: OverlayObservation, config: FusionSettings
) -> tuple[ScopeState, ScopeOutputs]:
    at_s = obs.timestamp.timestamp()
    now_s = max(current.watermark_s or at_s, at_s)
    when = obs.timestamp
    tenant_scope = is_tenant_scope(obs.scope)
    keeps_tripwire = tenant_scope or config.tripwire.scope == "scenario_overlay"
    events: list[TripwireEvent] = []
    gate_moves: list[GateTransition] = []
    breaker_moves: list[OverlayBreakerTransition] = []
    tripwire, breaker, window = current.tripwire, current.breaker, current.gates

    if obs.kind is ObservationKind.TRIPWIRE_RESET:
        used = {k: t for k, t in current.used_resets.items()
                if at_s - t <= 2 * config.approvals.max_age_s}  # fmt: skip
        if obs.approval_id is not None and obs.approval_id in used:
            # The token was used already (perhaps on another worker): nothing changes.
            return current, ScopeOutputs()
        if obs.approval_id is not None:
            used[obs.approval_id] = at_s
        current = current.model_copy(update={"used_resets": used})
        tripwire, was_active = tripwires.reset(tripwire)
        reason = "reset by an authenticated request" + ("" if was_active else " (was inactive)")
        events.append(_tripwire_event(obs, tripwire, TripwireKind.RESET, None, reason, config))
    else:
        assert obs.token_delta_pct is not None and obs.result is not None
        if keeps_tripwire and config.tripwire.enabled:
            tripwire, check = tripwires.check(tripwire, obs.token_delta_pct, config.tripwire)
            if check.event is not None:
                reason = (
                    f"{check.consecutive_breaches} consecutive token deltas above "
                    f"{config.tripwire.breach_threshold_pct} %"
                    if check.event is TripwireKind.ACTIVATED
                    else f"{config.tripwire.auto_recovery_clean_runs} clean runs (auto-recovery)"
                )
                events.append(
                    _tripwire_event(obs, tripwire, check.event, obs.token_delta_pct, reason, config)
                )
        if not tenant_scope:
            assert obs.latency_ms is not None and obs.quality_score is not None
            window = window or GateWindow.start(now_s, config.gates)
            window, changes = gating.observe(
                window, now_s, obs.token_delta_pct, obs.latency_ms, obs.quality_score, config.gates
            )
            gate_moves = [_gate_record(obs, window, c, when) for c in changes]
            breaker, moves = breakers.advance_time(breaker, now_s, config.breaker)
            failed = obs.result is not RunResult.SUCCESS
            breaker, move = breakers.record(breaker, now_s, failed, config.breaker)
            moves = [*moves, move] if move is not None else moves
            breaker_moves = [_breaker_record(obs, m, when) for m in moves]

    updated = current.model_copy(
        update={
            "watermark_s": now_s,
            "tripwire": tripwire,
            "gates": window,
            "breaker": breaker,
        }
    )
    routing = _routing(updated, obs, config)
    if routing is not None:
        updated = updated.model_copy(update={"routing": routing})
    outputs = ScopeOutputs(
        tripwire_events=tuple(events),
        gate_transitions=tuple(gate_moves),
        breaker_transitions=tuple(breaker_moves),
        routings=(routing,) if routing is not None else (),
    )
    return updated, outputs


def _routing(
    state: ScopeState, obs: OverlayObservation, config: FusionSettings
) -> OverlayRouting | None:
    """A new routing version if anything it states changed, else ``None``."""
    gate_state = state.gates.state() if state.gates is not None else GateState.PASS
    downgrade = state.tripwire.downgrade_active
    if state.breaker.state is BreakerState.OPEN or gate_state is GateState.BLOCK:
        mode = RoutingMode.BASELINE_ONLY
    elif downgrade:
        mode = RoutingMode.DOWNGRADED
    else:
        mode = RoutingMode.OVERLAY
    previous = state.routing
    same = previous is not None and (
        previous.mode,
        previous.downgrade_active,
        previous.breaker_state,
        previous.gate_state,
    ) == (mode, downgrade, state.breaker.state, gate_state)
    if same or (previous is None and mode is RoutingMode.OVERLAY and not downgrade
                and state.breaker.state is BreakerState.CLOSED):  # fmt: skip
        return None
    reasons = []
    if state.breaker.state is not BreakerState.CLOSED:
        reasons.append(f"breaker {state.breaker.state.value}")
    if gate_state is not GateState.PASS:
        reasons.append(f"gate {gate_state.value}")
    if downgrade:
        reasons.append("tripwire downgrade active")
    version = (previous.version if previous else 0) + 1
    return OverlayRouting(
        routing_id=f"{state.scope}|{version}",
        scope=state.scope,
        version=version,
        mode=mode,
        downgrade_active=downgrade,
        breaker_state=state.breaker.state,
        gate_state=gate_state,
        parameters=dict(config.tripwire.downgraded_parameters) if downgrade else {},
        reason=", ".join(reasons) or "all clear",
        event_id=obs.event_id,
        event_time=obs.timestamp,
    )


def _tripwire_event(
    obs: OverlayObservation,
    tripwire: Tripwire,
    kind: TripwireKind,
    token_delta: float | None,
    reason: str,
    config: FusionSettings,
) -> TripwireEvent:
    return TripwireEvent(
        tripwire_event_id=f"{obs.scope}|{tripwire.events}",
        scope=obs.scope,
        kind=kind,
        consecutive_breaches=tripwire.consecutive_breaches,
        token_delta_pct=token_delta,
        breach_threshold_pct=config.tripwire.breach_threshold_pct,
        reason=reason,
        event_id=obs.event_id,
        event_time=obs.timestamp,
    )


def _gate_record(
    obs: OverlayObservation, window: GateWindow, change: gating.GateChange, when: datetime
) -> GateTransition:
    return GateTransition(
        transition_id=f"{obs.scope}|{change.gate.value}|{change.number}",
        scope=obs.scope,
        gate=change.gate,
        from_state=change.from_state,
        to_state=change.to_state,
        value=round(change.value, 6),
        warn_at=change.warn_at,
        block_at=change.block_at,
        window_runs=window.runs(),
        quality_mean=_round(window.quality_mean()),
        event_id=obs.event_id,
        event_time=when,
    )


def _breaker_record(
    obs: OverlayObservation, change: breakers.BreakerChange, when: datetime
) -> OverlayBreakerTransition:
    return OverlayBreakerTransition(
        transition_id=f"{obs.scope}|{change.number}",
        scope=obs.scope,
        from_state=change.from_state,
        to_state=change.to_state,
        reason=change.reason,
        consecutive_failures=change.consecutive_failures,
        event_id=obs.event_id,
        event_time=when,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
