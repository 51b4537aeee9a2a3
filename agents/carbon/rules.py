"""Carbon rules: meter readings → emission records and per-facility, per-source, per-day totals.

Pure: ``(state, readings, config) -> (new state, outputs)``. No I/O, no wall clock. Totals are
integers (milliwatt-hours and milligrams CO2e, rounded once per reading), so a sum does not
depend on the order it was added in and tests can compare totals exactly.

Idempotency has two layers, both decided here:

* Kafka re-delivery (crash, rebalance): every :class:`DayTotals` remembers the highest source
  offset applied to it, in the same record as the totals, so one changelog write carries both.
  A re-delivered record is recognised and not counted again; its emissions are re-emitted,
  byte-identical, in case the first emission was lost with the crash.
* Producer duplicates (same ``event_id`` published again): the dedup index says which record
  applied an event id first; a later record carrying it is skipped and reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.carbon.settings import CarbonSettings
from app.core.checks import Rejection, future_rejection, key_rejection
from app.core.dedup import DedupIndex, DedupSegment, Position
from app.core.grid import EmissionContext
from app.core.units import MG_PER_KG, MWH_PER_KWH
from app.core.watermark import Watermarked
from schemas.carbon_budget import ContractualInstrument
from schemas.carbon_emission import AccountingMethod, CarbonEmission, IntensitySource
from schemas.common import EnergySource
from schemas.dead_letter import DeadLetterReason
from schemas.meter_reading import MeterReading, MeterReadingBatch


class SourceTotals(BaseModel):
    """Running totals of one energy source on one facility-day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    energy_mwh: int = 0
    emissions_mg_co2e: int = 0
    """Location-based."""
    readings: int = 0
    market_emissions_mg_co2e: int = 0
    """Market-based (the facility's contractual instruments applied)."""

    @property
    def energy_kwh(self) -> float:
        return self.energy_mwh / MWH_PER_KWH

    @property
    def emissions_kg_co2e(self) -> float:
        return self.emissions_mg_co2e / MG_PER_KG

    @property
    def market_emissions_kg_co2e(self) -> float:
        return self.market_emissions_mg_co2e / MG_PER_KG


class DayTotals(Watermarked):
    """One facility's totals for one UTC day, and how far its source partitions were applied."""

    facility_id: str
    utc_day: date
    by_source: dict[EnergySource, SourceTotals] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return day_key(self.facility_id, self.utc_day)


def day_key(facility_id: str, utc_day: date) -> str:
    """Table key of a facility-day; sorts by day within a facility."""
    return f"{facility_id}|{utc_day.isoformat()}"


@dataclass(slots=True)
class CarbonOutcome:
    """What processing one source record decided."""

    emissions: list[Emission] = field(default_factory=list)
    updated_days: dict[date, DayTotals] = field(default_factory=dict)
    duplicate_event_ids: list[str] = field(default_factory=list)
    replayed_event_ids: list[str] = field(default_factory=list)
    segments: list[DedupSegment] = field(default_factory=list)
    """One per source record with a reading not seen before, at that record's position."""
    emitted: list[int] = field(default_factory=list)
    """How many of ``emissions`` each source record gave, in order."""

    @property
    def segment(self) -> DedupSegment | None:
        """The dedup segment of a single record's outcome."""
        return self.segments[-1] if self.segments else None

    @property
    def applied(self) -> list[Emission]:
        """Emissions counted into totals by this record (not re-emitted replays)."""
        replayed = set(self.replayed_event_ids)
        return [e for e in self.emissions if e.event_id not in replayed]


def check_reading(
    reading: MeterReading, record_timestamp_ms: int | None, config: CarbonSettings
) -> Rejection | None:
    """Reject physically impossible readings; ``None`` when the reading is plausible.

    The future-skew check compares against the Kafka record's timestamp, which is part of the
    input, so the verdict is the same on every replay.
    """
    if reading.consumption_kwh < 0:
        return Rejection(
            DeadLetterReason.NEGATIVE_CONSUMPTION,
            f"reading {reading.event_id}: consumption_kwh {reading.consumption_kwh} < 0",
        )
    if not 0.0 <= reading.power_factor <= 1.0:
        return Rejection(
            DeadLetterReason.POWER_FACTOR_OUT_OF_RANGE,
            f"reading {reading.event_id}: power_factor {reading.power_factor} outside 0..1",
        )
    if reading.voltage_v < 0 or reading.current_a < 0:
        return Rejection(
            DeadLetterReason.NEGATIVE_MEASUREMENT,
            f"reading {reading.event_id}: voltage_v and current_a must be >= 0",
        )
    return future_rejection(
        reading.event_id, reading.timestamp, record_timestamp_ms, config.max_future_skew_s
    )


