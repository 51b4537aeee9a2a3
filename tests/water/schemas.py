"""The water pipeline's contracts: one per topic value, as schemas/ holds Governor's."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from schemas.common import Contract, EventId, UtcDatetime


class WaterReading(Contract):
    """A facility's water meter reading. Kafka key: ``facility_id``."""

    schema_version: Literal[1] = 1
    event_id: EventId
    facility_id: str = Field(min_length=1, max_length=128)
    litres: float = Field(ge=0, allow_inf_nan=False)
    timestamp: UtcDatetime


class WaterBudgetAlert(Contract):
    """A facility went over its daily water budget. Kafka key: ``facility_id``."""

    schema_version: Literal[1] = 1
    alert_id: str
    """``<facility>|<UTC day>``: one alert per facility and day."""
    facility_id: str
    day: date
    used_litres: float
    limit_litres: float
    event_id: EventId
    event_time: UtcDatetime
