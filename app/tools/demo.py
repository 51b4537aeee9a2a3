"""The main job end to end: local broker, topics, a worker, sample traffic, visible results."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agents.audit.rules.report import PeriodReport
from agents.traffic.rules.policy import sign
from app.ledger.audit_trail import read_chains, verify_chains
from app.ledger.keys import KeySet
from app.ledger.note import Signer
from app.runtime.connection import aiokafka_options
from app.runtime.processes import end_with_parent
from app.runtime.sender import Sender
from app.runtime.topic_admin import apply_catalogue
from app.runtime.topic_reader import follow, read_topic
from app.settings import Settings
from app.tools import demo_facility, demo_fusion
from app.tools.audit_log import as_table
from app.tools.dlq import read_letters
from app.tools.localkafka import LocalBroker
from app.tools.sample import (
    sample_policy,
    sample_reading,
    sample_records,
    sample_request_records,
    sample_tick_records,
)
from app.topics import Catalogue
from schemas.carbon_emission import CarbonEmission
from schemas.traffic import TrafficDecision

DEMO_DIR = Path("var/demo")
FACILITIES = 8
SITES = 4
TICKS_PER_SITE = 288  # one day of 5-minute controller slots
SITE_CAPACITIES = '{"site-000": {"capacity_kw": 150}}'
DEFAULT_CAPACITY_KW = "250"
"""site-000's projection crosses its ceiling (a compliance alert); the others stay under."""


def _http(
    method: str, url: str, body: bytes | None = None, token: str | None = None, raw: bool = False
) -> Any:
    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        data = exc.read()
    return data.decode() if raw else orjson.loads(data)


