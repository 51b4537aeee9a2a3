"""AI energy and cost governance: budgets, admissions and results per tenant, then runs per
scenario and overlay.

- energy-budgets, fusion-requests, fusion-results (key: tenant) → three agents sharing the
  ``fusion-tenants`` table: budget definitions, admissions with reservations, settlements.
  Decisions go to energy-decisions; each result's figures go on to fusion-observations,
  keyed by scope (``<scenario>|<overlay>``, and ``tenant:<id>`` for a per-tenant tripwire).
- fusion-observations (key: scope) → tripwire, gates, overlay breaker; their events, and a
  new overlay-routing version whenever routing changes. Every worker reads overlay-routing
  (:class:`agents.fusion.routing_feed.RoutingFeed`) to admit requests.

All decisions are in :mod:`agents.fusion.rules`; each pipeline writes its outbox entry before
its state, as the traffic decider does (:mod:`app.runtime.outbox`).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, Protocol, Self, TypeVar

from agents.fusion.metrics import FusionMetrics, count_decisions
from agents.fusion.overlays import OverlayPipeline
from agents.fusion.progress import ProgressMarkers
from agents.fusion.routing_feed import RoutingFeed
from agents.fusion.rules import budget as budgets
from agents.fusion.rules import settlement, tokens
from agents.fusion.rules.budget import TenantOutcome, TenantOutputs, TenantState
from app.core.checks import Rejection, future_rejection, key_rejection
from app.core.dedup import DedupSegment, Position
from app.core.outbox_entry import Entry
from app.runtime.connection import aiokafka_options
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor
from app.runtime.lanes import REPARTITIONED
from app.runtime.outbox import Outbox
from app.runtime.producer import send_same_key
from app.runtime.table_view import StateTable
from app.runtime.template import Pipeline
from app.runtime.topic_reader import partition_ends
from app.runtime.waiters import Waiters
from schemas.dead_letter import DeadLetterReason
from schemas.energy import EnergyBudget, EnergyDecision
from schemas.fusion_result import FusionRequest, FusionResult
from schemas.seed_forms import parse_fusion_request

log = logging.getLogger(__name__)

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


class _TenantPipeline(Pipeline[EventT, TenantOutcome]):
    """Decode, check, decide with the budget rules, write outbox then state, send."""

    model: type[EventT]
    source_kind: str

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

    def decide(self, value: EventT, position: Position) -> TenantOutcome:
        self.box.ensure_indexed(position.partition)
        return self.rule(value, position)

    @abstractmethod
    def rule(self, value: EventT, position: Position) -> TenantOutcome:
        """The budget rule for this pipeline's event."""

    async def apply(self, value: EventT, outcome: TenantOutcome, position: Position) -> None:
        outputs = outcome.outputs
        if outcome.replayed:
            outputs = self.box.get(position) or TenantOutputs()
        if outcome.state is not None:
            self.box.record(position, outputs)
            self.tenant_table[value.tenant] = TenantEntry(state=outcome.state)
        self.after(value, position, outcome)
        await self._send(value.tenant, outputs)
        await self.sent(position, value)
        if not outcome.replayed:
            count_decisions(self.ctx.metrics, outputs)
        self.ctx.resolve(outputs.decisions)
        self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()

    def after(self, value: EventT, position: Position, outcome: TenantOutcome) -> None:
        """Hook: record the event id for deduplication."""

    async def sent(self, position: Position, value: EventT) -> None:
        """Hook: the record's outputs are on their way."""

    async def _send(self, tenant: str, outputs: TenantOutputs) -> None:
        app = self.gov.faust
        await send_same_key(
            app, self.decisions_topic.get_topic_name(), tenant.encode(),
            [d.to_json_bytes() for d in outputs.decisions],
        )  # fmt: skip
        for obs in outputs.observations:
            await send_same_key(
                app, self.observations_topic.get_topic_name(), obs.scope.encode(),
                [obs.to_json_bytes()],
            )  # fmt: skip


class BudgetsPipeline(_TenantPipeline[EnergyBudget]):
    model = EnergyBudget
    source_kind = "b"

    def __init__(self, gov: Governor, ctx: FusionContext) -> None:
        super().__init__(gov, ctx, "fusion-budgets", "energy-budgets")
        self.start_agent("fusion-budgets")

    def rule(self, value: EnergyBudget, position: Position) -> TenantOutcome:
        return budgets.apply_budget(self.ctx.tenant_state(value.tenant), value, position)


class _TenantEventPipeline(_TenantPipeline[TenantEventT]):
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

    def rule(self, value: TenantEventT, position: Position) -> TenantOutcome:
        self.ids.ensure_indexed(position.partition)
        return self.event_rule(
            self.ctx.tenant_state(value.tenant), value, position,
            self.ids.first_position(value.tenant, value.event_id),
        )  # fmt: skip

    @abstractmethod
    def event_rule(
        self,
        state: TenantState | None,
        value: TenantEventT,
        position: Position,
        first: Position | None,
    ) -> TenantOutcome:
        """The budget rule for this event (``first``: where its id was applied before)."""

    def after(self, value: TenantEventT, position: Position, outcome: TenantOutcome) -> None:
        if outcome.duplicate:
            return
        self.ids.record(_segment(value.tenant, value.event_id, value.timestamp, position))


