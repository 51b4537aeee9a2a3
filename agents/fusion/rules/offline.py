"""The AI cost governance agents' loops without Kafka: tables as dicts, for tests and
benchmarks. Routing reaches admission at once (live, it crosses a topic first; settlements
use no routing, so only admissions see the difference). Observations reach the overlay
stage at once, or, with ``ordered`` (as ``governor replay`` runs it), all at :meth:`finish`
in the overlay stage's release order (:mod:`agents.fusion.rules.ordering`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.fusion.rules import budget, ordering, overlay, settlement
from agents.fusion.rules.budget import TenantOutcome, TenantState
from agents.fusion.rules.overlay import ScopeOutputs, ScopeState
from agents.fusion.settings import FusionSettings
from app.core.dedup import DedupIndex, DedupSegment, Position
from schemas.energy import EnergyBudget, EnergyDecision
from schemas.fusion_result import FusionRequest, FusionResult
from schemas.overlay import OverlayObservation, OverlayRouting


@dataclass
class OfflineFusion:
    config: FusionSettings = field(default_factory=FusionSettings)
    tenants: dict[str, TenantState] = field(default_factory=dict)
    scopes: dict[str, ScopeState] = field(default_factory=dict)
    routing: dict[str, OverlayRouting] = field(default_factory=dict)
    decisions: list[EnergyDecision] = field(default_factory=list)
    scope_outputs: list[ScopeOutputs] = field(default_factory=list)
    request_ids: DedupIndex = field(default_factory=lambda: DedupIndex(86_400.0, 1_000_000))
    result_ids: DedupIndex = field(default_factory=lambda: DedupIndex(86_400.0, 1_000_000))
    offsets: dict[str, int] = field(default_factory=dict)
    ordered: bool = False
    waiting: list[OverlayObservation] = field(default_factory=list)

    def _position(self, source: str) -> Position:
        offset = self.offsets.get(source, 0)
        self.offsets[source] = offset + 1
        return Position(partition=0, offset=offset)

    def budget(self, value: EnergyBudget) -> None:
        outcome = budget.apply_budget(self.tenants.get(value.tenant), value, self._position("b"))
        self._keep(value.tenant, outcome)

    def request(self, value: FusionRequest) -> list[EnergyDecision]:
        position = self._position("q")
        seen = self.request_ids.lookup(value.tenant, value.event_id)
        outcome = budget.admit(
            self.tenants.get(value.tenant), value, position,
            seen.position if seen else None, self.routing, self.config,
        )  # fmt: skip
        self._seen(self.request_ids, value.event_id, value.tenant, position, outcome)
        return self._keep(value.tenant, outcome)

    def result(self, value: FusionResult) -> list[EnergyDecision]:
        position = self._position("r")
        seen = self.result_ids.lookup(value.tenant, value.event_id)
        outcome = settlement.settle(
            self.tenants.get(value.tenant), value, position,
            seen.position if seen else None, self.config,
        )  # fmt: skip
        self._seen(self.result_ids, value.event_id, value.tenant, position, outcome)
        decided = self._keep(value.tenant, outcome)
        if self.ordered:
            self.waiting.extend(outcome.outputs.observations)
        else:
            for obs in outcome.outputs.observations:
                self.observe(obs)
        return decided

    def finish(self) -> None:
        """Apply the runs held back by ``ordered``, in release order."""
        waiting, self.waiting = self.waiting, []
        for obs in ordering.replay_order(waiting):
            self.observe(obs)

    def observe(self, obs: OverlayObservation) -> ScopeOutputs:
        outcome = overlay.observe(self.scopes.get(obs.scope), obs, self._position("o"), self.config)
        if outcome.state is not None:
            self.scopes[obs.scope] = outcome.state
        for routing in outcome.outputs.routings:
            self.routing[routing.scope] = routing
        self.scope_outputs.append(outcome.outputs)
        return outcome.outputs

    def _seen(
        self,
        index: DedupIndex,
        event_id: str,
        tenant: str,
        position: Position,
        outcome: TenantOutcome,
    ) -> None:
        if outcome.state is not None:
            index.add(DedupSegment(entity_id=tenant, position=position, max_event_time_s=0.0,
                                   event_ids=(event_id,)))  # fmt: skip

    def _keep(self, tenant: str, outcome: TenantOutcome) -> list[EnergyDecision]:
        if outcome.state is not None:
            self.tenants[tenant] = outcome.state
        self.decisions.extend(outcome.outputs.decisions)
        return list(outcome.outputs.decisions)
