"""The traffic decider through Faust's agent.test_context(), and the policy feed without a
broker: decode, dead-letter, tables, outputs, policy judgements."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from faust.types import TP

from agents.traffic.agent import TrafficPipeline
from agents.traffic.policy_feed import PolicyFeed
from agents.traffic.rules.engine import TrafficOutcome, route
from agents.traffic.rules.offline import OfflineTraffic
from agents.traffic.rules.policy import ActivePolicy, key_id, newest_verified, sign
from app.core.dedup import Position
from app.runtime.stage import STUCK_CHECKS
from app.runtime.topic_reader import SourceRecord
from app.runtime.topology import Topology, build
from app.settings import load_settings
from schemas.dead_letter import DeadLetterReason
from schemas.traffic import TrafficDecision
from tests.factories import BASE_TIME, request, traffic_policy

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def topology(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_TRAFFIC__POLICY", traffic_policy().model_dump_json())
    public = KEY.public_key().public_bytes_raw()
    monkeypatch.setenv(
        "GOVERNOR_TRAFFIC__POLICY_PUBLIC_KEYS",
        orjson.dumps([base64.b64encode(public).decode()]).decode(),
    )
    yield build(load_settings())


class Recorder:
    def __init__(self, pipeline: TrafficPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decisions: list[TrafficDecision] = []
        self.dead: list[dict[str, Any]] = []

        async def send(endpoint_key: str, outcome: TrafficOutcome) -> None:
            if outcome.outputs is not None:
                self.decisions.append(outcome.outputs.decision)

        async def dead_letter(**fields: Any) -> None:
            self.dead.append(fields)

        async def no_metadata_wait(app: Any, topics: Any) -> None:
            return None

        monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
        monkeypatch.setattr(pipeline, "_send", send)
        monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)


async def test_decider_decides_dedups_and_dead_letters(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = topology.traffic
    sent = Recorder(pipeline, monkeypatch)
    topology.policy_feed.caught_up.set()
    active = topology.policy_feed.active
    agent = topology.gov.faust.agents["traffic-decisions"]
    routed = [route(request(n), Position(partition=0, offset=n), active) for n in range(3)]
    async with agent.test_context() as ctx:
        for r in routed:
            await ctx.put(r.to_json_bytes(), key=r.endpoint_key.encode())
        await ctx.put(routed[1].to_json_bytes(), key=routed[1].endpoint_key.encode())  # again
        await ctx.put(b"{not json", key=b"gitlab|status_v1")
        await ctx.put(b'{"event": {}}', key=b"gitlab|status_v1")
        await ctx.put(routed[0].to_json_bytes(), key=b"gitlab|elsewhere")
    assert [d.event_id for d in sent.decisions] == ["req-000000", "req-000001", "req-000002"]
    assert [d["reason"] for d in sent.dead] == [
        DeadLetterReason.UNDECODABLE,
        DeadLetterReason.INVALID_SCHEMA,
        DeadLetterReason.KEY_MISMATCH,
    ]
    state = pipeline.endpoint_state("gitlab|status_v1")
    assert state is not None and state.requests == 3
    assert pipeline.decisions_outbox.get(Position(partition=0, offset=1)) is not None
    assert pipeline.clients["gitlab|status_v1|client-1"].current == 3


def test_policy_feed_applies_in_offset_order_and_keeps_judgements(topology: Topology) -> None:
    feed: PolicyFeed = topology.policy_feed
    assert feed.active.source == "settings" and feed.active.policy.version == "1.0.0"
    newer = sign(traffic_policy(version="1.1.0"), KEY).to_json_bytes()
    tampered = orjson.loads(newer)
    tampered["policy"]["version"] = "9.9.9"
    older = sign(traffic_policy(version="0.5.0"), KEY).to_json_bytes()
    judged = [
        feed.apply(0, newer),
        feed.apply(1, orjson.dumps(tampered)),
        feed.apply(2, None),  # a tombstone: skipped
        feed.apply(3, older),
    ]
    assert [j.verdict.value if j else None for j in judged] == [
        "applied", "hash_mismatch", None, "not_newer",
    ]  # fmt: skip
    assert feed.active.policy.version == "1.1.0" and feed.active.source == "topic@0"
    assert feed.next_offset == 4
    assert feed.judgement_at(1) is not None and feed.judgement_at(1).rejected  # type: ignore[union-attr]
    status = feed.status()
    assert status["version"] == "1.1.0" and len(status["recent_judgements"]) == 3
    assert ActivePolicy.of(traffic_policy(version="1.1.0"), "x").hash == status["policy_hash"]


def test_the_policy_floor_is_the_newest_verified_policy_any_worker_applied() -> None:
    """Issue 16 part 6: what a starting worker takes from traffic-policies-applied."""
    trusted = {key_id(KEY.public_key()): KEY.public_key()}
    v1 = sign(traffic_policy(version="1.1.0"), KEY)
    v2 = sign(traffic_policy(version="1.2.0"), KEY)
    forged = orjson.loads(v2.to_json_bytes())
    forged["policy"]["version"] = "9.0.0"
    stranger = sign(traffic_policy(version="8.0.0"), Ed25519PrivateKey.generate())
    records = [
        (0, v1.to_json_bytes()),
        (1, v2.to_json_bytes()),
        (2, orjson.dumps(forged)),
        (3, stranger.to_json_bytes()),
        (4, b"\xff not json"),
        (5, v1.to_json_bytes()),  # written again later: order does not matter, version does
    ]
    floor, hashes = newest_verified(records, trusted)
    assert floor is not None and floor.policy.version == "1.2.0" and floor.source == "applied@1"
    assert hashes == {v1.policy_hash, v2.policy_hash}
    assert newest_verified([], trusted) == (None, set())


async def test_client_rates_expire_in_event_time_without_changing_a_decision(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 part 4: traffic-clients kept one entry per endpoint and client id forever."""
    pipeline = topology.traffic
    sent = Recorder(pipeline, monkeypatch)
    topology.policy_feed.caught_up.set()
    active = topology.policy_feed.active
    agent = topology.gov.faust.agents["traffic-decisions"]
    clients, spacing_s = 1_000, 0.5
    schedule = sorted(  # each client: now, 30 s later, 200 s later (past its rate window)
        (i * spacing_s + lag, i) for i in range(clients) for lag in (0.0, 30.0, 200.0)
    )
    events = [
        request(n, client_id=f"c-{i:05d}", timestamp=BASE_TIME + timedelta(seconds=at))
        for n, (at, i) in enumerate(schedule)
    ]
    async with agent.test_context() as ctx:
        for n, event in enumerate(events):
            routed = route(event, Position(partition=0, offset=n), active)
            await ctx.put(routed.to_json_bytes(), key=routed.endpoint_key.encode())
    ttl = pipeline.config.client_ttl_s
    live_window = (ttl + 120) / spacing_s  # clients used within the TTL, plus a minute's slack
    assert len(pipeline.clients) <= live_window < clients
    assert pipeline.client_expiry.expired >= clients - live_window
    samples = topology.gov.metrics.table_keys.collect()[0].samples
    held = {s.labels["table"]: s.value for s in samples}
    assert held["traffic-clients"] == len(pipeline.clients) and "traffic-endpoints" in held
    # Every decision is the one an offline run, whose client rates never expire, makes.
    offline = OfflineTraffic(active)
    for n, (event, decision) in enumerate(zip(events, sent.decisions, strict=True)):
        routed = route(event, Position(partition=0, offset=n), active)
        outputs = offline.decide(routed, Position(partition=0, offset=n)).outputs
        assert outputs is not None and outputs.decision == decision, event.event_id
    # ... and every rate still held is the one that never expired: none was cut short.
    assert all(offline.clients[key] == rate for key, rate in pipeline.clients.items())


