"""`governor dlq list` and `governor dlq republish` against a real broker and worker."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from schemas.dead_letter import DeadLetter, DeadLetterReason
from tests.factories import reading
from tests.integration.harness import (
    REPO,
    Cluster,
    WorkerProcess,
    governor_env,
    produce,
    read_all,
    wait_for,
)
from tests.integration.test_carbon_pipeline import http_totals

pytestmark = pytest.mark.integration


def governor(cluster: Cluster, prefix: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=governor_env(cluster, prefix),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_list_then_republish_after_the_fix(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """A reading from a meter whose clock ran ahead is dead-lettered; once the skew limit is
    raised (the fix), re-publishing its original bytes gets it counted."""
    worker = workers()
    worker.wait_ready()
    ahead = reading(1, timestamp=datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    record = [(ahead.facility_id.encode(), ahead.to_json_bytes())]
    asyncio.run(produce(cluster, prefix + "meter-readings", record))

    def listed() -> str | None:
        out = governor(cluster, prefix, "dlq", "list")
        return out if "timestamp_in_future" in out else None

    listing = wait_for(listed)
    assert "1 dead letter(s)" in listing
    ref = listing.split()[0]
    assert governor(cluster, prefix, "dlq", "list", "--reason", "undecodable").strip() == (
        "0 dead letter(s) with reason undecodable"
    )
    assert "would re-publish" in governor(cluster, prefix, "dlq", "republish", "--ref", ref,
                                          "--dry-run")  # fmt: skip

    worker.stop()
    fixed = workers(GOVERNOR_CARBON__MAX_FUTURE_SKEW_S="86400")
    fixed.wait_ready()
    out = governor(cluster, prefix, "dlq", "republish", "--ref", ref)
    assert "re-published 1 dead letter(s)" in out
    wait_for(lambda: http_totals(fixed, ahead.facility_id)[2] == 1)


async def _produce_to(
    cluster: Cluster, topic: str, records: list[tuple[bytes, bytes, int | None]]
) -> None:
    """(key, value, partition) records; None partition = the key's murmur2 partition."""
    producer = AIOKafkaProducer(**cluster.client_options(), max_request_size=2_000_000)
    await producer.start()
    try:
        for key, value, partition in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def test_a_record_too_large_to_dead_letter_whole_does_not_stop_the_pipeline(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Near the broker's message limit (1,048,588 bytes): dead-lettering it whole (base64)
    would exceed the topic's limit, so its letter is cut (before, the worker stopped on it
    after every restart). On the wrong partition it is forwarded first (the repartition
    topic takes twice the default) and dead-lettered the same way, under the coordinates
    its producer wrote it at: which partitioner placed it changes nothing."""
    worker = workers()
    worker.wait_ready()
    big = b'{"pad": "' + b"x" * 1_040_000 + b'"}'
    key = b"facility-001"
    home = (murmur2(key) & 0x7FFFFFFF) % 6
    after = [reading(n, facility_id="facility-001") for n in range(3)]
    topic = prefix + "meter-readings"
    records = [(key, big, None), (key, big, (home + 1) % 6)]
    records += [(key, r.to_json_bytes(), None) for r in after]
    asyncio.run(_produce_to(cluster, topic, records))

    wait_for(lambda: http_totals(worker, "facility-001")[2] == 3, 60)
    assert worker.process is not None and worker.process.poll() is None
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 2, 60))
    found = sorted(
        (DeadLetter.from_json_bytes(m.value) for m in letters),
        key=lambda d: d.source_partition != home,  # the one its key's partition took first
    )
    assert [d.reason for d in found] == [DeadLetterReason.INVALID_SCHEMA] * 2
    digest = hashlib.sha256(big).hexdigest()
    for letter in found:
        assert letter.truncated and letter.value_size == len(big)
        assert letter.value_sha256 == digest
        assert big.startswith(letter.original_value()) and len(letter.original_value()) < len(big)
    assert [d.source_partition for d in found] == [home, (home + 1) % 6]

    listing = governor(cluster, prefix, "dlq", "list", "--reason", "invalid_schema")
    assert f"cut: {len(big)} bytes, sha256 {digest}" in listing
    ref = listing.split()[0]
    assert "re-published 1" in governor(cluster, prefix, "dlq", "republish", "--ref", ref)
    again = asyncio.run(read_all(cluster, prefix + "dead-letters", 3, 60))
    assert len(again) == 3
    assert DeadLetter.from_json_bytes(again[-1].value).value_sha256 == digest
