"""control-ticks: one controller slot spend (budget audit input)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime


class ControlTick(Contract):
    """A site controller's spend for one slot: the row the budget audit log records.

    ``energy_cost_kwh`` is the energy given up in this slot by acting (the budget's spend);
    ``budget_spent_kwh`` and ``budget_remaining_kwh`` are the controller's own running figures
    after the slot (remaining may go negative when a budget is overspent). ``gate_passed``
    says whether the live gate let the controller intervene. Kafka key: ``site_id``.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    site_id: EntityId
    timestamp: UtcDatetime
    slot_index: int = Field(ge=0)
    planned_offset_deg: float = Field(allow_inf_nan=False)
    actual_offset_deg: float = Field(allow_inf_nan=False)
    energy_cost_kwh: float = Field(ge=0, allow_inf_nan=False)
    budget_spent_kwh: float = Field(ge=0, allow_inf_nan=False)
    budget_remaining_kwh: float = Field(allow_inf_nan=False)
    gate_passed: bool
    source: str = Field(max_length=128)
    stage_id: str = Field(max_length=128)
