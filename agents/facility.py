"""Carbon budgets and load balancing per facility.

- carbon-budgets, carbon-emissions (key: facility) → two agents sharing the
  ``carbon-facilities`` table: budget definitions, then every emission counted into its
  period; state changes go to carbon-budget-alerts.
- load-metrics, balancing-commands (key: facility) → two agents sharing ``load-facilities``:
  zone loads and automatic decisions, operators' manual decisions and executions; decisions
  go to load-decisions. The HTTP API waits for its command's result (:class:`LoadContext`).

All four sources are keyed by facility with the same partition count, so a facility's
carbon and load state live on the same worker. Decisions are in :mod:`app.rules`; each
agent writes its outbox entry before its state (:mod:`app.outbox`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from agents.base import Pipeline
from app.dead_letters import source_coordinates
from app.faust_app import Governor
from app.outbox import Entry, Outbox
from app.producer import send_same_key
from app.rules import carbon_budget as budgets
from app.rules import load as loads
from app.rules.carbon_budget import SEVERITY, BudgetOutputs, FacilityCarbon
from app.rules.checks import Rejection, future_rejection, key_rejection
from app.rules.dedup import DedupSegment, Position
from app.rules.load import FacilityLoad, LoadOutputs
from app.waiters import Waiters
from schemas.carbon_budget import CarbonBudget
from schemas.carbon_emission import CarbonEmission
from schemas.dead_letter import DeadLetterReason
from schemas.load import BalancingCommand, CommandResult, LoadMetric

log = logging.getLogger(__name__)

CarbonEntry = Entry[FacilityCarbon, BudgetOutputs]
"""A value of carbon-facilities: a facility's state, or an outbox entry."""
LoadEntry = Entry[FacilityLoad, LoadOutputs]
"""A value of load-facilities: a facility's state, or an outbox entry."""


class FacilityContext:
    """What the facility pipelines share: their tables and the waiting HTTP commands."""

    def __init__(self, gov: Governor) -> None:
        self.gov = gov
        self.carbon: Any = None
        self.load: Any = None
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


class _FacilityPipeline(Pipeline):
    """Decode, check the key, decide, write outbox then state, send."""

    model: type[Any]
    kind: str

    def __init__(self, gov: Governor, ctx: FacilityContext, name: str, source: str) -> None:
        super().__init__(gov, name, source)
        self.ctx = ctx

    def facility_of(self, value: Any) -> str:
        return str(value.facility_id)

    async def handle(self, message: Any) -> None:
        started = time.perf_counter()
        coordinates = source_coordinates(message)
        value = await self.decode(message, self.model.from_json_bytes)
        if value is None:
            return
        rejection: Rejection | None = key_rejection(
            message.key, self.facility_of(value), "facility_id"
        ) or self.clock_rejection(value, coordinates["timestamp_ms"])
        if rejection is not None:
            await self.dead_letter(coordinates, rejection.reason, rejection.message)
            return
        position = self.position_of(message)
        try:
            await self.process(value, position)
        except Exception as exc:  # a rules bug must not stop the stream; the record is kept
            log.exception("%s rules failed on %s[%d]@%d", self.name, message.topic,
                          message.partition, message.offset)  # fmt: skip
            await self.dead_letter(coordinates, DeadLetterReason.PROCESSING_ERROR, repr(exc))
            return
        self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()
        self.metrics.processing.labels(pipeline=self.name).observe(time.perf_counter() - started)

    async def process(self, value: Any, position: Position) -> None:
        raise NotImplementedError

    def clock_rejection(self, value: Any, record_timestamp_ms: int | None) -> Rejection | None:
        """Events with an event time are checked against their record's (see
        :func:`app.rules.checks.future_rejection`); budgets have none."""
        return None


class _CarbonPipeline(_FacilityPipeline):
    def __init__(self, gov: Governor, ctx: FacilityContext, name: str, source: str) -> None:
        super().__init__(gov, ctx, name, source)
        self.config = gov.settings.carbon_budgets
        if ctx.carbon is None:
            ctx.carbon = self.table(
                "carbon-facilities", CarbonEntry, "Carbon budget and period usage per facility"
            )
        self.alerts_topic = self.output("carbon-budget-alerts")
        self.box: Outbox[BudgetOutputs] = self.outbox(
            ctx.carbon, CarbonEntry, self.config.outbox_records_per_partition, name=self.kind,
        )  # fmt: skip

    async def finish(
        self, facility_id: str, outcome: budgets.BudgetOutcome, position: Position
    ) -> None:
        outputs = outcome.outputs
        if outcome.replayed:
            outputs = self.box.get(position) or BudgetOutputs()
        elif outcome.state is not None:
            self.box.record(position, outputs)
            self.ctx.carbon[facility_id] = CarbonEntry(state=outcome.state)
            self._gauge(outcome.state)
            for alert in outputs.alerts:
                self.metrics.carbon_budget_alerts.labels(state=alert.state.value).inc()
                log.info("carbon budget %s: %s → %s (%s, %.1f%%)", facility_id,
                         alert.previous_state, alert.state, alert.reason,
                         100 * alert.usage_ratio)  # fmt: skip
        if outputs.alerts:
            await send_same_key(
                self.gov.app, self.alerts_topic.get_topic_name(), facility_id.encode(),
                [a.to_json_bytes() for a in outputs.alerts],
            )  # fmt: skip

    def _gauge(self, state: FacilityCarbon) -> None:
        status = budgets.status_of(state)
        if status is None:
            return
        label = self.metrics.facility_label(state.facility_id)
        self.metrics.carbon_budget_usage.labels(facility=label).set(status.usage_ratio)
        self.metrics.carbon_budget_state.labels(facility=label).set(SEVERITY[status.state])


