"""meter-readings → carbon-emissions on a real broker, through a real worker process."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from agents.carbon.settings import CarbonSettings
from app.core.units import MG_PER_KG, MWH_PER_KWH
from schemas.carbon_emission import CarbonEmission
from schemas.common import EnergySource
from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.meter_reading import MeterReading
from tests.factories import BASE_TIME, batch, reading
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    http_get,
    produce,
    read_all,
    wait_for,
)

pytestmark = pytest.mark.integration
FACTORS = CarbonSettings().active_factor_set.factors_kg_co2e_per_kwh
SOURCES = list(EnergySource)


def expected_totals(readings: list[MeterReading]) -> dict[str, tuple[int, int, int]]:
    """facility → (mWh, mg CO2e, readings), computed independently of the worker."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in readings:
        t = totals[r.facility_id]
        t[0] += round(r.consumption_kwh * MWH_PER_KWH)
        t[1] += round(r.consumption_kwh * FACTORS[r.energy_source] * MG_PER_KG)
        t[2] += 1
    return {f: (a, b, c) for f, (a, b, c) in totals.items()}


def sample_readings(count: int, facilities: int = 5, start: int = 0) -> list[MeterReading]:
    return [
        reading(
            i,
            facility_id=f"facility-{i % facilities:03d}",
            meter_id=f"meter-{i % 7}",
            energy_source=SOURCES[i % len(SOURCES)],
            consumption_kwh=round(0.5 + (i * 37 % 1000) / 7.0, 3),
            timestamp=BASE_TIME + timedelta(minutes=7 * i),
        )
        for i in range(start, start + count)
    ]


def as_records(readings: list[MeterReading]) -> list[tuple[bytes, bytes]]:
    return [(r.facility_id.encode(), r.to_json_bytes()) for r in readings]


def http_totals(worker: WorkerProcess, facility_id: str) -> tuple[int, int, int]:
    status, body = http_get(f"{worker.url}/api/v1/carbon/emissions/{facility_id}")
    assert status == 200, body
    return (
        round(body["energy_kwh"] * MWH_PER_KWH),
        round(body["emissions_kg_co2e"] * MG_PER_KG),
        body["readings"],
    )


def wait_for_totals(
    worker: WorkerProcess, expected: dict[str, tuple[int, int, int]], timeout_s: float = 60.0
) -> None:
    """Until the HTTP totals equal ``expected`` exactly; on timeout, name every difference."""
    deadline = time.monotonic() + timeout_s
    while True:
        actual = {f: http_totals(worker, f) for f in expected}
        wrong = {f: (actual[f], want) for f, want in expected.items() if actual[f] != want}
        if not wrong:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"totals (actual, expected) still differ: {wrong}")
        time.sleep(0.5)


