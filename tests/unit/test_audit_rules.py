"""The budget-audit rules: report math, rollups, late and duplicate ticks, compliance alerts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.audit.rules.report import daily_summary, fold_slots, period_report
from agents.audit.rules.ticks import (
    DayRollup,
    PeriodRollup,
    check_tick,
    day_key,
    process_tick,
    slot_record_of,
)
from agents.audit.settings import AuditSettings, SiteSettings
from app.core.dedup import DedupIndex, Position
from app.core.periods import period_bounds
from schemas.budget_audit import (
    ComplianceAlert,
    CompliancePeriod,
    ComplianceState,
    DayRollupRecord,
    SlotRecord,
)
from schemas.control_tick import ControlTick
from schemas.dead_letter import DeadLetterReason
from tests.factories import BASE_TIME, tick

CONFIG = AuditSettings(sites={"site-001": SiteSettings(capacity_kw=100.0)})
DAY = BASE_TIME.date()  # Monday 2024-01-15


@dataclass
class Audit:
    """The agent's loop without Faust: tables as dicts, one offset per tick."""

    config: AuditSettings = field(default_factory=lambda: CONFIG)
    days: dict[str, DayRollup] = field(default_factory=dict)
    periods: dict[str, PeriodRollup] = field(default_factory=dict)
    dedup: DedupIndex = field(default_factory=lambda: DedupIndex(7 * 86_400, 1_000_000))
    slots: list[SlotRecord] = field(default_factory=list)
    alerts: list[ComplianceAlert] = field(default_factory=list)
    rollups: list[DayRollupRecord] = field(default_factory=list)
    duplicates: int = 0

    def apply(self, t: ControlTick, offset: int, partition: int = 0) -> None:
        position = Position(partition=partition, offset=offset)
        day = self.days.get(day_key(t.site_id, t.timestamp.date()))
        start, _ = period_bounds(t.timestamp.date(), self.config.compliance_period)
        key = f"{t.site_id}|{self.config.compliance_period.value}|{start.isoformat()}"
        first = self.dedup.lookup(t.site_id, t.event_id)
        outcome = process_tick(
            t,
            position,
            day,
            self.periods.get(key),
            first.position if first else None,
            self.config,
        )
        if outcome.duplicate:
            self.duplicates += 1
            return
        if outcome.day is not None:
            self.days[outcome.day.key] = outcome.day
        if outcome.period is not None:
            assert outcome.period.key == key
            self.periods[key] = outcome.period
        if outcome.segment is not None and not self.dedup.contains_segment(position):
            self.dedup.add(outcome.segment)
        assert outcome.slot is not None
        self.slots.append(outcome.slot)
        if outcome.alert is not None:
            self.alerts.append(outcome.alert)
        if outcome.rollup is not None:
            self.rollups.append(outcome.rollup)

    def run(self, ticks: list[ControlTick]) -> Audit:
        for offset, t in enumerate(ticks):
            self.apply(t, offset)
        return self


