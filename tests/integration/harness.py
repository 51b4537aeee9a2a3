"""Real-Kafka test harness: the cluster, worker processes, producing and reading topics."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.runtime.topic_admin import apply_catalogue
from app.settings import load_settings
from app.tools.localkafka import LocalBroker, free_port
from app.topics import Catalogue

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-" + uuid.uuid4().hex
SESSION: dict[str, Cluster] = {}
"""The session's cluster, for the failure report in tests/conftest.py."""


@dataclass
class Cluster:
    """A Kafka cluster for the session and how it was obtained."""

    bootstrap_servers: str
    mode: str
    broker: LocalBroker | None = None
    stop: Any = None

    def client_options(self) -> dict[str, Any]:
        from app.runtime.connection import aiokafka_options

        return aiokafka_options(load_settings().kafka.model_copy(
            update={"bootstrap_servers": self.bootstrap_servers}
        ))  # fmt: skip


def docker_available() -> bool:
    """A Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def provision_cluster(work_dir: Path) -> Cluster:
    """External cluster if named, else testcontainers with Docker, else a Maven-fetched broker.

    Any failure raises: a suite that cannot get a broker fails rather than skips.
    """
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return Cluster(external, "external")
    version = os.environ.get("GOVERNOR_KAFKA__LOCAL_VERSION", "3.9.1")
    if docker_available() and os.environ.get("GOVERNOR_TEST_NO_DOCKER") != "1":
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
        container.start()
        return Cluster(container.get_bootstrap_server(), "testcontainers", stop=container.stop)
    settings = load_settings()
    broker = LocalBroker(version, settings.kafka.local_cache_dir, work_dir, heap="1g")
    broker.start()
    return Cluster(broker.bootstrap_servers, f"local Apache Kafka {version}", broker=broker,
                   stop=broker.stop)  # fmt: skip


async def create_topics(cluster: Cluster, prefix: str) -> None:
    await apply_catalogue(cluster.client_options(), Catalogue.load(), prefix)


async def delete_topics(cluster: Cluster, prefix: str) -> None:
    """Delete a test's topics: those named with its prefix, and its workers' changelogs
    (``governor-<prefix>...``). One broker serves the whole suite; some 350 partitions per
    test would otherwise pile up until its heap runs out."""
    admin = AIOKafkaAdminClient(**cluster.client_options())
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix) or prefix in t]
        if mine:
            await admin.delete_topics(mine, timeout_ms=30_000)
    finally:
        await admin.close()


def governor_env(cluster: Cluster, prefix: str, **settings: str) -> dict[str, str]:
    """Environment for a `governor` subprocess on ``cluster`` with topic ``prefix``.

    The caller's Governor settings are dropped, except a real cluster's connection settings
    (security protocol, SASL, TLS), which pass through.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GOVERNOR_") or k.startswith("GOVERNOR_KAFKA__S")
    }
    env.update(
        GOVERNOR_KAFKA__BOOTSTRAP_SERVERS=cluster.bootstrap_servers,
        GOVERNOR_KAFKA__TOPIC_PREFIX=prefix,
        **settings,
    )
    return env


@dataclass
class WorkerProcess:
    """One ``governor worker`` subprocess with its own web port and data directory."""

    cluster: Cluster
    app_id: str
    prefix: str
    work_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    ledger_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def ledger_url(self) -> str:
        """The worker's ledger process (``ledger.mode: process``): its /metrics."""
        return f"http://127.0.0.1:{self.ledger_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.work_dir / f"worker-{self.port}.log"

    def env(self) -> dict[str, str]:
        defaults = {
            "GOVERNOR_WORKER__APP_ID": self.app_id,
            "GOVERNOR_WORKER__WEB_PORT": str(self.port),
            "GOVERNOR_LEDGER__METRICS_PORT": str(self.ledger_port),
            "GOVERNOR_WORKER__DATA_DIR": str(self.work_dir / f"data-{self.port}"),
            "GOVERNOR_WORKER__LOG_LEVEL": "info",
            "GOVERNOR_API__TOKEN": TOKEN,
        }
        return governor_env(self.cluster, self.prefix, **{**defaults, **self.extra_env})

    def start(self) -> WorkerProcess:
        if not self.port:
            self.port = free_port()
            self.ledger_port = free_port()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--config", str(REPO / "config/governor.yaml"),
             "worker"],
            cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.starts += 1
        return self

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until /health says ready (partitions assigned, recovery done)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.tail()}")
            status, _ = http_get(self.url + "/health")
            if status == 200:
                return
            time.sleep(0.3)
        raise AssertionError(f"worker not ready after {timeout_s}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit, no producer flush."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def tail(self, lines: int = 80) -> str:
        if not self.log_file.exists():
            return "(no worker log)"
        text = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(line for line in text[-lines:] if not line.startswith(("|", "〃")))


def fault_injection(tmp_path: Path, code: str) -> tuple[dict[str, str], Path]:
    """Worker environment that makes its interpreter run ``code`` at start (as
    ``sitecustomize``), and the trigger file the code reads as
    ``GOVERNOR_TEST_FAULT_TRIGGER`` (absent until the test creates it)."""
    fault_dir = tmp_path / "fault"
    fault_dir.mkdir()
    (fault_dir / "sitecustomize.py").write_text(code)
    trigger = tmp_path / "trigger"
    return {"PYTHONPATH": str(fault_dir), "GOVERNOR_TEST_FAULT_TRIGGER": str(trigger)}, trigger


def kill_mid_stream(
    worker: WorkerProcess,
    progress: Callable[[WorkerProcess], int],
    total: int,
    past: float = 0.15,
    interval_s: float = 0.5,
) -> int:
    """SIGKILL ``worker`` once ``progress`` passes ``past`` of ``total``, then restart it and
    wait until it is ready; return the progress it was killed at (asserted below total)."""
    done = wait_for(lambda: (n := progress(worker)) > total * past and n, 120, interval_s)
    worker.kill()
    assert done < total, f"finished ({done}/{total}) before it could be killed mid-stream"
    worker.start()
    worker.wait_ready()
    return int(done)


def metric_value(worker: WorkerProcess, series: str, base: str | None = None) -> float:
    """One series of the worker's /metrics (or those at ``base``), e.g. ``name{label="v"}``;
    0 if unreachable."""
    status, text = http_get(f"{base or worker.url}/metrics", timeout=2)
    if status != 200:
        return 0.0
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def metric_total(worker: WorkerProcess, name: str) -> float:
    """The sum of every series of ``name`` on the worker's /metrics (0 if unreachable)."""
    status, text = http_get(f"{worker.url}/metrics", timeout=2)
    if status != 200:
        return 0.0
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    )


