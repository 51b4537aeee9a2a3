"""request-events → traffic decisions on a real broker: policy over HTTP and the topic,
tampered policies refused, byte-identical replay, two workers, SIGKILL."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agents.traffic.rules.offline import OfflineTraffic
from agents.traffic.rules.policy import ActivePolicy, policy_hash, sign
from app.core.dedup import Position
from app.tools.sample import sample_policy, sample_request
from app.topics import Catalogue
from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.ledger import LedgerRecord
from schemas.request_event import RequestEvent
from schemas.traffic import RoutedRequest, TrafficDecision
from tests.integration.harness import (
    TOKEN,
    Cluster,
    PacedProducer,
    WorkerProcess,
    http_get,
    http_request,
    kill_mid_stream,
    metric_value,
    produce,
    read_all,
    wait_for,
)

pytestmark = pytest.mark.integration

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TRUST = {
    "GOVERNOR_TRAFFIC__POLICY_PUBLIC_KEYS": orjson.dumps(
        [base64.b64encode(KEY.public_key().public_bytes_raw()).decode()]
    ).decode()
}
START = datetime(2024, 1, 15, tzinfo=UTC)


def requests(count: int, run: str) -> list[RequestEvent]:
    return [sample_request(n, START, run) for n in range(count)]


def as_records(events: list[RequestEvent]) -> list[tuple[bytes, bytes]]:
    return [(e.platform.encode(), e.to_json_bytes()) for e in events]


def active_version(worker: WorkerProcess) -> str | None:
    status, body = http_get(worker.url + "/api/v1/traffic/policy")
    return body["version"] if status == 200 else None


def decided(worker: WorkerProcess) -> int:
    return int(
        metric_value(worker, 'governor_records_total{outcome="accepted",pipeline="traffic"}')
    )


def replay_partitions(routed: list[Any], policy: ActivePolicy) -> dict[str, bytes]:
    """Decide every partition of traffic-routed offline, in offset order: the bytes of every
    decision, transition and alert, by id."""
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for message in routed:
        by_partition[message.partition].append(message)
    out: dict[str, bytes] = {}
    for partition, messages in by_partition.items():
        offline = OfflineTraffic(policy)
        for m in sorted(messages, key=lambda m: m.offset):
            position = Position(partition=partition, offset=m.offset)
            offline.decide(RoutedRequest.from_json_bytes(m.value), position)
        for o in offline.outputs:
            out[o.decision.decision_id] = o.decision.to_json_bytes()
            out.update({t.transition_id: t.to_json_bytes() for t in o.transitions})
            out.update({a.alert_id: a.to_json_bytes() for a in o.alerts})
    return out


def test_policy_api_decisions_replay_and_dead_letters(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers(**TRUST)
    worker.wait_ready()
    assert active_version(worker) == "0.0.0"
    policy = sample_policy("1.0.0")
    artifact = sign(policy, KEY).to_json_bytes()
    url = worker.url + "/api/v1/traffic/policy"

    # Bad HTTP input: no token, not JSON, tampered; none of it is published.
    assert http_request("POST", url, artifact)[0] == 401
    status, body = http_request("POST", url, b"{nope", token=TOKEN)
    assert status == 400 and "not JSON" in body["error"]
    tampered = orjson.loads(artifact)
    tampered["policy"]["risk_thresholds"]["drop"] = 0.99
    status, body = http_request("POST", url, orjson.dumps(tampered), token=TOKEN)
    assert status == 422 and body["verdict"] == "hash_mismatch"
    status, body = http_request("POST", url, artifact, token=TOKEN)
    assert status == 202 and body["policy_hash"] == policy_hash(policy) and body["offset"] == 0
    wait_for(lambda: active_version(worker) == "1.0.0")

    # A tampered artifact published straight to the topic is refused and dead-lettered once.
    asyncio.run(produce(cluster, prefix + "traffic-policies", [(b"x", orjson.dumps(tampered))]))
    wait_for(lambda: http_get(url)[1]["recent_judgements"][-1]["verdict"] == "hash_mismatch")
    assert active_version(worker) == "1.0.0"

    events = requests(1200, "api")
    bad = [(b"gitlab", b"\xff not json"), (b"gitlab", b'{"event_id": "x"}')]
    asyncio.run(produce(cluster, prefix + "request-events", [*as_records(events), *bad]))
    got = asyncio.run(read_all(cluster, prefix + "traffic-decisions", len(events), 90))
    decisions = {TrafficDecision.from_json_bytes(m.value).decision_id: m.value for m in got}
    assert set(decisions) == {e.event_id for e in events}
    assert all(m.key == TrafficDecision.from_json_bytes(m.value).endpoint_key.encode() for m in got)
    kinds = Counter(orjson.loads(v)["decision"] for v in decisions.values())
    assert kinds["ALLOW"] and kinds["DROP"] and kinds["THROTTLE"], kinds
    observed = [
        orjson.loads(v) for v in decisions.values() if orjson.loads(v)["platform"] == "github"
    ]
    assert observed and all(d["actions_taken"] == ["log"] for d in observed)

    transitions = asyncio.run(read_all(cluster, prefix + "circuit-breaker-events", 10**9, 3))
    assert transitions, "the incident should open a breaker"
    alerts = asyncio.run(read_all(cluster, prefix + "traffic-alerts", 10**9, 3))
    assert alerts, "the incident should fire a burn-rate alert"

    # Byte-identical: the rules run offline over traffic-routed give the same records.
    routed = asyncio.run(read_all(cluster, prefix + "traffic-routed", len(events), 30))
    live = dict(decisions)
    live.update({orjson.loads(m.value)["transition_id"]: m.value for m in transitions})
    live.update({orjson.loads(m.value)["alert_id"]: m.value for m in alerts})
    assert replay_partitions(routed, ActivePolicy.of(policy, "replay")) == live

    # Every decision, transition and alert is in the ledger, once.
    want_ids = {
        *decisions,
        *(orjson.loads(m.value)["transition_id"] for m in transitions),
        *(orjson.loads(m.value)["alert_id"] for m in alerts),
    }

    def ledgered() -> set[str] | None:
        records = asyncio.run(read_all(cluster, prefix + "ledger", 10**9, 3))
        ids = [LedgerRecord.from_json_bytes(m.value).decision_id for m in records]
        traffic_ids = [i for i in ids if i in want_ids]
        assert len(traffic_ids) == len(set(traffic_ids)), "a decision was appended twice"
        return set(traffic_ids) if set(traffic_ids) == want_ids else None

    wait_for(ledgered, 90, 1)

    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 3, 30))
    reasons = Counter(DeadLetter.from_json_bytes(m.value).reason for m in letters)
    assert reasons == {
        DeadLetterReason.UNDECODABLE: 1,
        DeadLetterReason.INVALID_SCHEMA: 1,
        DeadLetterReason.POLICY_REJECTED: 1,
    }

    key = quote("gitlab|status_v1", safe="")
    status, endpoint = http_get(f"{worker.url}/api/v1/traffic/endpoints/{key}")
    want = sum(1 for e in events if e.platform == "gitlab" and e.path == "/api/v1/status")
    assert status == 200 and endpoint["requests"] == want
    assert endpoint["baseline"]["latency_p95_ms"] > 0
    assert http_get(f"{worker.url}/api/v1/traffic/endpoints/nowhere")[0] == 404
    status, contracts = http_get(worker.url + "/api/v1/traffic/contracts")
    assert status == 200 and len(contracts) == len(policy.contracts)
    series = 'governor_traffic_decisions_total{decision="ALLOW",platform="gitlab",tier="CONTROL"}'
    assert metric_value(worker, series) > 0
    assert (
        metric_value(worker, 'governor_traffic_policy_rejections_total{reason="hash_mismatch"}')
        == 1
    )


def test_two_workers_sigkill_lose_nothing_and_count_nothing_twice(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    policy = sample_policy("1.0.0")
    artifact = sign(policy, KEY)
    asyncio.run(
        produce(cluster, prefix + "traffic-policies",
                [(artifact.policy_hash.encode(), artifact.to_json_bytes())])
    )  # fmt: skip
    events = requests(6000, "crash")
    repeated = events[::100]  # producer retries: the same event ids again
    first = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="traffic-a", **TRUST)
    second = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="traffic-b", **TRUST)
    first.wait_ready()
    second.wait_ready()
    feed = PacedProducer(cluster, prefix + "request-events", as_records(events + repeated))
    progress = kill_mid_stream(first, decided, len(events) // 2, past=0.2)
    feed.join()

    wanted = {e.event_id for e in events}

    def all_decided() -> list[Any] | None:
        got = asyncio.run(read_all(cluster, prefix + "traffic-decisions", 10**9, 3))
        ids = {TrafficDecision.from_json_bytes(m.value).decision_id for m in got}
        assert ids <= wanted
        return got if ids == wanted else None

    got = wait_for(all_decided, 240, 1)  # every request has a decision

    # Every endpoint answers from either worker, and the counts add up to each request once.
    unique: Counter[str] = Counter()
    seen: set[str] = set()
    for m in got:
        d = TrafficDecision.from_json_bytes(m.value)
        if d.decision_id not in seen:
            seen.add(d.decision_id)
            unique[d.endpoint_key] += 1
    assert sum(unique.values()) == len(events)

    def requests_seen(worker: WorkerProcess, key: str) -> int | None:
        status, body = http_get(f"{worker.url}/api/v1/traffic/endpoints/{quote(key, safe='')}")
        return body["requests"] if status == 200 else None

    for worker in (first, second):
        for key, count in sorted(unique.items()):
            wait_for(lambda w=worker, k=key, c=count: requests_seen(w, k) == c, 30)
    print(f"killed after {progress} decided; {len(got) - len(events)} decisions re-sent")


async def compact_away(cluster: Cluster, topic: str, key: bytes) -> None:
    """Tombstone ``key`` on a compacted topic and have the broker's cleaner remove it.

    The topic's segments are made to roll at once and be cleanable right away; a second
    record rolls the segment holding the tombstone so the cleaner may take it. (AlterConfigs
    replaces a topic's whole config, so the catalogue's settings go along.)"""
    admin = AIOKafkaAdminClient(**cluster.client_options())
    await admin.start()
    try:
        fast = {
            **Catalogue.load()["traffic-policies"].configs(),
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "delete.retention.ms": "100",
            "min.compaction.lag.ms": "0",
        }
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, fast)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**cluster.client_options())
    await producer.start()
    try:
        await producer.send_and_wait(topic, None, key=key)
        await asyncio.sleep(0.5)
        await producer.send_and_wait(topic, b"roll", key=b"roll")
        await asyncio.sleep(0.5)
        await producer.send_and_wait(topic, b"roll", key=b"roll")
    finally:
        await producer.stop()


def test_a_tombstone_and_compaction_cannot_bring_back_an_older_policy(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Issue 16 part 6: before traffic-policies-applied, the restarted worker governed with
    1.1.0 again once 1.2.0 had been tombstoned and compacted away."""
    topic = prefix + "traffic-policies"
    older, newer = (sign(sample_policy(v), KEY) for v in ("1.1.0", "1.2.0"))
    both = [(a.policy_hash.encode(), a.to_json_bytes()) for a in (older, newer)]
    asyncio.run(produce(cluster, topic, both))
    first = workers(**TRUST)
    first.wait_ready()
    wait_for(lambda: active_version(first) == "1.2.0")
    first.stop()

    asyncio.run(compact_away(cluster, topic, newer.policy_hash.encode()))

    def newer_gone() -> bool:
        records = asyncio.run(read_all(cluster, topic, 10**9, 3))
        return all(m.value is None for m in records if m.key == newer.policy_hash.encode())

    wait_for(newer_gone, 120, 2)  # the broker's cleaner runs every 15 s
    asyncio.run(produce(cluster, topic, [(older.policy_hash.encode(), older.to_json_bytes())]))

    second = workers(**TRUST)
    second.wait_ready()
    url = second.url + "/api/v1/traffic/policy"
    body = wait_for(
        lambda: (lambda r: r[1] if r[0] == 200 and r[1]["caught_up"] else None)(http_get(url))
    )
    assert body["version"] == "1.2.0", body
    assert body["policy_hash"] == newer.policy_hash and body["source"].startswith("applied@")
    judged = [j["verdict"] for j in body["recent_judgements"]]
    assert judged.count("not_newer") == 2, judged  # 1.1.0 at its offset and once more
