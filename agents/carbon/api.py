"""Readings ingest and carbon queries under /api/v1.

Per-facility queries are routed to the worker that owns the facility's partition (Faust
``table_route``); a lookup by event id, whose facility is unknown, asks every worker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from agents.carbon.agent import CarbonPipeline
from agents.carbon.rules import DayTotals, check_record, emission_of
from app.runtime.faust_app import Governor
from app.runtime.web import View
from app.web.http import authorised, problem, read_body, reply, too_large
from app.web.peers import ask_peers, is_peer_request
from schemas.carbon_emission import CarbonEmission
from schemas.common import EnergySource
from schemas.meter_reading import MeterReadingBatch
from schemas.seed_forms import SeedReading, parse_reading_record


class SourceSummary(BaseModel):
    energy_source: EnergySource
    energy_kwh: float
    emissions_kg_co2e: float
    market_based_kg_co2e: float
    readings: int


class DaySummary(BaseModel):
    utc_day: date
    energy_kwh: float
    emissions_kg_co2e: float
    market_based_kg_co2e: float
    readings: int
    sources: list[SourceSummary]


class FacilityEmissions(BaseModel):
    """GET /carbon/emissions/{facility_id}: per-day, per-source totals and their sum.

    ``emissions_kg_co2e`` is location-based (``accounting_method``); ``market_based_kg_co2e``
    applies the facility's contractual instruments."""

    facility_id: str
    factor_set: str
    accounting_method: str
    energy_kwh: float
    emissions_kg_co2e: float
    market_based_kg_co2e: float
    readings: int
    days: list[DaySummary]


class Accepted(BaseModel):
    """202 reply to an ingest: where the reading(s) landed."""

    event_ids: list[str]
    facility_id: str
    topic: str
    partition: int
    offset: int
    emissions: list[CarbonEmission] | None = None
    """POST /carbon/process only: the emissions computed for the reading(s)."""


def summarise(facility_id: str, factor_set: str, days: list[DayTotals]) -> FacilityEmissions:
    """Totals in kWh and kg CO2e, summed exactly from the integer mWh/mg counters."""
    summaries = []
    for day in days:
        sources = [
            SourceSummary(
                energy_source=source,
                energy_kwh=t.energy_kwh,
                emissions_kg_co2e=t.emissions_kg_co2e,
                market_based_kg_co2e=t.market_emissions_kg_co2e,
                readings=t.readings,
            )
            for source, t in sorted(day.by_source.items())
        ]
        mwh = sum(t.energy_mwh for t in day.by_source.values())
        mg = sum(t.emissions_mg_co2e for t in day.by_source.values())
        market_mg = sum(t.market_emissions_mg_co2e for t in day.by_source.values())
        summaries.append(
            DaySummary(
                utc_day=day.utc_day,
                energy_kwh=mwh / 1e6,
                emissions_kg_co2e=mg / 1e6,
                market_based_kg_co2e=market_mg / 1e6,
                readings=sum(t.readings for t in day.by_source.values()),
                sources=sources,
            )
        )
    all_sources = [t for d in days for t in d.by_source.values()]
    return FacilityEmissions(
        facility_id=facility_id,
        factor_set=factor_set,
        accounting_method="location_based",
        energy_kwh=sum(t.energy_mwh for t in all_sources) / 1e6,
        emissions_kg_co2e=sum(t.emissions_mg_co2e for t in all_sources) / 1e6,
        market_based_kg_co2e=sum(t.market_emissions_mg_co2e for t in all_sources) / 1e6,
        readings=sum(t.readings for t in all_sources),
        days=summaries,
    )


def with_event_ids(payload: Any) -> Any:
    """Give readings (and a batch) without an ``event_id`` a fresh one, as ingest promises."""
    if not isinstance(payload, dict) or SeedReading.matches(payload):
        return payload  # the reference's reading: its id is derived from it
    items = payload.get("readings") if "readings" in payload else [payload]
    if "readings" in payload:
        payload.setdefault("batch_id", f"batch-{uuid.uuid4()}")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                item.setdefault("event_id", str(uuid.uuid4()))
    return payload


