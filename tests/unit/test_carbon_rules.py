"""The carbon rules: emissions, totals, plausibility and idempotency."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.carbon.recent import ReadingIndex, RecentReadings
from agents.carbon.rules import (
    DayTotals,
    check_reading,
    check_record,
    emission_of,
    process_readings,
)
from agents.carbon.settings import CarbonSettings
from app.core.dedup import DedupIndex, Position
from app.core.retention import DayIndex
from schemas.carbon_emission import AccountingMethod, CarbonEmission
from schemas.common import EnergySource
from schemas.dead_letter import DeadLetterReason
from tests.factories import BASE_TIME, batch, reading

CONFIG = CarbonSettings()
PRODUCED_MS = int((BASE_TIME + timedelta(hours=1)).timestamp() * 1000)


def fresh_index() -> DedupIndex:
    return DedupIndex(CONFIG.dedup_window_s, CONFIG.dedup_max_events_per_partition)


class TestEmission:
    @pytest.mark.parametrize(
        ("source", "factor"),
        [
            (EnergySource.COAL, 0.95),
            (EnergySource.NATURAL_GAS, 0.45),
            (EnergySource.GRID, 0.42),
            (EnergySource.SOLAR, 0.041),
            (EnergySource.HYDRO, 0.024),
            (EnergySource.NUCLEAR, 0.012),
            (EnergySource.WIND, 0.011),
            (EnergySource.BATTERY, 0.0),
        ],
    )
    def test_reference_factors(self, source: EnergySource, factor: float) -> None:
        emission = emission_of(reading(energy_source=source, consumption_kwh=100.0), CONFIG)
        assert emission.factor_kg_co2e_per_kwh == factor
        assert emission.emissions_kg_co2e == pytest.approx(100.0 * factor, abs=1e-6)
        assert emission.factor_set == "reference"
        assert emission.factor_set_version == "2024.1"
        assert emission.accounting_method is AccountingMethod.LOCATION_BASED

    def test_ipcc_set_is_selectable_by_name(self) -> None:
        config = CarbonSettings(factor_set="ipcc-ar5-lifecycle")
        emission = emission_of(reading(energy_source=EnergySource.COAL, consumption_kwh=10), config)
        assert emission.factor_kg_co2e_per_kwh == 0.820
        assert emission.emissions_kg_co2e == pytest.approx(8.2)
        assert emission.factor_set_version == "AR5-WGIII-2014-A.III.2"

    @pytest.mark.parametrize("source", list(EnergySource))
    def test_rule_output_is_byte_identical_to_the_contract(self, source: EnergySource) -> None:
        """The fast dataclass and the published CarbonEmission model encode the same bytes."""
        emission = emission_of(reading(7, energy_source=source, consumption_kwh=12.345), CONFIG)
        fast = emission.to_json_bytes()
        contract = CarbonEmission.from_json_bytes(fast)
        assert contract.to_json_bytes() == fast
        assert emission.to_contract() == contract
        assert list(orjson.loads(fast)) == list(CarbonEmission.model_fields)

    def test_serialisation_is_byte_identical_across_runs(self) -> None:
        first = emission_of(reading(3), CONFIG).to_json_bytes()
        again = emission_of(reading(3), CONFIG).to_json_bytes()
        assert first == again
        assert b'"timestamp":"2024-01-15T10:33:00Z"' in first


class TestPlausibility:
    def test_plausible_reading_passes(self) -> None:
        assert check_reading(reading(), PRODUCED_MS, CONFIG) is None

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"consumption_kwh": -0.001}, DeadLetterReason.NEGATIVE_CONSUMPTION),
            ({"power_factor": 1.01}, DeadLetterReason.POWER_FACTOR_OUT_OF_RANGE),
            ({"power_factor": -0.1}, DeadLetterReason.POWER_FACTOR_OUT_OF_RANGE),
            ({"voltage_v": -1.0}, DeadLetterReason.NEGATIVE_MEASUREMENT),
            ({"current_a": -1.0}, DeadLetterReason.NEGATIVE_MEASUREMENT),
        ],
    )
    def test_impossible_readings_are_rejected(
        self, overrides: dict[str, float], reason: DeadLetterReason
    ) -> None:
        rejection = check_reading(reading(**overrides), PRODUCED_MS, CONFIG)
        assert rejection is not None and rejection.reason is reason

    def test_future_skew_is_measured_against_the_record_timestamp(self) -> None:
        produced = int(BASE_TIME.timestamp() * 1000)
        at_limit = reading(timestamp=BASE_TIME + timedelta(seconds=CONFIG.max_future_skew_s))
        beyond = reading(timestamp=BASE_TIME + timedelta(seconds=CONFIG.max_future_skew_s + 1))
        assert check_reading(at_limit, produced, CONFIG) is None
        rejection = check_reading(beyond, produced, CONFIG)
        assert rejection is not None and rejection.reason is DeadLetterReason.TIMESTAMP_IN_FUTURE

    def test_record_key_must_be_the_facility(self) -> None:
        rejection = check_record(b"facility-002", reading(), PRODUCED_MS, CONFIG)
        assert rejection is not None and rejection.reason is DeadLetterReason.KEY_MISMATCH
        assert check_record(None, reading(), PRODUCED_MS, CONFIG) is not None
        assert check_record(b"facility-001", reading(), PRODUCED_MS, CONFIG) is None

    def test_batch_must_hold_one_facility(self) -> None:
        mixed = batch([reading(0), reading(1, facility_id="facility-002")])
        rejection = check_record(b"facility-001", mixed, PRODUCED_MS, CONFIG)
        assert rejection is not None
        assert rejection.reason is DeadLetterReason.BATCH_FACILITY_MISMATCH

    def test_one_bad_reading_rejects_the_whole_batch(self) -> None:
        bad = batch([reading(0), reading(1, consumption_kwh=-5)])
        rejection = check_record(b"facility-001", bad, PRODUCED_MS, CONFIG)
        assert rejection is not None and rejection.reason is DeadLetterReason.NEGATIVE_CONSUMPTION


class TestTotals:
    def test_readings_accumulate_per_source_and_day(self) -> None:
        items = [
            reading(0, consumption_kwh=10.0),
            reading(1, consumption_kwh=5.0, energy_source=EnergySource.SOLAR),
            reading(2, consumption_kwh=2.5),
        ]
        outcome = process_readings(
            items, Position(partition=0, offset=7), {}, fresh_index(), CONFIG
        )
        day = outcome.updated_days[BASE_TIME.date()]
        assert day.by_source[EnergySource.GRID].energy_mwh == 12_500_000
        assert day.by_source[EnergySource.GRID].emissions_mg_co2e == 5_250_000
        assert day.by_source[EnergySource.GRID].readings == 2
        assert day.by_source[EnergySource.SOLAR].emissions_kg_co2e == pytest.approx(0.205)
        assert day.applied_offsets == {0: 7}
        assert len(outcome.emissions) == 3

    def test_readings_across_midnight_update_two_days(self) -> None:
        late = reading(0, timestamp=BASE_TIME.replace(hour=23, minute=59))
        early = reading(1, timestamp=BASE_TIME.replace(hour=0, minute=1) + timedelta(days=1))
        outcome = process_readings(
            [late, early], Position(partition=0, offset=1), {}, fresh_index(), CONFIG
        )
        assert sorted(outcome.updated_days) == [late.timestamp.date(), early.timestamp.date()]

    def test_redelivered_record_is_not_counted_again_but_re_emitted(self) -> None:
        items = [reading(0), reading(1)]
        position = Position(partition=2, offset=40)
        index = fresh_index()
        first = process_readings(items, position, {}, index, CONFIG)
        assert first.segment is not None
        index.add(first.segment)
        again = process_readings(items, position, first.updated_days, index, CONFIG)
        assert again.updated_days == {}
        assert again.replayed_event_ids == ["evt-000000", "evt-000001"]
        assert [e.to_json_bytes() for e in again.emissions] == [
            e.to_json_bytes() for e in first.emissions
        ]
        assert again.applied == []

    def test_redelivery_after_lost_totals_write_applies_once(self) -> None:
        """The dedup segment survived the crash but the totals write did not."""
        items = [reading(0)]
        position = Position(partition=0, offset=3)
        index = fresh_index()
        first = process_readings(items, position, {}, index, CONFIG)
        assert first.segment is not None
        index.add(first.segment)
        again = process_readings(items, position, {}, index, CONFIG)
        assert again.updated_days == first.updated_days

    def test_same_event_id_in_a_later_record_is_a_duplicate(self) -> None:
        index = fresh_index()
        first = process_readings([reading(0)], Position(partition=0, offset=1), {}, index, CONFIG)
        assert first.segment is not None
        index.add(first.segment)
        later = process_readings(
            [reading(0), reading(1)],
            Position(partition=0, offset=9),
            first.updated_days,
            index,
            CONFIG,
        )
        assert later.duplicate_event_ids == ["evt-000000"]
        day = later.updated_days[BASE_TIME.date()]
        assert day.by_source[EnergySource.GRID].readings == 2
        assert [e.event_id for e in later.emissions] == ["evt-000001"]

    def test_duplicate_inside_one_batch_counts_once(self) -> None:
        outcome = process_readings(
            [reading(0), reading(0)], Position(partition=0, offset=1), {}, fresh_index(), CONFIG
        )
        assert outcome.duplicate_event_ids == ["evt-000000"]
        assert outcome.updated_days[BASE_TIME.date()].by_source[EnergySource.GRID].readings == 1


consumptions = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(consumptions, st.randoms(use_true_random=False), st.integers(min_value=1, max_value=5))
def test_totals_do_not_depend_on_batching_order_or_replays(
    values: list[float], rnd: object, batch_size: int
) -> None:
    """Same readings, any batching, shuffled, with every record delivered twice: same totals."""
    import random

    assert isinstance(rnd, random.Random)
    items = [reading(i, consumption_kwh=v) for i, v in enumerate(values)]
    expected = sum(round(v * 1_000_000) for v in values)
    shuffled = items[:]
    rnd.shuffle(shuffled)
    index = fresh_index()
    days: dict = {}
    for offset, start in enumerate(range(0, len(shuffled), batch_size)):
        chunk = shuffled[start : start + batch_size]
        for _delivery in range(2):
            outcome = process_readings(
                chunk, Position(partition=0, offset=offset), days, index, CONFIG
            )
            days.update(outcome.updated_days)
            if outcome.segment is not None:
                index.add(outcome.segment)
    totals: DayTotals = days[BASE_TIME.date()]
    assert totals.by_source[EnergySource.GRID].energy_mwh == expected
    assert totals.by_source[EnergySource.GRID].readings == len(values)


def contract(n: int) -> CarbonEmission:
    return emission_of(reading(n), CONFIG).to_contract()


class TestViews:
    def test_recent_readings_are_bounded_and_replay_safe(self) -> None:
        emissions = [emission_of(reading(i), CONFIG).to_contract() for i in range(5)]
        recent = RecentReadings(facility_id="facility-001").with_emissions(emissions, limit=3)
        assert [e.event_id for e in recent.items] == ["evt-000002", "evt-000003", "evt-000004"]
        assert recent.with_emissions(emissions[-2:], limit=3) is recent
        assert recent.find("evt-000003") == emissions[3]
        assert recent.find("evt-000000") is None

    def test_the_reading_index_follows_bounded_rings(self) -> None:
        index = ReadingIndex()
        a = RecentReadings(facility_id="facility-001")
        a2 = a.with_emissions([contract(i) for i in range(3)], limit=3)
        index.replace(a, a2)
        b = RecentReadings(facility_id="facility-002").with_emissions(
            [emission_of(reading(1, facility_id="facility-002"), CONFIG).to_contract()], limit=3
        )
        index.replace(None, b)
        assert index.facilities("evt-000001") == ["facility-001", "facility-002"]
        a3 = a2.with_emissions([contract(i) for i in (3, 4)], limit=3)
        index.replace(a2, a3)  # the ring dropped evt-000000 and evt-000001
        assert index.facilities("evt-000000") == []
        assert index.facilities("evt-000001") == ["facility-002"]
        assert len(index) == 4
        index.rebuild([a3])
        assert index.facilities("evt-000001") == [] and len(index) == 3

    def test_day_index_expires_days_beyond_retention(self) -> None:
        day0 = BASE_TIME.date()
        index, expired = DayIndex(entity_id="f").with_days([day0], retention_days=2)
        assert index.days == (day0,) and expired == []
        index, expired = index.with_days([day0 + timedelta(days=2)], retention_days=2)
        assert index.days == (day0 + timedelta(days=2),)
        assert expired == [day0]


def test_a_record_timestamp_of_zero_or_less_is_refused() -> None:
    """Issue 16: a record timestamp of 0 skipped the clock check; offline (None) it is
    still skipped, since replayed files carry no Kafka timestamps."""
    from app.core.checks import future_rejection

    stamp = reading(0).timestamp
    for bad in (0, -1):
        rejection = future_rejection("e", stamp, bad, 300)
        assert rejection is not None and "cannot be checked" in rejection.message
    assert future_rejection("e", stamp, None, 300) is None
