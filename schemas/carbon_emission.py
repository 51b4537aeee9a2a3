"""carbon-emissions: one record per accepted meter reading."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from schemas.common import Contract, EnergySource, EntityId, EventId, UtcDatetime


class AccountingMethod(StrEnum):
    """GHG Protocol Scope 2 methods; each emission figure says which one produced it."""

    LOCATION_BASED = "location_based"
    MARKET_BASED = "market_based"


class CarbonEmission(Contract):
    """Emissions of one reading: ``emissions_kg_co2e = consumption_kwh * factor``.

    ``event_id`` is the reading's own event id, so consumers can deduplicate re-deliveries.
    The record names the factor set, its version and the factor used, so a figure can be
    audited and recomputed. Kafka key: ``facility_id``.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    facility_id: EntityId
    meter_id: EntityId
    zone_id: EntityId
    energy_source: EnergySource
    timestamp: UtcDatetime
    utc_day: date
    consumption_kwh: float
    emissions_kg_co2e: float
    factor_kg_co2e_per_kwh: float
    factor_set: str
    factor_set_version: str
    accounting_method: AccountingMethod
