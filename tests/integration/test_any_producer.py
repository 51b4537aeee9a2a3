"""Producers with another partitioner: confluent-kafka (librdkafka) with its default
partitioner puts a key where murmur2 would not, and two workers still answer every entity in
full from either worker; a tenant's admissions spread over every partition cannot overspend."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from confluent_kafka import Producer

from app.settings import load_settings
from app.tools.localkafka import ensure_jars
from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.energy import DecisionKind, EnergyDecision, Outcome
from tests.factories import batch
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    applied_readings,
    http_get,
    kill_mid_stream,
    metric_total,
    metric_value,
    post_json,
    read_all,
    wait_for,
)
from tests.integration.test_audit_pipeline import (
    SITES_ENV,
    expected_reports,
    sample_ticks,
    wait_for_reports,
)
from tests.integration.test_audit_pipeline import as_records as as_tick_records
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration
PARTITIONS = 6  # topics.yaml's default
JAVA_PRODUCER = Path(__file__).parent / "java" / "JavaProducer.java"
Placed = list[tuple[bytes | None, int, int]]


def murmur2_partition(key: bytes) -> int:
    """Where the Java client, aiokafka and Faust put ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def produce_librdkafka(
    cluster: Cluster,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    partitions: Iterable[int | None] | None = None,
) -> Placed:
    """Publish with confluent-kafka and its defaults (CRC32 for keys), or to the given
    partitions; return (key, partition, offset) of every record as the broker stored it."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 5})
    placed: Placed = []
    errors: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            placed.append((msg.key(), msg.partition(), msg.offset()))

    chosen = list(partitions) if partitions is not None else None
    for n, (key, value) in enumerate(records):
        extra = {} if chosen is None or chosen[n] is None else {"partition": chosen[n]}
        producer.produce(topic, value=value, key=key, on_delivery=delivered, **extra)
        producer.poll(0)
    assert producer.flush(30) == 0, "confluent-kafka could not deliver every record"
    assert not errors, errors
    return placed


def produce_java(cluster: Cluster, topic: str, records: Iterable[tuple[bytes, bytes]]) -> Placed:
    """Publish with Kafka's own Java client (``java/JavaProducer.java``, its default
    partitioner); return (key, partition, offset) of every record as the broker stored it."""
    settings = load_settings().kafka
    libs = ensure_jars(settings.local_version, settings.local_cache_dir)
    lines = b"".join(key + b"\t" + value + b"\n" for key, value in records)
    done = subprocess.run(
        ["java", "-cp", f"{libs}/*", str(JAVA_PRODUCER), cluster.bootstrap_servers, topic],
        input=lines, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    placed: Placed = []
    for line in done.stdout.decode().splitlines():
        key, partition, offset = line.split("\t")
        placed.append((key.encode(), int(partition), int(offset)))
    return placed


def misplaced(placed: Placed) -> int:
    return sum(1 for key, partition, _ in placed if key and murmur2_partition(key) != partition)


def forwarded(worker: WorkerProcess, topic: str) -> float:
    return metric_value(worker, f'governor_repartitioned_records_total{{topic="{topic}"}}')


def test_the_java_client_places_every_key_where_governor_keeps_its_state(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Kafka's Java client, as users run it: its default partitioner (murmur2) puts each key
    in the partition Governor keeps its state in, so nothing is forwarded, and two workers
    answer every facility in full."""
    first, second = workers(), workers()
    first.wait_ready()
    second.wait_ready()
    readings = sample_readings(300, facilities=8)
    placed = produce_java(cluster, prefix + "meter-readings", as_records(readings))
    assert len(placed) == len(readings) and misplaced(placed) == 0
    assert len({partition for _, partition, _ in placed}) > 1
    expected = expected_totals(readings)
    for worker in (first, second):
        wait_for_totals(worker, expected, timeout_s=90)
    assert forwarded(first, "meter-readings") + forwarded(second, "meter-readings") == 0


def test_librdkafka_producers_two_workers_every_entity_whole_from_either_worker(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    first = workers(GOVERNOR_AUDIT__SITES=SITES_ENV)
    second = workers(GOVERNOR_AUDIT__SITES=SITES_ENV)
    first.wait_ready()
    second.wait_ready()

    readings = sample_readings(400, facilities=8)
    placed = produce_librdkafka(cluster, prefix + "meter-readings", as_records(readings))
    wrong = misplaced(placed)
    assert wrong > 0, "librdkafka put every key where murmur2 does: the test proves nothing"
    expected = expected_totals(readings)
    for worker in (first, second):
        wait_for_totals(worker, expected, timeout_s=90)
    total_forwarded = forwarded(first, "meter-readings") + forwarded(second, "meter-readings")
    assert total_forwarded >= wrong, (total_forwarded, wrong)

    ticks = sample_ticks(sites=8, days=2, per_day=6)
    placed_ticks = produce_librdkafka(cluster, prefix + "control-ticks", as_tick_records(ticks))
    assert misplaced(placed_ticks) > 0
    want_reports = expected_reports(ticks)
    for worker in (first, second):
        wait_for_reports(worker, want_reports, timeout_s=90)

    # A bad record on the wrong partition is forwarded, then dead-lettered under the
    # coordinates its producer wrote it at.
    key = next(f"facility-x{n}".encode() for n in range(100) if _crc_misplaces(f"x{n}"))
    (bad,) = produce_librdkafka(cluster, prefix + "meter-readings", [(key, b"\xff not json")])
    assert bad[1] != murmur2_partition(key)
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 1, 60))
    letter = DeadLetter.from_json_bytes(letters[0].value)
    assert letter.reason is DeadLetterReason.UNDECODABLE
    assert (letter.source_partition, letter.source_offset) == (bad[1], bad[2])
    assert letter.original_value() == b"\xff not json"


