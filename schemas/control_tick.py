"""control-ticks: one controller slot spend (budget audit input)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime


class ControlTick(Contract):
    """A controller's spend for one slot, as the budget audit log records it.

    Kafka key: ``controller_id``.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    controller_id: EntityId
    slot_index: int = Field(ge=0)
    planned_offset_deg: float = Field(allow_inf_nan=False)
    actual_offset_deg: float = Field(allow_inf_nan=False)
    energy_cost_kwh: float = Field(ge=0, allow_inf_nan=False)
    budget_spent_kwh: float = Field(ge=0, allow_inf_nan=False)
    budget_remaining_kwh: float = Field(allow_inf_nan=False)
    gate_passed: bool
    source: str = Field(max_length=128)
    stage_id: str = Field(max_length=128)
    timestamp: UtcDatetime
