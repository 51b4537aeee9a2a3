"""The HTTP API of a real worker: ingest, authentication, clear 4xx that publish nothing."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from schemas.meter_reading import MeterReading
from tests.factories import batch, reading, tick
from tests.integration.harness import (
    TOKEN,
    Cluster,
    WorkerProcess,
    end_offsets,
    http_get,
    http_request,
    metric_value,
    produce,
    wait_for,
)
from tests.seed_payloads import SEED_004_READING

pytestmark = pytest.mark.integration


def now_reading(n: int, **overrides: object) -> MeterReading:
    return reading(n, timestamp=datetime.now(UTC).replace(microsecond=0), **overrides)


def test_ingest_publishes_and_bad_input_publishes_nothing(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    worker.wait_ready()
    url = f"{worker.url}/api/v1/readings"
    body = now_reading(1).to_json_bytes()

    status, reply = http_request("POST", url, body)
    assert status == 401 and "bearer token" in reply["error"]
    status, reply = http_request("POST", url, body, token="wrong")
    assert status == 401 and reply["error"] == "invalid bearer token"

    before = asyncio.run(end_offsets(cluster, prefix + "meter-readings"))
    valid = orjson.loads(body)
    bad_bodies = {
        b"{not json": 400,
        orjson.dumps({**valid, "consumption": 3}): 422,
        orjson.dumps({**valid, "timestamp": "2024-01-15T10:30:00"}): 422,
        orjson.dumps({**valid, "power_factor": 2}): 422,
        orjson.dumps({**valid, "consumption_kwh": -1}): 422,
        orjson.dumps([valid]): 422,
        b"x" * 2_000_000: 413,
    }
    for bad, expected in bad_bodies.items():
        status, reply = http_request("POST", url, bad, token=TOKEN)
        assert status == expected, (bad[:60], reply)
        assert reply["error"]
    status, reply = http_request("POST", url, orjson.dumps({**valid, "power_factor": 2}), TOKEN)
    assert reply["reason"] == "power_factor_out_of_range"
    assert asyncio.run(end_offsets(cluster, prefix + "meter-readings")) == before

    without_id = {k: v for k, v in valid.items() if k != "event_id"}
    status, accepted = http_request("POST", url, orjson.dumps(without_id), token=TOKEN)
    assert status == 202, accepted
    assert accepted["facility_id"] == "facility-001" and len(accepted["event_ids"]) == 1
    new_id = accepted["event_ids"][0]
    envelope = batch([now_reading(10), now_reading(11)])
    status, accepted_batch = http_request("POST", url, envelope.to_json_bytes(), token=TOKEN)
    assert status == 202 and accepted_batch["event_ids"] == ["evt-000010", "evt-000011"]

    def readable() -> bool:
        return http_get(f"{worker.url}/api/v1/readings/{new_id}")[0] == 200

    wait_for(readable)

    def counted() -> int:
        status, totals = http_get(f"{worker.url}/api/v1/carbon/emissions/facility-001")
        assert status == 200
        return int(totals["readings"])

    wait_for(lambda: counted() == 3)

    # Issue 19: the energy reference's own reading (its README's example, verbatim): accepted
    # with an id derived from it, so posting it again is the same reading, applied once.
    # (Its 2024 day is past the day totals' retention here, so it is looked up, not counted.)
    answers = [http_request("POST", url, SEED_004_READING, token=TOKEN) for _ in range(2)]
    assert [status for status, _ in answers] == [202, 202], answers
    seed_id = answers[0][1]["event_ids"][0]
    assert answers[1][1]["event_ids"] == [seed_id] and seed_id.startswith("seed-")
    duplicates = 'governor_meter_readings_total{outcome="duplicate"}'
    wait_for(lambda: metric_value(worker, duplicates) == 1)  # the second copy, recognised
    status, found = http_get(f"{worker.url}/api/v1/readings/{seed_id}")
    assert status == 200 and (found["consumption_kwh"], found["zone_id"]) == (150.5, "main")
    status, health = http_get(f"{worker.url}/health")
    assert status == 200 and all(health["checks"].values())
    # Issue 16: an Authorization header that is not UTF-8 gave a 500.
    connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
    connection.putrequest("POST", "/api/v1/readings")
    connection.putheader("Authorization", b"Bearer \xff\xfe" + TOKEN.encode())
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    assert connection.getresponse().status == 401
    connection.close()
    # Issue 16: Faust's own pages listed every table's contents without authentication.
    for page in ("/table/", "/router/", "/graph/", "/stats/"):
        assert http_get(f"{worker.url}{page}")[0] == 404, page


def governor_families(exposition: str) -> str:
    """Governor's own metric families from a /metrics page (Faust's are not ours to rename)."""
    keep = []
    for line in exposition.splitlines():
        name = line.split()[2] if line.startswith("#") and len(line.split()) > 2 else line
        if name.startswith("governor_"):
            keep.append(line)
    return "\n".join(keep) + "\n"


@pytest.mark.parametrize("faust_sensor", ["true", "false"])
def test_metrics_pass_promtool_lint(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], faust_sensor: str
) -> None:
    """Prometheus' own linter (Debian's promtool) accepts the names, units and types, from
    Faust's /metrics view and from Governor's own (worker.faust_prometheus_sensor off: that
    view answered 500 on every scrape until 2026-12-02)."""
    import shutil
    import subprocess

    worker = workers(
        GOVERNOR_AUDIT__DEFAULT_CAPACITY_KW="1",
        GOVERNOR_WORKER__FAUST_PROMETHEUS_SENSOR=faust_sensor,
    )
    worker.wait_ready()
    status, accepted = http_request(
        "POST", f"{worker.url}/api/v1/readings", now_reading(1).to_json_bytes(), token=TOKEN
    )
    assert status == 202, accepted
    crossing = tick(0, energy_cost_kwh=5.0)  # 5 kWh/day over a 109.5 kWh/year ceiling
    asyncio.run(
        produce(cluster, prefix + "control-ticks", [(b"site-001", crossing.to_json_bytes())])
    )

    def every_family_has_samples() -> bool:
        page = http_get(worker.url + "/metrics")[1]
        return all(
            f"{name}{{" in page
            for name in (
                "governor_energy_consumed_joules_total",
                "governor_audit_energy_cost_joules_total",
                "governor_audit_compliance_alerts_total",
                "governor_audit_ceiling_utilization_ratio",
            )
        )

    wait_for(every_family_has_samples)
    _, text = http_get(worker.url + "/metrics")
    families = governor_families(text)
    assert "# TYPE governor_carbon_emissions_grams_total counter" in families
    assert "# TYPE governor_audit_ceiling_utilization_ratio gauge" in families
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: bin/test installs Debian's prometheus package"
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=families, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
