"""The admin side of topics: make a cluster match the catalogue, and ask whether it is up.

Drift is reported, never "fixed" (:func:`apply_catalogue`); what counts as drift is the
catalogue's (:func:`app.topics.topic_drift`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.runtime.retry import started
from app.topics import Catalogue, TopicReport, TopicSpec, TopicStatus, topic_drift


@asynccontextmanager
async def _admin(options: dict[str, Any]) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**options)
    await started(admin)
    try:
        yield admin
    finally:
        await admin.close()


async def has_brokers(options: dict[str, Any]) -> bool:
    """Whether the cluster answers a describe-cluster request with at least one broker."""
    async with _admin(options) as admin:
        cluster = await admin.describe_cluster()
    return bool(cluster.get("brokers"))


async def apply_catalogue(
    options: dict[str, Any], catalogue: Catalogue, prefix: str = "", create: bool = True
) -> list[TopicReport]:
    """Create missing topics (unless ``create`` is false) and report drift in the others.

    Idempotent: a second run reports every topic OK. Drift is reported, never "fixed", since
    changing partitions moves keys between partitions and so between workers' state.
    """
    async with _admin(options) as admin:
        return await _apply(admin, catalogue, prefix, create)


async def max_message_bytes(options: dict[str, Any], topic: str) -> int | None:
    """``topic``'s ``max.message.bytes`` as the broker has it; ``None`` if it has no
    such topic."""
    async with _admin(options) as admin:
        found = await _describe(admin, [topic])
    value = found.get(topic, {}).get("configs", {}).get("max.message.bytes")
    return int(value) if value is not None else None


async def _apply(
    admin: AIOKafkaAdminClient, catalogue: Catalogue, prefix: str, create: bool
) -> list[TopicReport]:
    names = {prefix + s.name: s for s in catalogue.topics}
    actual = await _describe(admin, list(names))
    missing = [n for n in names if n not in actual]
    created: set[str] = set()
    if missing and create:
        created = await _create(admin, [names[n] for n in missing], prefix)
        actual = await _describe(admin, list(names))
    reports = []
    for name, spec in names.items():
        if name in created:
            reports.append(TopicReport(name, TopicStatus.CREATED))
        elif name not in actual:
            reports.append(TopicReport(name, TopicStatus.MISSING))
        else:
            problems = topic_drift(spec, actual[name])
            status = TopicStatus.DRIFT if problems else TopicStatus.OK
            reports.append(TopicReport(name, status, problems))
    return reports


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, Any]]:
    """Partition count, replication factor and configs of the topics that exist."""
    existing = set(await admin.list_topics())
    present = [n for n in names if n in existing]
    if not present:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for topic in await admin.describe_topics(present):
        partitions = topic["partitions"]
        found[topic["topic"]] = {
            "partitions": len(partitions),
            "replication_factor": min((len(p["replicas"]) for p in partitions), default=0),
            "configs": {},
        }
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            entries = resource["config_entries"]
            found[resource["resource_name"]]["configs"] = {
                e["config_names"]: e["config_value"] for e in entries
            }
    return found


TOPIC_ALREADY_EXISTS = 36


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec], prefix: str) -> set[str]:
    """Create topics, wait until metadata shows them all; return those this call created.

    A topic another client created meanwhile (TOPIC_ALREADY_EXISTS) is not ours: its
    settings are checked for drift like any existing topic's.
    """
    new = [
        NewTopic(
            name=prefix + s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            topic_configs=s.configs(),
        )
        for s in specs
    ]
    response = (await admin.create_topics(new)).to_object()
    errors = [
        f"{e['topic']}: error {e['error_code']} {e.get('error_message') or ''}".strip()
        for e in response["topic_errors"]
        if e["error_code"] not in (0, TOPIC_ALREADY_EXISTS)
    ]
    if errors:
        raise RuntimeError("could not create topics: " + "; ".join(errors))
    wanted = {t.name for t in new}
    for _ in range(120):
        if wanted <= set(await admin.list_topics()):
            return {e["topic"] for e in response["topic_errors"] if e["error_code"] == 0}
        await asyncio.sleep(0.25)
    raise RuntimeError(f"topics not visible after creation: {sorted(wanted)}")