def check_record(
    key: bytes | None,
    readings: MeterReading | MeterReadingBatch,
    record_timestamp_ms: int | None,
    config: CarbonSettings,
) -> Rejection | None:
    """Check a whole source record: key, batch consistency, then every reading.

    The key must be the facility id (see :func:`app.core.checks.key_rejection`).
    """
    if isinstance(readings, MeterReadingBatch):
        facility_id = readings.facility_id
        for reading in readings.readings:
            if reading.facility_id != facility_id:
                return Rejection(
                    DeadLetterReason.BATCH_FACILITY_MISMATCH,
                    f"batch {readings.batch_id} is for facility {facility_id!r} but reading"
                    f" {reading.event_id} is for {reading.facility_id!r}",
                )
        items: Sequence[MeterReading] = readings.readings
    else:
        facility_id = readings.facility_id
        items = (readings,)
    rejection = key_rejection(key, facility_id, "facility_id")
    if rejection is not None:
        return rejection
    for reading in items:
        rejection = check_reading(reading, record_timestamp_ms, config)
        if rejection is not None:
            return rejection
    return None


@dataclass(frozen=True, slots=True)
class Emission:
    """One emission record as the rules produce it: the :class:`CarbonEmission` contract's
    fields in the contract's order, as a slotted dataclass that orjson encodes natively.

    Building and encoding a pydantic model per reading cost more than the rest of the rule;
    ``tests/unit/test_carbon_rules.py`` pins the bytes to the contract's own encoding.
    """

    schema_version: int
    event_id: str
    facility_id: str
    meter_id: str
    zone_id: str
    energy_source: EnergySource
    timestamp: datetime
    utc_day: date
    consumption_kwh: float
    emissions_kg_co2e: float
    factor_kg_co2e_per_kwh: float
    factor_set: str
    factor_set_version: str
    accounting_method: AccountingMethod
    grid_zone: str | None
    intensity_source: IntensitySource
    intensity_valid_from: datetime | None
    market_based_kg_co2e: float
    market_factor_kg_co2e_per_kwh: float

    def to_json_bytes(self) -> bytes:
        """The carbon-emissions record value, byte-identical to ``CarbonEmission``'s."""
        return orjson.dumps(self, option=orjson.OPT_UTC_Z)

    def to_contract(self) -> CarbonEmission:
        """The contract model (for tables and the API). Validated, although the fields are
        valid already: pydantic's ``model_construct`` costs more (4.4 against 3.8 µs)."""
        return CarbonEmission(**{name: getattr(self, name) for name in self.__slots__})


def emission_of(
    reading: MeterReading, config: CarbonSettings, context: EmissionContext | None = None
) -> Emission:
    """Both Scope 2 figures of one reading.

    Location-based: grid electricity at the grid intensity in force in the reading's
    ``grid_zone`` at its event time when one is known, else the active static factor set.
    Market-based: grid electricity covered by the facility's contractual instruments at
    their factors, the rest at the residual mix factor (the location factor when none is
    configured); other sources are generated on site and count the same in both.
    """
    factor_set = config.active_factor_set
    factor = factor_set.factors_kg_co2e_per_kwh[reading.energy_source]
    intensity_source = IntensitySource.STATIC_FACTOR
    valid_from: datetime | None = None
    market_factor = factor
    if reading.energy_source is EnergySource.GRID:
        if context is not None and context.grid is not None and reading.grid_zone is not None:
            found = context.grid.at(reading.grid_zone, reading.timestamp)
            if found is not None:
                factor = found[0] / 1000.0
                valid_from = found[1]
                intensity_source = IntensitySource.GRID_INTENSITY
        instruments = context.instruments.get(reading.facility_id, ()) if context else ()
        residual = config.residual_mix_kg_co2e_per_kwh
        market_factor = _market_factor(instruments, factor if residual is None else residual)
    emissions_mg = round(reading.consumption_kwh * factor * MG_PER_KG)
    market_mg = round(reading.consumption_kwh * market_factor * MG_PER_KG)
    return Emission(
        schema_version=1,
        event_id=reading.event_id,
        facility_id=reading.facility_id,
        meter_id=reading.meter_id,
        zone_id=reading.zone_id,
        energy_source=reading.energy_source,
        timestamp=reading.timestamp,
        utc_day=reading.timestamp.date(),
        consumption_kwh=reading.consumption_kwh,
        emissions_kg_co2e=emissions_mg / MG_PER_KG,
        factor_kg_co2e_per_kwh=factor,
        factor_set=config.factor_set,
        factor_set_version=factor_set.version,
        accounting_method=AccountingMethod.LOCATION_BASED,
        grid_zone=reading.grid_zone,
        intensity_source=intensity_source,
        intensity_valid_from=valid_from,
        market_based_kg_co2e=market_mg / MG_PER_KG,
        market_factor_kg_co2e_per_kwh=market_factor,
    )


