"""Hostile input on every pipeline input topic and the HTTP ingest endpoints, interleaved with
valid readings: every bad record is dead-lettered once with a reason, every bad request gets a
4xx and publishes nothing, the worker never exits, and the valid readings' totals are exact.

Seeded: GOVERNOR_FUZZ_SEED picks the seed, GOVERNOR_FUZZ_RECORDS the number of bad records
(2,000 by default, as CI runs it; the README quotes a run of 10,000)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from app.tools.generate import Workload, generate
from app.topics import Catalogue
from schemas.dead_letter import DeadLetter
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    end_offsets,
    post_json,
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
SEED = int(os.environ.get("GOVERNOR_FUZZ_SEED", "20261202"))
BAD_RECORDS = int(os.environ.get("GOVERNOR_FUZZ_RECORDS", "2000"))
TOPICS = [
    "meter-readings", "control-ticks", "fusion-requests", "fusion-results", "energy-budgets",
    "carbon-budgets", "load-metrics", "request-events",
]  # fmt: skip
"""Every pipeline input with a generator (balancing-commands and traffic-policies have none;
the feeds' topics are read whole by every worker)."""
SKEW_CHECKED = {"meter-readings", "control-ticks", "fusion-requests", "fusion-results",
                "request-events"}  # fmt: skip
ANY_KEY = {"request-events"}
HTTP_INGEST = {
    "/api/v1/readings": "meter-readings",
    "/api/v1/carbon/process": "meter-readings",
    "/api/v1/carbon/budget": "carbon-budgets",
    "/api/v1/load/metrics": "load-metrics",
    "/api/v1/fusion/budgets": "energy-budgets",
    "/api/v1/fusion/validate": "fusion-requests",
}
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def templates() -> dict[str, list[tuple[bytes, dict[str, Any]]]]:
    """Valid values per topic (key, parsed value), to mutate."""
    catalogue = Catalogue.load()
    found = {}
    for topic in TOPICS:
        field = catalogue[topic].key
        values = [orjson.loads(v) for v in itertools.islice(generate(topic, Workload(hours=2)), 20)]
        found[topic] = [(str(v.get(field, "k")).encode(), v) for v in values]
    return found


def mutate(
    rng: random.Random, topic: str, key: bytes, value: dict[str, Any], kafka: bool = True
) -> Record:
    """One bad record made from a valid one; each kind is refused by the contract, the
    decoder or the checks every pipeline applies (over HTTP, a body has no Kafka key and
    is stamped on arrival, so the key and clock kinds are Kafka's only)."""
    kinds = ["binary", "utf8", "nan", "infinity", "empty", "tombstone", "missing", "unknown",
             "wrong_type", "huge_string", "huge_number", "deep", "scalar"]  # fmt: skip
    if kafka and topic not in ANY_KEY:
        kinds.append("key")
    if kafka and topic in SKEW_CHECKED:
        kinds.append("future")
    kind = rng.choice(kinds)
    headers = (
        [("x-odd\u00e9", bytes(rng.randrange(256) for _ in range(8)))] if rng.random() < 0.3 else []
    )
    field = rng.choice(sorted(value))
    text = orjson.dumps(value)
    bad: bytes | None
    if kind == "binary":
        bad = b"\xff" + rng.randbytes(rng.randrange(1, 300))
    elif kind == "utf8":
        bad = text[:-1] + b', "zz": "\xff\xfe"}'
    elif kind in ("nan", "infinity"):
        bad = text[:-1] + (b', "zz": NaN}' if kind == "nan" else b', "zz": Infinity}')
    elif kind == "empty":
        bad = b""
    elif kind == "tombstone":
        bad = None
    elif kind == "missing":
        required = ("event_id", "timestamp", "tenant", "limit_units", "facility_id")
        bad = orjson.dumps({k: v for k, v in value.items() if k not in required})
    elif kind == "unknown":
        bad = orjson.dumps({**value, "zz_unknown": rng.random()})
    elif kind == "wrong_type":
        bad = orjson.dumps({**value, field: [1, {"a": []}]})
    elif kind == "huge_string":
        bad = orjson.dumps({**value, "zz_pad": "x" * rng.randrange(10_000, 300_000)})
    elif kind == "huge_number":
        bad = text[:-1] + b', "zz": ' + b"9" * rng.randrange(30, 5_000) + b"}"
    elif kind == "deep":
        depth = rng.randrange(100, 5_000)
        bad = text[:-1] + b', "zz": ' + b"[" * depth + b"0" + b"]" * depth + b"}"
    elif kind == "scalar":
        bad = orjson.dumps(rng.choice([[], "text", 1, None, True, [value]]))
    elif kind == "key":
        return b"not-" + key, text, headers
    else:  # future: a value stamped decades after its record
        bad = orjson.dumps({**value, "timestamp": "2099-01-01T00:00:00Z"})
    return key, bad, headers


def bad_records(count: int) -> Iterator[tuple[str, Record, int | None]]:
    """Bad records; one in five on a random partition (forwarded first when it is not its
    key's: the dead letter must still name where it was written)."""
    rng = random.Random(SEED)
    found = templates()
    for _ in range(count):
        topic = rng.choice(TOPICS)
        key, value = rng.choice(found[topic])
        partition = rng.randrange(6) if rng.random() < 0.2 else None
        yield topic, mutate(rng, topic, key, value), partition


async def _produce(
    cluster: Cluster, prefix: str, records: list[tuple[str, Record, int | None]]
) -> None:
    producer = AIOKafkaProducer(**cluster.client_options(), max_request_size=2_000_000, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                prefix + topic, value, key=key, headers=headers, partition=partition
            )
            for topic, (key, value, headers), partition in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def test_fuzzed_records_and_requests_are_refused_and_nothing_else_changes(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers()
    worker.wait_ready()
    bad = list(bad_records(BAD_RECORDS))
    readings = sample_readings(300, facilities=6)
    valid = [("meter-readings", (k, v, []), None) for k, v in as_records(readings)]
    mixed: list[tuple[str, Record, int | None]] = []
    step = max(1, len(bad) // len(valid))
    for n, record in enumerate(bad):
        mixed.append(record)
        if n % step == 0 and valid:
            mixed.append(valid.pop())
    mixed += valid
    # Two values near the broker's 1 MiB limit, one on a keyed topic, one on request-events.
    near_max = b'{"pad": "' + b"y" * 1_040_000 + b'"}'
    mixed += [("meter-readings", (b"facility-003", near_max, []), None),
              ("request-events", (b"web", near_max, []), None)]  # fmt: skip
    started = time.monotonic()
    asyncio.run(_produce(cluster, prefix, mixed))

    ingest_before = asyncio.run(_ends(cluster, prefix))
    rng = random.Random(SEED + 1)
    statuses = Counter()
    for _ in range(200):
        path = rng.choice(sorted(HTTP_INGEST))
        topic = HTTP_INGEST[path]
        key, value = rng.choice(templates_cache(topic))
        _, body, _ = mutate(rng, topic, key, value, kafka=False)
        if body is None:
            body = b""
        status, _ = post_json(worker, path, body)
        statuses[status] += 1
        assert 400 <= status < 500, (path, status, body[:200])

    expected_letters = len(bad) + 2
    letters = wait_for(
        lambda: (got if len(got := asyncio.run(read_all(cluster, prefix + "dead-letters",
                                                        expected_letters, 30))) >= expected_letters
                 else None), 300, 1,
    )  # fmt: skip
    wait_for_totals(worker, expected_totals(readings), timeout_s=120)
    elapsed = time.monotonic() - started
    time.sleep(3)
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 10**9, 5))
    decoded = [DeadLetter.from_json_bytes(m.value) for m in letters]
    by_topic = Counter(d.source_topic.removeprefix(prefix) for d in decoded)
    want = Counter(topic for topic, _, _ in bad) + Counter(["meter-readings", "request-events"])
    assert by_topic == want
    # Records written to a chosen partition: their letters name that partition.
    written = Counter((t, p) for t, _, p in bad if p is not None)
    named = Counter((d.source_topic.removeprefix(prefix), d.source_partition) for d in decoded)
    assert all(named[where] >= n for where, n in written.items())
    assert all(d.reason and d.error for d in decoded)
    assert asyncio.run(_ends(cluster, prefix)) == ingest_before, "a refused request published"
    assert worker.process is not None and worker.process.poll() is None and worker.starts == 1
    reasons = Counter(d.reason.value for d in decoded)
    print(
        f"\nfuzz seed {SEED}: {len(bad)} bad records + {len(readings)} valid readings over"
        f" {len(TOPICS)} topics in {elapsed:.1f}s; dead letters by reason {dict(reasons)};"
        f" HTTP statuses {dict(statuses)}; worker exits 0"
    )


_TEMPLATES: dict[str, list[tuple[bytes, dict[str, Any]]]] = {}


def templates_cache(topic: str) -> list[tuple[bytes, dict[str, Any]]]:
    if not _TEMPLATES:
        _TEMPLATES.update(templates())
    return _TEMPLATES[topic]


async def _ends(cluster: Cluster, prefix: str) -> dict[str, dict[int, int]]:
    return {t: await end_offsets(cluster, prefix + t) for t in sorted(set(HTTP_INGEST.values()))}
