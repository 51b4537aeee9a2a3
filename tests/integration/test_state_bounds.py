"""Issue 16 part 4: a producer that invents an id per record (facilities, sites, tenants,
platforms, load facilities) grows no table past its per-partition limit. Records of new
entities past the limit are dead-lettered with reason ``entity_limit``; the worker goes on."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from app.runtime.entity_bound import home_partition
from app.tools.generate import Workload, generate
from schemas.dead_letter import DeadLetter, DeadLetterReason
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    end_offsets,
    metric_value,
    post_json,
    produce,
    read_all,
    wait_for,
)

pytestmark = pytest.mark.integration

LIMIT = 3
PER_TOPIC = 240
INVENTED = {  # input topic → the field that names its entity, and the table it adds to
    "meter-readings": ("facility_id", "recent-readings"),
    "control-ticks": ("site_id", "audit-site-days"),
    "fusion-results": ("tenant", "fusion-tenants"),
    "load-metrics": ("facility_id", "load-facilities"),
    "request-events": ("platform", "traffic-endpoints"),
}
LIMITS = {
    "GOVERNOR_CARBON__MAX_FACILITIES_PER_PARTITION": str(LIMIT),
    "GOVERNOR_AUDIT__MAX_SITES_PER_PARTITION": str(LIMIT),
    "GOVERNOR_FUSION__MAX_TENANTS_PER_PARTITION": str(LIMIT),
    "GOVERNOR_LOAD__MAX_FACILITIES_PER_PARTITION": str(LIMIT),
    "GOVERNOR_TRAFFIC__MAX_ENDPOINTS_PER_PARTITION": str(LIMIT),
}


def invented(topic: str) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """Valid records of ``topic``, each naming an entity never seen before; the entities."""
    field, _ = INVENTED[topic]
    values = [orjson.loads(v) for v in itertools.islice(generate(topic, Workload(hours=2)),
                                                        PER_TOPIC)]  # fmt: skip
    names = [f"x{n:05d}-{topic}" for n in range(len(values))]
    records = []
    for value, name in zip(values, names, strict=True):
        value[field] = name
        records.append((name.encode(), orjson.dumps(value)))
    return records, names


def admitted(entities: list[str]) -> int:
    """How many of ``entities`` fit: ``LIMIT`` in each partition, the first ones produced."""
    per_partition = Counter(home_partition(e, 6) for e in entities)
    return sum(min(LIMIT, n) for n in per_partition.values())


def test_invented_ids_fill_each_partition_to_its_limit_and_no_further(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers(**LIMITS)
    worker.wait_ready()
    expected: dict[str, int] = {}
    tenants: list[str] = []
    for topic in INVENTED:
        records, names = invented(topic)
        if topic == "fusion-results":
            tenants = names[:]
        asyncio.run(produce(cluster, prefix + topic, records))
        if topic == "request-events":  # the decider's entity is the endpoint, its key
            names = [f"{n}|_unknown" for n in names]
        expected[topic] = len(records) - admitted(names)
    want = sum(expected.values())
    letters = wait_for(
        lambda: (got if len(got := asyncio.run(read_all(cluster, prefix + "dead-letters", want,
                                                        10))) >= want else None), 240, 2,
    )  # fmt: skip
    found = Counter()
    for message in letters:
        letter = DeadLetter.from_json_bytes(message.value)
        assert letter.reason is DeadLetterReason.ENTITY_LIMIT, letter
        found[letter.source_topic.removeprefix(prefix)] += 1
    by_source = {topic: found.get(topic, 0) for topic in INVENTED if topic != "request-events"}
    by_source["request-events"] = found.get("traffic-routed", 0)
    assert by_source == expected
    for topic, (_, table) in INVENTED.items():
        fill = metric_value(worker, f'governor_entity_fill_ratio{{table="{table}"}}')
        assert fill == 1.0, (topic, table, fill)
    assert metric_value(worker, 'governor_table_keys{table="recent-readings"}') == 6 * LIMIT
    assert metric_value(worker, 'governor_table_keys{table="audit-site-days"}') == 6 * LIMIT
    assert worker.process is not None and worker.process.poll() is None

    # A synchronous admission of one more tenant is refused up front, nothing published;
    # a tenant the partition holds is decided as ever.
    request = {"scenario_type": "refund_processing", "overlay": "rollback_first",
               "overlay_version": "0.1.1", "estimated_units": 100}  # fmt: skip
    requests_before = asyncio.run(end_offsets(cluster, prefix + "fusion-requests"))
    status, body = post_json(worker, "/api/v1/fusion/validate", {**request, "tenant": "newcomer"})
    assert status == 429 and "max_tenants_per_partition" in body["error"], body
    assert asyncio.run(end_offsets(cluster, prefix + "fusion-requests")) == requests_before
    held = next(n for n in tenants if home_partition(n, 6) == home_partition("newcomer", 6))
    # (the first tenant produced to that partition: the partition admitted it)
    status, body = post_json(worker, "/api/v1/fusion/validate", {**request, "tenant": held})
    assert status in (200, 403) and body["tenant"] == held, body
