"""A record the broker refuses stops the worker before the offsets that cover it are
committed: aiokafka reports the refusal only on the send's future, and Faust commits after a
flush that does not raise (app/runtime/delivery.py). Before the guard, the worker went on
and the outputs were lost while their readings counted as done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.carbon_emission import CarbonEmission
from tests.integration.harness import Cluster, WorkerProcess, produce, read_to_end, wait_for
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration


async def set_max_message_bytes(cluster: Cluster, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(**cluster.client_options())
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


def test_a_refused_output_stops_the_worker_and_the_restart_sends_it(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    identity = {"GOVERNOR_WORKER__GROUP_INSTANCE_ID": "refused-delivery-worker"}
    first_worker = workers(**identity)
    first_worker.wait_ready()
    first = sample_readings(12, facilities=3)
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(first)))
    wait_for_totals(first_worker, expected_totals(first))

    emissions = prefix + "carbon-emissions"
    asyncio.run(set_max_message_bytes(cluster, emissions, 100))  # every emission is larger
    later = sample_readings(12, facilities=3, start=12)
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(later)))
    assert first_worker.process is not None
    wait_for(lambda: first_worker.process is not None and first_worker.process.poll() is not None)
    assert first_worker.process.returncode == 70  # fail-stop: nothing committed past it
    assert "delivery" in first_worker.log_file.read_text()

    asyncio.run(set_max_message_bytes(cluster, emissions, 1_048_588))  # Kafka's default
    first_worker.start()  # the same member (and address): its partitions at once
    first_worker.wait_ready(timeout_s=150)
    wait_for_totals(first_worker, expected_totals(first + later), timeout_s=90)
    wanted = {r.event_id for r in first + later}

    def every_emission() -> bool:
        sent = asyncio.run(read_to_end(cluster, emissions))
        return wanted <= {CarbonEmission.from_json_bytes(r.value).event_id for r in sent}

    wait_for(every_emission, 60, 1)  # every reading's emission: none lost
