"""The newest readings per facility (a bounded ring, serving ``GET /api/v1/readings``) and
the event-id index beside the rings: pure values the carbon agent keeps in its tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from schemas.carbon_emission import CarbonEmission


class RecentReadings(BaseModel):
    """The newest emissions of one facility, newest last, bounded; serves the readings API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    facility_id: str
    items: tuple[CarbonEmission, ...] = ()

    def with_emissions(self, emissions: Sequence[CarbonEmission], limit: int) -> RecentReadings:
        """Append emissions not already present (a replay appends nothing) and keep ``limit``."""
        present = {e.event_id for e in self.items}
        fresh = [e for e in emissions[-limit:] if e.event_id not in present]
        if not fresh:
            return self
        kept = (*self.items, *fresh)[-limit:]
        return self.model_copy(update={"items": kept})

    def find(self, event_id: str) -> CarbonEmission | None:
        return next((e for e in self.items if e.event_id == event_id), None)


class ReadingIndex:
    """event id → the facilities whose recent-readings ring holds it.

    Kept beside the rings so that a lookup by event id reads the one ring that has it, and a
    miss reads none: ``GET /api/v1/readings/{id}`` is unauthenticated, and scanning every
    facility's ring on every worker for each miss let any caller buy work cheaply. Event ids
    are each facility's own, so one id may name readings of several facilities.
    """

    def __init__(self) -> None:
        self._where: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def replace(self, old: RecentReadings | None, new: RecentReadings) -> None:
        """Follow one ring's change: index what it gained, forget what it dropped."""
        before = {e.event_id for e in old.items} if old is not None else set()
        after = {e.event_id for e in new.items}
        for gone in before - after:
            self.discard(gone, new.facility_id)
        for added in after - before:
            self._where.setdefault(added, set()).add(new.facility_id)

    def rebuild(self, rings: Iterable[RecentReadings]) -> None:
        """Index ``rings`` from scratch (the rings this worker holds changed wholesale)."""
        self._where.clear()
        for ring in rings:
            self.replace(None, ring)

    def facilities(self, event_id: str) -> list[str]:
        """The facilities that may hold ``event_id``, in a stable order."""
        return sorted(self._where.get(event_id, ()))

    def discard(self, event_id: str, facility_id: str) -> None:
        where = self._where.get(event_id)
        if where is not None:
            where.discard(facility_id)
            if not where:
                del self._where[event_id]
