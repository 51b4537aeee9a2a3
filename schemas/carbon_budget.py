"""carbon-budgets, carbon-budget-alerts and grid-intensity: facilities' carbon budgets, their
state changes, and the grid's carbon intensity over time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.carbon_emission import AccountingMethod
from schemas.common import Contract, EntityId, UtcDatetime


class CarbonPeriod(StrEnum):
    """A carbon budget's period; boundaries in ``carbon_budgets.timezone`` (UTC by default)."""

    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class InstrumentKind(StrEnum):
    """Contractual instruments of the GHG Protocol's Scope 2 market-based method."""

    PPA = "ppa"
    """Power purchase agreement."""
    CERTIFICATE = "certificate"
    """Energy attribute certificates (RECs, GOs)."""
    SUPPLIER_TARIFF = "supplier_tariff"
    """A supplier-specific emission rate (e.g. a green tariff)."""


class ContractualInstrument(Contract):
    """Covers ``share`` of the facility's grid electricity at its own emission factor."""

    kind: InstrumentKind
    name: str = Field(min_length=1, max_length=200)
    share: float = Field(gt=0, le=1, allow_inf_nan=False)
    factor_kg_co2e_per_kwh: float = Field(ge=0, allow_inf_nan=False)


class CarbonBudget(Contract):
    """A facility's carbon budget. Compacted topic, key ``facility_id``: the newest governs.

    ``instruments`` are the facility's contractual instruments; the market-based figure of
    every emission uses them (grid electricity only; the uncovered share at the residual mix
    factor). ``accounting_method`` says which figure the budget is counted against.
    """

    schema_version: Literal[1] = 1
    facility_id: EntityId
    period: CarbonPeriod
    limit_kg_co2e: float = Field(gt=0, allow_inf_nan=False)
    accounting_method: AccountingMethod = AccountingMethod.LOCATION_BASED
    warning_threshold_pct: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    """Unset: ``carbon_budgets.warning_threshold_pct`` (80)."""
    critical_threshold_pct: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    """Unset: ``carbon_budgets.critical_threshold_pct`` (95)."""
    instruments: tuple[ContractualInstrument, ...] = ()
    updated_at: UtcDatetime

    @model_validator(mode="after")
    def _consistent(self) -> CarbonBudget:
        warning, critical = self.warning_threshold_pct, self.critical_threshold_pct
        if warning is not None and critical is not None and warning >= critical:
            raise ValueError("warning_threshold_pct must be below critical_threshold_pct")
        if sum(i.share for i in self.instruments) > 1.0 + 1e-9:
            raise ValueError("instruments cover more than all (sum of share > 1)")
        return self


class CarbonBudgetState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    EXCEEDED = "exceeded"


class AlertReason(StrEnum):
    CROSSED = "crossed"
    """A reading moved usage across a threshold."""
    ROLLOVER = "rollover"
    """A new period began: usage and state reset."""
    BUDGET_CHANGED = "budget_changed"
    """A new limit or thresholds put the same usage in another state."""


class CarbonBudgetAlert(Contract):
    """A facility's budget state changed: once per crossing, with the reading that crossed it.

    Key ``facility_id``. ``alert_id`` is ``<facility>:<period start>:<sequence>``, stable
    across re-deliveries.
    """

    schema_version: Literal[1] = 1
    alert_id: str
    facility_id: EntityId
    period: CarbonPeriod
    period_start: datetime
    previous_state: CarbonBudgetState
    state: CarbonBudgetState
    reason: AlertReason
    accounting_method: AccountingMethod
    used_kg_co2e: float
    limit_kg_co2e: float
    usage_ratio: float
    reading_event_id: str | None = None
    reading_timestamp: datetime | None = None


class GridIntensity(Contract):
    """The grid's carbon intensity in a zone from ``valid_from`` until the next record.

    Compacted topic, key ``<zone>|<valid_from ISO 8601>``, so compaction keeps the history.
    """

    schema_version: Literal[1] = 1
    zone: EntityId
    intensity_g_co2e_per_kwh: float = Field(ge=0, le=5_000, allow_inf_nan=False)
    valid_from: UtcDatetime

    @property
    def key(self) -> str:
        return f"{self.zone}|{self.valid_from.strftime('%Y-%m-%dT%H:%M:%SZ')}"
