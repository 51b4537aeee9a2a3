"""budget-audit and budget-compliance-alerts: the audit pipeline's outputs."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime


class SlotRecord(Contract):
    """One applied control tick, as the append-only slot log keeps it.

    The tick's fields plus its UTC day. A tick re-delivered after a crash may be logged
    again with identical bytes; consumers deduplicate by ``event_id`` (``governor audit``
    does). A tick whose ``event_id`` was already applied is not logged again.
    Kafka key: ``site_id``.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    site_id: EntityId
    timestamp: UtcDatetime
    utc_day: date
    slot_index: int = Field(ge=0)
    planned_offset_deg: float
    actual_offset_deg: float
    energy_cost_kwh: float = Field(ge=0)
    budget_spent_kwh: float = Field(ge=0)
    budget_remaining_kwh: float
    gate_passed: bool
    source: str
    stage_id: str


class CompliancePeriod(StrEnum):
    """The rollup period a compliance projection covers (UTC calendar boundaries)."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class ComplianceState(StrEnum):
    """Whether a period's projected annual spend is within the site's ceiling."""

    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"


class ComplianceAlert(Contract):
    """A site-period's projection crossed its annual ceiling (either way), once per crossing.

    ``alert_id`` is deterministic (site, period, crossing number), so a re-sent alert has
    the same id and the same bytes. ``event_id`` and ``event_time`` are the tick that
    crossed. Kafka key: ``site_id``.
    """

    schema_version: Literal[1] = 1
    alert_id: str
    site_id: EntityId
    period: CompliancePeriod
    period_start: date
    period_end: date
    state: ComplianceState
    previous_state: ComplianceState
    event_id: EventId
    event_time: UtcDatetime
    days_covered: int = Field(ge=1)
    total_cost_kwh: float
    daily_avg_kwh: float
    projected_annual_kwh: float
    ceiling_kwh: float
    utilization_ratio: float


class DayRollupRecord(Contract):
    """A site-day's rollup as one tick left it: the audit's running daily summary.

    One record per applied tick (``event_id``), so the ledger holds every version;
    ``rollup_id`` (site, day, slot count) names the version. Figures are unrounded:
    ``total_cost_kwh`` is exact to the milliwatt-hour. Kafka key: ``site_id``.
    """

    schema_version: Literal[1] = 1
    rollup_id: str
    site_id: EntityId
    utc_day: date
    event_id: EventId
    slots: int = Field(ge=1)
    total_cost_kwh: float
    interventions: int = Field(ge=0)
    max_abs_offset_deg: float
    budget_remaining_kwh: float | None
