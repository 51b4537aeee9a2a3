"""Carbon budgets, both Scope 2 methods, grid intensity, load evaluation and balancing,
recommendations: the rules of issue 3, without Kafka."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agents.carbon.rules import emission_of
from agents.carbon.settings import CarbonSettings
from agents.facility.rules import balancing, optimization
from agents.facility.rules import carbon_budget as budgets
from agents.facility.rules import load as loads
from agents.facility.rules.carbon_state import READINGS, FacilityCarbon
from agents.facility.rules.load import FacilityLoad, ZoneState
from agents.facility.settings import CarbonBudgetSettings, LoadSettings, OptimizationSettings
from app.core.dedup import Position
from app.core.grid import EmissionContext, GridIntensityHistory
from schemas.carbon_budget import (
    AlertReason,
    CarbonBudget,
    CarbonBudgetState,
    CarbonPeriod,
    ContractualInstrument,
    GridIntensity,
    InstrumentKind,
)
from schemas.carbon_emission import AccountingMethod, CarbonEmission, IntensitySource
from schemas.common import EnergySource
from schemas.load import (
    BalancingAction,
    BalancingCommand,
    CommandKind,
    DecisionStatus,
    LoadMetric,
    ManualDecision,
    decision_facility,
)
from tests.factories import BASE_TIME, reading

CARBON = CarbonSettings()
BUDGETS = CarbonBudgetSettings()
LOAD = LoadSettings()


def budget(limit: float = 100.0, **overrides: Any) -> CarbonBudget:
    fields: dict[str, Any] = {
        "facility_id": "facility-001",
        "period": CarbonPeriod.MONTH,
        "limit_kg_co2e": limit,
        "updated_at": BASE_TIME,
    }
    fields.update(overrides)
    return CarbonBudget(**fields)


def emission(
    n: int, kwh: float, context: EmissionContext | None = None, **kw: Any
) -> CarbonEmission:
    return emission_of(reading(n, consumption_kwh=kwh, **kw), CARBON, context).to_contract()


class Stream:
    """Feeds records at consecutive offsets and collects the alerts."""

    def __init__(self, config: CarbonBudgetSettings = BUDGETS) -> None:
        self.state: FacilityCarbon | None = None
        self.offset = 0
        self.alerts: list[Any] = []
        self.config = config

    def budget(self, value: CarbonBudget) -> None:
        self.offset += 1
        out = budgets.apply_budget(self.state, value, Position(partition=0, offset=self.offset),
                                   self.config)  # fmt: skip
        self.state = out.state or self.state
        self.alerts.extend(out.outputs.alerts)

    def emit(self, value: CarbonEmission) -> None:
        self.offset += 1
        out = budgets.apply_emission(self.state, value, Position(partition=1, offset=self.offset),
                                     self.config)  # fmt: skip
        self.state = out.state or self.state
        self.alerts.extend(out.outputs.alerts)


# Both Scope 2 figures and grid intensity


def test_market_based_applies_instruments_to_grid_electricity_only() -> None:
    ppa = ContractualInstrument(kind=InstrumentKind.PPA, name="wind PPA", share=0.6,
                                factor_kg_co2e_per_kwh=0.011)  # fmt: skip
    ctx = EmissionContext(instruments={"facility-001": (ppa,)})
    grid = emission(1, 100.0, ctx)
    assert grid.emissions_kg_co2e == pytest.approx(42.0)  # location: 100 kWh x 0.42
    assert grid.accounting_method is AccountingMethod.LOCATION_BASED
    assert grid.market_based_kg_co2e == pytest.approx(60 * 0.011 + 40 * 0.42)
    solar = emission(2, 100.0, ctx, energy_source=EnergySource.SOLAR)
    assert solar.market_based_kg_co2e == solar.emissions_kg_co2e == pytest.approx(4.1)


def test_grid_intensity_in_force_at_event_time_else_the_static_factor() -> None:
    history = GridIntensityHistory()
    history.add(GridIntensity(zone="DE", intensity_g_co2e_per_kwh=300, valid_from=BASE_TIME))
    history.add(GridIntensity(zone="DE", intensity_g_co2e_per_kwh=500,
                              valid_from=BASE_TIME + timedelta(hours=1)))  # fmt: skip
    ctx = EmissionContext(grid=history)
    at_30 = emission(30, 10.0, ctx, grid_zone="DE")
    assert at_30.factor_kg_co2e_per_kwh == 0.3
    assert at_30.intensity_source is IntensitySource.GRID_INTENSITY
    assert at_30.intensity_valid_from == BASE_TIME
    assert emission(61, 10.0, ctx, grid_zone="DE").emissions_kg_co2e == pytest.approx(5.0)
    before = emission_of(
        reading(0, consumption_kwh=10.0, grid_zone="DE",
                timestamp=BASE_TIME - timedelta(minutes=1)), CARBON, ctx,
    )  # fmt: skip
    assert before.intensity_source is IntensitySource.STATIC_FACTOR
    assert before.factor_kg_co2e_per_kwh == 0.42
    assert emission(5, 10.0, ctx).intensity_source is IntensitySource.STATIC_FACTOR  # no zone


# Carbon budgets


def test_each_threshold_crossing_alerts_exactly_once_with_the_reading() -> None:
    s = Stream()
    s.budget(budget(100.0))
    for n in range(30):  # 10 kWh x 0.42 = 4.2 kg each
        s.emit(emission(n, 10.0))
    states = [(a.previous_state, a.state) for a in s.alerts]
    assert states == [
        (CarbonBudgetState.OK, CarbonBudgetState.WARNING),  # 20 x 4.2 = 84 kg >= 80
        (CarbonBudgetState.WARNING, CarbonBudgetState.CRITICAL),  # 23 x 4.2 = 96.6 >= 95
        (CarbonBudgetState.CRITICAL, CarbonBudgetState.EXCEEDED),  # 24 x 4.2 = 100.8 > 100
    ]
    assert [a.reading_event_id for a in s.alerts] == ["evt-000019", "evt-000022", "evt-000023"]
    assert all(a.reason is AlertReason.CROSSED for a in s.alerts)
    assert len({a.alert_id for a in s.alerts}) == 3


def test_a_jump_over_several_thresholds_is_one_alert() -> None:
    s = Stream()
    s.budget(budget(10.0))
    s.emit(emission(0, 100.0))
    assert [(a.previous_state, a.state) for a in s.alerts] == [
        (CarbonBudgetState.OK, CarbonBudgetState.EXCEEDED)
    ]


def test_a_redelivered_record_changes_nothing() -> None:
    s = Stream()
    s.budget(budget(10.0))
    s.emit(emission(0, 100.0))
    again = budgets.apply_emission(s.state, emission(0, 100.0), Position(partition=1, offset=2),
                                   BUDGETS)  # fmt: skip
    assert again.replayed and again.state is None


def test_a_record_of_many_emissions_counts_as_they_would_one_by_one() -> None:
    """One update per record (the carbon agent's) gives the state and alerts of counting
    each emission alone: crossings, a rollover and a late reading inside one record."""
    next_day = BASE_TIME + timedelta(days=1)
    values = [emission(n, 10.0) for n in range(4)] + [
        emission(4, 1.0, timestamp=next_day), emission(5, 500.0), emission(6, 3.0,
        timestamp=next_day + timedelta(minutes=1)),
    ]  # fmt: skip
    one_by_one = Stream()
    one_by_one.budget(budget(10.0, period=CarbonPeriod.DAY))
    for value in values:
        one_by_one.emit(value)
    whole = Stream()
    whole.budget(budget(10.0, period=CarbonPeriod.DAY))
    at = Position(partition=1, offset=1)
    out = budgets.apply_emissions(whole.state, "facility-001", values, at, BUDGETS)
    assert out.state is not None and one_by_one.state is not None
    ignored = {"applied", "forwarded"}
    assert out.state.model_dump(exclude=ignored) == one_by_one.state.model_dump(exclude=ignored)
    assert out.outputs.alerts == tuple(one_by_one.alerts[len(whole.alerts) :])
    assert [a.reason for a in out.outputs.alerts] == [
        AlertReason.CROSSED, AlertReason.CROSSED, AlertReason.ROLLOVER,
    ]  # fmt: skip
    assert out.state.late_readings == 1
    again = budgets.apply_emissions(out.state, "facility-001", values, at, BUDGETS)
    assert again.replayed and again.state is None


@pytest.mark.parametrize("method", list(AccountingMethod))
def test_summing_a_batch_gives_the_bytes_of_copying_the_state_per_emission(
    method: AccountingMethod,
) -> None:
    """apply_emissions sums emissions in plain integers between state copies; the state
    (to its serialized bytes, so the changelog record) and the alerts are those of counting
    each emission into a copy of the state. Seeded: sources, hours, days back and forth,
    thresholds crossed, a budget change in the middle."""
    rng = random.Random(20261203)
    sources = list(EnergySource)
    late = [0, 0, 0, 0, 30, 1500]  # minutes: mostly in order, some a little late, some a day
    values = [
        emission(n, rng.choice([0.5, 3.0, 12.0, 40.0]), energy_source=rng.choice(sources),
                 timestamp=BASE_TIME + timedelta(minutes=12 * n - rng.choice(late)))
        for n in range(300)
    ]  # fmt: skip
    config = BUDGETS
    state = budgets.apply_budget(
        None, budget(100.0, period=CarbonPeriod.DAY, accounting_method=method),
        Position(partition=0, offset=1), config,
    ).state  # fmt: skip
    assert state is not None
    reasons: set[AlertReason] = set()
    for start, stop in ((0, 120), (120, 300)):
        chunk = values[start:stop]
        at = Position(partition=1, offset=stop)
        reference, alerts = state, []  # type: ignore[var-annotated]
        for value in chunk:
            reference = budgets._count(reference, value, config, alerts)
        summed = budgets.apply_emissions(state, "facility-001", chunk, at, config)
        assert summed.state is not None
        assert summed.state.model_dump_json() == reference.stamped(READINGS, at).model_dump_json()
        assert summed.outputs.alerts == tuple(alerts)
        reasons |= {a.reason for a in alerts}
        state = budgets.apply_budget(
            summed.state, budget(150.0, period=CarbonPeriod.DAY, accounting_method=method),
            Position(partition=0, offset=2 + start), config,
        ).state  # fmt: skip
        assert state is not None
    assert reasons == {AlertReason.CROSSED, AlertReason.ROLLOVER}
    assert summed.state.late_readings > 0


def test_period_rollover_resets_usage_and_state_and_says_so() -> None:
    s = Stream()
    s.budget(budget(10.0, period=CarbonPeriod.DAY))
    s.emit(emission(0, 100.0))
    next_day = BASE_TIME + timedelta(days=1)
    s.emit(emission(1, 1.0, timestamp=next_day))
    assert [a.reason for a in s.alerts] == [AlertReason.CROSSED, AlertReason.ROLLOVER]
    assert (
        s.alerts[-1].state is CarbonBudgetState.OK and s.alerts[-1].reading_event_id == "evt-000001"
    )
    assert s.state is not None and s.state.used_kg == pytest.approx(0.42)
    assert s.state.period_start == datetime(2024, 1, 16, tzinfo=UTC)
    s.emit(emission(2, 1000.0))  # the earlier day is closed: counted as late only
    assert s.state.late_readings == 1 and s.state.used_kg == pytest.approx(0.42)


def test_period_boundaries_in_the_configured_timezone() -> None:
    tz = ZoneInfo("America/New_York")
    start, end = budgets.period_bounds(datetime(2024, 3, 1, 3, tzinfo=UTC), CarbonPeriod.MONTH, tz)
    assert start == datetime(2024, 2, 1, tzinfo=tz) and end == datetime(2024, 3, 1, tzinfo=tz)
    q_start, q_end = budgets.period_bounds(
        datetime(2024, 11, 5, tzinfo=UTC), CarbonPeriod.QUARTER, UTC
    )  # type: ignore[arg-type]
    assert (q_start.month, q_end.year, q_end.month) == (10, 2025, 1)
    y_start, y_end = budgets.period_bounds(datetime(2024, 6, 5, tzinfo=UTC), CarbonPeriod.YEAR, UTC)  # type: ignore[arg-type]
    assert (y_start, y_end) == (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))


def test_market_and_location_based_totals_each_count_against_their_budget() -> None:
    ppa = ContractualInstrument(kind=InstrumentKind.CERTIFICATE, name="GOs", share=1.0,
                                factor_kg_co2e_per_kwh=0.0)  # fmt: skip
    ctx = EmissionContext(instruments={"facility-001": (ppa,)})
    location, market = Stream(), Stream()
    location.budget(budget(100.0))
    market.budget(
        budget(100.0, accounting_method=AccountingMethod.MARKET_BASED, instruments=(ppa,))
    )
    for n in range(30):
        location.emit(emission(n, 10.0, ctx))
        market.emit(emission(n, 10.0, ctx))
    assert location.state is not None and market.state is not None
    assert (
        location.state.state is CarbonBudgetState.EXCEEDED
        and market.state.state is CarbonBudgetState.OK
    )
    status = budgets.status_of(market.state)
    assert status is not None
    assert status.location_based_kg_co2e == pytest.approx(126.0)
    assert status.market_based_kg_co2e == 0.0 and status.used_kg_co2e == 0.0


def test_status_projects_the_period_at_its_event_time_rate() -> None:
    s = Stream()
    s.budget(budget(1000.0))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    s.emit(emission(0, 100.0, timestamp=start + timedelta(days=3, hours=2)))
    s.emit(emission(1, 100.0, timestamp=start + timedelta(days=6, hours=4)))  # 84 kg in 6.17 d
    assert s.state is not None
    status = budgets.status_of(s.state)
    assert status is not None
    assert status.projected_kg_co2e == pytest.approx(84.0 * 31 / (6 + 4 / 24))
    assert status.remaining_kg_co2e == pytest.approx(916.0)


def test_a_lower_limit_reclassifies_the_usage_at_once() -> None:
    s = Stream()
    s.budget(budget(1000.0))
    s.emit(emission(0, 100.0))  # 42 kg
    s.budget(budget(50.0))
    assert [(a.state, a.reason) for a in s.alerts] == [
        (CarbonBudgetState.WARNING, AlertReason.BUDGET_CHANGED)
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"limit_kg_co2e": 0},
        {"limit_kg_co2e": -5},
        {"period": "fortnight"},
        {"warning_threshold_pct": 96, "critical_threshold_pct": 95},
    ],
)
def test_bad_budgets_are_refused(body: dict[str, Any]) -> None:
    fields = {"facility_id": "f", "period": "month", "limit_kg_co2e": 10, "updated_at": BASE_TIME}
    with pytest.raises(ValueError):
        CarbonBudget.model_validate({**fields, **body})


# Load


def metric(zone: str, load: float, capacity: float = 100.0, minutes: float = 0) -> LoadMetric:
    return LoadMetric(event_id=f"m-{zone}-{load}-{minutes}", facility_id="facility-001",
                      zone_id=zone, current_load_kw=load, capacity_kw=capacity,
                      timestamp=BASE_TIME + timedelta(minutes=minutes))  # fmt: skip


class Loads:
    def __init__(self, config: LoadSettings = LOAD) -> None:
        self.state: FacilityLoad | None = None
        self.offset = 0
        self.decisions: list[Any] = []
        self.results: list[Any] = []
        self.config = config

    def metric(self, value: LoadMetric) -> None:
        self.offset += 1
        out = loads.apply_metric(self.state, value, Position(partition=0, offset=self.offset),
                                 self.config)  # fmt: skip
        self.state = out.state or self.state
        self.decisions.extend(out.outputs.decisions)

    def command(self, kind: CommandKind, minutes: float = 0, **fields: Any) -> Any:
        self.offset += 1
        cmd = BalancingCommand(command_id=f"c{self.offset}", facility_id="facility-001",
                               kind=kind, timestamp=BASE_TIME + timedelta(minutes=minutes),
                               **fields)  # fmt: skip
        out = balancing.apply_command(self.state, cmd, Position(partition=1, offset=self.offset),
                                  self.config)  # fmt: skip
        self.state = out.state or self.state
        self.decisions.extend(out.outputs.decisions)
        return out.outputs.result


def test_zone_states_against_the_reference_targets() -> None:
    states = [loads.zone_state(u, LOAD) for u in (90, 82, 70, 55, 40)]
    assert states == [ZoneState.OVERLOADED, ZoneState.HIGH, ZoneState.OPTIMAL, ZoneState.LOW,
                      ZoneState.UNDERUTILIZED]  # fmt: skip


def test_overload_shifts_to_the_zone_with_headroom() -> None:
    s = Loads()
    s.metric(metric("a", 65))
    s.metric(metric("b", 110, 200))  # 55%: below the band, no scale-down
    assert s.decisions == []
    s.metric(metric("a", 95, minutes=1))
    (shift,) = s.decisions
    assert shift.action is BalancingAction.SHIFT
    assert (shift.zone_id, shift.target_zone_id, shift.amount_kw) == ("a", "b", 25.0)
    assert shift.expected_utilization_pct == {"a": 70.0, "b": 67.5}
    assert (
        shift.status is DecisionStatus.PENDING
        and decision_facility(shift.decision_id) == "facility-001"
    )


def test_overload_without_headroom_scales_up_to_the_midpoint() -> None:
    s = Loads()
    s.metric(metric("a", 79))
    s.metric(metric("b", 90, minutes=1))
    (up,) = s.decisions
    assert up.action is BalancingAction.SCALE_UP and up.zone_id == "b"
    assert up.amount_kw == pytest.approx(90 / 0.7 - 100, abs=1e-3)
    assert up.expected_utilization_pct == {"b": 70.0}


def test_hysteresis_and_cooldown_prevent_flapping() -> None:
    s = Loads()
    s.metric(metric("a", 90))  # scale up
    for m in range(1, 20):  # oscillates around the threshold: no new decision
        s.metric(metric("a", 84 if m % 2 else 90, minutes=m))
    assert len(s.decisions) == 1
    s.metric(metric("a", 79, minutes=20))  # back within the band: re-armed
    s.metric(metric("a", 90, minutes=21))  # cooldown (300 s from minute 0) has passed
    assert len(s.decisions) == 2
    s.metric(metric("a", 79, minutes=22))
    s.metric(metric("a", 90, minutes=23))  # re-armed, but within the cooldown
    assert len(s.decisions) == 2


def test_underutilized_zone_scales_down() -> None:
    s = Loads()
    s.metric(metric("a", 35))
    (down,) = s.decisions
    assert down.action is BalancingAction.SCALE_DOWN
    assert down.amount_kw == pytest.approx(100 - 35 / 0.7, abs=1e-3)


def test_execute_happens_once_and_a_repeat_says_so() -> None:
    s = Loads(LoadSettings(auto_decisions=False))
    s.metric(metric("a", 70))
    s.metric(metric("b", 50))
    manual = ManualDecision(
        facility_id="facility-001",
        action=BalancingAction.SHIFT,
        zone_id="a",
        target_zone_id="b",
        amount_kw=10,
        reason="test",
    )
    created = s.command(CommandKind.CREATE, decision=manual)
    (decision,) = created.decisions
    assert created.accepted and decision.expected_utilization_pct == {"a": 60.0, "b": 60.0}
    first = s.command(CommandKind.EXECUTE, minutes=1, decision_id=decision.decision_id)
    second = s.command(CommandKind.EXECUTE, minutes=2, decision_id=decision.decision_id)
    assert first.executed and not first.already_executed
    assert second.accepted and second.already_executed and not second.executed
    assert [d.status for d in s.decisions] == [DecisionStatus.PENDING, DecisionStatus.EXECUTED]
    assert s.state is not None and s.state.pending() == []
    unknown = s.command(CommandKind.EXECUTE, decision_id="facility-001.d99")
    assert not unknown.accepted


def test_manual_decision_on_an_unknown_zone_is_refused() -> None:
    s = Loads()
    s.metric(metric("a", 70))
    manual = ManualDecision(facility_id="facility-001", action=BalancingAction.SCALE_UP,
                            zone_id="zz", amount_kw=10, reason="test")  # fmt: skip
    result = s.command(CommandKind.CREATE, decision=manual)
    assert not result.accepted and "unknown zone" in result.message


def test_load_decisions_are_deterministic() -> None:
    def run() -> list[bytes]:
        s = Loads()
        for m in range(50):
            s.metric(metric("abc"[m % 3], (m * 37) % 100, minutes=m))
        return [d.to_json_bytes() for d in s.decisions]

    first = run()
    assert first and first == run()


# Recommendations


def test_recommendations_come_from_the_facility_data_with_savings() -> None:
    s = Stream()
    history = GridIntensityHistory()
    for hour in range(24):
        g = 600 if 17 <= hour <= 20 else 200
        history.add(GridIntensity(zone="Z", intensity_g_co2e_per_kwh=g,
                                  valid_from=BASE_TIME.replace(hour=hour, minute=0)))  # fmt: skip
    ctx = EmissionContext(grid=history)
    day = BASE_TIME.replace(hour=0, minute=0)
    for hour in range(24):
        s.emit(emission(hour, 100.0, ctx, grid_zone="Z", timestamp=day + timedelta(hours=hour)))
    s.emit(emission(100, 50.0, ctx, energy_source=EnergySource.COAL))
    s.emit(emission(101, 50.0, ctx, energy_source=EnergySource.SOLAR))
    s.emit(emission(102, 50.0, ctx, energy_source=EnergySource.BATTERY))  # stores, never replaces
    load = Loads()
    load.metric(metric("a", 90))
    found = optimization.recommend(s.state, load.state, LOAD, OptimizationSettings())
    kinds = {r.kind: r for r in found}
    shift = kinds[optimization.RecommendationKind.SHIFT_LOAD_IN_TIME]
    assert shift.estimated_savings_kg_co2e == pytest.approx(0.2 * 400 * (0.6 - 0.2))
    mix = kinds[optimization.RecommendationKind.CHANGE_SOURCE_MIX]
    assert mix.estimated_savings_kg_co2e == pytest.approx(0.1 * 50 * (0.95 - 0.041))
    peak = kinds[optimization.RecommendationKind.REDUCE_PEAK_UTILIZATION]
    assert peak.estimated_savings_kwh == pytest.approx(10 * 24 * 0.05)
    assert found == sorted(found, key=lambda r: -r.estimated_savings_kg_co2e)


def test_the_same_metric_again_changes_nothing() -> None:
    """A forwarded copy repeated after a restart reaches the rules at a new position."""
    s = Loads(LOAD.model_copy(update={"cooldown_s": 0.0}))
    s.metric(metric("a", 65))
    s.metric(metric("b", 110, 200))
    s.metric(metric("a", 95, minutes=1))
    assert len(s.decisions) == 1
    before = s.state
    s.metric(metric("a", 95, minutes=1))
    assert s.decisions[1:] == []
    assert s.state is not None and before is not None
    assert s.state.zones == before.zones and s.state.decisions == before.decisions
