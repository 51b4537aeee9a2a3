"""Throughput, latency and memory of a pipeline on a real broker, against a raw baseline.

Run: .venv/bin/python benchmarks/throughput.py [--pipeline carbon|audit|traffic|fusion|budgets|load]
     [--readings 200000] [--batch-size 500]

1. Pre-loads N events into the pipeline's input topic (carbon: meter readings, single or in
   per-facility batches; audit: control ticks, one per record; traffic: request events
   under the sample policy; fusion: AI run results, never admitted before, so each is
   admitted and settled: two energy decisions per run).
2. Baseline: raw aiokafka consume + orjson decode of that same topic, in this process.
3. Pipeline: starts a worker (a separate process) and times from its readiness until the
   last output record is readable (carbon-emissions; budget-audit; traffic-decisions;
   energy-decisions).
   Peak RSS is sampled.
4. Latency: produces paced traffic at a fraction of the measured throughput and reports
   produce → output-readable latency percentiles.

5. ``--profile``: py-spy over the bare Faust agent and over the worker for their timed
   spans, summarised after the figures (benchmarks/profiling.py).

Figures are printed as ratios against the baseline with the absolute numbers beside them.
Uses KAFKA_BOOTSTRAP_SERVERS if set, otherwise a local broker fetched from Maven Central.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.runtime.topic_admin import apply_catalogue  # noqa: E402
from app.runtime.topic_reader import partitions_of  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.tools.generate import Workload as GeneratedWorkload  # noqa: E402
from app.tools.localkafka import LocalBroker, free_port  # noqa: E402
from app.tools.sample import (  # noqa: E402
    sample_fusion_run,
    sample_policy,
    sample_records,
    sample_request_records,
    sample_tick_records,
)
from app.topics import Catalogue  # noqa: E402
from benchmarks.profiling import Recording, summary  # noqa: E402

WORK = REPO / "var" / "bench"


@dataclass(frozen=True)
class Workload:
    """What a pipeline consumes and emits, and how to make its input."""

    name: str
    source: str
    output: str
    unit: str
    outputs_per_event: int = 1
    done_series: str | None = None
    """When set, the end is this worker counter reaching N (a pipeline with few outputs)."""
    second_hop: tuple[str, ...] = ()
    """Metrics whose series sum to the records a second stage has taken: the end is also
    that sum reaching N, so that a pipeline crossing two agents is timed through both (and
    the latency part does not queue behind the second stage's backlog)."""

    def records(
        self, count: int, start: datetime, keys: int, batch_size: int, run: str = "s"
    ) -> list[tuple[bytes, bytes, int]]:
        if self.name == "audit":
            return list(sample_tick_records(count, start, keys, run))
        if self.name == "traffic":
            return list(sample_request_records(count, start, run))
        if self.name == "load":
            return list(_load_records(count, start, keys, run))
        if self.name == "fusion":
            # Event time moves 1 ms per run, about as fast as the runs come: at the sample's
            # 2 s, 20,000 runs spanned 11 hours, and each run moved its partition's
            # watermark far enough to send every fusion-observations partition a progress
            # record (six per run) that a live stream sends once per second of event time.
            runs = (
                sample_fusion_run(n, start, run, tenants=keys, spacing_s=0.001)[1]
                for n in range(count)
            )
            return [(r.tenant.encode(), r.to_json_bytes(), 1) for r in runs]
        return list(sample_records(count, start, keys, batch_size, run))

    def worker_env(self) -> dict[str, str]:
        """Settings the worker needs for this workload (traffic: the sample policy)."""
        if self.name == "traffic":
            return {"GOVERNOR_TRAFFIC__POLICY": sample_policy().model_dump_json()}
        return {}


WORKLOADS = {
    "carbon": Workload("carbon", "meter-readings", "carbon-emissions", "readings"),
    "audit": Workload("audit", "control-ticks", "budget-audit", "ticks"),
    "traffic": Workload("traffic", "request-events", "traffic-decisions", "requests"),
    # A result never admitted is admitted and settled: two decisions each.
    # The scope stage takes each settled run: counted once applied or held for ordering.
    "fusion": Workload(
        "fusion", "fusion-results", "energy-decisions", "runs", 2,
        second_hop=("governor_fusion_observations_total", "governor_fusion_observations_waiting"),
    ),
    # Carbon budgets count carbon-emissions: readings in, the budget agent's count out.
    "budgets": Workload(
        "budgets", "meter-readings", "carbon-budget-alerts", "readings",
        done_series='governor_records_total{outcome="accepted",pipeline="carbon-usage"}',
    ),
    "load": Workload(
        "load", "load-metrics", "load-decisions", "metrics",
        done_series='governor_records_total{outcome="accepted",pipeline="load-metrics"}',
    ),
}  # fmt: skip


def _load_records(
    count: int, start: datetime, facilities: int, run: str
) -> Iterator[tuple[bytes, bytes, int]]:
    """Zone loads from `governor generate`: four zones per facility on the diurnal curve,
    one running hot in the afternoon, so decisions are taken (damped by hysteresis)."""
    workload = GeneratedWorkload(seed=sum(map(ord, run)), start=start, facilities=facilities,
                                 hours=count * 300 / (facilities * 4 * 3600) + 1)  # fmt: skip
    for metric in itertools.islice(workload.load_metrics(), count):
        yield metric.facility_id.encode(), metric.to_json_bytes(), 1


async def create_topics(bootstrap: str, prefix: str) -> None:
    await apply_catalogue({"bootstrap_servers": bootstrap}, Catalogue.load(), prefix)


async def preload(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, int]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=1_048_576,
        max_request_size=4_194_304,
        enable_idempotence=True,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value, _ in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(bootstrap: str, topic: str, expect_readings: int) -> float:
    """Seconds for plain aiokafka to read the topic and orjson-decode every value."""
    tps = [
        TopicPartition(topic, p)
        for p in await partitions_of({"bootstrap_servers": bootstrap}, topic)
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=4_194_304,
        fetch_max_bytes=52_428_800,
    )
    await consumer.start()
    consumer.assign(tps)
    for tp, first in (await consumer.beginning_offsets(tps)).items():
        consumer.seek(tp, first)
    seen = 0
    started = time.perf_counter()
    try:
        while seen < expect_readings:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                for m in messages:
                    value = orjson.loads(m.value)
                    seen += len(value["readings"]) if "readings" in value else 1
    finally:
        await consumer.stop()
    return time.perf_counter() - started


class OutputReader:
    """Reads an output topic from the start; records when each event id became readable."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.seen_at: dict[str, float] = {}
        self.stamped_at: dict[str, float] = {}
        """Event id -> its output record's timestamp (s since the epoch): when the worker
        queued the output, as its producer stamped it."""
        self.count = 0
        self.last_at = 0.0
        self.ids = False
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        tps = [
            TopicPartition(self.topic, p)
            for p in await partitions_of({"bootstrap_servers": self.bootstrap}, self.topic)
        ]
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=5,
        )
        await self.consumer.start()
        self.consumer.assign(tps)
        for tp, first in (await self.consumer.beginning_offsets(tps)).items():
            self.consumer.seek(tp, first)

    async def read_until(self, count: int, timeout_s: float, on_poll: Any = None) -> None:
        """Until ``count`` records were read. With ``ids`` off it only counts (and keeps the
        last arrival time), so the reader takes little CPU from the worker it measures."""
        assert self.consumer is not None
        deadline = time.monotonic() + timeout_s
        while self.count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.count}/{count} outputs after {timeout_s}s")
            batch = await self.consumer.getmany(timeout_ms=100, max_records=20_000)
            now = time.perf_counter()
            for messages in batch.values():
                if messages:
                    self.last_at = now
                self.count += len(messages)
                if self.ids:
                    for m in messages:
                        event_id = orjson.loads(m.value)["event_id"]
                        self.seen_at.setdefault(event_id, now)
                        self.stamped_at.setdefault(event_id, m.timestamp / 1000.0)
            if on_poll is not None:
                on_poll()

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


def start_worker(
    bootstrap: str, prefix: str, port: int, sensor: bool, **extra_env: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNOR_")}
    env.update(
        GOVERNOR_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
        GOVERNOR_KAFKA__TOPIC_PREFIX=prefix,
        GOVERNOR_WORKER__APP_ID=f"bench-{prefix.rstrip('-')}",
        GOVERNOR_WORKER__WEB_PORT=str(port),
        GOVERNOR_WORKER__DATA_DIR=str(WORK / f"worker-{port}"),
        GOVERNOR_WORKER__LOG_LEVEL="warning",
        GOVERNOR_WORKER__FAUST_PROMETHEUS_SENSOR="true" if sensor else "false",
    )
    env.update(extra_env)  # the caller's settings win (a data directory to restart on)
    log = (WORK / f"worker-{port}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("worker exited during start; see var/bench/worker-*.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"worker not ready in {timeout_s:.0f} s")


async def paced_latency(
    workload: Workload,
    start: datetime,
    bootstrap: str,
    prefix: str,
    reader: OutputReader,
    rate: float,
    seconds: float,
    batch_size: int,
    facilities: int,
) -> tuple[list[float], list[float]]:
    """Produce at ``rate`` events/s while a concurrent task reads the output continuously;
    latency = output readable - its input record handed to the producer. Also returned:
    the worker's part, output record timestamp - input handed to the producer (wall
    clocks of one machine), which leaves out the reader's own delay.

    The paced events start at the preload's event time (with new event ids), so they stay
    inside the dedup window: a jump in event time past the window would evict every
    preloaded dedup segment at once, a burst this measurement is not about.
    """
    count = int(rate * seconds)
    run_id = f"lat{uuid.uuid4().hex[:6]}"
    records = workload.records(count, start, facilities, batch_size, run=run_id)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, enable_idempotence=True)
    await producer.start()
    sent_at: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    target = reader.count + count * workload.outputs_per_event
    reader.ids = True
    reading = asyncio.ensure_future(reader.read_until(target, timeout_s=seconds + 120))
    interval = seconds / max(len(records), 1)
    began = time.perf_counter()
    try:
        for i, (key, value, _) in enumerate(records):
            delay = began + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            parsed = orjson.loads(value)
            now, wall = time.perf_counter(), time.time()
            for r in parsed.get("readings", [parsed]):
                sent_at[r["event_id"]] = now
                sent_wall[r["event_id"]] = wall
            await producer.send(prefix + workload.source, value, key=key)
        await producer.flush()
        await reading
    finally:
        await producer.stop()
    total = [reader.seen_at[e] - t for e, t in sent_at.items()]
    worker = [reader.stamped_at[e] - t for e, t in sent_wall.items()]
    return total, worker


def bare_faust(bootstrap: str, topic: str, records: int, timeout_s: float, *options: str) -> float:
    """Seconds a bare Faust agent (benchmarks/bare_faust.py, its own process) takes from its
    first record of ``topic`` to its ``records``-th: the engine's own ceiling."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bare_faust.py"), "--bootstrap", bootstrap,
         "--topic", topic, "--count", str(records), *options],
        capture_output=True, text=True, timeout=timeout_s, check=True,
    )  # fmt: skip
    # Faust's worker routes stdout through its logger: the JSON line may carry a log prefix.
    found = [line for line in (done.stdout + done.stderr).splitlines() if '{"events"' in line]
    return float(orjson.loads(found[-1][found[-1].index("{") :])["seconds"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scrape_metrics(port: int) -> str:
    """The worker's /metrics page."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def series_sum(text: str, name: str) -> float:
    """The sum of every series of ``name`` in a /metrics page."""
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))  # fmt: skip


def metric_sum(port: int, name: str) -> float:
    """The sum of every series of ``name`` on the worker's /metrics."""
    return series_sum(scrape_metrics(port), name)


async def count_until(
    port: int, series: tuple[str, ...], count: int, timeout_s: float, on_poll: Any
) -> float:
    """Poll the worker's /metrics until ``series`` (metric names, or whole labelled series)
    sum to ``count``; when they did.

    Rendering /metrics costs the worker: polled every 50 ms it took 18 % of a busy worker's
    samples (py-spy, budgets run). So it is polled every 0.5 s until 90 % is done and every
    50 ms after that, which keeps the end's timing error at 50 ms."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        on_poll()
        text = await asyncio.to_thread(scrape_metrics, port)
        total = sum(series_sum(text, name) for name in series)
        if total >= count:
            return time.perf_counter()
        await asyncio.sleep(0.05 if total >= 0.9 * count else 0.5)
    raise TimeoutError(f"{' + '.join(series)} did not reach {count} in {timeout_s} s")


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    workload = WORKLOADS[args.pipeline]
    unit = workload.unit
    prefix = f"b{uuid.uuid4().hex[:8]}-"
    await create_topics(bootstrap, prefix)
    # Event time: far enough back that no event is in the future (the skew check), and
    # within one dedup window from first to last.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    records = workload.records(args.readings, start, args.facilities, args.batch_size)
    payload_mb = sum(len(v) for _, v, _ in records) / 1e6
    produce_s = await preload(bootstrap, prefix + workload.source, records)
    raw_s = await raw_consume(bootstrap, prefix + workload.source, args.readings)
    bare_profile = WORK / f"profile-bare-{prefix.rstrip('-')}.txt"
    bare_s = await asyncio.to_thread(
        bare_faust, bootstrap, prefix + workload.source, len(records), args.timeout,
        *(("--profile", str(bare_profile)) if args.profile else ()),
    )  # fmt: skip
    in_place_s = await asyncio.to_thread(
        bare_faust, bootstrap, prefix + workload.source, len(records), args.timeout,
        "--deliver-in-place",
    )  # fmt: skip

    port = free_port()
    proc = start_worker(
        bootstrap, prefix, port, sensor=not args.no_faust_sensor,
        GOVERNOR_LEDGER__MODE=args.ledger, GOVERNOR_LEDGER__METRICS_PORT=str(free_port()),
        GOVERNOR_WORKER__STATE_STORE=args.state_store, **workload.worker_env(),
        **dict(setting.split("=", 1) for setting in args.worker_setting),
    )  # fmt: skip
    reader = OutputReader(bootstrap, prefix + workload.output)
    peak_rss = 0
    ps = psutil.Process(proc.pid)

    def sample_rss() -> None:
        nonlocal peak_rss
        peak_rss = max(peak_rss, ps.memory_info().rss)

    worker_profile = WORK / f"profile-worker-{prefix.rstrip('-')}.txt"
    recording: Recording | None = None
    try:
        await reader.start()
        wait_ready(port, proc)
        if args.profile:
            recording = Recording(proc.pid, worker_profile)
        began = time.perf_counter()
        if workload.done_series is not None:
            pipeline_s = await count_until(port, (workload.done_series,), args.readings,
                                           args.timeout, sample_rss) - began  # fmt: skip
            args.latency_seconds = 0  # no output record per event to time
        else:
            await reader.read_until(
                args.readings * workload.outputs_per_event, timeout_s=args.timeout,
                on_poll=sample_rss,
            )  # fmt: skip
            pipeline_s = reader.last_at - began
            if workload.second_hop:
                hop_done = await count_until(port, workload.second_hop, args.readings,
                                           args.timeout, sample_rss)  # fmt: skip
                pipeline_s = max(pipeline_s, hop_done - began)
        sample_rss()
        if recording is not None:
            recording.stop()
            recording = None
        rate = args.readings / pipeline_s
        await asyncio.sleep(2.5)  # past the next commit, which flushes the last writes
        changelog = await asyncio.to_thread(metric_sum, port, "governor_changelog_records_total")
        latencies: list[float] = []
        worker_part: list[float] = []
        if args.latency_seconds > 0:
            latencies, worker_part = await paced_latency(
                workload,
                start,
                bootstrap,
                prefix,
                reader,
                args.latency_rate or rate * args.latency_load,
                args.latency_seconds,
                args.batch_size,
                args.facilities,
            )
            sample_rss()
    finally:
        if recording is not None:
            recording.stop()
        await reader.stop()
        proc.terminate()
        proc.wait(timeout=30)

    raw_rate = args.readings / raw_s
    single = args.batch_size <= 1 or workload.name not in ("carbon", "budgets")
    mode = "one per record" if single else f"batches of {args.batch_size}"
    now = datetime.now(UTC)
    ledger = {"thread": "ledger on a worker thread", "process": "ledger in its own process",
              "off": "no ledger"}[args.ledger]  # fmt: skip
    print(
        f"\nGovernor {workload.name} pipeline benchmark, {ledger}, state in {args.state_store}"
        f" ({now:%Y-%m-%d %H:%M} UTC)"
    )
    print(
        f"  input: {args.readings} {unit} as {len(records)} records ({mode}), "
        f"{args.facilities} keys, {payload_mb:.1f} MB; broker: {bootstrap}"
    )
    print(f"  preload (aiokafka producer):      {args.readings / produce_s:>10,.0f} {unit}/s")
    bare_rate = args.readings / bare_s
    print(f"  baseline raw aiokafka + orjson:   {raw_rate:>10,.0f} {unit}/s  ({raw_s:.2f} s)")
    print(f"  baseline bare Faust agent:        {bare_rate:>10,.0f} {unit}/s  ({bare_s:.2f} s)")
    in_place_rate = args.readings / in_place_s
    print(
        f"  the same, delivered in place:     {in_place_rate:>10,.0f} {unit}/s  ({in_place_s:.2f}"
        f" s) = {in_place_rate / bare_rate:.2f} x bare Faust"
    )
    print(
        f"  pipeline (worker, end to end):    {rate:>10,.0f} {unit}/s  ({pipeline_s:.2f} s)"
        f"  = {rate / raw_rate:.3f} x raw, {rate / bare_rate:.2f} x bare Faust"
    )
    print(
        f"  changelog records per input record: {changelog / len(records):.3f}"
        f" ({changelog:,.0f}, measured after the timed part, latency traffic excluded)"
    )
    print(f"  worker peak RSS:                      {peak_rss / 2**20:>10,.0f} MiB")
    paced_rate = (
        f"{args.latency_rate:,.0f} {unit}/s"
        if args.latency_rate
        else f"{args.latency_load:.0%} of that rate"
    )
    if latencies:
        print(
            f"  latency at {paced_rate} for {args.latency_seconds:.0f} s "
            f"({len(latencies)} {unit}): p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
            f"mean {statistics.fmean(latencies) * 1000:.0f} ms"
        )
        print(
            f"    of which until the worker queued the output: "
            f"p50 {percentile(worker_part, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(worker_part, 0.99) * 1000:.0f} ms"
        )
    if args.profile:
        print(f"\nThe bare Faust agent over its timed span ({bare_profile}):")
        print("\n".join(summary(bare_profile)))
        print(f"\nThe worker over its timed span, before the latency part ({worker_profile}):")
        print("\n".join(summary(worker_profile)))


def run_on_broker(run: Any, args: argparse.Namespace) -> None:
    """``asyncio.run(run(args, bootstrap))`` on KAFKA_BOOTSTRAP_SERVERS, or on a local broker
    started for the run and stopped after it."""
    WORK.mkdir(parents=True, exist_ok=True)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None
    if not bootstrap:
        settings = load_settings()
        broker = LocalBroker(
            settings.kafka.local_version, settings.kafka.local_cache_dir, WORK / "kafka", heap="1g"
        ).start()
        bootstrap = broker.bootstrap_servers
    try:
        asyncio.run(run(args, bootstrap))
    finally:
        if broker is not None:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", choices=sorted(WORKLOADS), default="carbon")
    parser.add_argument("--readings", "--events", dest="readings", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500, help="1 = one reading per record")
    parser.add_argument("--facilities", type=int, default=50, help="keys: facilities or sites")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-load", type=float, default=0.5, help="fraction of throughput")
    parser.add_argument(
        "--latency-rate", type=float, default=0.0, help="events/s for the latency part (any"
        " value but 0 replaces --latency-load: the same load for runs of different code)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--no-faust-sensor", action="store_true")
    parser.add_argument(
        "--ledger", choices=["process", "thread", "off"], default="process",
        help="ledger.mode of the worker: a child process (default), a thread, or none",
    )  # fmt: skip
    parser.add_argument(
        "--state-store", choices=["rocksdb", "memory"], default="rocksdb",
        help="worker.state_store of the worker",
    )  # fmt: skip
    parser.add_argument(
        "--worker-setting", action="append", default=[], metavar="GOVERNOR_X__Y=VALUE",
        help="an environment setting for the worker (the benchmark's own GOVERNOR_ variables"
        " are not passed on); repeatable, e.g. GOVERNOR_WORKER__BATCH_IDLE_MS=5",
    )  # fmt: skip
    parser.add_argument(
        "--profile", action="store_true",
        help="record the bare Faust agent and the worker with py-spy over their timed spans"
        " and print where their samples went (benchmarks/profiling.py)",
    )  # fmt: skip
    args = parser.parse_args()
    run_on_broker(run, args)


if __name__ == "__main__":
    main()