def register(gov: Governor, carbon: CarbonPipeline) -> None:
    app = gov.faust

    async def ingest(view: Any, request: Any, route: str, with_emissions: bool) -> Any:
        """Validate a reading or batch, publish it to meter-readings; 202 with where it went
        (and, for /carbon/process, the emissions the carbon agent computes for it with the
        factors, grid intensities and instruments in force now)."""
        ok, why = authorised(gov, request)
        if not ok:
            return problem(view, request, gov, route, 401, why)
        body = await read_body(request, gov)
        if body is None:
            return problem(view, request, gov, route, 413, too_large(gov))
        try:
            payload = with_event_ids(orjson.loads(body))
            record = parse_reading_record(orjson.dumps(payload))
        except orjson.JSONDecodeError as exc:
            return problem(view, request, gov, route, 400, f"body is not JSON: {exc}")
        except orjson.JSONEncodeError:  # parsed, but nested deeper than a reading can be
            return problem(view, request, gov, route, 400, "body is nested too deeply")
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            return problem(
                view, request, gov, route, 422, "reading does not match the schema",
                details=details,
            )  # fmt: skip
        except ValueError as exc:
            return problem(view, request, gov, route, 422, str(exc))
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        key = record.facility_id.encode()
        rejection = check_record(key, record, now_ms, gov.settings.carbon)
        if rejection is not None:
            return problem(
                view, request, gov, route, 422, rejection.message, reason=rejection.reason.value,
            )  # fmt: skip
        metadata = await gov.publish(carbon.source_name, key, record.to_json_bytes(), now_ms)
        readings = record.readings if isinstance(record, MeterReadingBatch) else [record]
        emissions = (
            [emission_of(r, gov.settings.carbon, carbon.context).to_contract() for r in readings]
            if with_emissions
            else None
        )
        accepted = Accepted(
            event_ids=[r.event_id for r in readings],
            facility_id=record.facility_id,
            topic=metadata.topic,
            partition=metadata.partition,
            offset=metadata.offset,
            emissions=emissions,
        )
        return reply(view, request, gov, route, accepted, status=202)

    @app.page("/api/v1/readings")
    class Ingest(View):
        ROUTE = "/api/v1/readings"

        async def post(self, request: Any) -> Any:
            return await ingest(self, request, self.ROUTE, with_emissions=False)

    @app.page("/api/v1/carbon/process")
    class Process(View):
        ROUTE = "/api/v1/carbon/process"

        async def post(self, request: Any) -> Any:
            return await ingest(self, request, self.ROUTE, with_emissions=True)

    @app.page("/api/v1/readings/facility/{facility_id}")
    class FacilityReadings(View):
        @app.table_route(table=carbon.recent, match_info="facility_id")  # type: ignore[arg-type]
        async def get(self, request: Any, facility_id: str) -> Any:
            readings = carbon.recent_readings(facility_id)
            return reply(self, request, gov, "/api/v1/readings/facility/{facility_id}", readings)

    @app.page("/api/v1/readings/{event_id}")
    class ReadingById(View):
        ROUTE = "/api/v1/readings/{event_id}"

        async def get(self, request: Any, event_id: str) -> Any:
            found = carbon.find_reading(event_id)
            if found is None and not is_peer_request(request):
                found = await find_at_peers(gov, event_id)
            if found is None:
                return problem(
                    self, request, gov, self.ROUTE, 404,
                    f"reading {event_id} is not among the recent readings of any facility",
                )  # fmt: skip
            return reply(self, request, gov, self.ROUTE, found)

    @app.page("/api/v1/carbon/emissions/{facility_id}")
    class Emissions(View):
        @app.table_route(table=carbon.totals, match_info="facility_id")  # type: ignore[arg-type]
        async def get(self, request: Any, facility_id: str) -> Any:
            summary = summarise(
                facility_id, carbon.config.factor_set, carbon.day_totals(facility_id)
            )
            return reply(self, request, gov, "/api/v1/carbon/emissions/{facility_id}", summary)


async def find_at_peers(gov: Governor, event_id: str) -> CarbonEmission | None:
    """Ask every other worker for a reading; the first that has it answers."""
    for body in await ask_peers(gov, f"/api/v1/readings/{event_id}"):
        if body is not None:
            try:
                return CarbonEmission.model_validate(orjson.loads(body))
            except ValueError:
                continue
    return None
