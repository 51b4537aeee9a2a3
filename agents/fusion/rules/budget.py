"""A tenant's budget: admission with reservations, settlement with actual units.

Per request, in the tenant's event order (one partition holds a tenant):

1. the cost is base x multipliers; a run whose inputs ran within the cache TTL is a cache
   hit (no spend, the cached cost saved);
2. above the approval threshold (10,000 units) it is rejected unless manually approved
   (an approval id is single use);
3. a tripwire downgrade halves the cost;
4. against the budget, counting what is already spent *and reserved* plus this cost: from
   85 % approved with an auto-review flag, from 95 % rejected (hard limit); with 99 %
   already used the tenant is in emergency state and everything is rejected;
5. an approved run reserves its cost; its result releases the reservation and charges the
   actual units (x the same multipliers, :mod:`agents.fusion.rules.settlement`). A burst of
   requests therefore cannot overspend: each one sees the reservations of those before it
   (LiteLLM's reported flaw records spend only after the call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce
from itertools import islice
from operator import add, attrgetter

from pydantic import BaseModel, ConfigDict

from agents.fusion.rules import cost as costs
from agents.fusion.rules import knobs
from agents.fusion.rules.decisions import decision_of, snapshot
from agents.fusion.rules.knobs import SignalAttempts
from agents.fusion.rules.routing import routing_for
from agents.fusion.settings import FusionSettings
from app.core.dedup import Position
from app.core.periods import period_bounds
from app.core.watermark import SourcesWatermarked
from schemas.budget_audit import CompliancePeriod
from schemas.energy import (
    BudgetPeriod,
    DecisionKind,
    EnergyBudget,
    EnergyDecision,
    Outcome,
    Reason,
    RoutingMode,
)
from schemas.fusion_result import FusionRequest
from schemas.overlay import OverlayObservation, OverlayRouting

BUDGETS = "budgets"
REQUESTS = "requests"
RESULTS = "results"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reservation(_Frozen):
    units: float
    downgraded: bool
    at_s: float
    mode: RoutingMode = RoutingMode.OVERLAY
    """The routing its admission gave the run (states written before it was kept: overlay)."""


_UNITS = attrgetter("units")
_RESERVED_MEMO = "_reserved_units_of"
"""Where a state keeps the sum of its reservations, beside the dict summed (not a field)."""


class CacheEntry(_Frozen):
    cost_units: float
    at_s: float
    reuse_count: int = 0
    """Cache hits it has served (the reference's insight cache ``reuse_count``)."""


class TenantState(SourcesWatermarked):
    """One tenant's budget, spend, reservations, insight cache and used approvals.

    ``applied`` holds, per source (budgets, requests, results) and partition, the highest
    offset applied: a re-delivered record changes nothing.
    """

    tenant: str
    budget: EnergyBudget | None = None
    period_start: date | None = None
    spent_units: float = 0.0
    reservations: dict[str, Reservation] = {}
    cache: dict[str, CacheEntry] = {}
    used_approvals: dict[str, float] = {}
    settled: dict[str, float] = {}
    """Runs settled without a reservation, within its TTL: their late admission is void."""
    signals: dict[str, SignalAttempts] = {}
    """Runs admitted per signal within the signal window (:mod:`agents.fusion.rules.knobs`)."""
    slow_runs: int = 0
    """Settled runs in a row slower than the adaptive backoff threshold."""
    watermark_s: float | None = None

    @property
    def reserved_units(self) -> float:
        """The open reservations' units, added one by one in their order.

        Remembered beside the dict it was summed over: a state's dicts are never changed in
        place (every change makes a new state with a new dict), so a state whose dict is the
        one summed needs no walk; a copy that replaced the dict sums again. An admission
        hands its new state the sum at once (:meth:`with_reservation`). Why: with 2,000 runs
        open the walk was 23 % of a worker admitting 1,000 runs/s (benchmarks/README.md).
        ``reduce`` rather than ``sum``: the same sequential additions on every Python
        (``sum`` compensates from 3.12), so that a remembered sum and a walk agree bit for
        bit and a replay decides as the first run did."""
        memo = self.__dict__.get(_RESERVED_MEMO)
        if memo is not None and memo[0] is self.reservations:
            return float(memo[1])
        total = reduce(add, map(_UNITS, self.reservations.values()), 0.0)
        self.__dict__[_RESERVED_MEMO] = (self.reservations, total)
        return total

    def with_reservation(self, event_id: str, reservation: Reservation) -> TenantState:
        """This state with one more open reservation, its sum known without a walk: the new
        reservation is the dict's last entry, so the sum is the old one plus its units."""
        held = self.reserved_units
        state = self.model_copy(
            update={"reservations": {**self.reservations, event_id: reservation}}
        )
        state.__dict__[_RESERVED_MEMO] = (state.reservations, held + reservation.units)
        return state


class TenantOutputs(_Frozen):
    decisions: tuple[EnergyDecision, ...] = ()
    observations: tuple[OverlayObservation, ...] = ()


@dataclass(slots=True)
class TenantOutcome:
    state: TenantState | None = None
    outputs: TenantOutputs = field(default_factory=TenantOutputs)
    replayed: bool = False
    duplicate: bool = False


def period_start(day: date, period: BudgetPeriod) -> date:
    if period is BudgetPeriod.DAY:
        return day
    return period_bounds(day, CompliancePeriod(period.value))[0]


def advance(
    state: TenantState, at_s: float, event_id: str, config: FusionSettings
) -> tuple[TenantState, float, list[EnergyDecision]]:
    """Move the tenant to event time ``at_s``: roll the budget period, release expired
    reservations, forget expired cache entries and approvals."""
    now_s = max(state.watermark_s or at_s, at_s)
    update: dict[str, object] = {"watermark_s": now_s}
    if state.budget is not None:
        start = period_start(_day(now_s), state.budget.period)
        if start != state.period_start:
            update.update(period_start=start, spent_units=0.0)
    ttl = config.limits.reservation_ttl_s
    expired = {k: state.reservations[k] for k in _aged(state.reservations, now_s, ttl)}
    if expired:  # the oldest, so the first: the rest copied as a block, not walked
        update["reservations"] = dict(islice(state.reservations.items(), len(expired), None))
    cache_ttl = config.cache.ttl_s
    if any(now_s - e.at_s > cache_ttl for e in state.cache.values()):
        update["cache"] = {k: e for k, e in state.cache.items() if now_s - e.at_s <= cache_ttl}
    max_age = config.approvals.max_age_s
    if any(now_s - at > 2 * max_age for at in state.used_approvals.values()):
        update["used_approvals"] = {
            k: at for k, at in state.used_approvals.items() if now_s - at <= 2 * max_age
        }
    if aged := _aged(state.settled, now_s, ttl):
        update["settled"] = dict(islice(state.settled.items(), len(aged), None))
    signals = knobs.unexpired(state.signals, now_s, config.limits)
    if signals is not None:
        update["signals"] = signals
    advanced = state.model_copy(update=update)
    released = [
        _expiry(advanced, reservation_id, r, now_s, config)
        for reservation_id, r in sorted(expired.items())
    ]
    return advanced, now_s, released


def _aged(
    entries: Mapping[str, Reservation] | Mapping[str, float], now_s: float, ttl: float
) -> list[str]:
    """Keys of the reservations or settled runs at least ``ttl`` old at ``now_s``. Both are
    inserted at the tenant's watermark, which never goes back, in dicts that keep insertion
    order: the aged come first, and the walk stops at the first younger one (scanning them
    all was a tenth of the worker's time under 32 validate clients, issue 17)."""
    aged: list[str] = []
    for key, entry in entries.items():
        at_s = entry.at_s if isinstance(entry, Reservation) else entry
        if now_s - at_s < ttl:
            break
        aged.append(key)
    return aged


def _day(at_s: float) -> date:
    return datetime.fromtimestamp(at_s, UTC).date()


def _expiry(
    state: TenantState, event_id: str, r: Reservation, now_s: float, config: FusionSettings
) -> EnergyDecision:
    return EnergyDecision(
        decision_id=f"{event_id}|{DecisionKind.EXPIRY.value}",
        event_id=event_id, tenant=state.tenant, kind=DecisionKind.EXPIRY,
        outcome=Outcome.EXPIRED, reasons=(Reason.RESERVATION_EXPIRED,),
        scenario_type="-", overlay="-", overlay_version="-", routing=RoutingMode.OVERLAY,
        base_units=r.units, multipliers=(), cost_units=r.units, final_units=0.0,
        released_units=r.units, budget=snapshot(state, config),
        event_time=datetime.fromtimestamp(now_s, UTC),
    )  # fmt: skip


def apply_budget(
    state: TenantState | None, budget: EnergyBudget, position: Position
) -> TenantOutcome:
    """A budget definition (the newest by offset governs; spend so far is kept)."""
    current = state or TenantState(tenant=budget.tenant)
    if current.has_applied(BUDGETS, position):
        return TenantOutcome(replayed=True)
    changed_period = current.budget is None or current.budget.period is not budget.period
    update: dict[str, object] = {"budget": budget}
    if changed_period:
        update["period_start"] = None
    return TenantOutcome(state=current.model_copy(update=update).stamped(BUDGETS, position))


def admit(
    state: TenantState | None,
    request: FusionRequest,
    position: Position,
    first_seen_at: Position | None,
    routing: Mapping[str, OverlayRouting],
    config: FusionSettings,
) -> TenantOutcome:
    """Decide one admission request (``first_seen_at``: where its event id was applied)."""
    if first_seen_at is not None and first_seen_at != position:
        return TenantOutcome(duplicate=True)
    current = state or TenantState(tenant=request.tenant)
    if current.has_applied(REQUESTS, position):
        return TenantOutcome(replayed=True)
    current, now_s, released = advance(
        current, request.timestamp.timestamp(), request.event_id, config
    )
    if request.event_id in current.settled or request.event_id in current.reservations:
        # Its result came first (settled, admission recorded then) or it is already admitted.
        return TenantOutcome(
            state=current.stamped(REQUESTS, position),
            outputs=TenantOutputs(decisions=tuple(released)),
        )
    current, decision = decide(current, request, now_s, routing, config)
    return TenantOutcome(
        state=current.stamped(REQUESTS, position),
        outputs=TenantOutputs(decisions=(*released, decision)),
    )


def decide(
    state: TenantState,
    request: FusionRequest,
    now_s: float,
    routing: Mapping[str, OverlayRouting],
    config: FusionSettings,
) -> tuple[TenantState, EnergyDecision]:
    """The admission decision and the state with its reservation."""
    applied = costs.multipliers(request, config.multipliers)
    cost = costs.apply(request.estimated_units, applied)
    route = routing_for(request, routing, config)

    signal = request.signal_id
    attempt = knobs.attempts_so_far(state.signals, signal) + 1 if signal is not None else None
    backoff = knobs.backoff_ms(state.slow_runs, config.adaptive_backoff)
    # One sum over the open reservations per admission, not two: a new reservation is the
    # dict's last entry and the sum adds in order, so with it the sum is ``held + final``.
    held, held_in = state.reserved_units, state.reservations

    def decision(
        outcome: Outcome, reasons: tuple[Reason, ...], final: float, s: TenantState, **extra: object
    ) -> EnergyDecision:
        if backoff is not None and outcome is not Outcome.REJECTED:
            reasons = (*reasons, Reason.ADAPTIVE_BACKOFF)
        reserved = held if s.reservations is held_in else held + final
        return decision_of(request, request.estimated_units, DecisionKind.ADMISSION, outcome,
                           reasons, applied, cost, final, route, s, now_s, config,
                           reserved=reserved, signal_attempt=attempt, backoff_ms=backoff,
                           **extra)  # fmt: skip

    if knobs.exhausted(state.signals, signal, config.limits):
        return state, decision(Outcome.REJECTED, (Reason.COLLAPSE_ATTEMPTS_EXHAUSTED,), 0.0, state)
    cached = state.cache.get(request.inputs_hash) if request.inputs_hash else None
    if config.cache.enabled and cached is not None and request.inputs_hash is not None:
        reused = cached.model_copy(update={"reuse_count": cached.reuse_count + 1})
        state = state.model_copy(update={"cache": {**state.cache, request.inputs_hash: reused}})
        state = _attempted(state, signal, now_s, config)
        return state, decision(
            Outcome.CACHE_HIT, (Reason.CACHE_HIT,), 0.0, state,
            energy_saved_units=cached.cost_units, reuse_count=reused.reuse_count,
        )  # fmt: skip
    if len(state.reservations) >= config.limits.max_open_reservations_per_tenant:
        return state, decision(Outcome.REJECTED, (Reason.TOO_MANY_OPEN_RESERVATIONS,), 0.0, state)
    reasons: list[Reason] = []
    approval = request.manual_approval_id
    if approval is not None:
        if approval in state.used_approvals:
            return state, decision(Outcome.REJECTED, (Reason.TOKEN_REPLAYED,), 0.0, state)
        state = state.model_copy(
            update={"used_approvals": {**state.used_approvals, approval: now_s}}
        )
        reasons.append(Reason.MANUAL_APPROVAL)
    elif cost > config.limits.approval_threshold_units:
        return state, decision(
            Outcome.REJECTED, (Reason.EXCEEDS_APPROVAL_THRESHOLD,), 0.0, state,
            requires_manual_approval=True,
        )  # fmt: skip
    final = cost * config.tripwire.downgrade_cost_factor if route.tripwire_active else cost
    if route.tripwire_active:
        reasons.append(Reason.BUDGET_TRIPWIRE_ACTIVE)
    if route.mode is RoutingMode.BASELINE_ONLY:
        reasons.append(Reason.BASELINE_ONLY)
    auto_review = False
    if state.budget is None:
        reasons.append(Reason.NO_BUDGET)
    else:
        limit = state.budget.limit_units
        used_pct = (state.spent_units + held) / limit * 100
        projected_pct = used_pct + final / limit * 100
        if used_pct >= config.limits.emergency_pct:
            return state, decision(Outcome.REJECTED, (Reason.EMERGENCY_STATE,), 0.0, state)
        if projected_pct >= config.limits.hard_limit_pct:
            return state, decision(Outcome.REJECTED, (Reason.HARD_LIMIT,), 0.0, state)
        auto_review = projected_pct >= config.limits.auto_review_pct
        reasons.append(Reason.AUTO_REVIEW if auto_review else Reason.WITHIN_BUDGET)
    reservation = Reservation(
        units=final, downgraded=route.tripwire_active, at_s=now_s, mode=route.mode
    )
    state = _attempted(state.with_reservation(request.event_id, reservation), signal, now_s, config)
    outcome = Outcome.DOWNGRADED if route.tripwire_active else Outcome.APPROVED
    return state, decision(outcome, tuple(reasons), final, state, auto_review=auto_review)


def _attempted(
    state: TenantState, signal: str | None, now_s: float, config: FusionSettings
) -> TenantState:
    """``state`` counting one more admitted run of ``signal`` (rejections never count)."""
    if signal is None:
        return state
    signals = knobs.with_attempt(state.signals, signal, now_s, config.limits)
    return state.model_copy(update={"signals": signals})
