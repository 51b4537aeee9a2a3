"""Types shared by every topic contract: energy sources, UTC timestamps, the base model."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class EnergySource(StrEnum):
    """Where a meter's energy came from; decides the emission factor."""

    GRID = "grid"
    SOLAR = "solar"
    WIND = "wind"
    NATURAL_GAS = "natural_gas"
    COAL = "coal"
    NUCLEAR = "nuclear"
    HYDRO = "hydro"
    BATTERY = "battery"


def _require_utc(value: datetime) -> datetime:
    """Reject naive timestamps: a time without a zone cannot be placed on the event-time axis."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (e.g. 2024-01-15T10:30:00Z)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
"""A timezone-aware timestamp, normalised to UTC."""

EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""Producer-chosen identity of an event; the unit of deduplication."""

EntityId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""Identifier of a facility, meter or zone: also used as a Kafka key and an HTTP path segment."""


class Contract(BaseModel):
    """Base of every topic value.

    Unknown fields are rejected (``extra="forbid"``): a misspelt field would otherwise vanish
    silently. A producer that needs a new field bumps ``schema_version`` after consumers
    have been upgraded to accept it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    SCHEMA_VERSION: ClassVar[int] = 1

    def to_json_bytes(self) -> bytes:
        """Serialise deterministically: same model, same bytes (field order, UTC 'Z' times)."""
        return orjson.dumps(self.model_dump(mode="python"), option=orjson.OPT_UTC_Z)

    @classmethod
    def from_json_bytes(cls, data: bytes | str) -> Self:
        """Parse and validate one value.

        Raises ``orjson.JSONDecodeError`` (not JSON) or ``ValidationError`` (not the contract).
        """
        parsed: Any = orjson.loads(data)
        return cls.model_validate(parsed)
