"""The overlay stage: fusion-observations (key: scope) → tripwire, gates, breaker events and
routing versions, with a scope's runs applied in event-time order.

Runs wait in their partition's :class:`~agents.fusion.rules.ordering.ObservationBuffer` until
every fusion-results partition has passed their event time (progress records, sent by
:mod:`agents.fusion.progress`), then are applied in (event time, event id, scope) order, as
``governor replay`` applies them. A run re-sent after a restart of the tenant stage is
recognised by its event id and ignored. Reset commands apply at once.

Per source record: the outbox entry is written first, then every scope state it changed, then
the buffer; a record whose buffer write survived is done, and one handled again after a
crash finds the states it already changed stamped with its position and re-sends its
outbox entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.fusion.metrics import FusionMetrics, count_scope
from agents.fusion.rules import ordering
from agents.fusion.rules import overlay as overlays
from agents.fusion.rules.ordering import ObservationBuffer, Step
from agents.fusion.rules.overlay import ScopeOutcome, ScopeOutputs, ScopeState
from app.core.checks import Rejection, key_rejection
from app.core.dedup import DedupSegment, Position
from app.core.outbox_entry import Entry
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor
from app.runtime.lanes import REPARTITIONED
from app.runtime.outbox import Outbox
from app.runtime.producer import send_same_key
from app.runtime.state import BOOKKEEPING_PREFIX
from app.runtime.template import Pipeline
from schemas.overlay import ObservationKind, OverlayObservation

log = logging.getLogger(__name__)

ScopeEntry = Entry[ScopeState | ObservationBuffer, ScopeOutputs]
"""A value of fusion-scopes: a scope's state, a partition's buffer, or an outbox entry."""


def buffer_key(partition: int) -> str:
    """The table key of a fusion-observations partition's buffer."""
    return f"{BOOKKEEPING_PREFIX}order:{partition}"


@dataclass(frozen=True, slots=True)
class OverlayDecision:
    """What one fusion-observations record decided."""

    step: Step | None
    """What it releases from its partition's buffer; ``None``: a run seen before (a
    re-sent result), ignored."""
    outcomes: list[tuple[str, ScopeOutcome]] = field(default_factory=list)
    """Each scope the released runs changed, and how."""
    failures: list[str] = field(default_factory=list)
    """Released runs the rules failed on (left out, each dead-lettered with the record)."""


