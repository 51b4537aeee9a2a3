"""The pipeline defined only in the tests (tests/water) on a real broker: a worker installs it
from the setting ``worker.pipelines`` alone, creates nothing by hand but its topics, and it
totals, alerts, dead-letters and survives a SIGKILL like the built-in pipelines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import orjson
import pytest

from app.runtime.topic_admin import apply_catalogue
from app.topics import Catalogue
from tests.factories import BASE_TIME
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    http_get,
    produce,
    read_all,
    wait_for,
)
from tests.water import TOPICS
from tests.water.schemas import WaterReading

pytestmark = pytest.mark.integration


async def create_water_topics(cluster: Cluster, prefix: str) -> None:
    await apply_catalogue(cluster.client_options(), Catalogue(TOPICS), prefix)


def reading(n: int, litres: float, facility: str = "f1") -> tuple[bytes, bytes]:
    at = BASE_TIME + timedelta(minutes=n)
    value = WaterReading(event_id=f"w-{n}", facility_id=facility, litres=litres, timestamp=at)
    return facility.encode(), value.to_json_bytes()


def test_a_pipeline_from_the_tests_runs_from_its_registry_entry(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    asyncio.run(create_water_topics(cluster, prefix))
    worker = workers(GOVERNOR_WORKER__PIPELINES='["tests.water:SPEC"]')
    worker.wait_ready()
    readings = prefix + "water-readings"
    asyncio.run(
        produce(cluster, readings, [reading(1, 600), reading(2, 600), reading(3, 50, "f2")])
    )
    asyncio.run(produce(cluster, readings, [(b"f1", b"{not json")]))

    def alerts(expect: int) -> list[bytes]:
        got = asyncio.run(read_all(cluster, prefix + "water-budget-alerts", expect, 5))
        return [m.value for m in got]

    first = wait_for(lambda: alerts(1), 60, 1)
    assert [orjson.loads(a)["alert_id"] for a in first] == [f"f1|{BASE_TIME.date()}"]
    dead = wait_for(lambda: asyncio.run(read_all(cluster, prefix + "dead-letters", 1, 5)), 60, 1)
    assert orjson.loads(dead[0].value)["reason"] == "undecodable"

    worker.kill()
    worker.start()
    worker.wait_ready(120)
    asyncio.run(produce(cluster, readings, [reading(4, 600)]))

    def day_of(facility: str) -> dict[str, object] | None:
        status, body = http_get(f"{worker.url}/api/v1/water/{facility}")
        return body if status == 200 and body.get("litres") == 1800 else None

    day = wait_for(lambda: day_of("f1"), 60, 1)
    assert day["alert"] is not None
    assert {orjson.loads(a)["alert_id"] for a in alerts(10)} == {f"f1|{BASE_TIME.date()}"}
    assert len(set(alerts(10))) == 1  # re-sent after the kill, if at all, byte for byte
