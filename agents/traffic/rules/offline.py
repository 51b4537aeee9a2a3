"""The traffic agents' loop without Kafka: tables as dicts, for replay, tests and benchmarks.

Given the routed records of a partition in offset order, it produces the same decision
records as the live decider, byte for byte; that is what the integration test checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.traffic.rules.engine import (
    ClientRate,
    EndpointState,
    TrafficOutcome,
    TrafficOutputs,
    client_key,
    process_request,
    route,
)
from agents.traffic.rules.policy import ActivePolicy
from app.core.dedup import DedupIndex, Position
from schemas.request_event import RequestEvent
from schemas.traffic import RoutedRequest


@dataclass
class OfflineTraffic:
    """Decides routed requests in the order given, keeping state as the agent does."""

    active: ActivePolicy
    endpoints: dict[str, EndpointState] = field(default_factory=dict)
    clients: dict[str, ClientRate] = field(default_factory=dict)
    dedup: DedupIndex = field(default_factory=lambda: DedupIndex(86_400.0, 1_000_000))
    outputs: list[TrafficOutputs] = field(default_factory=list)
    outbox: dict[Position, TrafficOutputs] = field(default_factory=dict)
    duplicates: int = 0
    next_offset: int = 0

    def decide(self, routed: RoutedRequest, position: Position) -> TrafficOutcome:
        """One record of traffic-routed at ``position``."""
        first = self.dedup.lookup(routed.endpoint_key, routed.event.event_id)
        ckey = client_key(routed.endpoint_key, routed.event.client_id)
        outcome = process_request(
            routed,
            position,
            self.endpoints.get(routed.endpoint_key),
            self.clients.get(ckey),
            first.position if first else None,
            self.active,
        )
        if outcome.duplicate:
            self.duplicates += 1
            return outcome
        if outcome.endpoint is not None:
            self.endpoints[outcome.endpoint.endpoint_key] = outcome.endpoint
        if outcome.client is not None:
            self.clients[outcome.client.key] = outcome.client
        if outcome.segment is not None and not self.dedup.contains_segment(position):
            self.dedup.add(outcome.segment)
        if outcome.outputs is not None:
            self.outbox[position] = outcome.outputs
            self.outputs.append(outcome.outputs)
        return outcome

    def run(self, events: list[RequestEvent]) -> list[TrafficOutputs]:
        """Route and decide ``events`` as one partition, in order; the new outputs."""
        before = len(self.outputs)
        for offset, event in enumerate(events):
            position = Position(partition=0, offset=offset + self.next_offset)
            self.decide(route(event, position, self.active), position)
        self.next_offset += len(events)
        return self.outputs[before:]
