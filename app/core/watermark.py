"""Offset watermarks: how state knows which source records it already holds.

A state value that records, per source partition, the highest offset applied to it (in the
same value, so one changelog write carries both) recognises a record Kafka delivers again
after a crash or rebalance, and is not changed by it twice.

Records forwarded to their key's partition (:mod:`app.runtime.placement`) are recognised the
same way by where their producer wrote them: a forward repeated after a crash is a new record
of the repartition topic, but names the same source offset.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from app.core.dedup import Position


class Watermarked(BaseModel):
    """Base of state values updated at most once per source record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    applied_offsets: dict[int, int] = Field(default_factory=dict)
    forwarded_offsets: dict[int, int] = Field(default_factory=dict)
    """Source partition → the highest source offset applied through a forward."""

    def has_applied(self, position: Position) -> bool:
        """Whether the record at ``position`` was already applied to this value."""
        if self.applied_offsets.get(position.partition, -1) >= position.offset:
            return True
        return _forward_applied(self.forwarded_offsets, position)

    def stamped(self, position: Position) -> Self:
        """This value marked as holding its partition's records up to ``position``."""
        return self.model_copy(update=self.stamp(position))

    def stamp(self, position: Position) -> dict[str, dict[int, int]]:
        """The fields :meth:`stamped` changes, for a ``model_copy`` that changes others too
        (one copy per record instead of two)."""
        offsets = {**self.applied_offsets, position.partition: position.offset}
        update: dict[str, dict[int, int]] = {"applied_offsets": offsets}
        if position.forwarded_from is not None:
            update["forwarded_offsets"] = _forward_stamped(self.forwarded_offsets, position)
        return update


class SourcesWatermarked(BaseModel):
    """Base of state values that several source topics update (each co-partitioned, e.g. a
    budget topic and an event topic): one watermark per source and partition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    applied: dict[str, dict[int, int]] = Field(default_factory=dict)
    forwarded: dict[str, dict[int, int]] = Field(default_factory=dict)
    """Per source: source partition → the highest source offset applied through a forward."""

    def has_applied(self, source: str, position: Position) -> bool:
        """Whether ``source``'s record at ``position`` was already applied to this value."""
        if self.applied.get(source, {}).get(position.partition, -1) >= position.offset:
            return True
        return _forward_applied(self.forwarded.get(source, {}), position)

    def stamped(self, source: str, position: Position) -> Self:
        """This value marked as holding ``source``'s partition up to ``position``."""
        return self.model_copy(update=self.stamp(source, position))

    def stamp(self, source: str, position: Position) -> dict[str, dict[str, dict[int, int]]]:
        """The fields :meth:`stamped` changes, for a ``model_copy`` that changes others too
        (one copy per record instead of two)."""
        per_source = {**self.applied.get(source, {}), position.partition: position.offset}
        update: dict[str, dict[str, dict[int, int]]] = {
            "applied": {**self.applied, source: per_source}
        }
        if position.forwarded_from is not None:
            marks = _forward_stamped(self.forwarded.get(source, {}), position)
            update["forwarded"] = {**self.forwarded, source: marks}
        return update


def _forward_applied(marks: dict[int, int], position: Position) -> bool:
    origin = position.forwarded_from
    return origin is not None and marks.get(origin[0], -1) >= origin[1]


def _forward_stamped(marks: dict[int, int], position: Position) -> dict[int, int]:
    assert position.forwarded_from is not None
    partition, offset = position.forwarded_from
    return {**marks, partition: max(offset, marks.get(partition, -1))}