class OverlayPipeline(Pipeline[OverlayObservation, OverlayDecision]):
    """fusion-observations → tripwire, gates, breaker events and routing, per scope."""

    def __init__(self, gov: Governor, fusion_metrics: FusionMetrics) -> None:
        super().__init__(gov, "fusion-overlays", "fusion-observations")
        self.fusion_metrics = fusion_metrics
        self.config = gov.settings.fusion
        self.scopes = self.table(
            "fusion-scopes",
            ScopeEntry,
            "Tripwire, gates, breaker per scope; run buffers; outbox",
        )
        self.sources = gov.catalogue["fusion-results"].partitions
        self.bound = self.entity_bound(self.scopes, self.config.max_scopes_per_partition)
        self.box: Outbox[ScopeOutputs] = self.outbox(
            self.scopes, ScopeEntry, gov.settings.fusion.outbox_records_per_partition
        )
        self.ids = self.dedup_store(
            "fusion-observation-dedup", self.config.dedup_window_s,
            self.config.dedup_max_events_per_partition,
        )  # fmt: skip
        self.topics = {
            name: self.output(name)
            for name in (
                "tripwire-events", "fusion-gate-events", "overlay-breaker-events",
                "overlay-routing",
            )
        }  # fmt: skip
        self.start_agent("fusion-overlays")

    def scope_state(self, scope: str) -> ScopeState | None:
        entry = self.scopes.get(scope)
        state = entry.state if entry is not None else None
        return state if isinstance(state, ScopeState) else None

    def buffer(self, partition: int) -> ObservationBuffer:
        entry = self.scopes.get(buffer_key(partition))
        state = entry.state if entry is not None else None
        if isinstance(state, ObservationBuffer):
            return state
        return ObservationBuffer(buffer_partition=partition)

    def parse(
        self, value: bytes, key: bytes | None, timestamp_ms: int | None
    ) -> OverlayObservation:
        return OverlayObservation.from_json_bytes(value)

    def check(
        self, key: bytes | None, obs: OverlayObservation, timestamp_ms: int | None
    ) -> Rejection | None:
        """A progress record is the tenant stage's, keyed by partition; a run its scope's."""
        return None if obs.is_marker else key_rejection(key, obs.scope, "scope")

    def entity(self, obs: OverlayObservation) -> tuple[EntityBound, str] | None:
        return None if obs.is_marker else (self.bound, obs.scope)

    def decide(self, obs: OverlayObservation, position: Position) -> OverlayDecision:
        """What the record releases from its partition's buffer, and what the released runs
        do to their scopes."""
        self.box.ensure_indexed(position.partition)
        buffer = self.buffer(position.partition % REPARTITIONED)
        if obs.is_marker:
            step = ordering.progress(buffer, obs, position, self.sources)
        else:
            self.ids.ensure_indexed(position.partition)
            first = self.ids.first_position(obs.scope, obs.event_id)
            if first is not None and first != position:
                return OverlayDecision(step=None)
            if obs.kind is ObservationKind.TRIPWIRE_RESET:  # an operator's command: at once
                step = (
                    Step(buffer=None)
                    if buffer.has_applied(position)
                    else Step(buffer=buffer.stamped(position), release=(obs,))
                )
            else:
                bound = self.config.ordering.max_pending_runs_per_partition
                step = ordering.arrive(buffer, obs, position, bound)
        failures: list[str] = []
        outcomes = [] if step.buffer is None else self._apply(step.release, position, failures)
        return OverlayDecision(step, outcomes, failures)

    async def apply(
        self, obs: OverlayObservation, decision: OverlayDecision, position: Position
    ) -> None:
        if decision.step is None:
            self.fusion_metrics.observations.labels(how="duplicate").inc()
            return
        await self._release(decision.step, decision.outcomes, position)
        if not obs.is_marker:
            self.ids.record(
                DedupSegment(entity_id=obs.scope, position=position,
                             max_event_time_s=obs.timestamp.timestamp(),
                             event_ids=(obs.event_id,))
            )  # fmt: skip

    def failures(self, decision: OverlayDecision) -> Sequence[str]:
        return decision.failures

    async def _release(
        self, step: Step, outcomes: list[tuple[str, ScopeOutcome]], position: Position
    ) -> None:
        """Apply what the record releases; write outbox, scope states, then the buffer."""
        partition = position.partition % REPARTITIONED
        if step.buffer is None:  # handled before a crash: send what it sent then
            await self._send(self.box.get(position) or ScopeOutputs())
            return
        outputs = ScopeOutputs()
        for _, outcome in outcomes:
            outputs = outputs.merged(outcome.outputs)
        earlier = self.box.get(position)  # states of it survived a crash: its entry did too
        if earlier is None:
            self.box.record(position, outputs)
        else:
            outputs = earlier
        for scope, outcome in outcomes:
            if outcome.state is not None:
                self.scopes[scope] = ScopeEntry(state=outcome.state)
        self.scopes[buffer_key(partition)] = ScopeEntry(state=step.buffer)
        await self._send(outputs)
        self._count(step, outcomes, partition)
        self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()

    def _apply(
        self, released: Sequence[OverlayObservation], position: Position, failures: list[str]
    ) -> list[tuple[str, ScopeOutcome]]:
        """The released runs, a scope at a time, each scope's in release order; a run the
        rules fail on (a bug) is left out and described in ``failures``, since one record
        may release many runs and none may hold back the others."""

        def failed(obs: OverlayObservation, exc: Exception) -> None:
            log.error("overlay rules failed on run %s of %s", obs.event_id, obs.scope,
                      exc_info=exc)  # fmt: skip
            failures.append(f"overlay rules failed on run {obs.event_id} of {obs.scope}"
                            f" (released by this record): {exc!r}")  # fmt: skip

        by_scope: dict[str, list[OverlayObservation]] = {}
        for obs in released:
            by_scope.setdefault(obs.scope, []).append(obs)
        return [
            (scope, overlays.observe_all(
                self.scope_state(scope), runs, position, self.config, on_error=failed
            ))
            for scope, runs in by_scope.items()
        ]  # fmt: skip

    def _count(self, step: Step, outcomes: list[tuple[str, ScopeOutcome]], partition: int) -> None:
        m = self.fusion_metrics
        runs = [o for o in step.release if o.kind is ObservationKind.RUN]
        assert step.buffer is not None
        if runs:
            how = "late" if step.late else "early" if step.early else "in_order"
            m.observations.labels(how=how).inc(len(runs))
        if step.late:
            for obs in runs:
                log.warning("late run %s of %s (event time %s, partition %d released to %s):"
                            " applied now, replay may differ", obs.event_id, obs.scope,
                            obs.timestamp.isoformat(), partition,
                            step.buffer.released_to_s)  # fmt: skip
        m.waiting.labels(partition=str(partition)).set(len(step.buffer.pending))
        last_of = {obs.scope: obs for obs in step.release}
        for scope, outcome in outcomes:
            if outcome.state is not None:
                count_scope(m, last_of[scope], outcome.state, outcome.outputs)

    async def _send(self, outputs: ScopeOutputs) -> None:
        """Each record keyed by its own scope (one source record may release many)."""
        records: list[tuple[str, Sequence[Any]]] = [
            ("tripwire-events", outputs.tripwire_events),
            ("fusion-gate-events", outputs.gate_transitions),
            ("overlay-breaker-events", outputs.breaker_transitions),
            ("overlay-routing", outputs.routings),
        ]
        for name, values in records:
            topic = self.topics[name].get_topic_name()
            for value in values:
                await send_same_key(
                    self.gov.faust, topic, value.scope.encode(), [value.to_json_bytes()]
                )
