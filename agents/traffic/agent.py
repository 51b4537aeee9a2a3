"""request-events → traffic-routed → traffic decisions, breaker transitions, burn alerts.

Two stages, as Kafka Streams would repartition: the router pairs each request with its
contract and re-keys it by endpoint (stateless), so that the decider finds all of an
endpoint's requests, statistics and breaker in one partition. A third small agent reports
policy records the feed refused. All decisions are in :mod:`agents.traffic.rules`.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from agents.traffic.metrics import TrafficMetrics
from agents.traffic.policy_feed import PolicyFeed
from agents.traffic.rules.contracts import UNKNOWN
from agents.traffic.rules.engine import (
    ClientRate,
    EndpointEntry,
    EndpointState,
    TrafficOutcome,
    TrafficOutputs,
    client_key,
    process_request,
    route,
)
from app.core.checks import Rejection, future_rejection, key_rejection
from app.core.dedup import Position
from app.runtime.dead_letters import source_coordinates
from app.runtime.entity_bound import EntityBound
from app.runtime.expiry import ExpiringKeys
from app.runtime.faust_app import Governor
from app.runtime.outbox import Outbox
from app.runtime.producer import send_same_key
from app.runtime.stage import Stage
from app.runtime.template import Pipeline
from schemas.dead_letter import DeadLetterReason
from schemas.request_event import RequestEvent
from schemas.seed_forms import parse_request_event
from schemas.traffic import CircuitState, RoutedRequest

log = logging.getLogger(__name__)

CIRCUIT_GAUGE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class TrafficRouter(Pipeline[RequestEvent, RoutedRequest]):
    """request-events → traffic-routed, keyed by endpoint."""

    keyed_state = False  # any key is accepted: state is kept per endpoint, after routing

    def __init__(self, gov: Governor, feed: PolicyFeed) -> None:
        super().__init__(gov, "traffic-router", "request-events")
        self.feed = feed
        self.config = gov.settings.traffic
        self.routed = self.output("traffic-routed")
        self.start_agent("traffic-router")

    async def ready(self) -> None:
        await self.feed.caught_up.wait()

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> RequestEvent:
        return parse_request_event(value, key, timestamp_ms)

    def check(
        self, key: bytes | None, event: RequestEvent, timestamp_ms: int | None
    ) -> Rejection | None:
        return future_rejection(
            event.event_id, event.timestamp, timestamp_ms, self.config.max_future_skew_s
        )

    def decide(self, event: RequestEvent, position: Position) -> RoutedRequest:
        return route(event, position, self.feed.active)

    async def apply(self, event: RequestEvent, routed: RoutedRequest, position: Position) -> None:
        await send_same_key(
            self.gov.faust,
            self.routed.get_topic_name(),
            routed.endpoint_key.encode(),
            [routed.to_json_bytes()],
        )
        self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()


class TrafficPipeline(Pipeline[RoutedRequest, TrafficOutcome]):
    """traffic-routed → decisions, transitions, alerts; endpoint and client state."""

    def __init__(self, gov: Governor, feed: PolicyFeed, traffic_metrics: TrafficMetrics) -> None:
        super().__init__(gov, "traffic", "traffic-routed")
        self.feed = feed
        self.traffic_metrics = traffic_metrics
        self.config = gov.settings.traffic
        self.decisions = self.output("traffic-decisions")
        self.transitions = self.output("circuit-breaker-events")
        self.alerts = self.output("traffic-alerts")
        self.endpoints = self.table(
            "traffic-endpoints",
            EndpointEntry,
            "Baseline, breaker and alerts per endpoint, and the outbox of recent decisions",
        )
        self.decisions_outbox: Outbox[TrafficOutputs] = self.outbox(
            self.endpoints,
            EndpointEntry,
            self.config.outbox_records_per_partition,
        )
        self.bound = self.entity_bound(self.endpoints, self.config.max_endpoints_per_partition)
        self.clients = self.table(
            "traffic-clients", ClientRate, "Requests per minute per endpoint and client"
        )
        self.client_expiry: ExpiringKeys[ClientRate] = self.expiring(
            self.clients, self.config.client_ttl_s, _last_request_s
        )
        self.requests_dedup = self.dedup_store(
            "traffic-dedup", self.config.dedup_window_s, self.config.dedup_max_events_per_partition
        )
        self.start_agent("traffic-decisions")

    async def ready(self) -> None:
        await self.feed.caught_up.wait()

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> RoutedRequest:
        return RoutedRequest.from_json_bytes(value)

    def check(
        self, key: bytes | None, routed: RoutedRequest, timestamp_ms: int | None
    ) -> Rejection | None:
        return key_rejection(key, routed.endpoint_key, "endpoint_key")

    def entity(self, routed: RoutedRequest) -> tuple[EntityBound, str]:
        return self.bound, routed.endpoint_key

    def decide(self, routed: RoutedRequest, position: Position) -> TrafficOutcome:
        return self._decide(routed, position)

    async def apply(
        self, routed: RoutedRequest, outcome: TrafficOutcome, position: Position
    ) -> None:
        if outcome.replayed:
            outcome.outputs = self.decisions_outbox.get(position)
            if outcome.outputs is None:
                self.metrics.outbox_misses.labels(pipeline=self.name).inc()
                log.warning(
                    "no outbox entry for re-delivered %s[%d]@%d",
                    self.source_name, position.partition, position.offset,
                )  # fmt: skip
        self._persist(position, outcome)
        await self._send(routed.endpoint_key, outcome)
        self._count(routed, outcome)

    def _decide(self, routed: RoutedRequest, position: Position) -> TrafficOutcome:
        self.requests_dedup.ensure_indexed(position.partition)
        self.decisions_outbox.ensure_indexed(position.partition)
        self.client_expiry.ensure_indexed(position.partition)
        ckey = client_key(routed.endpoint_key, routed.event.client_id)
        return process_request(
            routed,
            position,
            self.endpoint_state(routed.endpoint_key),
            self.clients.get(ckey),
            self.requests_dedup.first_position(routed.endpoint_key, routed.event.event_id),
            self.feed.active,
        )

    def endpoint_state(self, endpoint_key: str) -> EndpointState | None:
        entry = self.endpoints.get(endpoint_key)
        return entry.state if entry is not None else None

    def _persist(self, position: Position, outcome: TrafficOutcome) -> None:
        """Write the outbox entry, then the state (the order recovery relies on); each write
        is idempotent under re-delivery."""
        if outcome.endpoint is not None:
            assert outcome.outputs is not None
            self.decisions_outbox.record(position, outcome.outputs)
            self.endpoints[outcome.endpoint.endpoint_key] = EndpointEntry(state=outcome.endpoint)
        if outcome.client is not None:
            rate, before = outcome.client, self.clients.get(outcome.client.key)
            self.clients[rate.key] = rate
            if before is None or before.minute != rate.minute:
                self.client_expiry.touched(position.partition, rate.key, rate.minute * 60.0)
        self.requests_dedup.record(outcome.segment)

    async def _send(self, endpoint_key: str, outcome: TrafficOutcome) -> None:
        """The decision, then any transitions and alerts, each to its topic."""
        outputs = outcome.outputs
        if outputs is None:
            return
        key = endpoint_key.encode()
        app = self.gov.faust
        await send_same_key(
            app, self.decisions.get_topic_name(), key, [outputs.decision.to_json_bytes()]
        )
        await send_same_key(
            app,
            self.transitions.get_topic_name(),
            key,
            [t.to_json_bytes() for t in outputs.transitions],
        )
        await send_same_key(
            app, self.alerts.get_topic_name(), key, [a.to_json_bytes() for a in outputs.alerts]
        )

    def _count(self, routed: RoutedRequest, outcome: TrafficOutcome) -> None:
        self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()
        if outcome.duplicate or outcome.replayed or outcome.outputs is None:
            return
        m = self.traffic_metrics
        decision = outcome.outputs.decision
        platform = m.platform_label(decision.platform)
        contract = m.contract_label(decision.contract_id or UNKNOWN)
        event = routed.event
        failed = event.status_code >= 500 or event.error_count > 0
        m.requests.labels(
            platform=platform, contract=contract, result="error" if failed else "ok"
        ).inc()
        m.decisions.labels(
            platform=platform, tier=decision.platform_tier.value, decision=decision.decision.value
        ).inc()
        m.risk.labels(platform=platform).observe(decision.risk_score)
        m.latency.labels(platform=platform, contract=contract).observe(event.latency_ms / 1000.0)
        if decision.contract_id is not None:
            m.circuit_state.labels(platform=platform, contract=contract).set(
                CIRCUIT_GAUGE[decision.circuit_state]
            )
            remaining = decision.baseline.error_budget_remaining
            if remaining is not None:
                m.error_budget.labels(platform=platform, contract=contract).set(remaining)
        for transition in outcome.outputs.transitions:
            m.circuit_transitions.labels(
                platform=platform, contract=contract, to_state=transition.to_state.value
            ).inc()
        for alert in outcome.outputs.alerts:
            m.burn_alerts.labels(
                rule=alert.rule, severity=alert.severity.value, state=alert.state.value
            ).inc()
        self.metrics.dedup_events.labels(pipeline=self.name).set(len(self.requests_dedup))


class PolicyReporter(Stage):
    """traffic-policies: dead-letter the records the feed refused (once, by the group).

    Every worker judges every policy record (:class:`PolicyFeed`); this agent, consumed by
    one worker per partition like any other, is what reports a refusal, so a refused policy
    is dead-lettered once rather than once per worker.
    """

    def __init__(self, gov: Governor, feed: PolicyFeed) -> None:
        super().__init__(gov, "traffic-policy", "traffic-policies")
        self.feed = feed
        self.start_agent("traffic-policy-reporter")

    async def handle(self, message: Any) -> None:
        await self.feed.wait_past(message.offset)
        judgement = self.feed.judgement_at(message.offset)
        if judgement is None or not judgement.rejected:
            self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()
            return
        reason = {
            "undecodable": DeadLetterReason.UNDECODABLE,
            "invalid": DeadLetterReason.INVALID_SCHEMA,
        }.get(judgement.verdict.value, DeadLetterReason.POLICY_REJECTED)
        await self.dead_letter(source_coordinates(message), reason, judgement.message)


class TrafficHandle(NamedTuple):
    """The traffic pipeline's parts its views and tests use."""

    feed: PolicyFeed
    router: TrafficRouter
    pipeline: TrafficPipeline


def register(gov: Governor) -> TrafficHandle:
    """Wire the traffic pipeline (policy feed, router, decider, reporter) into ``gov``."""
    traffic_metrics = TrafficMetrics(gov.metrics, gov.settings.traffic.max_endpoint_labels)
    feed = PolicyFeed(gov.settings, traffic_metrics, gov.publish)
    gov.faust.task(feed.run)
    router = TrafficRouter(gov, feed)
    pipeline = TrafficPipeline(gov, feed, traffic_metrics)
    PolicyReporter(gov, feed)
    return TrafficHandle(feed, router, pipeline)


def _last_request_s(rate: ClientRate) -> float:
    """When a client's rate entry was last used: the start of its newest minute."""
    return rate.minute * 60.0
