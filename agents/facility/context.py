"""What the facility pipelines share: their two tables (a value is a facility's state or an
outbox entry), the waiting HTTP commands, and the steps of a record keyed by facility."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol, Self, TypeVar

from agents.facility.metrics import FacilityMetrics
from agents.facility.rules.carbon_state import BudgetOutputs, FacilityCarbon
from agents.facility.rules.load import FacilityLoad, LoadOutputs
from app.core.checks import Rejection, key_rejection
from app.core.dedup import Position
from app.core.outbox_entry import Entry
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor
from app.runtime.table_view import StateTable
from app.runtime.template import OutcomeT, Pipeline
from app.runtime.waiters import Waiters
from schemas.load import CommandResult

CarbonEntry = Entry[FacilityCarbon, BudgetOutputs]
"""A value of carbon-facilities: a facility's state, or an outbox entry."""
LoadEntry = Entry[FacilityLoad, LoadOutputs]
"""A value of load-facilities: a facility's state, or an outbox entry."""


class FacilityContext:
    """What the facility pipelines share: their tables and the waiting HTTP commands."""

    def __init__(self, gov: Governor) -> None:
        self.gov = gov
        self.facility_metrics = FacilityMetrics(gov.metrics)
        self.carbon: StateTable[CarbonEntry] | None = None
        self.load: StateTable[LoadEntry] | None = None
        self.waiters: Waiters[CommandResult] = Waiters()

    def carbon_state(self, facility_id: str) -> FacilityCarbon | None:
        entry = self.carbon.get(facility_id) if self.carbon is not None else None
        return entry.state if entry is not None else None

    def load_state(self, facility_id: str) -> FacilityLoad | None:
        entry = self.load.get(facility_id) if self.load is not None else None
        return entry.state if entry is not None else None

    def resolve(self, facility_id: str, result: CommandResult | None) -> None:
        """Answer a waiting balancing request."""
        if result is not None:
            self.waiters.resolve((facility_id, result.command_id), result)


class _OfFacility(Protocol):
    @property
    def facility_id(self) -> str: ...

    @classmethod
    def from_json_bytes(cls, data: bytes | str) -> Self: ...


EventT = TypeVar("EventT", bound=_OfFacility)
"""A facility pipeline's event: a budget, a load metric or a balancing command."""


class FacilityPipeline(Pipeline[EventT, OutcomeT]):
    """Decode, check the key, decide, write outbox then state, send."""

    model: type[EventT]
    kind: str
    facilities: EntityBound

    def __init__(self, gov: Governor, ctx: FacilityContext, name: str, source: str) -> None:
        super().__init__(gov, name, source)
        self.ctx = ctx

    def facility_of(self, value: EventT) -> str:
        return str(value.facility_id)

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> EventT:
        return self.model.from_json_bytes(value)

    def check(self, key: bytes | None, value: EventT, timestamp_ms: int | None) -> Rejection | None:
        return key_rejection(key, self.facility_of(value), "facility_id") or self.clock_rejection(
            value, timestamp_ms
        )

    def entity(self, value: EventT) -> tuple[EntityBound, str]:
        return self.facilities, self.facility_of(value)

    async def apply(self, value: EventT, outcome: OutcomeT, position: Position) -> None:
        await self.finish(self.facility_of(value), outcome, position)
        self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()

    @abstractmethod
    async def finish(self, facility_id: str, outcome: OutcomeT, position: Position) -> None:
        """Write the outcome (outbox first, then state) and send its outputs."""

    def clock_rejection(self, value: EventT, record_timestamp_ms: int | None) -> Rejection | None:
        """Events with an event time are checked against their record's (see
        :func:`app.core.checks.future_rejection`); budgets have none."""
        return None
