"""Records Faust acknowledges without delivering them are still processed, once each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    fault_injection,
    metric_value,
    produce,
)
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration

# Loaded by the worker's interpreter at start (PYTHONPATH): while the trigger file exists,
# every meter reading Faust fetches is acknowledged (and so committed) without reaching the
# agent, as faust-streaming 0.15's stream does to an event it skips (flow suspended, or
# fetched in an older consumer generation).
FAULT = """
import os
import faust.streams as streams

_events = streams.Stream.events
_trigger = os.environ["GOVERNOR_TEST_FAULT_TRIGGER"]

async def events(self):
    async for event in _events(self):
        if event.message.topic.endswith("meter-readings") and os.path.exists(_trigger):
            continue  # Faust acknowledges it when the next event is asked for
        yield event

streams.Stream.events = events
"""

RESYNCS = 'governor_source_resyncs_total{pipeline="carbon"}'


def test_an_idle_pipeline_processes_records_faust_never_delivered(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    fault, trigger = fault_injection(tmp_path, FAULT)
    worker = workers(GOVERNOR_WORKER__IDLE_CATCH_UP_S="2", **fault)
    worker.wait_ready()
    first = sample_readings(24, facilities=4)
    asyncio.run(produce(cluster, worker.prefix + "meter-readings", as_records(first)))
    wait_for_totals(worker, expected_totals(first))
    assert metric_value(worker, RESYNCS) == 0

    trigger.touch()
    later = sample_readings(40, facilities=4, start=24)
    asyncio.run(produce(cluster, worker.prefix + "meter-readings", as_records(later)))
    wait_for_totals(worker, expected_totals(first + later), timeout_s=60)
    # One catch-up per partition that held passed-over records (the four facilities' keys
    # may share partitions).
    assert 1 <= metric_value(worker, RESYNCS) <= 4