def applied_readings(worker: WorkerProcess) -> int:
    """The worker's governor_meter_readings_total{outcome="applied"}."""
    return int(metric_value(worker, 'governor_meter_readings_total{outcome="applied"}'))


def applied_ticks(worker: WorkerProcess) -> int:
    """The worker's governor_audit_ticks_total{outcome="applied"}."""
    return int(metric_value(worker, 'governor_audit_ticks_total{outcome="applied"}'))


def http_get(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    return http_request("GET", url, timeout=timeout)


def http_request(
    method: str, url: str, body: bytes | None = None, token: str | None = None,
    timeout: float = 10.0, headers: dict[str, str] | None = None,
) -> tuple[int, Any]:  # fmt: skip
    """A blocking HTTP call; returns (status, parsed JSON or text). Status 0 = no connection."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return status, raw.decode(errors="replace")


def post_json(
    worker: WorkerProcess, path: str, body: Any, token: str | None = TOKEN, **headers: str
) -> tuple[int, Any]:
    """A POST of ``body`` (JSON-encoded unless bytes) with the bearer token and headers."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return http_request("POST", worker.url + path, data, token=token, timeout=20, headers=headers)


async def produce(
    cluster: Cluster, topic: str, records: Iterable[tuple[bytes | None, bytes]],
    timestamp_ms: int | None = None,
) -> None:  # fmt: skip
    """Publish (key, value) pairs with the default (murmur2) partitioner, idempotently."""
    producer = AIOKafkaProducer(**cluster.client_options(), enable_idempotence=True, linger_ms=5)
    try:
        await producer.start()
        futures = [
            await producer.send(topic, value, key=key, timestamp_ms=timestamp_ms)
            for key, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class PacedProducer:
    """Produces ``records`` to ``topic`` from a thread, in ``chunks`` with ``pause_s``
    between them, so that a worker is still mid-stream when a test kills it: a preloaded
    topic can be drained before the kill (batches made the pipelines that fast).
    :meth:`join` waits for the last chunk and re-raises a failure."""

    def __init__(
        self, cluster: Cluster, topic: str, records: list[tuple[bytes | None, bytes]],
        chunks: int = 20, pause_s: float = 0.25,
    ) -> None:  # fmt: skip
        self._failures: list[BaseException] = []
        size = -(-len(records) // chunks)
        parts = [records[i : i + size] for i in range(0, len(records), size)]

        def run() -> None:
            try:
                for part in parts:
                    asyncio.run(produce(cluster, topic, part))
                    time.sleep(pause_s)
            except BaseException as exc:  # reported by join()
                self._failures.append(exc)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self, timeout_s: float = 120.0) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the paced producer did not finish"
        if self._failures:
            raise self._failures[0]


async def end_offsets(cluster: Cluster, topic: str) -> dict[int, int]:
    from app.runtime.topic_reader import partitions_of

    tps = [TopicPartition(topic, p) for p in await partitions_of(cluster.client_options(), topic)]
    consumer = AIOKafkaConsumer(**cluster.client_options())
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def committed_offsets(cluster: Cluster, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` has committed on ``topic``'s partitions (for failure reports)."""
    admin = AIOKafkaAdminClient(**cluster.client_options())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def _from_the_start(cluster: Cluster, topic: str) -> AIOKafkaConsumer:
    """A started consumer of every partition of ``topic``, from its beginning, in no group."""
    consumer = AIOKafkaConsumer(
        topic, **cluster.client_options(), auto_offset_reset="earliest", enable_auto_commit=False,
        group_id=None,
    )  # fmt: skip
    await consumer.start()
    return consumer


async def read_all(cluster: Cluster, topic: str, expect: int, timeout_s: float = 60.0) -> list[Any]:
    """Read a topic from the beginning until ``expect`` records arrived (or time runs out)."""
    consumer = await _from_the_start(cluster, topic)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()
    return records


async def read_to_end(cluster: Cluster, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Read every partition of a topic from its start to its end offset as of the call.

    A count is no stopping rule for a topic that may hold re-sent records: the count is
    reached while another partition's tail is still unread.
    """
    consumer = await _from_the_start(cluster, topic)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not consumer.assignment() and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(messages)
        tps = sorted(consumer.assignment())
        ends = await consumer.end_offsets(tps)
        while time.monotonic() < deadline:
            behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not behind:
                break
            batch = await consumer.getmany(*behind, timeout_ms=500, max_records=10_000)
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()
    return records


def wait_for(predicate: Any, timeout_s: float = 60.0, interval_s: float = 0.3) -> Any:
    """Poll ``predicate`` until it returns something truthy; return it or fail with the last."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met in {timeout_s}s; last value: {last!r}")
