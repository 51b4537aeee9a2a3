"""Issue 16 part 5: a second writer of a chain (a zombie appender, paused past its session
while the chain's next owner took over) is fenced, not merely detected after the fact.

Before, both appended: each noticed only when its own records landed past where it
expected, and by then the log held a fork that halted the chain for good. Each chain is now
written through a transactional producer whose id is the chain's: the new owner's start
aborts the zombie's open transaction and refuses its writes, and readers of committed
records never see them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest
from prometheus_client import CollectorRegistry

from agents.ledger.agent import LedgerAppender
from app.ledger.verify import verify_records
from app.metrics import Metrics
from app.runtime.topic_reader import read_partition
from app.settings import load_settings
from app.topics import Catalogue
from tests.integration.harness import Cluster

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Message:
    """What the appender needs of a consumed decision record."""

    partition: int
    offset: int
    key: bytes
    value: bytes


def emission(n: int) -> tuple[str, Message]:
    value = orjson.dumps({"event_id": f"evt-{n}", "facility_id": "facility-0", "kwh": n})
    return "carbon-emissions", Message(0, n, b"facility-0", value)


def appender(cluster: Cluster, prefix: str, monkeypatch: pytest.MonkeyPatch) -> LedgerAppender:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", cluster.bootstrap_servers)
    monkeypatch.setenv("GOVERNOR_KAFKA__TOPIC_PREFIX", prefix)
    monkeypatch.setenv("GOVERNOR_WORKER__APP_ID", f"governor-{prefix.rstrip('-')}")
    settings = load_settings()
    metrics = Metrics(settings.metrics.max_facility_labels, CollectorRegistry())
    return LedgerAppender(settings, Catalogue.load(), metrics)


def test_a_zombie_appender_is_fenced_and_its_records_never_seen(
    cluster: Cluster, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    zombie, successor = (appender(cluster, prefix, monkeypatch) for _ in range(2))

    async def scenario() -> tuple[Exception | None, list[tuple[int, bytes]]]:
        old = await zombie.load_chain(0)  # genesis
        await zombie._append_committed(old, [emission(0)])
        new = await successor.load_chain(0)  # takes the chain over: fences the zombie
        assert new.head.seq == 1
        refused: Exception | None = None
        try:
            await zombie._append_committed(old, [emission(1)])
        except Exception as exc:  # ProducerFenced, or a send the broker refused for it
            refused = exc
        await successor._append_committed(new, [emission(2)])
        for writer in (old, new):  # unstopped, their finalizers would run inside a later GC
            await writer.out.stop()
        records, _ = await read_partition(cluster.client_options(), prefix + "ledger", 0)
        return refused, records

    refused, records = asyncio.run(scenario())
    assert refused is not None, "the zombie appended after the chain was taken over"
    ids = [orjson.loads(v).get("decision_id") for _, v in records]
    assert ids == [None, "evt-0", "evt-2"]  # genesis, the zombie's before, the successor's
    leaves, failure = verify_records(0, records)
    assert failure is None and len(leaves) == 3
    offsets = [o for o, _ in records]
    assert offsets[-1] > offsets[1] + 1, "commit markers lie between transactions"
