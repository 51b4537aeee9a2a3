"""A broker outage is weather: stopped for 30 s right after a worker became ready and again
mid-stream, then started on the same data. The worker and its ledger ride it out without a
restart, /health says not ready while the broker is down, and the totals come out exact."""

from __future__ import annotations

import asyncio
import os
import time
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
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration
OUTAGE_S = 30.0


def _health(worker: WorkerProcess) -> tuple[int, dict[str, bool]]:
    status, body = http_get(worker.url + "/health", timeout=5)
    return status, (body or {}).get("checks", {}) if isinstance(body, dict) else {}


def _outage(cluster: Cluster, worker: WorkerProcess) -> None:
    """Stop the broker for OUTAGE_S; /health must say not ready, for the broker, meanwhile."""
    assert cluster.broker is not None
    cluster.broker.stop()
    started = time.monotonic()
    seen = wait_for(
        lambda: (c if (c := _health(worker))[0] == 503 and not c[1].get("broker_reachable")
                 else None), 20, 0.5,
    )  # fmt: skip
    assert seen[1]["broker_reachable"] is False
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
    assert worker.process is not None and worker.process.poll() is None, worker.tail()
    assert _health(worker)[0] == 503
    cluster.broker.restart()
    wait_for(lambda: _health(worker)[0] == 200, 120, 0.5)


def test_the_worker_rides_out_broker_outages_at_start_and_mid_stream(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    if cluster.broker is None:
        if os.environ.get("CI"):
            pytest.fail("CI provisions its own broker; this test needs to stop it")
        pytest.skip(f"cannot stop a {cluster.mode} broker from the test")
    worker = workers()
    worker.wait_ready()
    _outage(cluster, worker)  # just after ready: the ledger process is still starting

    readings = sample_readings(1_500, facilities=6)
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(readings)))
    wait_for(lambda: applied_readings(worker) > 100, 60, 0.2)
    _outage(cluster, worker)
    wait_for_totals(worker, expected_totals(readings), timeout_s=120)
    assert worker.process is not None and worker.process.poll() is None
    assert worker.starts == 1
    status, _ = http_get(worker.ledger_url + "/metrics", timeout=5)
    assert status == 200, "the ledger process did not ride out the outage"