async def test_records_passed_over_are_read_back_through_a_broker_outage(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chaos soak caught a worker that fail-stopped because the broker was down when it
    read back records Faust had passed over: an outage is weather, ridden out here too."""
    pipeline = topology.traffic
    sent = Recorder(pipeline, monkeypatch)
    topology.policy_feed.caught_up.set()
    routed = route(request(0), Position(partition=0, offset=0), topology.policy_feed.active)
    attempts: list[int] = []

    async def read_range(options: Any, topic: str, partition: int, start: int, stop: int) -> Any:
        attempts.append(start)
        if len(attempts) < 3:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        return [SourceRecord(topic, partition, 0, routed.endpoint_key.encode(),
                             routed.to_json_bytes(), None)]  # fmt: skip

    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr("app.runtime.stage.read_range", read_range)
    monkeypatch.setattr("app.runtime.retry.asyncio.sleep", no_wait)
    agent = topology.gov.faust.agents["traffic-decisions"]
    async with agent.test_context():
        await pipeline._read_back(pipeline.lanes[0], 0, 0, 1)
    assert attempts == [0, 0, 0]
    assert [d.event_id for d in sent.decisions] == ["req-000000"]


async def test_the_idle_catch_up_reads_back_only_what_faust_moved_past(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy worker can leave a source without a record for longer than the idle interval;
    Faust's consumer is then still at the first unhandled offset and will deliver it. Only
    a consumer that moved past it (returned or skipped those records) passed them over."""
    pipeline = topology.traffic
    lane = pipeline.lanes[0]
    app = topology.gov.faust
    position = {"at": 40}
    read: list[tuple[int, int]] = []

    async def ends(options: Any, topic: str, partitions: list[int]) -> dict[int, int]:
        return {p: 50 for p in partitions}

    async def consumer_position(tp: Any) -> int:
        return position["at"]

    async def read_back(lane: Any, partition: int, start: int, stop: int, owned: Any) -> None:
        read.append((start, stop))

    monkeypatch.setattr("app.runtime.stage.partition_ends", ends)
    monkeypatch.setattr(app.consumer, "position", consumer_position)
    monkeypatch.setattr(app.consumer, "assignment", lambda: {TP(lane.name, 0)})
    monkeypatch.setattr(pipeline, "_read_back", read_back)
    lane.expected[0] = 40
    for _ in range(3):  # stalled from the second check on, but Faust is only behind
        await pipeline._catch_up(lane)
    assert read == []
    position["at"] = 47  # Faust moved past offsets 40..46 without them being handled
    await pipeline._catch_up(lane)
    assert read == [(40, 50)]
    # A consumer that stays at the waiting offset for STUCK_CHECKS checks is stuck: read.
    read.clear()
    lane.expected[0], position["at"] = 40, 40
    lane.waiting.clear()
    lane.stalled_checks.clear()
    for _ in range(STUCK_CHECKS):
        await pipeline._catch_up(lane)
    assert read == []
    await pipeline._catch_up(lane)
    assert read == [(40, 50)]