class CarbonBudgetsPipeline(_CarbonPipeline):
    model = CarbonBudget
    kind = "b"

    def __init__(self, gov: Governor, ctx: FacilityContext) -> None:
        super().__init__(gov, ctx, "carbon-budgets", "carbon-budgets")
        self.start_agent("carbon-budgets")

    async def process(self, value: Any, position: Position) -> None:
        self.box.ensure_indexed(position.partition)
        state = self.ctx.carbon_state(value.facility_id)
        outcome = budgets.apply_budget(state, value, position, self.config)
        await self.finish(value.facility_id, outcome, position)


class CarbonUsagePipeline(_CarbonPipeline):
    """carbon-emissions → period usage. The carbon pipeline re-sends an emission after a
    crash; its event id is then known here, and it is not counted twice."""

    model = CarbonEmission
    kind = "e"

    def __init__(self, gov: Governor, ctx: FacilityContext) -> None:
        super().__init__(gov, ctx, "carbon-usage", "carbon-emissions")
        self.ids = self.dedup_store(
            "carbon-usage-dedup", self.config.dedup_window_s,
            self.config.dedup_max_events_per_partition,
        )  # fmt: skip
        self.start_agent("carbon-usage")

    async def process(self, value: Any, position: Position) -> None:
        self.box.ensure_indexed(position.partition)
        self.ids.ensure_indexed(position.partition)
        first = self.ids.first_position(value.facility_id, value.event_id)
        if first is not None and first != position:
            self.metrics.records.labels(pipeline=self.name, outcome="duplicate").inc()
            return
        state = self.ctx.carbon_state(value.facility_id)
        outcome = budgets.apply_emission(state, value, position, self.config)
        await self.finish(value.facility_id, outcome, position)
        if first is None:
            self.ids.record(
                DedupSegment(
                    entity_id=value.facility_id, position=position,
                    max_event_time_s=value.timestamp.timestamp(), event_ids=(value.event_id,),
                )
            )  # fmt: skip


class _LoadPipeline(_FacilityPipeline):
    def __init__(self, gov: Governor, ctx: FacilityContext, name: str, source: str) -> None:
        super().__init__(gov, ctx, name, source)
        self.config = gov.settings.load
        if ctx.load is None:
            ctx.load = self.table(
                "load-facilities", LoadEntry, "Zone loads and balancing decisions per facility"
            )
        self.decisions_topic = self.output("load-decisions")
        self.box: Outbox[LoadOutputs] = self.outbox(
            ctx.load, LoadEntry, self.config.outbox_records_per_partition, name=self.kind,
        )  # fmt: skip

    async def finish(
        self, facility_id: str, outcome: loads.LoadOutcome, position: Position
    ) -> None:
        outputs = outcome.outputs
        if outcome.replayed:
            outputs = self.box.get(position) or LoadOutputs()
        elif outcome.state is not None:
            self.box.record(position, outputs)
            self.ctx.load[facility_id] = LoadEntry(state=outcome.state)
            self._gauge(outcome.state)
            for d in outputs.decisions:
                self.metrics.load_decisions.labels(
                    action=d.action.value, origin=d.origin.value, status=d.status.value
                ).inc()
        if outputs.decisions:
            await send_same_key(
                self.gov.app, self.decisions_topic.get_topic_name(), facility_id.encode(),
                [d.to_json_bytes() for d in outputs.decisions],
            )  # fmt: skip
        self.ctx.resolve(facility_id, outputs.result)

    def _gauge(self, state: FacilityLoad) -> None:
        facility = self.metrics.facility_label(state.facility_id)
        for zone in state.zones.values():
            self.metrics.zone_utilization.labels(
                facility=facility, zone=self.metrics.zone_label(zone.zone_id)
            ).set(zone.load_kw / zone.capacity_kw)


class LoadMetricsPipeline(_LoadPipeline):
    model = LoadMetric
    kind = "m"

    def clock_rejection(self, value: Any, record_timestamp_ms: int | None) -> Rejection | None:
        """A metric dated far ahead would freeze its zone (older metrics are ignored)."""
        return future_rejection(
            value.event_id, value.timestamp, record_timestamp_ms, self.config.max_future_skew_s
        )

    def __init__(self, gov: Governor, ctx: FacilityContext) -> None:
        super().__init__(gov, ctx, "load-metrics", "load-metrics")
        self.start_agent("load-metrics")

    async def process(self, value: Any, position: Position) -> None:
        self.box.ensure_indexed(position.partition)
        outcome = loads.apply_metric(
            self.ctx.load_state(value.facility_id), value, position, self.config
        )
        await self.finish(value.facility_id, outcome, position)


class BalancingCommandsPipeline(_LoadPipeline):
    model = BalancingCommand
    kind = "c"

    def __init__(self, gov: Governor, ctx: FacilityContext) -> None:
        super().__init__(gov, ctx, "balancing-commands", "balancing-commands")
        self.start_agent("balancing-commands")

    async def process(self, value: Any, position: Position) -> None:
        self.box.ensure_indexed(position.partition)
        outcome = loads.apply_command(
            self.ctx.load_state(value.facility_id), value, position, self.config
        )
        await self.finish(value.facility_id, outcome, position)


def register(gov: Governor) -> FacilityContext:
    """Wire the carbon budget and load-balancing pipelines into ``gov``."""
    ctx = FacilityContext(gov)
    CarbonBudgetsPipeline(gov, ctx)
    CarbonUsagePipeline(gov, ctx)
    LoadMetricsPipeline(gov, ctx)
    BalancingCommandsPipeline(gov, ctx)
    return ctx
