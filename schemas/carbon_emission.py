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


class IntensitySource(StrEnum):
    """Where the location-based factor of an emission came from."""

    STATIC_FACTOR = "static_factor"
    """The active factor set (``carbon.factor_sets``)."""
    GRID_INTENSITY = "grid_intensity"
    """The grid-intensity record in force in the reading's grid zone at its event time."""


class CarbonEmission(Contract):
    """Emissions of one reading: ``emissions_kg_co2e = consumption_kwh * factor``.

    Both GHG Protocol Scope 2 figures, each labelled: ``emissions_kg_co2e`` is location-based
    (``accounting_method``), from the static factor or the grid intensity in force
    (``intensity_source``); ``market_based_kg_co2e`` applies the facility's contractual
    instruments (see ``carbon-budgets``) to grid electricity.

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
    grid_zone: EntityId | None = None
    intensity_source: IntensitySource = IntensitySource.STATIC_FACTOR
    intensity_valid_from: UtcDatetime | None = None
    market_based_kg_co2e: float
    market_factor_kg_co2e_per_kwh: float
