"""AI cost governance on a real broker: synchronous admission over HTTP with reservations
and HMAC approvals, the tripwire and its reset, dead letters, the ledger; two workers and
a SIGKILL with nothing lost and nothing charged twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from agents.fusion.rules import cost, tokens
from agents.fusion.settings import FusionSettings
from app.tools.sample import sample_fusion_run
from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.energy import EnergyDecision
from schemas.ledger import LedgerRecord
from tests.integration.harness import (
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
from tests.integration.harness import (
    post_json as post,
)
from tests.seed_payloads import SEED_000_REQUEST

pytestmark = pytest.mark.integration

SECRET = "approval-secret-for-tests"
ENV = {
    "GOVERNOR_FUSION__APPROVALS__HMAC_SECRET": SECRET,
    # Runs come in bursts here: the last ones wait for quiet partitions (default 30 s).
    "GOVERNOR_FUSION__ORDERING__IDLE_PARTITION_S": "5",
}


def routing_mode(worker: WorkerProcess, scope: str) -> str | None:
    status, body = http_get(worker.url + "/api/v1/fusion/budget/status")
    entry = body["budget_tripwire"].get(scope) if status == 200 else None
    return entry["mode"] if entry else None


def test_admission_approvals_tripwire_and_dead_letters(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers(**ENV)
    worker.wait_ready()
    status, _ = post(worker, "/api/v1/fusion/budgets", {"tenant": "acme", "limit_units": 1000})
    assert status == 202
    assert post(worker, "/api/v1/fusion/budgets", {"tenant": "acme", "limit_units": -5})[0] == 422
    assert post(worker, "/api/v1/fusion/budgets", b"{nope")[0] == 400
    request = {
        "tenant": "acme", "scenario_type": "refund_processing", "overlay": "rollback_first",
        "overlay_version": "0.1.1", "estimated_units": 100, "complexity_level": "high",
    }  # fmt: skip
    wait_for(lambda: http_get(worker.url + "/api/v1/fusion/budget/status?tenant=acme")[0] == 200)

    # Synchronous admission reserves in the stream's table: seven of 150 fit under 95 %.
    answers = [post(worker, "/api/v1/fusion/validate", request) for _ in range(7)]
    assert [s for s, _ in answers] == [200] * 6 + [403]
    assert answers[0][1]["final_units"] == 150.0
    assert answers[0][1]["multipliers"] == [{"name": "complexity", "factor": 1.5}]
    assert answers[5][1]["auto_review"] is True and answers[6][1]["reasons"] == ["hard_limit"]
    _, status_body = http_get(worker.url + "/api/v1/fusion/budget/status?tenant=acme")
    assert status_body["budget"]["reserved_units"] == 900.0
    # The AI cost reference's status fields beside Governor's.
    health = status_body["system_health"]
    assert health["status"] == "ready" and health["routing_feed_caught_up"] is True
    assert abs(status_body["timestamp"] - time.time()) < 60

    # Above the approval threshold: 403 without a token, 200 with one, 401 when replayed.
    big = {**request, "tenant": "bigco", "estimated_units": 20_000, "complexity_level": "low"}
    status, body = post(worker, "/api/v1/fusion/validate", big)
    assert status == 403 and body["requires_manual_approval"] is True
    token = tokens.make_token(SECRET.encode(), big, int(time.time()))
    status, body = post(worker, "/api/v1/fusion/validate", big, **{"X-Approval-Token": token})
    assert status == 200 and "manual_approval" in body["reasons"]
    status, body = post(worker, "/api/v1/fusion/validate", big, **{"X-Approval-Token": token})
    assert status == 401 and "already used" in body["error"]
    stale = tokens.make_token(SECRET.encode(), big, int(time.time()) - 301)
    status, body = post(worker, "/api/v1/fusion/validate", big, **{"X-Approval-Token": stale})
    assert status == 401 and "expired" in body["error"]
    assert (
        http_request("POST", worker.url + "/api/v1/fusion/validate", orjson.dumps(request))[0]
        == 401
    )
    assert post(worker, "/api/v1/fusion/validate", {**request, "estimated_units": -1})[0] == 422

    # Three regressions in a row on the stream: the tripwire downgrades, routing says so,
    # and the next admission is at half cost; an authenticated reset ends it.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    runs = [sample_fusion_run(n, now, "tw", regressions=False) for n in range(0, 30, 6)]
    results = [r.model_copy(update={"token_delta_pct": 30.0}) for _, r in runs[:3]]
    bad = [(b"acme", b"\xff"), (b"acme", orjson.dumps({"tenant": "acme"}))]
    records = [(r.tenant.encode(), r.to_json_bytes()) for r in results] + bad
    asyncio.run(produce(cluster, prefix + "fusion-results", records))
    scope = "refund_processing|rollback_first"
    wait_for(lambda: routing_mode(worker, scope) == "downgraded")
    status, body = post(worker, "/api/v1/fusion/validate", {**request, "tenant": "other"})
    assert status == 200 and body["outcome"] == "downgraded" and body["final_units"] == 75.0
    reset = {"scope": scope}
    assert post(worker, "/api/v1/fusion/tripwire/reset", reset)[0] == 401  # no HMAC token
    token = tokens.make_token(SECRET.encode(), reset, int(time.time()))
    assert (
        post(worker, "/api/v1/fusion/tripwire/reset", reset, **{"X-Approval-Token": token})[0]
        == 202
    )
    wait_for(lambda: routing_mode(worker, scope) == "overlay")

    events = asyncio.run(read_all(cluster, prefix + "tripwire-events", 2, 30))
    assert [orjson.loads(m.value)["kind"] for m in events] == ["activated", "reset"]
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 2, 30))
    assert sorted(DeadLetter.from_json_bytes(m.value).reason for m in letters) == [
        DeadLetterReason.INVALID_SCHEMA, DeadLetterReason.UNDECODABLE,
    ]  # fmt: skip
    decisions = asyncio.run(read_all(cluster, prefix + "energy-decisions", 10**9, 3))
    ids = {EnergyDecision.from_json_bytes(m.value).decision_id for m in decisions}

    def ledgered() -> bool:
        records = asyncio.run(read_all(cluster, prefix + "ledger", 10**9, 3))
        return ids <= {LedgerRecord.from_json_bytes(m.value).decision_id for m in records}

    wait_for(ledgered, 60, 1)
    series = (
        "governor_fusion_tripwire_events_total"
        '{overlay="rollback_first",result="activated",scenario="refund_processing"}'
    )
    assert metric_value(worker, series) == 1


def expected_spend(results: list[Any]) -> dict[str, float]:
    """Per tenant: actual units x multipliers of every unique result (no downgrades here)."""
    config = FusionSettings().multipliers
    spend: dict[str, float] = defaultdict(float)
    for r in {r.event_id: r for r in results}.values():
        spend[r.tenant] += cost.apply(r.actual_units, cost.multipliers(r.as_request(), config))
    return spend


def _close(got: float | None, want: float) -> bool:
    """Equal up to float summation order (the live order of requests and results differs)."""
    return got is not None and abs(got - want) <= 1e-9 * max(1.0, want)


def test_two_workers_sigkill_charge_every_run_once(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    runs = [
        sample_fusion_run(n, start, "crash", tenants=12, regressions=False) for n in range(3000)
    ]
    requests = [(q.tenant.encode(), q.to_json_bytes()) for q, _ in runs]
    results = [r for _, r in runs]
    retried = results[::50]
    asyncio.run(produce(cluster, prefix + "fusion-requests", requests))
    result_records: list[tuple[bytes | None, bytes]] = [
        (r.tenant.encode(), r.to_json_bytes()) for r in results + retried
    ]
    first = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="fusion-a", **ENV)
    second = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="fusion-b", **ENV)
    first.wait_ready()
    second.wait_ready()
    feed = PacedProducer(cluster, prefix + "fusion-results", result_records)

    def settled(worker: WorkerProcess) -> int:
        return int(
            metric_value(
                worker, 'governor_records_total{outcome="accepted",pipeline="fusion-results"}'
            )
        )

    progress = kill_mid_stream(first, settled, len(results) // 2, past=0.2)
    feed.join()
    wanted = {f"{r.event_id}|settlement" for r in results}

    def all_settled() -> list[Any] | None:
        got = asyncio.run(read_all(cluster, prefix + "energy-decisions", 10**9, 3))
        ids = {EnergyDecision.from_json_bytes(m.value).decision_id for m in got}
        return got if wanted <= ids else None

    got = wait_for(all_settled, 240, 1)
    ids = {EnergyDecision.from_json_bytes(m.value).decision_id for m in got}
    kinds = Counter(i.rsplit("|", 1)[1] for i in ids)
    assert kinds["settlement"] == len(results) and kinds["admission"] == len(results)

    want = expected_spend(results)
    for worker in (first, second):
        for tenant, spend in sorted(want.items()):

            def spent(w: WorkerProcess = worker, t: str = tenant) -> float | None:
                status, body = http_get(f"{w.url}/api/v1/fusion/budget/status?tenant={t}")
                return body["budget"]["spent_units"] if status == 200 else None

            wait_for(lambda s=spent, e=spend: s() is not None and abs(s() - e) < 1e-6, 30)  # type: ignore[misc, operator]
    print(f"killed after {progress} settled; {len(got) - 2 * len(results)} decisions re-sent")


def test_a_producer_cannot_approve_its_own_spend_on_the_topic(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Issue 16: a request above the approval threshold with a manual_approval_id a producer
    made up (or sealed with another secret) is dead-lettered, not approved; one approved
    through the endpoint with an HMAC token is."""
    from agents.fusion.rules.tokens import approval_fields, seal_approval
    from schemas.fusion_result import FusionRequest

    worker = workers(**ENV)
    worker.wait_ready()
    assert (
        post(worker, "/api/v1/fusion/budgets", {"tenant": "self", "limit_units": 10**6})[0] == 202
    )
    wait_for(lambda: http_get(worker.url + "/api/v1/fusion/budget/status?tenant=self")[0] == 200)
    now = datetime.now(UTC).replace(microsecond=0)
    base = {
        "tenant": "self", "scenario_type": "refund_processing", "overlay": "rollback_first",
        "overlay_version": "0.1.1", "estimated_units": 50_000, "complexity_level": "low",
        "timestamp": now.isoformat(),
    }  # fmt: skip
    made_up = FusionRequest(**base, event_id="forged-1", manual_approval_id="anything")
    other = FusionRequest(**base, event_id="forged-2")
    other = other.model_copy(update={"manual_approval_id": seal_approval(
        b"not the secret", "f" * 64, approval_fields(other))})  # fmt: skip
    records = [(b"self", r.to_json_bytes()) for r in (made_up, other)]
    asyncio.run(produce(cluster, prefix + "fusion-requests", records))
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 2, 60))
    found = {DeadLetter.from_json_bytes(m.value) for m in letters}
    assert {d.reason for d in found} == {DeadLetterReason.APPROVAL_NOT_SEALED}
    assert len(found) == 2

    approved = {**base, "event_id": "approved-1"}
    token = tokens.make_token(SECRET.encode(), approved, int(time.time()))
    status, body = post(worker, "/api/v1/fusion/validate", approved, **{"X-Approval-Token": token})
    assert status == 200 and "manual_approval" in body["reasons"], body
    decisions = asyncio.run(read_all(cluster, prefix + "energy-decisions", 1, 30))
    ids = {EnergyDecision.from_json_bytes(m.value).event_id for m in decisions}
    assert ids == {"approved-1"}