class RequestsPipeline(_TenantEventPipeline[FusionRequest]):
    model = FusionRequest
    source_kind = "q"
    dedup_table = "fusion-request-dedup"
    agent_name = "fusion-admissions"

    def __init__(self, gov: Governor, ctx: FusionContext) -> None:
        super().__init__(gov, ctx, "fusion-requests", "fusion-requests")
        self.approval_secret = gov.settings.fusion.approvals.secret()

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> FusionRequest:
        """Governor's request, or the AI cost reference's (:mod:`schemas.seed_forms`)."""
        return parse_fusion_request(value, key, timestamp_ms)

    def check_event(
        self, value: FusionRequest, record_timestamp_ms: int | None
    ) -> Rejection | None:
        """Besides the clock: an approval must carry the seal only Governor's approval
        endpoint can make (a producer on the topic cannot approve its own spend)."""
        approval = value.manual_approval_id
        fields = tokens.approval_fields(value) if approval is not None else {}
        if approval is not None and not tokens.approval_sealed(
            self.approval_secret, approval, fields
        ):
            return Rejection(
                DeadLetterReason.APPROVAL_NOT_SEALED,
                f"event {value.event_id}: manual_approval_id is not sealed by Governor's"
                " approval endpoint (POST /api/v1/fusion/validate with an X-Approval-Token)",
            )
        return super().check_event(value, record_timestamp_ms)

    def event_rule(
        self,
        state: TenantState | None,
        value: FusionRequest,
        position: Position,
        first: Position | None,
    ) -> TenantOutcome:
        routing = self.ctx.routing.routing
        return budgets.admit(state, value, position, first, routing, self.config)


class ResultsPipeline(_TenantEventPipeline[FusionResult]):
    model = FusionResult
    source_kind = "r"
    dedup_table = "fusion-result-dedup"
    agent_name = "fusion-settlements"

    def __init__(self, gov: Governor, ctx: FusionContext) -> None:
        super().__init__(gov, ctx, "fusion-results", "fusion-results")
        sent = ctx.metrics.progress_records
        self.progress = ProgressMarkers(gov, "fusion-results", self.config.ordering, sent)
        self._idle_check_s = max(0.5, self.config.ordering.idle_partition_s / 4)
        gov.faust.timer(self._idle_check_s)(self._check_idle)

    async def sent(self, position: Position, value: FusionResult) -> None:
        """Tell the overlay stage how far this partition has come (after its runs)."""
        partition = position.partition % REPARTITIONED
        await self.progress.after_result(partition, value.timestamp.timestamp())

    async def _check_idle(self) -> None:
        """Report owned partitions that have been quiet, once the broker confirms that
        nothing waits in them (here or in the repartition topic).

        The broker is asked on every check, not only when a partition seems quiet: quiet
        time counts only across checks that it answered, no further apart than
        ``max_gap_s`` (an outage, a rebalance or a stalled worker in between restarts it).
        Asking only at the end of the quiet spell let a broker restart that was over by
        then count as quiet; the producers' batches it held back then arrived with runs the
        overlay stage had already passed (late runs, seen as a chaos-soak mismatch in CI).
        """
        if not self._taking:
            return
        owned = self.owned_partitions(self.lanes[0].name)
        if not owned:  # None: a rebalance in progress
            return
        quiet = self.progress.quiet(owned)
        options = aiokafka_options(self.gov.settings.kafka)
        waiting: set[int] = set()
        try:
            for lane in self.lanes:
                ends = await partition_ends(options, lane.name, quiet or sorted(owned))
                for partition, end in ends.items():
                    first = self._next_unprocessed(lane, partition)
                    if end > (first if first is not None else 0):
                        waiting.add(partition)
        except Exception as exc:  # the broker unreachable: an outage is not quiet
            log.info("fusion-results idle check: broker unreachable (%r)", exc)
            self.progress.unreachable()
            return
        if self.progress.answered(self._idle_check_s * 2 + 5.0) and quiet:
            await self.progress.report_idle([p for p in quiet if p not in waiting])

    def event_rule(
        self,
        state: TenantState | None,
        value: FusionResult,
        position: Position,
        first: Position | None,
    ) -> TenantOutcome:
        return settlement.settle(state, value, position, first, self.config)

    def after(self, value: FusionResult, position: Position, outcome: TenantOutcome) -> None:
        super().after(value, position, outcome)
        if outcome.duplicate or outcome.replayed:
            return
        m = self.ctx.metrics
        labels = m.labels("governor_fusion_latency_seconds", value.scenario_type,
                                 value.overlay)  # fmt: skip
        m.latency.labels(*labels, value.result.value).observe(value.latency_ms / 1000)
        m.token_delta.labels(*labels, value.result.value).observe(value.token_delta_pct / 100)
        m.quality.labels(*labels, value.result.value).observe(value.quality_score)
        if value.actual_units > 0:  # a run that cost nothing has no efficiency to speak of
            efficiency = value.estimated_units / value.actual_units
            m.cost_efficiency.labels(*labels, value.result.value).observe(efficiency)


def _segment(tenant: str, event_id: str, timestamp: datetime, position: Position) -> DedupSegment:
    return DedupSegment(
        entity_id=tenant, position=position, max_event_time_s=timestamp.timestamp(),
        event_ids=(event_id,),
    )  # fmt: skip


class FusionHandle(NamedTuple):
    """The AI cost pipelines' parts their views use, and the worker's health report (the
    fusion state view includes it)."""

    context: FusionContext
    requests: RequestsPipeline
    overlays: OverlayPipeline
    health: Callable[[], dict[str, Any]]


def register(gov: Governor, health: Callable[[], dict[str, Any]]) -> FusionHandle:
    """Wire the AI cost governance pipelines into ``gov``."""
    ctx = FusionContext(gov)
    BudgetsPipeline(gov, ctx)
    requests = RequestsPipeline(gov, ctx)
    ResultsPipeline(gov, ctx)
    overlay = OverlayPipeline(gov, ctx.metrics)
    return FusionHandle(ctx, requests, overlay, health)
