"""AI energy and cost governance: budgets, admissions and results per tenant, then runs per
scenario and overlay.

- energy-budgets, fusion-requests, fusion-results (key: tenant) → three agents sharing the
  ``fusion-tenants`` table (:mod:`agents.fusion.tenants`): budget definitions, admissions
  with reservations, settlements. Decisions go to energy-decisions; each result's figures go
  on to fusion-observations, keyed by scope (``<scenario>|<overlay>``, and ``tenant:<id>``
  for a per-tenant tripwire).
- fusion-observations (key: scope) → tripwire, gates, overlay breaker; their events, and a
  new overlay-routing version whenever routing changes. Every worker reads overlay-routing
  (:class:`agents.fusion.routing_feed.RoutingFeed`) to admit requests.

All decisions are in :mod:`agents.fusion.rules`; each pipeline writes its outbox entry before
its state, as the traffic decider does (:mod:`app.runtime.outbox`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from prometheus_client import Histogram

from agents.fusion.overlays import OverlayPipeline
from agents.fusion.progress import ProgressMarkers
from agents.fusion.rules import budget as budgets
from agents.fusion.rules import settlement, tokens
from agents.fusion.rules.budget import TenantOutcome, TenantState
from agents.fusion.tenants import (
    FusionContext,
    TenantBatch,
    TenantDecided,
    TenantEventPipeline,
    TenantPipeline,
)
from app.core.checks import Rejection
from app.core.dedup import Position
from app.runtime.connection import aiokafka_options
from app.runtime.faust_app import Governor
from app.runtime.lanes import REPARTITIONED
from app.runtime.topic_reader import partition_ends
from schemas.dead_letter import DeadLetterReason
from schemas.energy import EnergyBudget
from schemas.fusion_result import FusionRequest, FusionResult
from schemas.seed_forms import parse_fusion_request

log = logging.getLogger(__name__)


class BudgetsPipeline(TenantPipeline[EnergyBudget]):
    model = EnergyBudget
    source_kind = "b"

    def __init__(self, gov: Governor, ctx: FusionContext) -> None:
        super().__init__(gov, ctx, "fusion-budgets", "energy-budgets")
        self.start_agent("fusion-budgets")

    def rule(
        self, value: EnergyBudget, position: Position, batch: TenantBatch[EnergyBudget]
    ) -> TenantOutcome:
        return budgets.apply_budget(batch.state(value.tenant), value, position)


class RequestsPipeline(TenantEventPipeline[FusionRequest]):
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


class ResultsPipeline(TenantEventPipeline[FusionResult]):
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

    async def sent(self, decided: Sequence[TenantDecided[FusionResult]]) -> None:
        """Tell the overlay stage how far each partition has come (after its runs)."""
        newest: dict[int, float] = {}
        for item in decided:
            partition = item.position.partition % REPARTITIONED
            at_s = item.event.timestamp.timestamp()
            newest[partition] = max(newest.get(partition, at_s), at_s)
        for partition, at_s in newest.items():
            await self.progress.after_result(partition, at_s)

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

    def counted(self, decided: Sequence[TenantDecided[FusionResult]]) -> None:
        """Each new result's latency, token delta, quality and cost efficiency (the
        labelled series looked up once per batch and label set)."""
        m = self.ctx.metrics
        series: dict[tuple[str, str, str], tuple[Histogram, Histogram, Histogram, Histogram]] = {}
        for item in decided:
            if item.outcome.duplicate or item.outcome.replayed:
                continue
            value = item.event
            key = (value.scenario_type, value.overlay, value.result.value)
            found = series.get(key)
            if found is None:
                labels = (*m.labels("governor_fusion_latency_seconds", key[0], key[1]), key[2])
                found = series[key] = (
                    m.latency.labels(*labels), m.token_delta.labels(*labels),
                    m.quality.labels(*labels), m.cost_efficiency.labels(*labels),
                )  # fmt: skip
            latency, token_delta, quality, cost_efficiency = found
            latency.observe(value.latency_ms / 1000)
            token_delta.observe(value.token_delta_pct / 100)
            quality.observe(value.quality_score)
            if value.actual_units > 0:  # a run that cost nothing has no efficiency to speak of
                cost_efficiency.observe(value.estimated_units / value.actual_units)


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
