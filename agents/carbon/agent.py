"""meter-readings → carbon-emissions, with per-facility/source/day totals in Faust tables.

Thin adapter: decode, dead-letter what cannot be accepted, call the carbon rules, write the
tables, send the emissions. All decisions are in :mod:`agents.carbon.rules`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Protocol

from agents.carbon.metrics import CarbonMetrics
from agents.carbon.recent import ReadingIndex, RecentReadings
from agents.carbon.rules import (
    CarbonOutcome,
    DayTotals,
    Emission,
    check_record,
    day_key,
    process_records,
)
from agents.facility.rules.carbon_state import BudgetOutcome, BudgetOutputs, CountedEmission
from app.core.checks import Rejection
from app.core.dedup import Position
from app.core.grid import EmissionContext
from app.core.retention import DayIndex
from app.metrics import GRAMS_PER_KG, JOULES_PER_KWH
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor
from app.runtime.feeds import GridIntensityFeed, InstrumentsFeed
from app.runtime.producer import send_same_key
from app.runtime.template import Admitted, ApplyBatch, Pipeline
from schemas.carbon_emission import CarbonEmission
from schemas.meter_reading import MeterReading, MeterReadingBatch
from schemas.seed_forms import parse_reading_record

log = logging.getLogger(__name__)

PIPELINE = "carbon"
SOURCE = "meter-readings"


class BudgetUsage(Protocol):
    """What counts a record's emissions into its facility's budget (``agents.facility.agent``)."""

    def decide(
        self, facility_id: str, records: Sequence[tuple[Position, Sequence[CountedEmission]]]
    ) -> list[tuple[Position, BudgetOutcome]]:
        """What records of one facility and partition (offset order) do to the budget, as
        outcomes to write at their positions; writes nothing, so a rules bug leaves no
        half-written record behind."""
        ...

    def write(self, facility_id: str, outcome: BudgetOutcome, position: Position) -> BudgetOutputs:
        """Persist ``outcome`` (idempotent per position); the alerts to send."""
        ...

    async def send(self, facility_id: str, outputs: BudgetOutputs) -> None: ...


ReadingRecord = MeterReading | MeterReadingBatch
"""A meter-readings record: one reading, or a batch envelope of one facility's readings."""


@dataclass(frozen=True, slots=True)
class CarbonDecision:
    """What the rules decided for meter-readings records of one facility (one record, or a
    batch's records of that facility)."""

    facility_id: str
    records: int
    outcome: CarbonOutcome
    budget: list[tuple[Position, BudgetOutcome]]
    """What they do to the facility's carbon budget, when budgets are on."""
    last: Position
    """The position of the last of the records."""


def _readings(record: ReadingRecord) -> list[MeterReading]:
    return record.readings if isinstance(record, MeterReadingBatch) else [record]


class IndexState(Enum):
    """Whether :class:`ReadingIndex` matches the rings this worker holds."""

    CURRENT = "current"
    STALE = "stale"
    """The rings changed wholesale (a rebalance completed): rebuild once, then current."""
    REBALANCING = "rebalancing"
    """Partitions were assigned and their rings may still be recovering: rebuild per lookup."""


