"""Carbon budgets per facility, and the wiring of the facility pipelines.

- carbon-budgets (key: facility) → budget definitions, and the carbon agent's
  meter-readings records (key: facility) → their emissions counted into the period, both in
  the ``carbon-facilities`` table; state changes go to carbon-budget-alerts.
- load-metrics, balancing-commands (key: facility): :mod:`agents.facility.load_agent`.

All these sources are keyed by facility with the same partition count, so a facility's
carbon and load state live on the same worker. Decisions are in :mod:`agents.facility.rules`;
each agent writes its outbox entry before its state (:mod:`app.runtime.outbox`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from agents.carbon.agent import CarbonPipeline
from agents.facility.context import CarbonEntry, FacilityContext, FacilityPipeline
from agents.facility.load_agent import BalancingCommandsPipeline, LoadMetricsPipeline
from agents.facility.rules import carbon_budget as budgets
from agents.facility.rules.carbon_state import (
    SEVERITY,
    BudgetOutcome,
    BudgetOutputs,
    CountedEmission,
    FacilityCarbon,
)
from agents.facility.rules.carbon_usage import apply_records
from app.core.dedup import Position
from app.runtime.faust_app import Governor
from app.runtime.outbox import Outbox
from app.runtime.producer import send_same_key
from app.runtime.stage import Stage
from app.runtime.table_view import StateTable
from schemas.carbon_budget import CarbonBudget

log = logging.getLogger(__name__)


class CarbonBudgetWriter:
    """Writes facilities' carbon state (outbox first) and sends its alerts, for one of the
    two records that change it: a budget (its own agent) or a meter-readings record (the
    carbon agent, through :class:`CarbonUsage`)."""

    def __init__(self, ctx: FacilityContext, pipeline: Stage, outbox_name: str) -> None:
        gov = ctx.gov
        self.ctx = ctx
        self.metrics = gov.metrics
        self.config = gov.settings.carbon_budgets
        if ctx.carbon is None:
            ctx.carbon = pipeline.table(
                "carbon-facilities", CarbonEntry, "Carbon budget and period usage per facility"
            )
        else:
            pipeline.shares(ctx.carbon)
        self.table: StateTable[CarbonEntry] = ctx.carbon
        self.alerts_topic = pipeline.output("carbon-budget-alerts")
        self.box: Outbox[BudgetOutputs] = pipeline.outbox(
            ctx.carbon, CarbonEntry, self.config.outbox_records_per_partition, name=outbox_name
        )
        self.app = gov.faust

    def write(self, facility_id: str, outcome: BudgetOutcome, position: Position) -> BudgetOutputs:
        """Persist ``outcome`` (its outputs in the outbox, then the state); the outputs to
        send, from the outbox for a record already applied."""
        outputs = outcome.outputs
        if outcome.replayed:
            return self.box.get(position) or BudgetOutputs()
        if outcome.state is not None:
            self.box.record(position, outputs)
            self.table[facility_id] = CarbonEntry(state=outcome.state)
            self._gauge(outcome.state)
            for alert in outputs.alerts:
                self.ctx.facility_metrics.budget_alerts.labels(state=alert.state.value).inc()
                log.info("carbon budget %s: %s → %s (%s, %.1f%%)", facility_id,
                         alert.previous_state, alert.state, alert.reason,
                         100 * alert.usage_ratio)  # fmt: skip
        return outputs

    async def send(self, facility_id: str, outputs: BudgetOutputs) -> None:
        if outputs.alerts:
            await send_same_key(
                self.app, self.alerts_topic.get_topic_name(), facility_id.encode(),
                [a.to_json_bytes() for a in outputs.alerts],
            )  # fmt: skip

    def _gauge(self, state: FacilityCarbon) -> None:
        status = budgets.status_of(state)
        if status is None:
            return
        label = self.metrics.facility_label(state.facility_id)
        self.ctx.facility_metrics.budget_usage.labels(facility=label).set(status.usage_ratio)
        self.ctx.facility_metrics.budget_state.labels(facility=label).set(SEVERITY[status.state])


class CarbonBudgetsPipeline(FacilityPipeline[CarbonBudget, BudgetOutcome]):
    model = CarbonBudget
    kind = "b"

    def __init__(self, gov: Governor, ctx: FacilityContext) -> None:
        super().__init__(gov, ctx, "carbon-budgets", "carbon-budgets")
        self.config = gov.settings.carbon_budgets
        self.writer = CarbonBudgetWriter(ctx, self, self.kind)
        # carbon-facilities also holds the facilities whose readings are counted (at most
        # the carbon pipeline's limit): budgets may add their own limit's worth beside them.
        limit = gov.settings.carbon.max_facilities_per_partition
        self.facilities = self.entity_bound(
            ctx.carbon, limit + self.config.max_budgets_per_partition
        )
        self.start_agent("carbon-budgets")

    def decide(self, value: CarbonBudget, position: Position) -> BudgetOutcome:
        self.writer.box.ensure_indexed(position.partition)
        state = self.ctx.carbon_state(value.facility_id)
        return budgets.apply_budget(state, value, position, self.config)

    async def finish(self, facility_id: str, outcome: BudgetOutcome, position: Position) -> None:
        outputs = self.writer.write(facility_id, outcome, position)
        await self.writer.send(facility_id, outputs)


class CarbonUsage:
    """Counts meter-readings records' emissions into their facility's budget period, as
    one update per facility and batch, inside the carbon agent
    (:class:`agents.carbon.agent.BudgetUsage`).

    Why not an agent of its own over carbon-emissions: that was one Faust event and one state
    update per emission, and it held batched readings to about 3,000/s (issue "State that
    costs per key"). meter-readings is keyed by facility and has the partition count of
    carbon-budgets (checked by :meth:`Pipeline.shares`), so the facility's budget state is
    on the worker that takes the readings. A record is counted once: the state's watermark
    for the readings lane says whether it was, whatever the carbon agent's own tables
    survived of a crash, and its alerts are re-sent from the outbox. Counted per emission
    in ``governor_records_total{pipeline="carbon-usage", outcome="accepted"}``.
    """

    NAME = "carbon-usage"

    def __init__(self, ctx: FacilityContext, carbon: Stage) -> None:
        self.ctx = ctx
        self.metrics = ctx.gov.metrics
        self.config = ctx.gov.settings.carbon_budgets
        self.writer = CarbonBudgetWriter(ctx, carbon, "r")
        self._deciding_s = 0.0
        """The last decision's time: with its write, the record's time in this stage
        (``governor_record_processing_seconds{pipeline="carbon-usage"}``)."""

    def decide(
        self, facility_id: str, records: Sequence[tuple[Position, Sequence[CountedEmission]]]
    ) -> list[tuple[Position, BudgetOutcome]]:
        """What records' emissions (applied or re-sent; one facility and partition, offset
        order) do to the budget, as outcomes to write at their positions."""
        started = time.perf_counter()
        self.writer.box.ensure_indexed(records[0][0].partition)
        state = self.ctx.carbon_state(facility_id)
        outcomes = apply_records(state, facility_id, records, self.config)
        self._deciding_s += time.perf_counter() - started  # a batch decides all, then writes
        return outcomes

    def write(self, facility_id: str, outcome: BudgetOutcome, position: Position) -> BudgetOutputs:
        """Persist ``outcome``; the alerts to send (from the outbox for a record counted)."""
        started = time.perf_counter()
        outputs = self.writer.write(facility_id, outcome, position)
        if not outcome.replayed:
            accepted = self.metrics.records.labels(pipeline=self.NAME, outcome="accepted")
            accepted.inc(outcome.counted)
        spent = self._deciding_s + time.perf_counter() - started
        self._deciding_s = 0.0
        timed = self.metrics.processing.labels(pipeline=self.NAME)
        for _ in range(outcome.records):  # the time per record, for each record
            timed.observe(spent / outcome.records)
        return outputs

    async def send(self, facility_id: str, outputs: BudgetOutputs) -> None:
        await self.writer.send(facility_id, outputs)


def register(gov: Governor, carbon: CarbonPipeline) -> FacilityContext:
    """Wire the carbon budget and load-balancing pipelines into ``gov``; ``carbon`` counts
    each reading record's emissions into its facility's budget (:class:`CarbonUsage`)."""
    ctx = FacilityContext(gov)
    CarbonBudgetsPipeline(gov, ctx)
    carbon.budget_usage = CarbonUsage(ctx, carbon)
    LoadMetricsPipeline(gov, ctx)
    BalancingCommandsPipeline(gov, ctx)
    return ctx
