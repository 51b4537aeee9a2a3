"""The RocksDB store across restarts: after a clean stop a worker keeps its local databases
and replays only the changelog's tail; after a SIGKILL it deletes them and restores the whole
state from the changelog. Either way the totals stay exact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.harness import Cluster, WorkerProcess, metric_value, produce
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration
TABLE = 'governor_state_restored_records_total{table="carbon-day-totals"}'


def restored(worker: WorkerProcess) -> float:
    return metric_value(worker, TABLE)


def test_a_clean_restart_keeps_the_local_store_and_a_killed_worker_rebuilds_it(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    first = sample_readings(2_000, facilities=6)
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(first)))
    worker = workers()
    worker.wait_ready()
    wait_for_totals(worker, expected_totals(first), timeout_s=120)
    data_dir = Path(worker.env()["GOVERNOR_WORKER__DATA_DIR"])
    worker.stop()
    markers = {p.name for p in data_dir.rglob("*.clean")}
    assert "carbon-day-totals.clean" in markers, sorted(markers)

    second = sample_readings(1_000, facilities=6, start=2_000)
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(second)))
    worker.start()
    worker.wait_ready()
    wait_for_totals(worker, expected_totals(first + second), timeout_s=120)
    kept = restored(worker)
    log = worker.log_file.read_text(errors="replace")
    assert "no clean stop recorded" not in log
    assert not list(data_dir.rglob("*.clean"))  # taken back while the worker runs

    worker.kill()
    worker.start()
    worker.wait_ready()
    wait_for_totals(worker, expected_totals(first + second), timeout_s=120)
    rebuilt = restored(worker)
    assert "no clean stop recorded" in worker.log_file.read_text(errors="replace")
    # The day totals were written at every commit of both runs: the rebuild replays all of
    # that changelog, the clean restart none of what the first run wrote.
    assert rebuilt > 0 and kept < rebuilt, (kept, rebuilt)
    print(
        f"changelog records replayed: {kept:.0f} after the clean stop, {rebuilt:.0f} after the kill"
    )