class CarbonPipeline(Pipeline[ReadingRecord, "CarbonDecision"]):
    """The carbon agent, its tables and the local queries the HTTP views use."""

    def __init__(self, gov: Governor) -> None:
        super().__init__(gov, PIPELINE, SOURCE)
        self.config = gov.settings.carbon
        self.carbon_metrics = CarbonMetrics(gov.metrics)
        self.emissions_topic = self.output("carbon-emissions")
        self.totals = self.table(
            "carbon-day-totals", DayTotals, "Energy and emissions per facility, source, UTC day"
        )
        self.days = self.table("carbon-facility-days", DayIndex, "UTC days with totals")
        self.recent = self.table(
            "recent-readings", RecentReadings, "Newest readings per facility (bounded)"
        )
        self.facilities = self.entity_bound(self.recent, self.config.max_facilities_per_partition)
        self.readings_dedup = self.dedup_store(
            "reading-dedup",
            self.config.dedup_window_s,
            self.config.dedup_max_events_per_partition,
        )
        self.grid = GridIntensityFeed(gov.settings)
        self.instruments = InstrumentsFeed(gov.settings)
        gov.faust.task(self.grid.run)
        gov.faust.task(self.instruments.run)
        self.context = EmissionContext(self.grid.history, self.instruments.instruments)
        self.reading_index = ReadingIndex()
        self.budget_usage: BudgetUsage | None = None
        """Set by the facility pipelines' registration."""
        self._index_state = IndexState.STALE
        self.on_rebalance(self._rings_changing, self._rings_changed)
        self.start_agent("carbon-emissions")

    def _rings_changing(self) -> None:
        self._index_state = IndexState.REBALANCING

    def _rings_changed(self) -> None:
        self._index_state = IndexState.STALE

    async def ready(self) -> None:
        """Grid intensities and instruments known at start apply from the first reading."""
        await self.grid.caught_up.wait()
        await self.instruments.caught_up.wait()

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> ReadingRecord:
        return parse_reading_record(value)

    def check(
        self, key: bytes | None, record: ReadingRecord, timestamp_ms: int | None
    ) -> Rejection | None:
        return check_record(key, record, timestamp_ms, self.config)

    def entity(self, record: ReadingRecord) -> tuple[EntityBound, str]:
        return self.facilities, _readings(record)[0].facility_id

    def decide(self, record: ReadingRecord, position: Position) -> CarbonDecision:
        """Every rule runs before anything is written: the emissions, and what they do to
        the facility's carbon budget."""
        return self._decide_records([(position, _readings(record))])

    async def apply(
        self, record: ReadingRecord, decision: CarbonDecision, position: Position
    ) -> None:
        await self._apply(decision)
        self._count(decision.outcome, decision.records)

    def decide_together(self, batch: Sequence[Admitted[ReadingRecord]]) -> ApplyBatch:
        """A batch's records decided per facility at once: one rules pass, one write per
        key, one send per output topic and facility; the same decisions as one at a time.

        Every facility is decided before anything is written. Then the writes that a
        partition keeps in offset order are made in that order: each facility's budget
        outbox entry (at its last record) with the facilities taken by their last record,
        and the dedup segments (one per record, facilities interleaved) all at the end,
        sorted. Written facility by facility, a segment below one already written was
        dropped (the store takes a partition's segments in order), and a re-sent reading
        of that record counted again in a later batch."""
        by_facility: dict[str, list[Admitted[ReadingRecord]]] = {}
        for item in batch:
            by_facility.setdefault(_readings(item.event)[0].facility_id, []).append(item)
        decisions = [
            self._decide_records([(i.position, _readings(i.event)) for i in items])
            for items in by_facility.values()
        ]
        return lambda: self._apply_together(decisions, len(batch))

    async def _apply_together(self, decisions: list[CarbonDecision], records: int) -> None:
        """Apply facilities decided together, in the order of their last records."""
        total = CarbonOutcome()
        for decision in sorted(decisions, key=_last_offset):
            await self._apply(decision, record_segments=False)
            total.emissions += decision.outcome.emissions
            total.duplicate_event_ids += decision.outcome.duplicate_event_ids
            total.replayed_event_ids += decision.outcome.replayed_event_ids
        segments = [s for d in decisions for s in d.outcome.segments]
        for segment in sorted(segments, key=lambda s: s.position.offset):
            self.readings_dedup.record(segment)
        self._count(total, records)

    def _decide_records(
        self, records: Sequence[tuple[Position, Sequence[MeterReading]]]
    ) -> CarbonDecision:
        """The emissions of records of one facility and partition (offset order) and what
        they do to its budget; writes nothing."""
        self.readings_dedup.ensure_indexed(records[0][0].partition)
        facility_id = records[0][1][0].facility_id
        current: dict[date, DayTotals] = {}
        for utc_day in {r.timestamp.date() for _, readings in records for r in readings}:
            existing = self.totals.get(day_key(facility_id, utc_day))
            if existing is not None:
                current[utc_day] = existing
        outcome = process_records(
            records, current, self.readings_dedup.index, self.config, self.context
        )
        emissions = outcome.emissions
        usage = self.budget_usage
        budget: list[tuple[Position, BudgetOutcome]] = []
        if usage is not None and emissions:
            per_record: list[tuple[Position, Sequence[CountedEmission]]] = []
            start = 0
            for (position, _), count in zip(records, outcome.emitted, strict=True):
                per_record.append((position, emissions[start : start + count]))
                start += count
            budget = usage.decide(facility_id, per_record)
        return CarbonDecision(facility_id, len(records), outcome, budget, records[-1][0])

    async def _apply(self, decision: CarbonDecision, record_segments: bool = True) -> None:
        """Write the decided state, then send the emissions and the budget alerts (the
        dedup segments too, unless the caller records a batch's segments in order)."""
        facility_id = decision.facility_id
        usage = self.budget_usage
        self._persist(decision.outcome, facility_id)
        if record_segments:
            for segment in decision.outcome.segments:
                self.readings_dedup.record(segment)
        alerts: list[BudgetOutputs] = []
        if usage is not None:
            alerts = [usage.write(facility_id, b, position) for position, b in decision.budget]
        await self._send_emissions(decision.outcome.emissions)
        if usage is not None and alerts:
            await usage.send(facility_id, BudgetOutputs.joined(alerts))

    async def _send_emissions(self, emissions: Sequence[Emission]) -> None:
        """Queue the emissions of one facility (so one key) as one record batch."""
        if emissions:
            await send_same_key(
                self.gov.faust,
                self.emissions_topic.get_topic_name(),
                emissions[0].facility_id.encode(),
                [e.to_json_bytes() for e in emissions],
            )

    def _persist(self, outcome: CarbonOutcome, facility_id: str) -> None:
        """Write the decided state; each write is idempotent under re-delivery."""
        for totals in outcome.updated_days.values():
            self.totals[totals.key] = totals
        touched = sorted({e.utc_day for e in outcome.emissions})
        if touched:
            days = self.days.get(facility_id) or DayIndex(entity_id=facility_id)
            updated, expired = days.with_days(touched, self.config.totals_retention_days)
            if updated is not days:
                self.days[facility_id] = updated
            for old_day in expired:
                self.totals.pop(day_key(facility_id, old_day), None)
        recent = self.recent.get(facility_id) or RecentReadings(facility_id=facility_id)
        limit = self.config.recent_readings_per_facility
        # Only the newest ``limit`` can stay in the ring: only those become contract models.
        newest = [e.to_contract() for e in outcome.emissions[-limit:]]
        fresh = recent.with_emissions(newest, limit)
        if fresh is not recent:
            self.recent[facility_id] = fresh
            self.reading_index.replace(recent, fresh)

    def _count(self, outcome: CarbonOutcome, records: int) -> None:
        applied = outcome.applied
        readings = self.carbon_metrics.readings
        readings.labels(outcome="applied").inc(len(applied))
        if outcome.duplicate_event_ids:
            readings.labels(outcome="duplicate").inc(len(outcome.duplicate_event_ids))
        if outcome.replayed_event_ids:
            readings.labels(outcome="replayed").inc(len(outcome.replayed_event_ids))
        self.metrics.records.labels(pipeline=PIPELINE, outcome="accepted").inc(records)
        sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for emission in applied:
            label = (
                self.metrics.facility_label(emission.facility_id),
                emission.energy_source.value,
            )
            sums[label][0] += emission.consumption_kwh
            sums[label][1] += emission.emissions_kg_co2e
            sums[label][2] += emission.market_based_kg_co2e
        carbon = self.carbon_metrics
        for (facility, source), (kwh, kg, market_kg) in sums.items():
            carbon.energy.labels(facility=facility, source=source).inc(kwh * JOULES_PER_KWH)
            carbon.emissions.labels(facility=facility, source=source).inc(kg * GRAMS_PER_KG)
            carbon.market_emissions.labels(facility=facility).inc(market_kg * GRAMS_PER_KG)
        self.metrics.dedup_events.labels(pipeline=PIPELINE).set(len(self.readings_dedup))

    # Local queries for the HTTP views (the view routes to the owning worker first).

    def day_totals(self, facility_id: str) -> list[DayTotals]:
        """All retained days of a facility, oldest first."""
        index = self.days.get(facility_id)
        if index is None:
            return []
        found = (self.totals.get(day_key(facility_id, d)) for d in index.days)
        return [t for t in found if t is not None]

    def recent_readings(self, facility_id: str) -> list[CarbonEmission]:
        recent = self.recent.get(facility_id)
        return list(recent.items) if recent is not None else []

    def find_reading(self, event_id: str) -> CarbonEmission | None:
        """A recent reading by event id, if this worker holds its facility: the index names
        the rings that hold it, so a miss reads no ring at all."""
        if self._index_state is not IndexState.CURRENT:
            self.reading_index.rebuild(self.recent.values())
            if self._index_state is IndexState.STALE:
                self._index_state = IndexState.CURRENT
        for facility_id in self.reading_index.facilities(event_id):
            ring = self.recent.get(facility_id)
            found: CarbonEmission | None = ring.find(event_id) if ring is not None else None
            if found is not None:
                return found
            self.reading_index.discard(event_id, facility_id)  # its partition moved away
        return None


def _last_offset(decision: CarbonDecision) -> int:
    """Where a facility's decision is written in its partition's order: its budget outbox
    entry goes at its last counted record (a budget entry's position, else its last)."""
    if decision.budget:
        return decision.budget[-1][0].offset
    return decision.last.offset


def register(gov: Governor) -> CarbonPipeline:
    """Wire the carbon pipeline into ``gov``'s app."""
    return CarbonPipeline(gov)
