"""The tenant stage of AI cost governance: energy-budgets, fusion-requests and fusion-results
(key: tenant) → three agents sharing the ``fusion-tenants`` table (budget definitions,
admissions with reservations, settlements). Decisions go to energy-decisions; each result's
figures go on to fusion-observations, keyed by scope, for the overlay stage
(:mod:`agents.fusion.overlays`).

A batch of one partition's records is decided in offset order against the batch's own view
of the table (:class:`TenantBatch`): each record sees the records before it, an event id
applied earlier in the batch is recognised, and then each tenant is written once, its
outbox entries first, and each key's records go out in one send per topic. The decisions
are those of one record at a time (``tests/unit/test_fusion_agent.py`` compares them).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, Self, TypeVar

from agents.fusion.metrics import FusionMetrics, count_decisions
from agents.fusion.routing_feed import RoutingFeed
from agents.fusion.rules.budget import TenantOutcome, TenantOutputs, TenantState
from app.core.checks import Rejection, future_rejection, key_rejection
from app.core.dedup import DedupSegment, Position
from app.core.outbox_entry import Entry
from app.runtime.dedup_store import DedupStore, StagedIds
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor
from app.runtime.outbox import Outbox
from app.runtime.producer import send_same_key
from app.runtime.table_view import Overlay, StateTable
from app.runtime.template import Admitted, ApplyBatch, Pipeline
from app.runtime.waiters import Waiters
from schemas.energy import EnergyDecision

TenantEntry = Entry[TenantState, TenantOutputs]
"""A value of fusion-tenants: a tenant's state, or an outbox entry."""


class FusionContext:
    """What the fusion pipelines share: the tenants table, the routing feed, the waiters of
    synchronous admissions."""

    def __init__(self, gov: Governor) -> None:
        self.gov = gov
        self.config = gov.settings.fusion
        self.routing = RoutingFeed(gov.settings)
        gov.faust.task(self.routing.run)
        self.tenants: StateTable[TenantEntry] | None = None
        self.metrics = FusionMetrics(
            gov.metrics, self.config.max_label_sets_per_metric, self.config.max_label_sets_total
        )
        self.waiters: Waiters[EnergyDecision] = Waiters()

    def tenant_state(self, tenant: str) -> TenantState | None:
        entry = self.tenants.get(tenant) if self.tenants is not None else None
        return entry.state if entry is not None else None

    def resolve(self, decisions: tuple[EnergyDecision, ...]) -> None:
        """Answer a waiting POST /api/v1/fusion/validate."""
        for decision in decisions:
            self.waiters.resolve((decision.tenant, decision.event_id), decision)


class _OfTenant(Protocol):
    @property
    def tenant(self) -> str: ...

    @classmethod
    def from_json_bytes(cls, data: bytes | str) -> Self: ...


EventT = TypeVar("EventT", bound=_OfTenant)
"""A fusion tenant pipeline's event: a budget, a request or a result."""


class _TenantEvent(_OfTenant, Protocol):
    @property
    def event_id(self) -> str: ...

    @property
    def timestamp(self) -> datetime: ...


TenantEventT = TypeVar("TenantEventT", bound=_TenantEvent)
"""A request or a result: deduplicated by id, checked against its record's time."""


@dataclass(frozen=True, slots=True)
class TenantDecided(Generic[EventT]):
    """One record as decided: what it changed, and what it sends."""

    event: EventT
    position: Position
    outcome: TenantOutcome
    outputs: TenantOutputs
    """Its outputs; for a record applied before, those it sent then (from the outbox)."""


class TenantBatch(Generic[EventT]):
    """What decided records will write and send, kept until their batch is decided: reads
    of the tenants table go through its overlay, so each record sees those before it."""

    def __init__(self, table: StateTable[TenantEntry], ids: DedupStore | None) -> None:
        self.tenants = Overlay(table)
        self.ids = StagedIds(ids) if ids is not None else None
        """The event ids of requests or results (budgets have none)."""
        self.decided: list[TenantDecided[EventT]] = []

    def state(self, tenant: str) -> TenantState | None:
        """The tenant's state as the batch has left it so far."""
        entry = self.tenants.get(tenant)
        return entry.state if entry is not None else None