def test_two_tenants_with_the_same_event_id_are_both_decided(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Issue 16: dedup was keyed by event id alone, so a tenant reusing another tenant's
    event id silently suppressed that tenant's record."""
    worker = workers(**ENV)
    worker.wait_ready()
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    tenants = ["tenant-a", "tenant-b", "tenant-c", "tenant-d"]
    records = [
        (t.encode(), orjson.dumps({
            "event_id": "shared-1", "tenant": t, "scenario_type": "refund_processing",
            "overlay": "rollback_first", "overlay_version": "0.1.1", "estimated_units": 10,
            "timestamp": now.isoformat(),
        }))
        for t in tenants
    ]  # fmt: skip
    asyncio.run(produce(cluster, prefix + "fusion-requests", records))
    got = asyncio.run(read_all(cluster, prefix + "energy-decisions", len(tenants), 60))
    decided = sorted(EnergyDecision.from_json_bytes(m.value).tenant for m in got)
    assert decided == tenants


def test_execute_admits_and_accounts_a_run_and_takes_the_references_body(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Issue 19: POST /api/v1/fusion/execute is the AI cost reference's endpoint in Governor's
    terms: admission (403 on reject, the reference's fields), then the run's accounting; the
    reference's own request body is accepted here and by /validate."""
    worker = workers(**ENV)
    worker.wait_ready()
    budget = {"tenant": "exec", "limit_units": 10_000}
    assert post(worker, "/api/v1/fusion/budgets", budget)[0] == 202
    wait_for(lambda: http_get(worker.url + "/api/v1/fusion/budget/status?tenant=exec")[0] == 200)
    request = {
        "tenant": "exec", "scenario_type": "refund_processing", "overlay": "rollback_first",
        "overlay_version": "0.1.1", "estimated_units": 100, "complexity_level": "high",
    }  # fmt: skip
    run = {"actual_units": 80, "token_delta_pct": 4.0, "latency_ms": 120, "quality_score": 0.9}
    status, body = post(worker, "/api/v1/fusion/execute", {**request, "run": run})
    assert status == 200 and body["status"] == "success", body
    assert body["admission"]["final_units"] == 150.0 and body["result"]["kind"] == "settlement"
    assert body["result"]["final_units"] == 120.0  # 80 actual x the admission's 1.5
    assert body["energy_governance"]["budget_approved"] == 150.0
    assert body["energy_governance"]["multipliers"] == {"complexity": 1.5}
    assert body["energy_governance"]["tripwire_status"]["downgrade_active"] is False
    _, state = http_get(worker.url + "/api/v1/fusion/budget/status?tenant=exec")
    assert (state["budget"]["spent_units"], state["budget"]["reserved_units"]) == (120.0, 0.0)

    # Rejected: 403 in the reference's shape, and no result published for it.
    results_before = asyncio.run(read_all(cluster, prefix + "fusion-results", 10**6, 2))
    big = {**request, "estimated_units": 20_000, "run": run}
    status, body = post(worker, "/api/v1/fusion/execute", big)
    assert status == 403 and body["status"] == "rejected", body
    assert body["reason"] == "exceeds_approval_threshold" and body["requires_approval"] is True
    bad_run = {**request, "run": {**run, "quality_score": 7}}
    status, body = post(worker, "/api/v1/fusion/execute", bad_run)
    assert status == 422 and body["details"][0]["field"] == "run.quality_score", body
    results_after = asyncio.run(read_all(cluster, prefix + "fusion-results", 10**6, 2))
    assert len(results_after) == len(results_before)

    # The reference's body (no tenant, overlay or id): tenant "default", estimated_cost.
    seed = orjson.loads(SEED_000_REQUEST)
    status, body = post(worker, "/api/v1/fusion/execute", seed)
    assert status == 200 and body["status"] == "admitted", body
    admitted = body["admission"]
    assert (admitted["tenant"], admitted["overlay"]) == ("default", "none")
    assert admitted["final_units"] == pytest.approx(100.0 * 1.5 * 1.3)  # high, trust 0.5
    status, body = post(worker, "/api/v1/fusion/execute", {**seed, "run": run})
    assert status == 200 and body["result"]["tenant"] == "default", body
    status, body = post(worker, "/api/v1/fusion/validate", seed)
    assert status == 200 and body["event_id"].startswith("seed-"), body
