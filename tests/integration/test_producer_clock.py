"""Issue 16 part 2: a producer that dates a record 2099 (its event time and its Kafka record
timestamp both) wipes, resets or freezes nothing.

Inputs are LogAppendTime topics, so the broker stamps each record and the future-skew check
measures the event time against a clock no producer sets. On CreateTime topics each of these
tests failed: the hostile record passed the check, evicted the dedup window (a duplicate then
counted twice), deleted the facility's day totals and rolled the tenant's budget period over.
The load-zone consequence is in test_facility_pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from schemas.dead_letter import DeadLetter, DeadLetterReason
from tests.factories import fusion_request, reading
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    http_get,
    produce,
    read_all,
    wait_for,
)
from tests.integration.harness import (
    post_json as post,
)

pytestmark = pytest.mark.integration

YEAR_2099 = datetime(2099, 1, 1, tzinfo=UTC)
HOSTILE_MS = int(YEAR_2099.timestamp() * 1000)


def emissions(worker: WorkerProcess, facility_id: str) -> dict[str, object]:
    status, body = http_get(f"{worker.url}/api/v1/carbon/emissions/{facility_id}")
    assert status == 200, body
    return dict(body)


def reserved(worker: WorkerProcess, tenant: str) -> float | None:
    status, body = http_get(f"{worker.url}/api/v1/fusion/budget/status?tenant={tenant}")
    return float(body["budget"]["reserved_units"]) if status == 200 else None


def test_a_reading_dated_2099_neither_evicts_dedup_nor_deletes_day_totals(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    worker.wait_ready()
    now = datetime.now(UTC).replace(microsecond=0)
    first = reading(1, timestamp=now - timedelta(hours=3))  # inside the 24 h dedup window
    second = reading(2, timestamp=now - timedelta(minutes=5))
    hostile = reading(3, timestamp=YEAR_2099)
    topic = prefix + "meter-readings"
    key = first.facility_id.encode()

    asyncio.run(produce(cluster, topic, [(key, first.to_json_bytes())]))
    asyncio.run(produce(cluster, topic, [(key, second.to_json_bytes())]))
    wait_for(lambda: emissions(worker, first.facility_id)["readings"] == 2)
    before = emissions(worker, first.facility_id)

    asyncio.run(produce(cluster, topic, [(key, hostile.to_json_bytes())], HOSTILE_MS))
    # Re-sent copies of both: dedup must still know them.
    asyncio.run(
        produce(cluster, topic, [(key, first.to_json_bytes()), (key, second.to_json_bytes())])
    )
    canary = reading(4, timestamp=now - timedelta(minutes=1))
    asyncio.run(produce(cluster, topic, [(key, canary.to_json_bytes())]))
    wait_for(lambda: http_get(f"{worker.url}/api/v1/readings/{canary.event_id}")[0] == 200)

    after = emissions(worker, first.facility_id)
    assert after["readings"] == 3, f"want first, second and the canary once each: {after}"
    days_before = {d["utc_day"] for d in before["days"]}  # type: ignore[attr-defined]
    days_after = {d["utc_day"] for d in after["days"]}  # type: ignore[attr-defined]
    assert days_before <= days_after, f"day totals deleted: {days_before - days_after}"
    assert "2099-01-01" not in days_after
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 1, 30))
    letter = DeadLetter.from_json_bytes(letters[0].value)
    assert letter.reason is DeadLetterReason.TIMESTAMP_IN_FUTURE
    assert letter.source_timestamp_ms < HOSTILE_MS  # the broker's stamp, not the producer's


def test_a_request_dated_2099_does_not_roll_a_tenants_budget_period_over(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    worker.wait_ready()
    status, _ = post(worker, "/api/v1/fusion/budgets", {"tenant": "acme", "limit_units": 10_000})
    assert status == 202
    wait_for(lambda: reserved(worker, "acme") is not None)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    topic = prefix + "fusion-requests"

    def request(n: int, at: datetime) -> tuple[bytes, bytes]:
        value = fusion_request(n, tenant="acme", timestamp=at, estimated_units=100.0)
        return b"acme", value.to_json_bytes()

    asyncio.run(produce(cluster, topic, [request(1, now)]))
    wait_for(lambda: (reserved(worker, "acme") or 0) > 0)
    one = reserved(worker, "acme")
    assert one is not None

    asyncio.run(produce(cluster, topic, [request(2, YEAR_2099)], HOSTILE_MS))
    asyncio.run(produce(cluster, topic, [request(3, now + timedelta(seconds=1))]))
    wait_for(lambda: reserved(worker, "acme") == 2 * one, 60)
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 1, 30))
    assert DeadLetter.from_json_bytes(letters[0].value).reason is (
        DeadLetterReason.TIMESTAMP_IN_FUTURE
    )