class TenantPipeline(Pipeline[EventT, TenantOutcome]):
    """Decode, check, decide with the budget rules, write outbox then state, send."""

    model: type[EventT]
    source_kind: str
    ids: DedupStore | None = None
    """Where the pipeline's event ids are kept (requests and results; budgets have none)."""

    def __init__(self, gov: Governor, ctx: FusionContext, name: str, source: str) -> None:
        super().__init__(gov, name, source)
        self.ctx = ctx
        self.config = ctx.config
        if ctx.tenants is None:
            ctx.tenants = self.table(
                "fusion-tenants", TenantEntry, "Budget, spend, reservations per tenant; outboxes"
            )
        self.tenant_table: StateTable[TenantEntry] = ctx.tenants
        self.tenants = self.entity_bound(ctx.tenants, self.config.max_tenants_per_partition)
        self.decisions_topic = self.output("energy-decisions")
        self.observations_topic = self.output("fusion-observations")
        self.box: Outbox[TenantOutputs] = self.outbox(
            ctx.tenants,
            TenantEntry,
            gov.settings.fusion.outbox_records_per_partition,
            name=self.source_kind,
        )

    async def ready(self) -> None:
        await self.ctx.routing.caught_up.wait()

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> EventT:
        """The record's value as this pipeline's contract (raises as ``from_json_bytes``)."""
        return self.model.from_json_bytes(value)

    def check(self, key: bytes | None, value: EventT, timestamp_ms: int | None) -> Rejection | None:
        return key_rejection(key, value.tenant, "tenant") or self.check_event(value, timestamp_ms)

    def check_event(self, value: EventT, record_timestamp_ms: int | None) -> Rejection | None:
        """What the rules need of the event besides its key."""
        return None

    def entity(self, value: EventT) -> tuple[EntityBound, str]:
        return self.tenants, value.tenant

    def _new_batch(self) -> TenantBatch[EventT]:
        return TenantBatch(self.tenant_table, self.ids)

    def decide(self, value: EventT, position: Position) -> TenantOutcome:
        return self._decide(self._new_batch(), value, position)

    def decide_together(self, batch: Sequence[Admitted[EventT]]) -> ApplyBatch:
        """The batch's records decided in offset order against the batch's own state; the
        tenants table is untouched until the batch is applied (the three tenant agents
        share it: deciding and writing back run without an ``await`` between them)."""
        staged: TenantBatch[EventT] = self._new_batch()
        for item in batch:
            outcome = self._decide(staged, item.event, item.position)
            self._stage(staged, item.event, outcome, item.position)
        return lambda: self._apply_staged(staged)

    def _decide(
        self, batch: TenantBatch[EventT], value: EventT, position: Position
    ) -> TenantOutcome:
        self.box.ensure_indexed(position.partition)
        return self.rule(value, position, batch)

    @abstractmethod
    def rule(self, value: EventT, position: Position, batch: TenantBatch[EventT]) -> TenantOutcome:
        """The budget rule for this pipeline's event, on the state ``batch`` has left."""

    async def apply(self, value: EventT, outcome: TenantOutcome, position: Position) -> None:
        batch: TenantBatch[EventT] = self._new_batch()
        self._stage(batch, value, outcome, position)
        await self._apply_staged(batch)

    def _stage(
        self, batch: TenantBatch[EventT], value: EventT, outcome: TenantOutcome, position: Position
    ) -> None:
        """The record's writes and sends, kept in ``batch`` (nothing reaches the table yet)."""
        outputs = outcome.outputs
        if outcome.replayed:
            outputs = self.box.get(position) or TenantOutputs()
        if outcome.state is not None:
            batch.tenants[value.tenant] = TenantEntry(state=outcome.state)
        batch.decided.append(TenantDecided(value, position, outcome, outputs))

    async def _apply_staged(self, batch: TenantBatch[EventT]) -> None:
        """Every outbox entry before the states they came with (one write per tenant), the
        dedup segments in offset order, then the records (one send per topic and key), the
        progress they make, the waiting admissions answered, and the counts. Each write is
        idempotent under re-delivery."""
        for decided in batch.decided:
            if decided.outcome.state is not None:
                self.box.record(decided.position, decided.outputs)
        batch.tenants.write_back()
        if batch.ids is not None:
            batch.ids.write()
        await self._send(batch.decided)
        await self.sent(batch.decided)
        metrics = self.ctx.metrics
        for decided in batch.decided:
            if not decided.outcome.replayed:
                count_decisions(metrics, decided.outputs)
            self.ctx.resolve(decided.outputs.decisions)
        self.counted(batch.decided)
        accepted = self.metrics.records.labels(pipeline=self.name, outcome="accepted")
        accepted.inc(len(batch.decided))

    async def sent(self, decided: Sequence[TenantDecided[EventT]]) -> None:
        """Hook: the records' outputs are on their way."""

    def counted(self, decided: Sequence[TenantDecided[EventT]]) -> None:
        """Hook: count what the records' events report beside their decisions."""

    async def _send(self, decided: Sequence[TenantDecided[EventT]]) -> None:
        """The decisions, per tenant, and the observations, per scope, in offset order."""
        decisions: dict[str, list[bytes]] = {}
        observations: dict[str, list[bytes]] = {}
        for item in decided:
            if item.outputs.decisions:
                tenant = decisions.setdefault(item.event.tenant, [])
                tenant.extend(d.to_json_bytes() for d in item.outputs.decisions)
            for obs in item.outputs.observations:
                observations.setdefault(obs.scope, []).append(obs.to_json_bytes())
        app = self.gov.faust
        topic = self.decisions_topic.get_topic_name()
        for tenant_id, values in decisions.items():
            await send_same_key(app, topic, tenant_id.encode(), values)
        topic = self.observations_topic.get_topic_name()
        for scope, values in observations.items():
            await send_same_key(app, topic, scope.encode(), values)


