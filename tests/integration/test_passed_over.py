"""Records Faust acknowledges without delivering them are still processed, once each, and
their outputs sent even when a killed worker had processed them but lost the outputs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.carbon_budget import CarbonBudget, CarbonPeriod
from schemas.carbon_emission import CarbonEmission
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    applied_readings,
    committed_offsets,
    fault_injection,
    http_get,
    metric_value,
    produce,
    read_all,
    wait_for,
)
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration

# Loaded by the worker's interpreter at start (PYTHONPATH): while the trigger file exists,
# every record of GOVERNOR_TEST_FAULT_TOPIC (meter-readings) Faust fetches is acknowledged
# (and so committed) without reaching the agent, as faust-streaming 0.15's stream does to
# an event it skips (flow suspended, or fetched in an older consumer generation).
FAULT = """
import os
import faust.streams as streams

_events = streams.Stream.events
_trigger = os.environ["GOVERNOR_TEST_FAULT_TRIGGER"]
_topic = os.environ.get("GOVERNOR_TEST_FAULT_TOPIC", "meter-readings")

async def events(self):
    async for event in _events(self):
        if event.message.topic.endswith(_topic) and os.path.exists(_trigger):
            if not self.enable_acks:  # a batching agent acknowledges what it handled
                await self.ack(event)
            continue  # else Faust acknowledges it when the next event is asked for
        yield event

streams.Stream.events = events
"""

RESYNCS = 'governor_source_resyncs_total{pipeline="carbon"}'

# As FAULT, and while a second trigger file (<trigger>.lose) exists, the emissions are
# dropped instead of sent and no offsets are committed: what a SIGKILL leaves when the
# producer's buffer held the outputs of records whose state had already reached the
# changelog.
FAULT_LOSING_OUTPUTS = (
    FAULT
    + """
import asyncio
import aiokafka
import faust.transport.consumer as consumer

_lose = _trigger + ".lose"
_send, _send_batch = aiokafka.AIOKafkaProducer.send, aiokafka.AIOKafkaProducer.send_batch
_commit = consumer.Consumer._commit_offsets

def _dropped():
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future

async def send(self, topic, *args, **kwargs):
    if topic.endswith("carbon-emissions") and os.path.exists(_lose):
        return _dropped()
    return await _send(self, topic, *args, **kwargs)

async def send_batch(self, batch, topic, *args, **kwargs):
    if topic.endswith("carbon-emissions") and os.path.exists(_lose):
        return _dropped()
    return await _send_batch(self, batch, topic, *args, **kwargs)

async def _commit_offsets(self, offsets, *args, **kwargs):
    if os.path.exists(_lose):
        return False
    return await _commit(self, offsets, *args, **kwargs)

aiokafka.AIOKafkaProducer.send = send
aiokafka.AIOKafkaProducer.send_batch = send_batch
consumer.Consumer._commit_offsets = _commit_offsets
"""
)


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


def test_outputs_lost_with_a_killed_worker_are_sent_when_faust_passes_over_their_records(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    fault, trigger = fault_injection(tmp_path, FAULT_LOSING_OUTPUTS)
    lose = Path(f"{trigger}.lose")
    worker = workers(GOVERNOR_WORKER__IDLE_CATCH_UP_S="2", **fault)
    worker.wait_ready()
    source = worker.prefix + "meter-readings"
    first = sample_readings(24, facilities=4)
    asyncio.run(produce(cluster, source, as_records(first)))
    wait_for_totals(worker, expected_totals(first))

    def committed() -> int:
        return sum(asyncio.run(committed_offsets(cluster, worker.app_id, source)).values())

    wait_for(lambda: committed() == len(first), 30)

    # Processed (state and dedup segments reach the changelog), outputs lost, not committed.
    lose.touch()
    later = sample_readings(8, facilities=4, start=24)
    asyncio.run(produce(cluster, source, as_records(later)))
    wait_for(lambda: applied_readings(worker) == len(first + later), 30)
    time.sleep(2)  # Faust's producer buffer sends the changelog writes within milliseconds
    worker.kill()
    assert committed() == len(first)

    # The restarted worker's Faust passes over the 8 records (acknowledges and commits them
    # without delivering them): their emissions come only from the idle catch-up, which
    # starts at the group's resume point, not after the newest record the state holds.
    lose.unlink()
    trigger.touch()
    worker.start()
    worker.wait_ready()
    wanted = {r.event_id for r in first + later}

    def emitted() -> set[str]:
        records = asyncio.run(read_all(cluster, worker.prefix + "carbon-emissions", 10**9, 3))
        return {CarbonEmission.from_json_bytes(m.value).event_id for m in records}

    wait_for(lambda: emitted() == wanted, 60, 1)
    wait_for_totals(worker, expected_totals(first + later))  # counted once, not twice
    assert metric_value(worker, RESYNCS) >= 1


def test_a_budget_on_a_compacted_topic_that_faust_never_delivered_is_applied(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """carbon-budgets is compacted, so its offsets may have holes; a record Faust passed over
    is still read back and applied."""
    fault, trigger = fault_injection(tmp_path, FAULT)
    worker = workers(
        GOVERNOR_WORKER__IDLE_CATCH_UP_S="2", GOVERNOR_TEST_FAULT_TOPIC="carbon-budgets", **fault
    )
    worker.wait_ready()
    source = worker.prefix + "carbon-budgets"
    trigger.touch()
    budget = CarbonBudget(
        facility_id="plant-9", period=CarbonPeriod.MONTH, limit_kg_co2e=50,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )  # fmt: skip
    asyncio.run(produce(cluster, source, [(b"plant-9", budget.to_json_bytes())]))
    # Faust acknowledged and committed it without delivering it.
    wait_for(lambda: sum(asyncio.run(committed_offsets(cluster, worker.app_id, source)).values()))

    def applied() -> Any:
        got, body = http_get(worker.url + "/api/v1/carbon/budget/plant-9")
        return body if got == 200 else None

    assert wait_for(applied, 30)["limit_kg_co2e"] == 50
    assert metric_value(worker, 'governor_source_resyncs_total{pipeline="carbon-budgets"}') == 1