def test_readings_become_emissions_and_totals(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    worker.wait_ready()
    singles = sample_readings(300)
    batched = sample_readings(40, facilities=1, start=300)
    records = as_records(singles)
    records.append((b"facility-000", batch(batched).to_json_bytes()))
    asyncio.run(produce(cluster, prefix + "meter-readings", records))

    everything = singles + batched
    emitted = asyncio.run(read_all(cluster, prefix + "carbon-emissions", len(everything)))
    emissions = [CarbonEmission.from_json_bytes(m.value) for m in emitted]
    assert sorted(e.event_id for e in emissions) == sorted(r.event_id for r in everything)
    by_id = {r.event_id: r for r in everything}
    for message, emission in zip(emitted, emissions, strict=True):
        source = by_id[emission.event_id]
        assert message.key == source.facility_id.encode()
        assert emission.factor_kg_co2e_per_kwh == FACTORS[source.energy_source]
        assert emission.factor_set == "reference" and emission.factor_set_version == "2024.1"
        expected_mg = round(source.consumption_kwh * FACTORS[source.energy_source] * MG_PER_KG)
        assert round(emission.emissions_kg_co2e * MG_PER_KG) == expected_mg

    wait_for_totals(worker, expected_totals(everything))
    status, body = http_get(f"{worker.url}/api/v1/carbon/emissions/facility-001")
    assert status == 200
    day = body["days"][0]
    assert {s["energy_source"] for s in day["sources"]} <= {s.value for s in SOURCES}

    status, recent = http_get(f"{worker.url}/api/v1/readings/facility/facility-000")
    assert status == 200 and recent[-1]["event_id"] == batched[-1].event_id
    status, one = http_get(f"{worker.url}/api/v1/readings/{batched[-1].event_id}")
    assert status == 200 and one["consumption_kwh"] == batched[-1].consumption_kwh
    status, _ = http_get(f"{worker.url}/api/v1/readings/no-such-event")
    assert status == 404


def test_bad_input_is_dead_lettered_and_the_agent_keeps_going(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    worker.wait_ready()
    good = reading(1)
    valid = orjson.loads(good.to_json_bytes())
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    bad: list[tuple[bytes | None, bytes, DeadLetterReason]] = [
        (b"facility-001", b"\xff\xfe not json", DeadLetterReason.UNDECODABLE),
        (b"facility-001", orjson.dumps({**valid, "consumption": 1}),
         DeadLetterReason.INVALID_SCHEMA),
        (b"facility-001", orjson.dumps({**valid, "consumption_kwh": -4}),
         DeadLetterReason.NEGATIVE_CONSUMPTION),
        (b"facility-001", orjson.dumps({**valid, "power_factor": 1.5}),
         DeadLetterReason.POWER_FACTOR_OUT_OF_RANGE),
        (b"facility-001", orjson.dumps({**valid, "timestamp": future}),
         DeadLetterReason.TIMESTAMP_IN_FUTURE),
        (None, good.to_json_bytes(), DeadLetterReason.KEY_MISMATCH),
    ]  # fmt: skip
    produced_ms = int(BASE_TIME.timestamp() * 1000)  # the broker replaces it (LogAppendTime)
    appended_after_ms = int(time.time() * 1000)
    asyncio.run(
        produce(cluster, prefix + "meter-readings", [(k, v) for k, v, _ in bad], produced_ms)
    )
    asyncio.run(
        produce(cluster, prefix + "meter-readings", [(b"facility-001", good.to_json_bytes())],
                produced_ms)
    )  # fmt: skip

    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", len(bad)))
    decoded = [DeadLetter.from_json_bytes(m.value) for m in letters]
    assert len(decoded) == len(bad)
    by_value = {letter.original_value(): letter for letter in decoded}
    for key, value, reason in bad:
        letter = by_value[value]
        assert letter.reason is reason, letter.error
        assert letter.original_key() == key
        assert letter.source_topic == prefix + "meter-readings"
        assert appended_after_ms - 1000 <= letter.source_timestamp_ms <= time.time() * 1000
        assert letter.error
    assert sorted((d.source_partition, d.source_offset) for d in decoded) == sorted(
        {(d.source_partition, d.source_offset) for d in decoded}
    )
    assert base64.b64decode(by_value[bad[0][1]].value_b64) == bad[0][1]

    wait_for(lambda: http_totals(worker, "facility-001")[2] == 1)
    status, metrics = http_get(f"{worker.url}/metrics")
    assert status == 200
    for _, _, reason in bad:
        line = (f'governor_dead_letters_total{{reason="{reason.value}",'
                f'topic="meter-readings"}} 1.0')  # fmt: skip
        assert line in metrics


def test_redelivered_event_id_is_not_counted_twice(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    worker.wait_ready()
    first = sample_readings(20, facilities=2)
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(first)))
    again = first[:10]
    asyncio.run(produce(cluster, prefix + "meter-readings", as_records(again)))
    in_batch = batch([first[10], first[12], *sample_readings(1, facilities=2, start=20)])
    key = in_batch.facility_id.encode()
    asyncio.run(produce(cluster, prefix + "meter-readings", [(key, in_batch.to_json_bytes())]))
    unique = first + sample_readings(1, facilities=2, start=20)
    wait_for_totals(worker, expected_totals(unique))
    duplicates = 'governor_meter_readings_total{outcome="duplicate"} 12.0'
    wait_for(lambda: duplicates in http_get(f"{worker.url}/metrics")[1])
    wait_for_totals(worker, expected_totals(unique), timeout_s=5)
