"""A state value past Kafka's default record limit (1 MB): one tenant at its bounds with the
longest ids. Its changelog topic takes it (``worker.state_max_record_bytes``), the worker
goes on, and a restart recovers it. Before, the broker refused the record and the worker
stopped on it, and again on every restart: one producer's ids stopped a pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from agents.fusion.settings import FusionSettings
from tests.factories import BASE_TIME, fusion_request, fusion_result
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    http_get,
    metric_value,
    produce,
    read_to_end,
    wait_for,
)

pytestmark = pytest.mark.integration
KAFKA_DEFAULT_LIMIT = 1_048_588


def long_id(kind: str, n: int) -> str:
    return f"{kind}-{n:07d}".ljust(128, "x")  # the longest event id the contract takes


def accepted(worker: WorkerProcess, pipeline: str) -> float:
    return metric_value(
        worker, f'governor_records_total{{outcome="accepted",pipeline="{pipeline}"}}'
    )


def status(worker: WorkerProcess) -> Any:
    code, body = http_get(worker.url + "/api/v1/fusion/budget/status?tenant=tenant-a")
    assert code == 200, body
    return body


def test_a_tenant_state_past_kafkas_default_limit_is_written_and_recovered(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="large-state-worker")
    worker.wait_ready()
    limits = FusionSettings().limits
    opened, settled = limits.max_open_reservations_per_tenant, limits.max_settled_per_tenant
    at = [BASE_TIME + timedelta(milliseconds=n) for n in range(opened + settled)]
    requests = [  # admitted, never finished: open reservations
        fusion_request(n, event_id=long_id("open", n), estimated_units=1.0, timestamp=at[n])
        for n in range(opened)
    ]
    results = [  # finished, never admitted: settled runs, and an insight cache entry each
        fusion_result(n, event_id=long_id("late", n), estimated_units=1.0, actual_units=1.0,
                      inputs_hash=f"{n:064x}", timestamp=at[opened + n])
        for n in range(settled)
    ]  # fmt: skip
    asyncio.run(produce(cluster, prefix + "fusion-requests",
                        [(b"tenant-a", r.to_json_bytes()) for r in requests]))  # fmt: skip
    wait_for(lambda: accepted(worker, "fusion-requests") >= opened, 120, 1)
    asyncio.run(produce(cluster, prefix + "fusion-results",
                        [(b"tenant-a", r.to_json_bytes()) for r in results]))  # fmt: skip
    wait_for(lambda: accepted(worker, "fusion-results") >= settled, 120, 1)
    before = status(worker)
    assert before["reservations"] == opened

    changelog = f"{worker.app_id}-fusion-tenants-changelog"

    def largest() -> int:
        records = asyncio.run(read_to_end(cluster, changelog))
        return max(len(r.value or b"") for r in records if r.key == b"tenant-a")

    wait_for(lambda: largest() > KAFKA_DEFAULT_LIMIT, 30, 1)  # flushed at the next commit
    assert worker.process is not None and worker.process.poll() is None  # still running

    worker.stop()
    worker.start()
    worker.wait_ready(timeout_s=150)
    assert status(worker)["budget"] == before["budget"]  # recovered, reservations and all
    assert status(worker)["reservations"] == opened
