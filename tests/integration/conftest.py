"""Fixtures on a real Kafka broker. No broker, no pass: provisioning errors fail the run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    SESSION,
    Cluster,
    WorkerProcess,
    create_topics,
    delete_topics,
    provision_cluster,
)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work_dir = tmp_path_factory.mktemp("kafka")
    found = provision_cluster(work_dir)
    SESSION["cluster"] = found
    print(f"\nKafka for this session: {found.mode} at {found.bootstrap_servers}")
    yield found
    if found.stop is not None:
        found.stop()


@pytest.fixture
def prefix(cluster: Cluster) -> Iterator[str]:
    """A fresh topic prefix (and so fresh topics) per test, created from topics.yaml and
    deleted after the test."""
    name = f"t{uuid.uuid4().hex[:10]}-"
    asyncio.run(create_topics(cluster, name))
    yield name
    try:
        asyncio.run(delete_topics(cluster, name))
    except Exception as exc:  # a test that stopped the broker may leave it unreachable
        print(f"topics of {name} not deleted: {exc!r}")


@pytest.fixture
def workers(
    cluster: Cluster, prefix: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers of one consumer group; all are stopped after the test."""
    started: list[WorkerProcess] = []
    app_id = f"governor-{prefix.rstrip('-')}"

    def start(**extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(cluster, app_id, prefix, tmp_path / "workers", dict(extra_env))
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """On a failing integration test, show the worker logs next to the failure."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "workers" in getattr(item, "funcargs", {}):
        for line in _worker_tails(item):
            report.sections.append(("worker log", line))


def _worker_tails(item: pytest.Item) -> list[str]:
    tmp = item.funcargs.get("tmp_path")
    if not isinstance(tmp, Path):
        return []
    return [
        f"{log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        for log in sorted((tmp / "workers").glob("worker-*.log"))
    ]