class TestReferenceMath:
    def test_daily_summary_matches_hand_computation(self) -> None:
        ticks = [
            tick(0, energy_cost_kwh=0.1, actual_offset_deg=3.0, gate_passed=True),
            tick(1, energy_cost_kwh=0.2, actual_offset_deg=-12.34, gate_passed=False),
            tick(2, energy_cost_kwh=0.3, actual_offset_deg=5.0, gate_passed=True,
                 budget_remaining_kwh=42.123456),
        ]  # fmt: skip
        audit = Audit().run(ticks)
        summary = daily_summary("site-001", DAY, audit.days[day_key("site-001", DAY)])
        assert summary.model_dump() == {
            "site_id": "site-001",
            "date": DAY,
            "slots": 3,
            "total_cost_kwh": 0.6,
            "interventions": 2,
            "max_offset_deg": 12.3,
            "budget_remaining_kwh": 42.1235,
        }

    def test_empty_day_reports_zero_slots(self) -> None:
        summary = daily_summary("site-001", DAY, None)
        assert (summary.slots, summary.total_cost_kwh, summary.max_offset_deg) == (0, 0.0, None)

    def test_period_report_matches_the_reference_formulas(self) -> None:
        # 100 kW x 6 h x 365 = 219,000 kWh/year potential; 5 % of it = 10,950 kWh ceiling.
        # Two days, 20 + 30 kWh: daily average 25, projected 9,125 kWh, utilisation 83.3 %.
        ticks = [
            tick(0, energy_cost_kwh=20.0, gate_passed=True),
            tick(288, energy_cost_kwh=10.0, gate_passed=False),
            tick(289, energy_cost_kwh=20.0, gate_passed=True),
            tick(290, energy_cost_kwh=0.0, gate_passed=True),
        ]
        audit = Audit().run(ticks)
        report = period_report(
            "site-001", DAY, DAY + timedelta(days=6), audit.days.values(), CONFIG
        )
        assert report.model_dump() == {
            "site_id": "site-001",
            "from_date": DAY,
            "to_date": DAY + timedelta(days=6),
            "period_days": 2,
            "slots": 4,
            "total_cost_kwh": 50.0,
            "daily_avg_kwh": 25.0,
            "projected_annual_kwh": 9125.0,
            "ceiling_kwh": 10950.0,
            "ceiling_pct": 5.0,
            "utilization_pct": 83.3,
            "compliant": True,
            "total_interventions": 3,
            "intervention_rate_pct": 75.0,
        }

    def test_a_site_without_capacity_has_no_verdict(self) -> None:
        audit = Audit(config=AuditSettings()).run([tick(0, energy_cost_kwh=1000.0)])
        report = period_report("site-001", DAY, DAY, audit.days.values(), AuditSettings())
        assert (report.ceiling_kwh, report.compliant, report.utilization_pct) == (None, None, None)
        assert audit.alerts == []

    def test_ceiling_uses_configured_thresholds(self) -> None:
        config = AuditSettings(
            default_capacity_kw=50.0, peak_sun_hours=5.0, max_energy_reduction_pct=2.0
        )
        assert config.ceiling_kwh("anywhere") == pytest.approx(50 * 5 * 365 * 0.02)

    def test_period_report_and_period_rollup_agree(self) -> None:
        ticks = [tick(n * 37, energy_cost_kwh=0.5 + n % 7) for n in range(40)]
        audit = Audit().run(ticks)
        for period in audit.periods.values():
            report = period_report(
                "site-001", period.period_start, period.period_end, audit.days.values(), CONFIG
            )
            projection = period.projection()
            assert report.period_days == projection.days_covered == len(period.days)
            assert report.total_cost_kwh == round(projection.total_cost_kwh, 3)
            assert report.slots == period.slots


class TestPeriods:
    @pytest.mark.parametrize(
        ("day", "period", "bounds"),
        [
            (date(2024, 1, 17), CompliancePeriod.WEEK, (date(2024, 1, 15), date(2024, 1, 21))),
            (date(2024, 12, 31), CompliancePeriod.WEEK, (date(2024, 12, 30), date(2025, 1, 5))),
            (date(2024, 2, 10), CompliancePeriod.MONTH, (date(2024, 2, 1), date(2024, 2, 29))),
            (date(2024, 12, 5), CompliancePeriod.MONTH, (date(2024, 12, 1), date(2024, 12, 31))),
            (date(2024, 5, 20), CompliancePeriod.QUARTER, (date(2024, 4, 1), date(2024, 6, 30))),
            (date(2024, 11, 1), CompliancePeriod.QUARTER, (date(2024, 10, 1), date(2024, 12, 31))),
            (date(2024, 7, 4), CompliancePeriod.YEAR, (date(2024, 1, 1), date(2024, 12, 31))),
        ],
    )
    def test_calendar_bounds(
        self, day: date, period: CompliancePeriod, bounds: tuple[date, date]
    ) -> None:
        assert period_bounds(day, period) == bounds

    def test_each_tick_lands_in_its_own_period(self) -> None:
        sunday = tick(6 * 288, energy_cost_kwh=1.0)  # 2024-01-21
        monday = tick(7 * 288, energy_cost_kwh=2.0)  # 2024-01-22
        audit = Audit().run([sunday, monday])
        costs = {p.period_start: p.cost_mwh for p in audit.periods.values()}
        assert costs == {date(2024, 1, 15): 1_000_000, date(2024, 1, 22): 2_000_000}


