"""The two load pipelines over ``load-facilities``: zone loads from load-metrics (and the
automatic decisions they trigger), operators' commands from balancing-commands; decisions go
to load-decisions, a command's result to the HTTP request waiting for it.

Metrics come in volume, so their batches are decided together (one state write and one send
per facility and batch); commands are few and interactive, and go one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.facility.context import EventT, FacilityContext, FacilityPipeline, LoadEntry
from agents.facility.rules import balancing
from agents.facility.rules import load as loads
from agents.facility.rules.load import FacilityLoad, LoadOutputs
from app.core.checks import Rejection, future_rejection
from app.core.dedup import Position
from app.runtime.faust_app import Governor
from app.runtime.outbox import Outbox
from app.runtime.producer import send_same_key
from app.runtime.table_view import StateTable
from app.runtime.template import Admitted, ApplyBatch
from schemas.load import BalancingCommand, LoadDecision, LoadMetric


@dataclass(slots=True)
class _Decided:
    """A batch's load metrics decided in offset order, nothing written yet."""

    outcomes: list[tuple[str, Position, loads.LoadOutcome]] = field(default_factory=list)
    states: dict[str, FacilityLoad] = field(default_factory=dict)
    """Each facility's state after the batch's metrics of it, where they changed it."""


class _LoadPipeline(FacilityPipeline[EventT, loads.LoadOutcome]):
    def __init__(self, gov: Governor, ctx: FacilityContext, name: str, source: str) -> None:
        super().__init__(gov, ctx, name, source)
        self.config = gov.settings.load
        if ctx.load is None:
            ctx.load = self.table(
                "load-facilities", LoadEntry, "Zone loads and balancing decisions per facility"
            )
        self.loads: StateTable[LoadEntry] = ctx.load
        self.facilities = self.entity_bound(ctx.load, self.config.max_facilities_per_partition)
        self.decisions_topic = self.output("load-decisions")
        self.box: Outbox[LoadOutputs] = self.outbox(
            ctx.load, LoadEntry, self.config.outbox_records_per_partition, name=self.kind,
        )  # fmt: skip

    async def finish(
        self, facility_id: str, outcome: loads.LoadOutcome, position: Position
    ) -> None:
        outputs = self.outputs_of(outcome, position)
        if outcome.state is not None:
            self.write(facility_id, outcome.state)
        await self.send(facility_id, outputs.decisions)
        self.ctx.resolve(facility_id, outputs.result)

    def outputs_of(self, outcome: loads.LoadOutcome, position: Position) -> LoadOutputs:
        """The record's outputs, kept in the outbox (before the state they come from is
        written); from the outbox for a record already applied."""
        if outcome.replayed:
            return self.box.get(position) or LoadOutputs()
        if outcome.state is None:
            return outcome.outputs
        self.box.record(position, outcome.outputs)
        for d in outcome.outputs.decisions:
            self.ctx.facility_metrics.load_decisions.labels(
                action=d.action.value, origin=d.origin.value, status=d.status.value
            ).inc()
        return outcome.outputs

    def write(self, facility_id: str, state: FacilityLoad) -> None:
        self.loads[facility_id] = LoadEntry(state=state)
        facility = self.metrics.facility_label(state.facility_id)
        for zone in state.zones.values():
            self.ctx.facility_metrics.zone_utilization.labels(
                facility=facility, zone=self.ctx.facility_metrics.zone_label(zone.zone_id)
            ).set(zone.load_kw / zone.capacity_kw)

    async def send(self, facility_id: str, decisions: Sequence[LoadDecision]) -> None:
        """Queue a facility's decisions (one key) as one record batch."""
        if decisions:
            await send_same_key(
                self.gov.faust, self.decisions_topic.get_topic_name(), facility_id.encode(),
                [d.to_json_bytes() for d in decisions],
            )  # fmt: skip


class LoadMetricsPipeline(_LoadPipeline[LoadMetric]):
    model = LoadMetric
    kind = "m"

    def clock_rejection(
        self, value: LoadMetric, record_timestamp_ms: int | None
    ) -> Rejection | None:
        """A metric dated far ahead would freeze its zone (older metrics are ignored)."""
        return future_rejection(
            value.event_id, value.timestamp, record_timestamp_ms, self.config.max_future_skew_s
        )

    def __init__(self, gov: Governor, ctx: FacilityContext) -> None:
        super().__init__(gov, ctx, "load-metrics", "load-metrics")
        self.start_agent("load-metrics")

    def decide(self, value: LoadMetric, position: Position) -> loads.LoadOutcome:
        self.box.ensure_indexed(position.partition)
        return loads.apply_metric(
            self.ctx.load_state(value.facility_id), value, position, self.config
        )

    def decide_together(self, batch: Sequence[Admitted[LoadMetric]]) -> ApplyBatch:
        """Each metric decided against the state the metrics before it left, as one at a
        time; written as one state per facility, its decisions sent as one record batch."""
        self.box.ensure_indexed(batch[0].position.partition)
        decided = _Decided()
        for item in batch:
            facility_id = item.event.facility_id
            state = decided.states.get(facility_id) or self.ctx.load_state(facility_id)
            outcome = loads.apply_metric(state, item.event, item.position, self.config)
            if outcome.state is not None:
                decided.states[facility_id] = outcome.state
            decided.outcomes.append((facility_id, item.position, outcome))
        return lambda: self._apply_together(decided)

    async def _apply_together(self, decided: _Decided) -> None:
        """The outbox entries in offset order (a partition's outbox takes them so), then each
        facility's state, then its decisions."""
        sends: dict[str, list[LoadDecision]] = {}
        for facility_id, position, outcome in decided.outcomes:
            outputs = self.outputs_of(outcome, position)
            sends.setdefault(facility_id, []).extend(outputs.decisions)
        for facility_id, state in decided.states.items():
            self.write(facility_id, state)
        for facility_id, decisions in sends.items():
            await self.send(facility_id, decisions)
        accepted = self.metrics.records.labels(pipeline=self.name, outcome="accepted")
        accepted.inc(len(decided.outcomes))


class BalancingCommandsPipeline(_LoadPipeline[BalancingCommand]):
    model = BalancingCommand
    kind = "c"

    def __init__(self, gov: Governor, ctx: FacilityContext) -> None:
        super().__init__(gov, ctx, "balancing-commands", "balancing-commands")
        self.start_agent("balancing-commands")

    def decide(self, value: BalancingCommand, position: Position) -> loads.LoadOutcome:
        self.box.ensure_indexed(position.partition)
        return balancing.apply_command(
            self.ctx.load_state(value.facility_id), value, position, self.config
        )
