"""Two workers in one consumer group: partitions split, every query answered by either."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    applied_readings,
    http_get,
    produce,
    wait_for,
)
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
    first, second = workers(), workers()
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