def test_forwarded_readings_are_counted_once_across_a_sigkill(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    readings = sample_readings(3000, facilities=12)
    first = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="place-a")
    second = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="place-b")
    first.wait_ready()
    second.wait_ready()
    # Fed after both are ready and paced: a preloaded topic was drained by whichever worker
    # joined first before the other had its share, and the kill found nothing mid-stream.
    records = as_records(readings)
    placed: Placed = []
    failures: list[BaseException] = []

    def feed() -> None:
        try:
            for start in range(0, len(records), 150):
                chunk = records[start : start + 150]
                placed.extend(produce_librdkafka(cluster, prefix + "meter-readings", chunk))
                time.sleep(0.25)
        except BaseException as exc:  # reported below
            failures.append(exc)

    feeding = threading.Thread(target=feed, daemon=True)
    feeding.start()
    kill_mid_stream(first, applied_readings, len(readings) // 2, past=0.2)
    feeding.join(120)
    assert not feeding.is_alive() and not failures, failures
    assert misplaced(placed) > len(readings) // 3
    expected = expected_totals(readings)
    for worker in (first, second):
        wait_for_totals(worker, expected, timeout_s=180)


def _crc_misplaces(suffix: str) -> bool:
    """Whether librdkafka's default (CRC32) puts ``facility-<suffix>`` off its murmur2 home."""
    import zlib

    key = f"facility-{suffix}".encode()
    return zlib.crc32(key) % PARTITIONS != murmur2_partition(key)


def test_a_burst_for_one_tenant_over_every_partition_cannot_overspend(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    first, second = workers(), workers()
    first.wait_ready()
    second.wait_ready()
    status, _ = post_json(first, "/api/v1/fusion/budgets", {"tenant": "acme", "limit_units": 1000})
    assert status == 202
    for worker in (first, second):
        wait_for(lambda w=worker: _budget(w) is not None, 30)  # type: ignore[misc]

    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    requests = [
        {
            "event_id": f"burst-{n:03d}", "tenant": "acme", "scenario_type": "refund_processing",
            "overlay": "rollback_first", "overlay_version": "0.1.1", "estimated_units": 100,
            "complexity_level": "high", "timestamp": (now + timedelta(seconds=n)).isoformat(),
        }
        for n in range(30)
    ]  # fmt: skip
    records = [(b"acme", orjson.dumps(r)) for r in requests]
    placed = produce_librdkafka(
        cluster, prefix + "fusion-requests", records, [n % PARTITIONS for n in range(30)]
    )
    assert len({p for _, p, _ in placed}) == PARTITIONS

    def admissions() -> list[EnergyDecision] | None:
        got = asyncio.run(read_all(cluster, prefix + "energy-decisions", 10**9, 3))
        decided = {
            d.event_id: d
            for d in (EnergyDecision.from_json_bytes(m.value) for m in got)
            if d.kind is DecisionKind.ADMISSION
        }
        return list(decided.values()) if len(decided) == len(requests) else None

    decided = wait_for(admissions, 90, 1)
    admitted = [d for d in decided if d.outcome is not Outcome.REJECTED]
    # 100 units at high complexity cost 150; six fit under the 95 % hard limit of 1,000.
    assert sum(d.final_units for d in admitted) == 900.0, [d.outcome for d in decided]
    assert len(admitted) == 6
    for worker in (first, second):
        assert _budget(worker) == {"reserved_units": 900.0, "spent_units": 0.0}


def _budget(worker: WorkerProcess) -> dict[str, float] | None:
    status, body = http_get(f"{worker.url}/api/v1/fusion/budget/status?tenant=acme")
    if status != 200 or body.get("budget") is None:
        return None
    return {k: body["budget"][k] for k in ("reserved_units", "spent_units")}


def test_a_misplaced_record_near_the_sources_limit_is_forwarded_and_applied(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """A batch of readings just past 1,000,000 bytes, which its source took, on a partition
    murmur2 does not give its key: it is forwarded (the repartition topic takes twice the
    default) and applied, as it would be from a producer that placed it by murmur2. It was
    dead-lettered as too large to forward."""
    worker = workers()
    worker.wait_ready()
    readings = sample_readings(3_750, facilities=1)
    value = batch(readings, "near-the-limit").to_json_bytes()
    assert 1_000_000 < len(value) < 1_040_000
    key = readings[0].facility_id.encode()
    wrong = (murmur2_partition(key) + 1) % PARTITIONS

    async def send() -> None:
        producer = AIOKafkaProducer(**cluster.client_options(), enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(prefix + "meter-readings", value, key=key, partition=wrong)
        finally:
            await producer.stop()

    asyncio.run(send())
    wait_for_totals(worker, expected_totals(readings), timeout_s=90)
    assert forwarded(worker, "meter-readings") == 1
    assert metric_total(worker, "governor_dead_letters_total") == 0
