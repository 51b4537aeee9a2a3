"""Carbon budget rules: a facility's emissions counted against its budget for the period,
the budget state (ok, warning, critical, exceeded) and one alert per state change.

Pure: ``(state, event, config) -> (new state, outputs)`` on event time only. Usage is kept
in integers (milligrams CO2e, milliwatt-hours) for both Scope 2 methods, so totals do not
depend on the order they were added in. Each state value carries the highest source offset
applied per source and partition (one changelog write holds both), so a re-delivered record
changes nothing and its alerts are re-sent from the outbox instead.

Periods: calendar day, month, quarter or year in ``carbon_budgets.timezone``. A facility
without a budget is counted by calendar month, so a budget that arrives mid-month starts
with the month's usage so far. A reading from before the current period is counted in
``late_readings`` and not added (its period is closed); one from a later period rolls over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agents.facility.rules.carbon_state import (
    BUDGETS,
    READINGS,
    BudgetOutcome,
    BudgetOutputs,
    BudgetStatus,
    CountedEmission,
    FacilityCarbon,
    Usage,
    milli_units,
)
from agents.facility.settings import CarbonBudgetSettings
from app.core.dedup import Position
from app.core.units import MG_PER_KG
from schemas.carbon_budget import (
    AlertReason,
    CarbonBudget,
    CarbonBudgetAlert,
    CarbonBudgetState,
    CarbonPeriod,
)
from schemas.carbon_emission import AccountingMethod
from schemas.common import EnergySource


def period_bounds(when: datetime, period: CarbonPeriod, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar period holding ``when``, as timezone-aware instants in ``tz``."""
    local = when.astimezone(tz)
    if period is CarbonPeriod.DAY:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end_naive = start.replace(tzinfo=None) + timedelta(days=1)
        return start, end_naive.replace(tzinfo=tz)
    month = local.month
    if period is CarbonPeriod.QUARTER:
        month = 3 * ((local.month - 1) // 3) + 1
    elif period is CarbonPeriod.YEAR:
        month = 1
    start = local.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    months = {CarbonPeriod.MONTH: 1, CarbonPeriod.QUARTER: 3, CarbonPeriod.YEAR: 12}[period]
    year, index = divmod(start.month - 1 + months, 12)
    end = start.replace(year=start.year + year, month=index + 1)
    return start, end


def thresholds(budget: CarbonBudget, config: CarbonBudgetSettings) -> tuple[float, float]:
    """Warning and critical thresholds (percent): the budget's own, else the configured."""
    warning = budget.warning_threshold_pct or config.warning_threshold_pct
    critical = budget.critical_threshold_pct or config.critical_threshold_pct
    return warning, critical


def classify(used_mg: int, budget: CarbonBudget, config: CarbonBudgetSettings) -> CarbonBudgetState:
    """ok below warning, warning from it, critical from critical, exceeded above the limit."""
    ratio = used_mg / MG_PER_KG / budget.limit_kg_co2e
    warning, critical = thresholds(budget, config)
    if ratio > 1.0:
        return CarbonBudgetState.EXCEEDED
    if ratio * 100 >= critical:
        return CarbonBudgetState.CRITICAL
    if ratio * 100 >= warning:
        return CarbonBudgetState.WARNING
    return CarbonBudgetState.OK


def _alert(
    state: FacilityCarbon,
    new_state: CarbonBudgetState,
    reason: AlertReason,
    emission: CountedEmission | None,
) -> CarbonBudgetAlert:
    assert state.budget is not None and state.period_start is not None
    sequence = state.alerts_sent + 1
    start = state.period_start
    return CarbonBudgetAlert(
        alert_id=f"{state.facility_id}:{start.strftime('%Y%m%dT%H%M%S%z')}:{sequence}",
        facility_id=state.facility_id,
        period=state.period,
        period_start=start,
        previous_state=state.state,
        state=new_state,
        reason=reason,
        accounting_method=state.method,
        used_kg_co2e=state.used_kg,
        limit_kg_co2e=state.budget.limit_kg_co2e,
        usage_ratio=round(state.used_kg / state.budget.limit_kg_co2e, 9),
        reading_event_id=emission.event_id if emission else None,
        reading_timestamp=emission.timestamp if emission else None,
    )


def _transition(
    state: FacilityCarbon,
    reason: AlertReason,
    emission: CountedEmission | None,
    config: CarbonBudgetSettings,
) -> tuple[FacilityCarbon, tuple[CarbonBudgetAlert, ...]]:
    """Re-classify ``state``; an alert when the state changed."""
    if state.budget is None or state.period_start is None:
        return state, ()
    new_state = classify(state.total.mg(state.method), state.budget, config)
    if new_state is state.state:
        return state, ()
    alert = _alert(state, new_state, reason, emission)
    return state.model_copy(update={"state": new_state, "alerts_sent": state.alerts_sent + 1}), (
        alert,
    )


def _new_period(
    state: FacilityCarbon, when: datetime, config: CarbonBudgetSettings
) -> FacilityCarbon:
    start, end = period_bounds(when, state.period, ZoneInfo(config.timezone))
    return state.model_copy(
        update={
            "period_start": start,
            "period_end": end,
            "total": Usage(),
            "by_source": {},
            "by_hour": {},
            "first_event": None,
            "last_event": None,
            "state": CarbonBudgetState.OK,
            "alerts_sent": 0,
        }
    )


def apply_budget(
    state: FacilityCarbon | None,
    budget: CarbonBudget,
    position: Position,
    config: CarbonBudgetSettings,
) -> BudgetOutcome:
    """A new budget definition: the newest by offset governs.

    Same period kind: the usage so far stays and is re-classified (an alert if the new limit
    or thresholds put it in another state). Another period kind: counting restarts with the
    next reading's period, since the usage of the new period's earlier part is not known.
    """
    current = state or FacilityCarbon(facility_id=budget.facility_id)
    if current.has_applied(BUDGETS, position):
        return BudgetOutcome(replayed=True)
    updated = current.model_copy(update={"budget": budget})
    if budget.period is not current.period:
        updated = updated.model_copy(
            update={"period": budget.period, "period_start": None, "period_end": None,
                    "state": CarbonBudgetState.OK}
        )  # fmt: skip
        alerts: tuple[CarbonBudgetAlert, ...] = ()
    else:
        updated, alerts = _transition(updated, AlertReason.BUDGET_CHANGED, None, config)
    return BudgetOutcome(
        state=updated.stamped(BUDGETS, position), outputs=BudgetOutputs(alerts=alerts)
    )


def apply_emissions(
    state: FacilityCarbon | None,
    facility_id: str,
    emissions: Sequence[CountedEmission],
    position: Position,
    config: CarbonBudgetSettings,
) -> BudgetOutcome:
    """Count one meter-readings record's emissions (one facility, in record order) into the
    facility's period in one update; alert on each state change.

    The same as counting them one at a time: each emission moves the period and the state
    as it would alone, and only the record's position is stamped.
    """
    current = state or FacilityCarbon(facility_id=facility_id)
    if current.has_applied(READINGS, position):
        return BudgetOutcome(replayed=True)
    alerts: list[CarbonBudgetAlert] = []
    pending = _Pending(ZoneInfo(config.timezone))
    for emission in emissions:
        if not pending.takes(current, emission, config):
            current = _count(pending.into(current), emission, config, alerts)
    current = pending.into(current)
    return BudgetOutcome(
        state=current.stamped(READINGS, position),
        outputs=BudgetOutputs(alerts=tuple(alerts)),
        counted=len(emissions),
    )


def apply_emission(
    state: FacilityCarbon | None,
    emission: CountedEmission,
    position: Position,
    config: CarbonBudgetSettings,
) -> BudgetOutcome:
    """Count one emission (a record of one reading)."""
    return apply_emissions(state, emission.facility_id, (emission,), position, config)


def _plus(usage: Usage, sums: list[int]) -> Usage:
    return Usage(
        energy_mwh=usage.energy_mwh + sums[0],
        location_mg=usage.location_mg + sums[1],
        market_mg=usage.market_mg + sums[2],
        readings=usage.readings + sums[3],
    )


@dataclass(slots=True)
class _Pending:
    """Emissions counted into the current period but not yet into the (immutable) state.

    Most emissions of a batch fall in the current period and leave the budget state as it
    was; copying the state model for each of them was the stage's main cost. They are
    summed here in plain integers instead, and the state is copied once, before any
    emission that takes :func:`_count`'s full path (rollover, late, a state change) and at
    the end. Integer sums make the result the same as counting one at a time.
    """

    tz: ZoneInfo
    total: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    by_source: dict[EnergySource, list[int]] = field(default_factory=dict)
    by_hour: dict[int, list[int]] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    def takes(
        self, state: FacilityCarbon, emission: CountedEmission, config: CarbonBudgetSettings
    ) -> bool:
        """Sum ``emission`` here when it is in ``state``'s period and keeps its budget state;
        ``False`` (nothing summed) when it needs :func:`_count`."""
        when = emission.timestamp
        start, end = state.period_start, state.period_end
        if start is None or end is None or not start <= when < end:
            return False
        usage = milli_units(emission)
        if state.budget is not None:
            market = state.method is AccountingMethod.MARKET_BASED
            added = self.total[2] + usage[2] if market else self.total[1] + usage[1]
            if classify(state.total.mg(state.method) + added, state.budget, config) is not (
                state.state
            ):
                return False
        hour = when.astimezone(self.tz).hour
        for sums in (
            self.total,
            self.by_source.setdefault(emission.energy_source, [0, 0, 0, 0]),
            self.by_hour.setdefault(hour, [0, 0, 0, 0]),
        ):
            sums[0] += usage[0]
            sums[1] += usage[1]
            sums[2] += usage[2]
            sums[3] += 1
        self.first = when if self.first is None else min(self.first, when)
        self.last = when if self.last is None else max(self.last, when)
        return True

    def into(self, state: FacilityCarbon) -> FacilityCarbon:
        """``state`` with the pending sums added (one copy); the sums start again at zero."""
        if not self.total[3]:
            return state
        first, last = self.first, self.last
        assert first is not None and last is not None
        by_source = dict(state.by_source)
        for source, sums in self.by_source.items():
            by_source[source] = _plus(by_source.get(source, Usage()), sums)
        by_hour = dict(state.by_hour)
        for hour, sums in self.by_hour.items():
            by_hour[hour] = _plus(by_hour.get(hour, Usage()), sums)
        updated = state.model_copy(
            update={
                "total": _plus(state.total, self.total),
                "by_source": by_source,
                "by_hour": by_hour,
                "first_event": min(state.first_event or first, first),
                "last_event": max(state.last_event or last, last),
            }
        )
        self.total = [0, 0, 0, 0]
        self.by_source, self.by_hour = {}, {}
        self.first = self.last = None
        return updated


def _count(
    current: FacilityCarbon,
    emission: CountedEmission,
    config: CarbonBudgetSettings,
    alerts: list[CarbonBudgetAlert],
) -> FacilityCarbon:
    """``current`` with one emission counted into its period; alerts appended to ``alerts``."""
    when = emission.timestamp
    if current.period_start is None or current.period_end is None:
        current = _new_period(current, when, config)
    elif when < current.period_start:
        return current.model_copy(update={"late_readings": current.late_readings + 1})
    elif when >= current.period_end:
        previous = current.state
        current = _new_period(current, when, config)
        if previous is not CarbonBudgetState.OK and current.budget is not None:
            reset = _alert(current.model_copy(update={"state": previous}), CarbonBudgetState.OK,
                           AlertReason.ROLLOVER, emission)  # fmt: skip
            alerts.append(reset)
            current = current.model_copy(update={"alerts_sent": 1})
    hour = when.astimezone(ZoneInfo(config.timezone)).hour
    source = emission.energy_source
    current = current.model_copy(
        update={
            "total": current.total.plus(emission),
            "by_source": {**current.by_source,
                          source: current.by_source.get(source, Usage()).plus(emission)},
            "by_hour": {**current.by_hour, hour: current.by_hour.get(hour, Usage()).plus(emission)},
            "first_event": min(current.first_event or when, when),
            "last_event": max(current.last_event or when, when),
        }
    )  # fmt: skip
    current, crossed = _transition(current, AlertReason.CROSSED, emission, config)
    alerts.extend(crossed)
    return current


def status_of(state: FacilityCarbon) -> BudgetStatus | None:
    """The facility's budget status; ``None`` without a budget.

    The projection extrapolates the period's usage at its event-time rate so far (from the
    period start to the newest reading) to the period's end.
    """
    budget = state.budget
    if budget is None:
        return None
    used = state.used_kg
    projected: float | None = None
    if state.period_start and state.period_end and state.last_event:
        elapsed = (state.last_event - state.period_start).total_seconds()
        length = (state.period_end - state.period_start).total_seconds()
        if elapsed > 0:
            projected = round(used * length / elapsed, 6)
    return BudgetStatus(
        facility_id=state.facility_id,
        period=state.period,
        period_start=state.period_start,
        period_end=state.period_end,
        accounting_method=state.method,
        limit_kg_co2e=budget.limit_kg_co2e,
        used_kg_co2e=used,
        remaining_kg_co2e=round(budget.limit_kg_co2e - used, 6),
        usage_ratio=round(used / budget.limit_kg_co2e, 9),
        state=state.state,
        projected_kg_co2e=projected,
        projected_usage_ratio=(
            round(projected / budget.limit_kg_co2e, 9) if projected is not None else None
        ),
        location_based_kg_co2e=state.total.location_mg / MG_PER_KG,
        market_based_kg_co2e=state.total.market_mg / MG_PER_KG,
        energy_kwh=state.total.energy_kwh,
        late_readings=state.late_readings,
    )
