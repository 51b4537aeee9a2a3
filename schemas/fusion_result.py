"""fusion-results: one AI model/overlay run (AI cost governance input)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime


class FusionResult(Contract):
    """Outcome of running a scenario through a baseline model with an overlay.

    ``token_delta_ratio`` is the overlay's token use relative to baseline minus one
    (0.12 = 12% more tokens). ``quality_score`` is in 0..1. Kafka key: ``overlay_id``.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    scenario_type: EntityId
    overlay_id: EntityId
    overlay_version: str = Field(min_length=1, max_length=64)
    model_id: EntityId
    token_delta_ratio: float = Field(allow_inf_nan=False)
    latency_ms: float = Field(ge=0, allow_inf_nan=False)
    quality_score: float = Field(ge=0, le=1, allow_inf_nan=False)
    energy_units: int = Field(default=0, ge=0)
    timestamp: UtcDatetime
