"""topics.yaml applied to a real cluster: creation, idempotency, drift."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.runtime.topic_admin import apply_catalogue
from app.topics import Catalogue, TopicReport, TopicStatus
from tests.integration.harness import Cluster

pytestmark = pytest.mark.integration


async def _apply(cluster: Cluster, prefix: str, create: bool = True) -> dict[str, TopicReport]:
    reports = await apply_catalogue(
        cluster.client_options(), Catalogue.load(), prefix, create=create
    )
    return {r.name.removeprefix(prefix): r for r in reports}


async def _create(cluster: Cluster, topic: NewTopic) -> None:
    admin = AIOKafkaAdminClient(**cluster.client_options())
    await admin.start()
    try:
        await admin.create_topics([topic])
    finally:
        await admin.close()


def test_apply_creates_then_reports_ok(cluster: Cluster) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}-"
    missing = asyncio.run(_apply(cluster, prefix, create=False))
    assert {r.status for r in missing.values()} == {TopicStatus.MISSING}
    first = asyncio.run(_apply(cluster, prefix))
    assert {r.status for r in first.values()} == {TopicStatus.CREATED}
    second = asyncio.run(_apply(cluster, prefix))
    assert {r.status for r in second.values()} == {TopicStatus.OK}
    assert set(second) == {t.name for t in Catalogue.load().topics}


def test_drift_in_partitions_and_config_is_reported_not_changed(cluster: Cluster) -> None:
    prefix = f"d{uuid.uuid4().hex[:8]}-"
    asyncio.run(
        _create(
            cluster,
            NewTopic(
                prefix + "meter-readings",
                num_partitions=2,
                replication_factor=1,
                topic_configs={"retention.ms": "1000"},
            ),
        )
    )
    reports = asyncio.run(_apply(cluster, prefix))
    drift = reports["meter-readings"]
    assert drift.status is TopicStatus.DRIFT
    assert "partitions 2 != 6" in drift.drift
    assert "retention.ms 1000 != 604800000" in drift.drift
    again = asyncio.run(_apply(cluster, prefix))
    assert again["meter-readings"].status is TopicStatus.DRIFT
    assert reports["carbon-emissions"].status is TopicStatus.CREATED