class TestLateAndRepeatedTicks:
    def test_a_late_tick_updates_its_own_day_but_not_the_closing_balance(self) -> None:
        ticks = [tick(n, budget_remaining_kwh=100.0 - n) for n in (0, 1, 2, 288)]
        late = tick(1, event_id="tick-late", slot_index=1, budget_remaining_kwh=-5.0)
        late = late.model_copy(update={"timestamp": ticks[1].timestamp - timedelta(seconds=1)})
        audit = Audit().run([*ticks, late])
        first_day = audit.days[day_key("site-001", DAY)]
        assert first_day.slots == 4
        assert first_day.last is not None and first_day.last.event_id == "tick-000002"
        assert daily_summary("site-001", DAY, first_day).budget_remaining_kwh == 98.0
        assert audit.days[day_key("site-001", DAY + timedelta(days=1))].slots == 1

    def test_the_same_event_id_twice_counts_once(self) -> None:
        audit = Audit().run([tick(0), tick(1), tick(0), tick(1, energy_cost_kwh=99.0)])
        day = audit.days[day_key("site-001", DAY)]
        assert (day.slots, day.cost_mwh) == (2, 500_000)
        assert audit.duplicates == 2
        assert [s.event_id for s in audit.slots] == ["tick-000000", "tick-000001"]
        assert [r.rollup_id for r in audit.rollups] == [
            f"site-001|{DAY}|1",
            f"site-001|{DAY}|2",
        ]
        assert (audit.rollups[-1].slots, audit.rollups[-1].total_cost_kwh) == (2, 0.5)

    def test_a_redelivered_tick_changes_nothing_and_resends_identical_outputs(self) -> None:
        config = AuditSettings(default_capacity_kw=1.0)  # ceiling 109.5 kWh/year
        audit = Audit(config=config)
        audit.apply(tick(0, energy_cost_kwh=0.1), offset=0)
        audit.apply(tick(1, energy_cost_kwh=5.0), offset=1)  # crosses: 5.1 x 365 > 109.5
        before = (dict(audit.days), dict(audit.periods))
        audit.apply(tick(1, energy_cost_kwh=5.0), offset=1)  # Kafka re-delivers offset 1
        assert (audit.days, audit.periods) == before
        assert audit.slots[1].to_json_bytes() == audit.slots[2].to_json_bytes()
        assert len(audit.alerts) == 2
        assert audit.alerts[0].to_json_bytes() == audit.alerts[1].to_json_bytes()
        assert audit.rollups[1].to_json_bytes() == audit.rollups[2].to_json_bytes()

    def test_a_redelivered_older_tick_does_not_resend_a_rollup_version(self) -> None:
        audit = Audit()
        audit.apply(tick(0), offset=0)
        audit.apply(tick(1), offset=1)
        audit.apply(tick(0), offset=0)  # the day has moved on: no stale version is re-sent
        assert [r.slots for r in audit.rollups] == [1, 2]

    def test_a_partially_persisted_tick_completes_what_is_missing(self) -> None:
        """A crash between the day write and the period write: the re-delivery applies the
        tick to the period only."""
        t = tick(0, energy_cost_kwh=2.0)
        position = Position(partition=0, offset=0)
        full = process_tick(t, position, None, None, None, CONFIG)
        assert full.day is not None and full.period is not None
        again = process_tick(t, position, full.day, None, position, CONFIG)
        assert again.replayed and again.day is None
        assert again.period == full.period

    @settings(max_examples=60, deadline=None)
    @given(st.randoms(use_true_random=False))
    def test_rollups_do_not_depend_on_arrival_order(self, rnd: random.Random) -> None:
        ticks = [
            tick(
                n * 41,
                energy_cost_kwh=round(0.01 * (n % 13), 3),
                actual_offset_deg=(n % 9) - 4.5,
                budget_remaining_kwh=float(1000 - n),
            )
            for n in range(60)
        ]
        shuffled = list(ticks)
        rnd.shuffle(shuffled)

        def essentials(audit: Audit) -> object:
            days = {k: d.model_copy(update={"applied_offsets": {}}) for k, d in audit.days.items()}
            periods = {k: (p.days, p.slots, p.cost_mwh) for k, p in audit.periods.items()}
            return days, periods

        assert essentials(Audit().run(ticks)) == essentials(Audit().run(shuffled))


