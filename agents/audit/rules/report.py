"""Budget-audit reports over day rollups: a day's summary and a period's compliance, as
the reference's ``--daily`` and ``--report`` print them, and the folding of a slot log into
the rollups the live tables hold (the CLI reads the log, the HTTP API the tables: the two
must agree)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from pydantic import BaseModel

from agents.audit.rules.ticks import DayRollup, Projection
from agents.audit.settings import AuditSettings
from app.core.periods import period_bounds
from app.core.units import MWH_PER_KWH
from schemas.budget_audit import ComplianceState, SlotRecord


class DailySummary(BaseModel):
    """One site-day, as the reference's ``daily_summary`` reports it."""

    site_id: str
    date: date
    slots: int
    total_cost_kwh: float
    interventions: int
    max_offset_deg: float | None
    budget_remaining_kwh: float | None


class PeriodReport(BaseModel):
    """A site's compliance over a range of days, as the reference's rollup reports it."""

    site_id: str
    from_date: date
    to_date: date
    period_days: int
    slots: int
    total_cost_kwh: float
    daily_avg_kwh: float
    projected_annual_kwh: float
    ceiling_kwh: float | None
    ceiling_pct: float
    utilization_pct: float | None
    compliant: bool | None
    total_interventions: int
    intervention_rate_pct: float


def daily_summary(site_id: str, utc_day: date, rollup: DayRollup | None) -> DailySummary:
    """A day's summary; a day without slots reports zeros and no offset or balance."""
    if rollup is None or rollup.slots == 0:
        return DailySummary(
            site_id=site_id,
            date=utc_day,
            slots=0,
            total_cost_kwh=0.0,
            interventions=0,
            max_offset_deg=None,
            budget_remaining_kwh=None,
        )
    return DailySummary(
        site_id=site_id,
        date=utc_day,
        slots=rollup.slots,
        total_cost_kwh=round(rollup.cost_mwh / MWH_PER_KWH, 4),
        interventions=rollup.interventions,
        max_offset_deg=round(rollup.max_abs_offset_deg, 1),
        budget_remaining_kwh=(
            round(rollup.last.budget_remaining_kwh, 4) if rollup.last is not None else None
        ),
    )


def period_report(
    site_id: str,
    from_date: date,
    to_date: date,
    days: Iterable[DayRollup],
    config: AuditSettings,
) -> PeriodReport:
    """The compliance report of the days in ``[from_date, to_date]`` that have slots."""
    chosen = [d for d in days if from_date <= d.utc_day <= to_date and d.slots > 0]
    slots = sum(d.slots for d in chosen)
    interventions = sum(d.interventions for d in chosen)
    projection = Projection.of(len({d.utc_day for d in chosen}), sum(d.cost_mwh for d in chosen))
    ceiling = config.ceiling_kwh(site_id)
    utilization = (
        round(projection.projected_annual_kwh / ceiling * 100, 1)
        if ceiling is not None and ceiling > 0
        else None
    )
    return PeriodReport(
        site_id=site_id,
        from_date=from_date,
        to_date=to_date,
        period_days=projection.days_covered,
        slots=slots,
        total_cost_kwh=round(projection.total_cost_kwh, 3),
        daily_avg_kwh=round(projection.daily_avg_kwh, 4),
        projected_annual_kwh=round(projection.projected_annual_kwh, 1),
        ceiling_kwh=round(ceiling, 1) if ceiling is not None else None,
        ceiling_pct=config.max_energy_reduction_pct,
        utilization_pct=utilization,
        compliant=(
            projection.state_against(ceiling) is ComplianceState.COMPLIANT
            if ceiling is not None
            else None
        ),
        total_interventions=interventions,
        intervention_rate_pct=round(interventions / slots * 100, 1) if slots else 0.0,
    )


def current_period(newest_day: date, config: AuditSettings) -> tuple[date, date]:
    """The compliance period a report covers by default: the one holding the newest day."""
    return period_bounds(newest_day, config.compliance_period)


def fold_slots(slots: Iterable[SlotRecord]) -> dict[str, dict[date, DayRollup]]:
    """Day rollups per site from a slot log, each ``event_id`` counted once.

    The slot log is at-least-once (a tick re-delivered after a crash may be logged twice,
    byte-identical), so readers of the log deduplicate; this is what ``governor audit``
    reports from.
    """
    seen: set[str] = set()
    sites: dict[str, dict[date, DayRollup]] = {}
    for slot in slots:
        if slot.event_id in seen:
            continue
        seen.add(slot.event_id)
        days = sites.setdefault(slot.site_id, {})
        day = days.get(slot.utc_day) or DayRollup(site_id=slot.site_id, utc_day=slot.utc_day)
        days[slot.utc_day] = day.with_slot(slot)
    return sites


def newest_day(days: Sequence[DayRollup]) -> date | None:
    return max((d.utc_day for d in days), default=None)
