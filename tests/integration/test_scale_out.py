"""Two workers in one consumer group: partitions split, every query answered by either."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    applied_readings,
    applied_ticks,
    http_get,
    produce,
    wait_for,
)
from tests.integration.test_audit_pipeline import (
    SITES_ENV,
    expected_reports,
    sample_ticks,
    wait_for_reports,
)
from tests.integration.test_audit_pipeline import as_records as as_tick_records
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    http_totals,
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration


def test_two_workers_share_partitions_and_route_queries(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    first, second = (
        workers(GOVERNOR_AUDIT__SITES=SITES_ENV),
        workers(GOVERNOR_AUDIT__SITES=SITES_ENV),
    )
    first.wait_ready()
    second.wait_ready()
    readings = sample_readings(600, facilities=12)
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(readings)))
    expected = expected_totals(readings)
    wait_for_totals(first, expected)
    for facility, want in expected.items():
        assert http_totals(second, facility) == want

    counts = wait_for(
        lambda: (
            c
            if sum(c := (applied_readings(first), applied_readings(second))) == len(readings)
            else None
        )
    )
    assert counts[0] > 0 and counts[1] > 0, f"one worker did all the work: {counts}"

    for event in (readings[0], readings[1], readings[-1]):
        for worker in (first, second):
            status, found = http_get(f"{worker.url}/api/v1/readings/{event.event_id}")
            assert status == 200, (worker.url, event.event_id, found)
            assert found["facility_id"] == event.facility_id

    # Budget audit: per-site reports routed to the owner; the all-sites report gathers
    # every worker's sites, the same from either worker.
    ticks = sample_ticks(sites=8, days=2, per_day=6)
    asyncio.run(produce(cluster, prefix + "control-ticks", as_tick_records(ticks)))
    expected_audit = expected_reports(ticks)
    for worker in (first, second):
        wait_for_reports(worker, expected_audit, timeout_s=60)
    ticks_done = wait_for(
        lambda: (c if sum(c := (applied_ticks(first), applied_ticks(second))) == len(ticks)
                 else None)
    )  # fmt: skip
    assert ticks_done[0] > 0 and ticks_done[1] > 0, f"one worker did all the audit: {ticks_done}"
    for worker in (first, second):
        status, everyone = http_get(f"{worker.url}/api/v1/audit/report")
        assert status == 200
        assert {r["site_id"]: r for r in everyone} == expected_audit