def _market_factor(instruments: Sequence[ContractualInstrument], residual: float) -> float:
    """The blended market-based factor: each instrument's share at its factor, the uncovered
    share at the residual mix."""
    if not instruments:  # most facilities: the same float as the sums below give
        return residual
    covered = sum(i.share for i in instruments)
    blended = sum(i.share * i.factor_kg_co2e_per_kwh for i in instruments)
    return blended + max(0.0, 1.0 - covered) * residual


def add_to_totals(totals: DayTotals, emissions: Sequence[Emission]) -> DayTotals:
    """``totals`` with ``emissions`` added to their sources (one copy, however many)."""
    sums: dict[EnergySource, list[int]] = {}
    for emission in emissions:
        acc = sums.setdefault(emission.energy_source, [0, 0, 0, 0])
        acc[0] += round(emission.consumption_kwh * MWH_PER_KWH)
        acc[1] += round(emission.emissions_kg_co2e * MG_PER_KG)
        acc[2] += 1
        acc[3] += round(emission.market_based_kg_co2e * MG_PER_KG)
    by_source = dict(totals.by_source)
    for source, (energy_mwh, emissions_mg, readings, market_mg) in sums.items():
        before = by_source.get(source, SourceTotals())
        by_source[source] = SourceTotals(
            energy_mwh=before.energy_mwh + energy_mwh,
            emissions_mg_co2e=before.emissions_mg_co2e + emissions_mg,
            readings=before.readings + readings,
            market_emissions_mg_co2e=before.market_emissions_mg_co2e + market_mg,
        )
    return totals.model_copy(update={"by_source": by_source})


def process_readings(
    readings: Sequence[MeterReading],
    position: Position,
    days: Mapping[date, DayTotals],
    dedup: DedupIndex,
    config: CarbonSettings,
    context: EmissionContext | None = None,
) -> CarbonOutcome:
    """Decide one source record's readings against the current state.

    ``days`` holds the current totals of the days these readings fall on (missing = none yet).
    Returns the emissions to publish, the day totals that changed (each stamped with
    ``position``) and the dedup segment to persist. Does not mutate its inputs.
    """
    return process_records([(position, readings)], days, dedup, config, context)


def process_records(
    records: Sequence[tuple[Position, Sequence[MeterReading]]],
    days: Mapping[date, DayTotals],
    dedup: DedupIndex,
    config: CarbonSettings,
    context: EmissionContext | None = None,
) -> CarbonOutcome:
    """Decide several source records of one facility and partition, in offset order, in one
    pass: the same emissions, totals and dedup segments as deciding them one at a time
    (each record's readings are checked against its own position), with each day's totals
    written once, stamped with the last record that counted into it.

    ``days`` holds the totals before the first record. Does not mutate its inputs.
    """
    outcome = CarbonOutcome()
    seen_before: set[str] = set()
    to_apply: dict[date, list[Emission]] = {}
    stamps: dict[date, Position] = {}
    """Per day, the last record that counted into it: its totals are stamped with that."""
    facility_id = records[0][1][0].facility_id
    for position, readings in records:
        seen_here: set[str] = set()
        emitted_before = len(outcome.emissions)
        for reading in readings:
            event_id = reading.event_id
            first = dedup.lookup(facility_id, event_id)
            if (
                event_id in seen_here
                or event_id in seen_before
                or (first is not None and first.position != position)
            ):
                outcome.duplicate_event_ids.append(event_id)
                continue
            seen_here.add(event_id)
            emission = emission_of(reading, config, context)
            outcome.emissions.append(emission)
            current = days.get(emission.utc_day)
            if current is not None and current.has_applied(position):
                outcome.replayed_event_ids.append(event_id)
                continue
            to_apply.setdefault(emission.utc_day, []).append(emission)
            stamps[emission.utc_day] = position
        outcome.emitted.append(len(outcome.emissions) - emitted_before)
        if seen_here:
            outcome.segments.append(
                DedupSegment(
                    entity_id=facility_id,
                    position=position,
                    max_event_time_s=max(r.timestamp.timestamp() for r in readings),
                    event_ids=tuple(sorted(seen_here)),
                )
            )
            seen_before |= seen_here
    for utc_day, emissions in to_apply.items():
        base = days.get(utc_day) or DayTotals(facility_id=facility_id, utc_day=utc_day)
        outcome.updated_days[utc_day] = add_to_totals(base, emissions).stamped(stamps[utc_day])
    return outcome
