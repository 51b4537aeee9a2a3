"""A local single-node Apache Kafka broker (KRaft), fetched from Maven Central, run with Java.

Used by the demo and the test suite when no cluster is named by ``KAFKA_BOOTSTRAP_SERVERS``.
Jars are cached per version outside the repository; every broker gets a fresh data directory
and free ports; readiness is a real metadata request; its log goes to a file.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from app.runtime.processes import end_with_parent
from app.runtime.topic_admin import has_brokers

log = logging.getLogger(__name__)

MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
LOG4J2_VERSION = "2.24.3"


class BrokerError(RuntimeError):
    """The local broker could not be provisioned or started; the message says why."""


def _logging_dependencies(version: str) -> list[tuple[str, str, str]]:
    """The logging backend Kafka leaves out of its runtime dependencies, per major version."""
    if int(version.split(".")[0]) >= 4:
        return [
            ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J2_VERSION),
            ("org.apache.logging.log4j", "log4j-api", LOG4J2_VERSION),
            ("org.apache.logging.log4j", "log4j-core", LOG4J2_VERSION),
        ]
    return [("org.slf4j", "slf4j-reload4j", "1.7.36"), ("ch.qos.reload4j", "reload4j", "1.2.25")]


def _pom(version: str) -> str:
    deps = [("org.apache.kafka", "kafka_2.13", version), *_logging_dependencies(version)]
    rendered = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>governor.local</groupId><artifactId>kafka-runtime</artifactId>"
        f"<version>{version}</version><packaging>pom</packaging>\n"
        f"  <dependencies>\n{rendered}\n  </dependencies>\n</project>\n"
    )


def ensure_jars(version: str, cache_dir: Path) -> Path:
    """Return a directory holding Kafka ``version``'s runtime jars, fetching them once.

    Concurrent callers (parallel test sessions, demo and tests) wait on a file lock, and a
    half-finished download is never mistaken for a complete one.
    """
    home = cache_dir / version
    libs = home / "libs"
    done = home / ".complete"
    if done.exists():
        return libs
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is not on PATH: it fetches the Kafka jars")
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return libs
        shutil.rmtree(libs, ignore_errors=True)
        (home / "pom.xml").write_text(_pom(version), encoding="utf-8")
        log.info("fetching Apache Kafka %s jars from Maven Central into %s", version, libs)
        result = subprocess.run(
            [
                "mvn", "-q", "-B", "-f", str(home / "pom.xml"),
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-3000:]
            raise BrokerError(f"mvn could not fetch Kafka {version}:\n{tail}")
        bindings = [p.name for p in libs.glob("*.jar") if "slf4j-reload4j" in p.name
                    or "log4j-slf4j" in p.name]  # fmt: skip
        if len(bindings) != 1:
            raise BrokerError(f"expected one SLF4J binding in {libs}, found {bindings}")
        done.write_text(version, encoding="utf-8")
    return libs


LISTEN_PORTS = range(20_000, 32_000)
"""Below Linux's ephemeral range (32768-60999): a port the kernel hands out for port 0
can be taken by an outgoing connection (a Kafka client's, say) before the server that
asked for it binds it; the CI saw exactly that ("Address already in use")."""


def free_port() -> int:
    """A TCP port outside the ephemeral range that nobody listens on right now."""
    import random

    for _ in range(200):
        port = random.choice(LISTEN_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port in 20000-31999")


def _server_properties(port: int, controller_port: int, data_dir: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.flush.interval.messages=9223372036854775807",
            "",
        ]
    )


def _logging_config(version: str, log_file: Path) -> tuple[str, str]:
    """(JVM flag, config text) writing the broker's log to ``log_file``."""
    pattern = "[%d] %p %m (%c)%n"
    if int(version.split(".")[0]) >= 4:
        text = "\n".join(
            [
                "appender.file.type=File",
                "appender.file.name=file",
                f"appender.file.fileName={log_file}",
                "appender.file.layout.type=PatternLayout",
                f"appender.file.layout.pattern={pattern}",
                "rootLogger.level=INFO",
                "rootLogger.appenderRef.file.ref=file",
                "logger.kafka.name=kafka",
                "logger.kafka.level=INFO",
                "logger.state.name=state.change.logger",
                "logger.state.level=WARN",
                "",
            ]
        )
        return "-Dlog4j2.configurationFile=file:{path}", text
    text = "\n".join(
        [
            "log4j.rootLogger=INFO, file",
            "log4j.appender.file=org.apache.log4j.FileAppender",
            f"log4j.appender.file.File={log_file}",
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
            f"log4j.appender.file.layout.ConversionPattern={pattern}",
            "log4j.logger.state.change.logger=WARN",
            "",
        ]
    )
    return "-Dlog4j.configuration=file:{path}", text


async def wait_until_ready(bootstrap: str, timeout_s: float) -> None:
    """Block until the cluster answers a metadata request with at least one broker."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    quiet = logging.getLogger("aiokafka")
    level, quiet.level = quiet.level, logging.CRITICAL  # refused connects are expected here
    try:
        await _poll_metadata(bootstrap, deadline)
        return
    except BrokerError as exc:
        last_error = exc
    finally:
        quiet.setLevel(level)
    raise BrokerError(f"broker at {bootstrap} not ready after {timeout_s:.0f}s: {last_error}")


async def _poll_metadata(bootstrap: str, deadline: float) -> None:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if await has_brokers({"bootstrap_servers": bootstrap, "request_timeout_ms": 3000}):
                return
        except Exception as exc:  # any failure means "not ready yet"; the last one is reported
            last_error = exc
        await asyncio.sleep(0.25)
    raise BrokerError(repr(last_error))


@dataclass
class LocalBroker:
    """One broker process. Use as a context manager or call start()/stop()."""

    version: str
    cache_dir: Path
    work_dir: Path
    heap: str = "512m"
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    _command: list[str] = field(default_factory=list)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "logs" / "server.log"

    def start(self, timeout_s: float = 90.0) -> LocalBroker:
        """Fetch jars if needed, format a fresh data directory and start; wait until ready."""
        libs = ensure_jars(self.version, self.cache_dir)
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH (Kafka needs Java 17)")
        data_dir = self.work_dir / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True)
        self.port, controller_port = free_port(), free_port()
        props = self.work_dir / "server.properties"
        props.write_text(_server_properties(self.port, controller_port, data_dir), "utf-8")
        flag_template, log_text = _logging_config(self.version, self.log_file)
        log_config = self.work_dir / "log.properties"
        log_config.write_text(log_text, encoding="utf-8")
        log_flag = flag_template.format(path=log_config)
        classpath = f"{libs}/*"
        cluster_id = uuid.uuid4().hex[:22]
        fmt = subprocess.run(
            [java, log_flag, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(props), "--ignore-formatted"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if fmt.returncode != 0:
            raise BrokerError(f"kafka storage format failed:\n{fmt.stdout}{fmt.stderr}")
        self._command = [
            java, f"-Xmx{self.heap}", "-XX:+UseG1GC", f"-Dkafka.logs.dir={self.log_file.parent}",
            log_flag, "-cp", classpath, "kafka.Kafka", str(props),
        ]  # fmt: skip
        return self._launch(timeout_s)

    def restart(self, timeout_s: float = 90.0) -> LocalBroker:
        """Start the stopped broker again on the same port and data (a broker restart as
        operators do one); wait until ready."""
        if not self._command:
            raise BrokerError("restart() needs a broker that was started before")
        if self.process is not None:
            raise BrokerError("the broker is still running: stop() it first")
        return self._launch(timeout_s)

    def _launch(self, timeout_s: float) -> LocalBroker:
        stdout = (self.work_dir / "logs" / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            self._command, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=end_with_parent,
        )  # fmt: skip
        stdout.close()
        try:
            asyncio.run(self._await_ready(timeout_s))
        except BaseException:
            self.stop()
            raise
        log.info("Kafka %s ready at %s (log: %s)", self.version, self.bootstrap_servers,
                 self.log_file)  # fmt: skip
        return self

    async def _await_ready(self, timeout_s: float) -> None:
        ready = asyncio.ensure_future(wait_until_ready(self.bootstrap_servers, timeout_s))
        while not ready.done():
            if self.process is not None and self.process.poll() is not None:
                ready.cancel()
                raise BrokerError(
                    f"broker exited with {self.process.returncode}; log tail:\n{self.log_tail()}"
                )
            await asyncio.sleep(0.2)
        ready.result()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (runs Kafka's shutdown hook), SIGKILL if it does not exit in time."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the broker log, for failure reports."""
        if not self.log_file.exists():
            return "(no broker log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()
