"""Calendar periods of compliance reporting, shared by the budget-audit and AI cost rules."""

from __future__ import annotations

from datetime import date, timedelta

from schemas.budget_audit import CompliancePeriod


def period_bounds(day: date, period: CompliancePeriod) -> tuple[date, date]:
    """First and last day (inclusive) of the calendar period holding ``day``.

    Weeks are ISO weeks (Monday first), matching how a weekly rollup is read.
    """
    if period is CompliancePeriod.WEEK:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if period is CompliancePeriod.YEAR:
        return date(day.year, 1, 1), date(day.year, 12, 31)
    months = 1 if period is CompliancePeriod.MONTH else 3
    first_month = day.month if months == 1 else 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    next_month = first_month + months
    following = (
        date(day.year + 1, next_month - 12, 1) if next_month > 12 else date(day.year, next_month, 1)
    )
    return start, following - timedelta(days=1)
