"""Offset watermarks: how state knows which source records it already holds.

A state value that records, per source partition, the highest offset applied to it (in the
same value, so one changelog write carries both) recognises a record Kafka delivers again
after a crash or rebalance, and is not changed by it twice.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from app.rules.dedup import Position


class Watermarked(BaseModel):
    """Base of state values updated at most once per source record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    applied_offsets: dict[int, int] = Field(default_factory=dict)

    def has_applied(self, position: Position) -> bool:
        """Whether the record at ``position`` was already applied to this value."""
        return self.applied_offsets.get(position.partition, -1) >= position.offset

    def stamped(self, position: Position) -> Self:
        """This value marked as holding its partition's records up to ``position``."""
        offsets = {**self.applied_offsets, position.partition: position.offset}
        return self.model_copy(update={"applied_offsets": offsets})


class SourcesWatermarked(BaseModel):
    """Base of state values that several source topics update (each co-partitioned, e.g. a
    budget topic and an event topic): one watermark per source and partition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    applied: dict[str, dict[int, int]] = Field(default_factory=dict)

    def has_applied(self, source: str, position: Position) -> bool:
        """Whether ``source``'s record at ``position`` was already applied to this value."""
        return self.applied.get(source, {}).get(position.partition, -1) >= position.offset

    def stamped(self, source: str, position: Position) -> Self:
        """This value marked as holding ``source``'s partition up to ``position``."""
        per_source = {**self.applied.get(source, {}), position.partition: position.offset}
        return self.model_copy(update={"applied": {**self.applied, source: per_source}})
