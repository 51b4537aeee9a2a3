"""Reports from the slot log (the `governor audit report` path), without a broker."""

from __future__ import annotations

from datetime import timedelta

from agents.audit.rules.report import DailySummary, PeriodReport
from agents.audit.rules.ticks import slot_record_of
from agents.audit.settings import AuditSettings, SiteSettings
from app.tools.audit_log import as_table, reports
from schemas.budget_audit import SlotRecord
from schemas.control_tick import ControlTick
from tests.factories import BASE_TIME, tick

CONFIG = AuditSettings(sites={"site-001": SiteSettings(capacity_kw=100.0)})
DAY = BASE_TIME.date()


def slots_of(*ticks: ControlTick) -> list[SlotRecord]:
    return [slot_record_of(t) for t in ticks]


def test_period_reports_cover_each_sites_current_period() -> None:
    log = slots_of(
        tick(0, energy_cost_kwh=20.0),
        tick(1, site_id="site-002", energy_cost_kwh=1.0),
        tick(7 * 288, energy_cost_kwh=5.0),  # next ISO week: the current period
    )
    found = reports(log, CONFIG)
    assert [type(r) for r in found] == [PeriodReport, PeriodReport]
    first, second = found
    assert isinstance(first, PeriodReport) and isinstance(second, PeriodReport)
    assert (first.site_id, first.from_date, first.total_cost_kwh) == (
        "site-001",
        DAY + timedelta(days=7),
        5.0,
    )
    assert (second.site_id, second.compliant) == ("site-002", None)


def test_a_range_and_a_duplicated_log_record() -> None:
    log = slots_of(tick(0, energy_cost_kwh=2.0), tick(288, energy_cost_kwh=3.0))
    (report,) = reports([*log, log[0]], CONFIG, site="site-001", first=DAY, last=DAY)
    assert isinstance(report, PeriodReport)
    assert (report.slots, report.total_cost_kwh, report.period_days) == (1, 2.0, 1)


def test_daily_summaries_and_the_text_table() -> None:
    log = slots_of(tick(0), tick(1), tick(2, site_id="site-002"))
    found = reports(log, CONFIG, daily=DAY)
    assert all(isinstance(r, DailySummary) for r in found)
    assert [(r.site_id, r.slots) for r in found if isinstance(r, DailySummary)] == [
        ("site-001", 2),
        ("site-002", 1),
    ]
    lines = as_table(found).splitlines()
    assert lines[0].split()[:3] == ["site_id", "date", "slots"]
    assert lines[1].split()[:3] == ["site-001", str(DAY), "2"]
    assert as_table([]) == "no slots"


def test_an_unknown_site_gives_nothing() -> None:
    assert reports(slots_of(tick(0)), CONFIG, site="nowhere") == []


def test_the_whole_log_as_the_references_report_covers_it() -> None:
    """Issue "Seed parity" part 5: the reference's `--report` rolls up every row of the log;
    `governor audit report` with no arguments does too (the current period on request)."""
    log = slots_of(
        tick(0, energy_cost_kwh=20.0),
        tick(288, energy_cost_kwh=10.0),
        tick(7 * 288, energy_cost_kwh=5.0),  # next ISO week
    )
    (whole,) = reports(log, CONFIG, whole_log=True)
    assert isinstance(whole, PeriodReport)
    assert (whole.from_date, whole.to_date) == (DAY, DAY + timedelta(days=7))
    assert (whole.period_days, whole.total_cost_kwh, whole.slots) == (3, 35.0, 3)
    (current,) = reports(log, CONFIG)
    assert isinstance(current, PeriodReport) and current.total_cost_kwh == 5.0