def _wait(predicate: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo waited too long for the worker; see its log")
        time.sleep(0.5)


def _wait_ready(base: str, worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited; see {log}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(base + "/health", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"worker not ready after 120 s; see {log}")


def _ledger_appended(base: str) -> int:
    """Decisions appended so far (0 while the ledger process is still starting)."""
    try:
        return _applied(base, "governor_ledger_records_total", "appended")
    except (OSError, urllib.error.URLError):
        return 0


def _applied(base: str, metric: str, outcome: str = "applied") -> int:
    """``metric{outcome="applied"}`` (or another outcome) from the worker's /metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(re.escape(metric) + r'\{outcome="' + outcome + r'"\} ([0-9.e+]+)', text)
    return int(float(found.group(1))) if found else 0


async def _publish(settings: Settings, readings: int, requests: int) -> None:
    """Sample readings in per-facility batches of 100, plus two records that must fail;
    a day of control ticks; ``requests`` API request events ending now."""
    topic = settings.kafka.topic_prefix + "meter-readings"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=readings // FACILITIES)
    async with Sender.opened(aiokafka_options(settings.kafka)) as producer:
        for key, value, _ in sample_records(readings, start, FACILITIES, 100, run="demo"):
            await producer.queue(topic, value, key)
        bad = sample_reading(readings + 1, start, FACILITIES, run="demo")
        negative = bad.model_copy(update={"consumption_kwh": -3.0}).to_json_bytes()
        await producer.queue(topic, negative, bad.facility_id.encode())
        await producer.queue(topic, b"{not json", b"facility-000")
        ticks = settings.kafka.topic_prefix + "control-ticks"
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for key, value, _ in sample_tick_records(SITES * TICKS_PER_SITE, day - timedelta(days=1),
                                                 SITES, run="demo"):  # fmt: skip
            await producer.queue(ticks, value, key)
        events = settings.kafka.topic_prefix + "request-events"
        begin = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=requests // 10 + 1)
        for key, value, _ in sample_request_records(requests, begin, run="demo"):
            await producer.queue(events, value, key)
        await producer.flush()


async def _first_emissions(settings: Settings, count: int) -> list[CarbonEmission]:
    topic = settings.kafka.topic_prefix + "carbon-emissions"
    found: list[CarbonEmission] = []
    records = follow(aiokafka_options(settings.kafka), topic, from_beginning=True)
    try:
        async for fetched in records:
            found.extend(CarbonEmission.from_json_bytes(m.value) for m in fetched)
            if len(found) >= count:
                return found[:count]
    finally:
        await records.aclose()
    return found


def _install_policy(base: str, token: str, seed: bytes) -> None:
    """Sign the sample traffic policy and publish it through the API; wait until it governs."""
    artifact = sign(sample_policy(), Ed25519PrivateKey.from_private_bytes(seed))
    accepted = _http("POST", f"{base}/api/v1/traffic/policy", artifact.to_json_bytes(), token)
    print(f"Traffic policy {accepted['version']} signed and published"
          f" (POST /api/v1/traffic/policy, offset {accepted['offset']})")  # fmt: skip
    while _http("GET", f"{base}/api/v1/traffic/policy")["version"] != accepted["version"]:
        time.sleep(0.2)


def _metric(base: str, series: str) -> float:
    """One series of the worker's /metrics, 0 when absent."""
    text = _http("GET", f"{base}/metrics", raw=True)
    return next((float(line.split()[-1]) for line in text.splitlines()
                 if line.startswith(series + " ")), 0.0)  # fmt: skip


def _decided(base: str) -> int:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(
        r'governor_records_total\{outcome="accepted",pipeline="traffic"\} (\S+)', text
    )
    return int(float(found.group(1))) if found else 0


def _show_traffic(settings: Settings, base: str) -> None:
    """Decisions by kind and tier, breaker transitions, burn-rate alerts, one endpoint."""
    print("\nTraffic governance (traffic-decisions, circuit-breaker-events, traffic-alerts):")
    options = aiokafka_options(settings.kafka)
    prefix = settings.kafka.topic_prefix

    async def decisions() -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        async for m in read_topic(options, prefix + "traffic-decisions"):
            d = TrafficDecision.from_json_bytes(m.value)
            key = (d.platform_tier.value, d.decision.value)
            counts[key] = counts.get(key, 0) + 1
        return counts

    for (tier, decision), count in sorted(asyncio.run(decisions()).items()):
        print(f"  {tier:13} {decision:10} {count:6d}")
    transitions = asyncio.run(_count(settings, "circuit-breaker-events"))
    alerts = asyncio.run(_count(settings, "traffic-alerts"))
    print(f"  {transitions} circuit breaker transition(s), {alerts} burn-rate alert change(s)")
    endpoint = _http("GET", f"{base}/api/v1/traffic/endpoints/gitlab%7Cdeployment_get_v1")
    baseline = endpoint["baseline"]
    print(f"  GET /api/v1/traffic/endpoints/gitlab|deployment_get_v1: {endpoint['requests']}"
          f" requests, circuit {endpoint['circuit_state']}, p95 {baseline['latency_p95_ms']} ms,"
          f" error budget remaining {baseline['error_budget_remaining']}")  # fmt: skip


async def _count(settings: Settings, topic: str) -> int:
    return sum([1 async for _ in read_topic(aiokafka_options(settings.kafka),
                                            settings.kafka.topic_prefix + topic)])  # fmt: skip


async def _create_topics(settings: Settings) -> None:
    options = aiokafka_options(settings.kafka)
    for report in await apply_catalogue(options, Catalogue.load(), settings.kafka.topic_prefix):
        print(f"  topic {report.name}: {report.status.value}")


def _show(settings: Settings, base: str, token: str) -> None:
    print("\nFirst emission records on carbon-emissions:")
    for e in asyncio.run(_first_emissions(settings, 5)):
        print(
            f"  {e.event_id} {e.facility_id} {e.energy_source.value:12}"
            f" {e.consumption_kwh:8.3f} kWh x {e.factor_kg_co2e_per_kwh}"
            f" = {e.emissions_kg_co2e:.6f} kg CO2e [{e.factor_set} {e.factor_set_version}]"
        )
    print("\nTotals per facility (GET /api/v1/carbon/emissions/{facility_id}):")
    for n in range(FACILITIES):
        body = _http("GET", f"{base}/api/v1/carbon/emissions/facility-{n:03d}")
        print(
            f"  {body['facility_id']}: {body['readings']:6d} readings"
            f" {body['energy_kwh']:12.3f} kWh {body['emissions_kg_co2e']:12.3f} kg CO2e"
            f" over {len(body['days'])} day(s)"
        )
    print("\nDead letters (governor dlq list):")
    letters = asyncio.run(read_letters(aiokafka_options(settings.kafka),
                                       settings.kafka.topic_prefix + "dead-letters"))  # fmt: skip
    for item in letters:
        print(f"  {item.ref} {item.letter.reason.value}: {item.letter.error[:90]}")
    print("\nBudget audit, yesterday's slots per site (GET /api/v1/audit/report):")
    reports = [PeriodReport.model_validate(r) for r in _http("GET", f"{base}/api/v1/audit/report")]
    print("  " + as_table(reports).replace("\n", "\n  "))
    alerts = asyncio.run(_count(settings, "budget-compliance-alerts"))
    print(f"  {alerts} compliance alert(s) on budget-compliance-alerts")
    _show_traffic(settings, base)
    print("\nLedger (governor ledger verify):")
    seed = settings.ledger.resolved_seed()
    assert seed is not None
    keys = KeySet.of([Signer.from_seed(settings.ledger.key_name, seed).verifier_key()])
    chains = asyncio.run(read_chains(aiokafka_options(settings.kafka), settings.kafka.topic_prefix))
    for report in verify_chains(chains, keys, settings.ledger.origin):
        status = "ok" if report.failure is None else f"FAILED {report.failure}"
        print(f"  chain {report.partition}: {report.records} records,"
              f" {report.checkpoints} signed checkpoints: {status}")  # fmt: skip
    reading = sample_reading(0, datetime.now(UTC).replace(microsecond=0), 1, run="http")
    accepted = _http("POST", f"{base}/api/v1/readings", reading.to_json_bytes(), token)
    print(f"\nPOST /api/v1/readings → {accepted}")


def _stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP end the demo through its cleanup (worker, then broker),
    even when started from a shell that set SIGINT to be ignored; a SIGKILL ends both too
    (parent-death signal)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def run_demo(settings: Settings, readings: int, serve: bool, requests: int = 3000) -> int:
    """Run everything; with ``serve`` keep the worker up until Ctrl-C or SIGTERM."""
    _stop_on_signals()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    broker: LocalBroker | None = None
    if not settings.kafka.bootstrap_servers:
        print(f"Starting Apache Kafka {settings.kafka.local_version} (jars cached in "
              f"{settings.kafka.local_cache_dir}) ...")  # fmt: skip
        broker = LocalBroker(settings.kafka.local_version, settings.kafka.local_cache_dir,
                             DEMO_DIR / "kafka").start()  # fmt: skip
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
        settings = settings.model_copy(update={"kafka": kafka})
        print(f"  broker at {broker.bootstrap_servers}, log {broker.log_file}")
    worker: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(_create_topics(settings))
        token_file = DEMO_DIR / "api-token"
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
            token_file.chmod(0o600)
        token = token_file.read_text(encoding="utf-8").strip()
        env = {
            **os.environ,
            "GOVERNOR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
            "GOVERNOR_API__TOKEN_FILE": str(token_file.resolve()),
            "GOVERNOR_WORKER__DATA_DIR": str((DEMO_DIR / "worker").resolve()),
        }
        if settings.ledger.resolved_seed() is None:
            key_file = DEMO_DIR / "ledger.key"
            if not key_file.exists():
                key_file.write_text(base64.b64encode(os.urandom(32)).decode(), encoding="utf-8")
                key_file.chmod(0o600)
            env["GOVERNOR_LEDGER__SIGNING_KEY_FILE"] = str(key_file.resolve())
            ledger = settings.ledger.model_copy(update={"signing_key_file": key_file.resolve()})
            settings = settings.model_copy(update={"ledger": ledger})
        policy_seed = settings.traffic.signing_seed()
        if policy_seed is None:
            policy_key = DEMO_DIR / "policy.key"
            if not policy_key.exists():
                policy_key.write_text(base64.b64encode(os.urandom(32)).decode(), encoding="utf-8")
                policy_key.chmod(0o600)
            policy_seed = base64.b64decode(policy_key.read_text(encoding="utf-8"))
        public = Ed25519PrivateKey.from_private_bytes(policy_seed).public_key().public_bytes_raw()
        trusted = [*settings.traffic.policy_public_keys, base64.b64encode(public).decode()]
        env["GOVERNOR_TRAFFIC__POLICY_PUBLIC_KEYS"] = orjson.dumps(trusted).decode()
        # The demo's AI runs come in one burst: their last ones are applied once the
        # fusion-results partitions have been quiet this long (30 s by default).
        env.setdefault("GOVERNOR_FUSION__ORDERING__IDLE_PARTITION_S", "5")
        if not settings.audit.sites and settings.audit.default_capacity_kw is None:
            env["GOVERNOR_AUDIT__SITES"] = SITE_CAPACITIES  # sample sites, unless configured
            env["GOVERNOR_AUDIT__DEFAULT_CAPACITY_KW"] = DEFAULT_CAPACITY_KW
        log = DEMO_DIR / "worker.log"
        base = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
        print(f"Starting a worker (log {log}) ...")
        with log.open("ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=end_with_parent,
            )
        _wait_ready(base, worker, log)
        _install_policy(base, token, policy_seed)
        demo_facility.set_budgets(_http, base, token, settings, readings, FACILITIES,
                                  datetime.now(UTC), _wait)  # fmt: skip
        ticks = SITES * TICKS_PER_SITE
        print(f"Publishing {readings} sample readings, 2 bad records, {ticks} control ticks"
              f" and {requests} API request events ...")  # fmt: skip
        started = time.monotonic()
        asyncio.run(_publish(settings, readings, requests))
        while _applied(base, "governor_meter_readings_total") < readings:
            time.sleep(0.5)
        print(f"  all {readings} readings processed in {time.monotonic() - started:.1f} s")
        while _applied(base, "governor_audit_ticks_total") < ticks:
            time.sleep(0.5)
        print(f"  all {ticks} control ticks processed in {time.monotonic() - started:.1f} s")
        while _decided(base) < requests:
            time.sleep(0.5)
        print(f"  all {requests} request events decided in {time.monotonic() - started:.1f} s")
        runs = asyncio.run(demo_fusion.publish(settings, datetime.now(UTC)))
        series = 'governor_records_total{outcome="accepted",pipeline="fusion-results"}'
        _wait(lambda: _metric(base, series) >= runs)
        print(f"  all {runs} generated AI runs admitted and settled in"
              f" {time.monotonic() - started:.1f} s")  # fmt: skip
        taken = 'governor_fusion_observations_total{how="%s"}'
        _wait(lambda: sum(_metric(base, taken % how) for how in ("in_order", "late")) >= runs)
        print(f"  all {runs} runs applied by the overlay stage in event-time order in"
              f" {time.monotonic() - started:.1f} s")  # fmt: skip
        ledger_base = base
        if settings.ledger.mode == "process":
            ledger_base = f"http://{settings.worker.web_host}:{settings.ledger.metrics_port}"
        while _ledger_appended(ledger_base) < readings + ticks + requests:
            time.sleep(0.5)
        print(f"  every decision appended to the ledger in {time.monotonic() - started:.1f} s")
        _show(settings, base, token)
        demo_facility.show(_http, base, token, readings, FACILITIES, _wait, _metric)
        demo_fusion.show(settings, _http, base)
        print(f"\nMetrics: {base}/metrics   Health: {base}/health   API: {base}/api/v1/...")
        print(
            f"API token for POST endpoints: in {token_file} (send 'Authorization: Bearer <token>')"
        )
        if serve:
            print("Serving until Ctrl-C (or SIGTERM) ...")
            with contextlib.suppress(KeyboardInterrupt):
                while worker.poll() is None:
                    time.sleep(1)
        return 0
    except KeyboardInterrupt:
        print("Stopping ...")
        return 0
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=30)
        if broker is not None:
            broker.stop()
