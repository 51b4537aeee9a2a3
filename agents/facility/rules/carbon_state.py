"""A facility's carbon budget state and the outcomes of its rules: the values
:mod:`agents.facility.rules.carbon_budget` decides over, kept in the facility tables.

Usage is kept in integers (milligrams CO2e, milliwatt-hours) for both Scope 2 methods, so
totals do not depend on the order they were added in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from app.core.units import MG_PER_KG, MWH_PER_KWH
from app.core.watermark import SourcesWatermarked
from schemas.carbon_budget import (
    CarbonBudget,
    CarbonBudgetAlert,
    CarbonBudgetState,
    CarbonPeriod,
)
from schemas.carbon_emission import AccountingMethod
from schemas.common import EnergySource

BUDGETS = "b"
READINGS = "r"
"""Watermark lane of the meter-readings records whose emissions the carbon agent counted
(``"e"``, of carbon-emissions records, was the lane when a separate agent counted them)."""
SEVERITY = {
    CarbonBudgetState.OK: 0,
    CarbonBudgetState.WARNING: 1,
    CarbonBudgetState.CRITICAL: 2,
    CarbonBudgetState.EXCEEDED: 3,
}


class CountedEmission(Protocol):
    """What the budget rules read of an emission: the carbon rules' own record (the carbon
    agent counts what it has just decided, unconverted) or the published contract
    (:class:`~schemas.carbon_emission.CarbonEmission`, read back from the topic)."""

    @property
    def event_id(self) -> str: ...
    @property
    def facility_id(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def energy_source(self) -> EnergySource: ...
    @property
    def consumption_kwh(self) -> float: ...
    @property
    def emissions_kg_co2e(self) -> float: ...
    @property
    def market_based_kg_co2e(self) -> float: ...


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def milli_units(emission: CountedEmission) -> tuple[int, int, int]:
    """One emission in :class:`Usage`'s integer units: energy (mWh), location-based and
    market-based emissions (mg), each rounded on its own."""
    return (
        round(emission.consumption_kwh * MWH_PER_KWH),
        round(emission.emissions_kg_co2e * MG_PER_KG),
        round(emission.market_based_kg_co2e * MG_PER_KG),
    )


class Usage(_Frozen):
    """Energy and both emission figures, in integer milli-units."""

    energy_mwh: int = 0
    location_mg: int = 0
    market_mg: int = 0
    readings: int = 0

    def plus(self, emission: CountedEmission) -> Usage:
        energy, location, market = milli_units(emission)
        return Usage(
            energy_mwh=self.energy_mwh + energy,
            location_mg=self.location_mg + location,
            market_mg=self.market_mg + market,
            readings=self.readings + 1,
        )

    def mg(self, method: AccountingMethod) -> int:
        return self.market_mg if method is AccountingMethod.MARKET_BASED else self.location_mg

    @property
    def energy_kwh(self) -> float:
        return self.energy_mwh / MWH_PER_KWH


class FacilityCarbon(SourcesWatermarked):
    """One facility's budget and its usage in the current period."""

    facility_id: str
    budget: CarbonBudget | None = None
    period: CarbonPeriod = CarbonPeriod.MONTH
    period_start: datetime | None = None
    period_end: datetime | None = None
    total: Usage = Usage()
    by_source: dict[EnergySource, Usage] = {}
    by_hour: dict[int, Usage] = {}
    """Per local hour of day, for load-shifting recommendations."""
    first_event: datetime | None = None
    last_event: datetime | None = None
    state: CarbonBudgetState = CarbonBudgetState.OK
    alerts_sent: int = 0
    late_readings: int = 0

    @property
    def method(self) -> AccountingMethod:
        return self.budget.accounting_method if self.budget else AccountingMethod.LOCATION_BASED

    @property
    def used_kg(self) -> float:
        return self.total.mg(self.method) / MG_PER_KG


class BudgetOutputs(_Frozen):
    alerts: tuple[CarbonBudgetAlert, ...] = ()

    @staticmethod
    def joined(outputs: Sequence[BudgetOutputs]) -> BudgetOutputs:
        """Several records' outputs as one, in order."""
        if len(outputs) == 1:
            return outputs[0]
        return BudgetOutputs(alerts=tuple(a for o in outputs for a in o.alerts))


@dataclass(slots=True)
class BudgetOutcome:
    state: FacilityCarbon | None = None
    outputs: BudgetOutputs = field(default_factory=BudgetOutputs)
    replayed: bool = False
    counted: int = 0
    """Emissions counted into the period (those of a meter-readings record)."""
    records: int = 1
    """Meter-readings records the outcome covers (several when counted as a batch)."""


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """GET /carbon/status: where a facility stands against its budget."""

    facility_id: str
    period: CarbonPeriod
    period_start: datetime | None
    period_end: datetime | None
    accounting_method: AccountingMethod
    limit_kg_co2e: float
    used_kg_co2e: float
    remaining_kg_co2e: float
    usage_ratio: float
    state: CarbonBudgetState
    projected_kg_co2e: float | None
    projected_usage_ratio: float | None
    location_based_kg_co2e: float
    market_based_kg_co2e: float
    energy_kwh: float
    late_readings: int