class TestComplianceAlerts:
    def config(self) -> AuditSettings:
        return AuditSettings(sites={"site-001": SiteSettings(capacity_kw=1.0)})  # 109.5 kWh

    def test_one_alert_per_crossing_not_per_tick(self) -> None:
        # Day 1: 0.2 kWh (projected 73), then 0.2 more (146 > 109.5): crossing up.
        # More ticks the same day stay above: no alert. Day 2 at 0.01 kWh: average
        # (0.5 + 0.01) / 2 x 365 = 93 < 109.5: crossing down.
        ticks = [
            tick(0, energy_cost_kwh=0.2),
            tick(1, energy_cost_kwh=0.2),
            tick(2, energy_cost_kwh=0.05),
            tick(3, energy_cost_kwh=0.05),
            tick(288, energy_cost_kwh=0.01),
            tick(289, energy_cost_kwh=0.0),
        ]
        audit = Audit(config=self.config()).run(ticks)
        assert [(a.state, a.event_id) for a in audit.alerts] == [
            (ComplianceState.NON_COMPLIANT, "tick-000001"),
            (ComplianceState.COMPLIANT, "tick-000288"),
        ]
        up, down = audit.alerts
        assert up.previous_state is ComplianceState.COMPLIANT
        assert up.projected_annual_kwh == pytest.approx(0.4 * 365)
        assert up.utilization_ratio == pytest.approx(0.4 * 365 / 109.5)
        assert up.alert_id != down.alert_id
        assert up.days_covered == 1 and down.days_covered == 2

    def test_the_first_tick_can_cross(self) -> None:
        audit = Audit(config=self.config()).run([tick(0, energy_cost_kwh=1.0)])
        assert [a.state for a in audit.alerts] == [ComplianceState.NON_COMPLIANT]

    def test_a_new_period_starts_compliant_and_alerts_again(self) -> None:
        heavy = [tick(0, energy_cost_kwh=1.0), tick(7 * 288, energy_cost_kwh=1.0)]
        audit = Audit(config=self.config()).run(heavy)
        assert [(a.period_start, a.state) for a in audit.alerts] == [
            (date(2024, 1, 15), ComplianceState.NON_COMPLIANT),
            (date(2024, 1, 22), ComplianceState.NON_COMPLIANT),
        ]


class TestRecords:
    def test_slot_record_bytes_match_the_contract(self) -> None:
        t = tick(3)
        slot = slot_record_of(t)
        assert slot.utc_day == DAY
        assert (
            slot.to_json_bytes()
            == SlotRecord.model_validate({**t.model_dump(), "utc_day": DAY}).to_json_bytes()
        )

    def test_the_key_must_be_the_site(self) -> None:
        rejection = check_tick(b"other", tick(0), None, CONFIG)
        assert rejection is not None and rejection.reason is DeadLetterReason.KEY_MISMATCH
        assert check_tick(b"site-001", tick(0), None, CONFIG) is None

    def test_a_tick_from_the_future_is_rejected(self) -> None:
        t = tick(0)
        produced_ms = int(t.timestamp.timestamp() * 1000) - 301_000
        rejection = check_tick(b"site-001", t, produced_ms, CONFIG)
        assert rejection is not None and rejection.reason is DeadLetterReason.TIMESTAMP_IN_FUTURE

    def test_folding_the_slot_log_gives_the_tables_figures(self) -> None:
        ticks = [tick(n * 53, energy_cost_kwh=0.1 * (n % 5)) for n in range(30)]
        audit = Audit().run(ticks)
        folded = fold_slots([*audit.slots, *audit.slots[:5]])  # at-least-once log
        assert {day_key(site, d): r for site, days in folded.items() for d, r in days.items()} == {
            k: v.model_copy(update={"applied_offsets": {}}) for k, v in audit.days.items()
        }