class TenantEventPipeline(TenantPipeline[TenantEventT]):
    """Requests and results: events with an id and an event time, deduplicated by id, then
    decided by one budget rule."""

    dedup_table: str
    agent_name: str

    def __init__(self, gov: Governor, ctx: FusionContext, name: str, source: str) -> None:
        super().__init__(gov, ctx, name, source)
        self.ids = self.dedup_store(
            self.dedup_table, self.config.dedup_window_s,
            self.config.dedup_max_events_per_partition,
        )  # fmt: skip
        self.start_agent(self.agent_name)

    def check_event(self, value: TenantEventT, record_timestamp_ms: int | None) -> Rejection | None:
        return future_rejection(
            value.event_id, value.timestamp, record_timestamp_ms, self.config.max_future_skew_s
        )

    def rule(
        self, value: TenantEventT, position: Position, batch: TenantBatch[TenantEventT]
    ) -> TenantOutcome:
        assert self.ids is not None and batch.ids is not None
        self.ids.ensure_indexed(position.partition)
        first = batch.ids.first_position(value.tenant, value.event_id)
        return self.event_rule(batch.state(value.tenant), value, position, first)

    @abstractmethod
    def event_rule(
        self,
        state: TenantState | None,
        value: TenantEventT,
        position: Position,
        first: Position | None,
    ) -> TenantOutcome:
        """The budget rule for this event (``first``: where its id was applied before)."""

    def _stage(
        self,
        batch: TenantBatch[TenantEventT],
        value: TenantEventT,
        outcome: TenantOutcome,
        position: Position,
    ) -> None:
        super()._stage(batch, value, outcome, position)
        if not outcome.duplicate and batch.ids is not None:
            batch.ids.add(_segment(value.tenant, value.event_id, value.timestamp, position))


def _segment(tenant: str, event_id: str, timestamp: datetime, position: Position) -> DedupSegment:
    return DedupSegment(
        entity_id=tenant, position=position, max_event_time_s=timestamp.timestamp(),
        event_ids=(event_id,),
    )  # fmt: skip
