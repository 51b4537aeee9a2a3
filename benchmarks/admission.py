"""Synchronous admission latency: POST /api/v1/fusion/validate (or, with ``--endpoint
execute``, POST /api/v1/balancing/decisions/{id}/execute) on one worker, against the
transport's own round trip measured in the same run.

Run: .venv/bin/python benchmarks/admission.py [--clients 8] [--rate 100] [--seconds 20]
     [--endpoint validate|execute]

1. Baseline: one aiokafka producer and one consumer in this process, on a topic of its own
   with fusion-requests' partition count; each request is a record produced and waited for
   until the consumer has it: the floor a publish-and-wait path can reach.
2. Governor: a worker (separate process); ``--clients`` concurrent HTTP clients, each
   sending requests paced to ``--rate`` in total (0: as fast as they get answers), for
   tenants spread over every partition. ``execute``: one manual decision per facility
   (24 facilities, each with a zone's load metric) is created and executed first; each
   request then executes one of them again, a command decided in the facility's stream
   like the first (answered "already executed", the facility's state stamped).

Prints p50/p95/p99 latency and requests/s for both, and the ratio of Governor's p99 to
the baseline's. ``--profile``: where the worker's and the clients' time went while
measured (py-spy, benchmarks/profiling.py). Uses KAFKA_BOOTSTRAP_SERVERS if set,
otherwise a local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.profiling import Recording  # noqa: E402
from benchmarks.profiling import summary as profile_summary  # noqa: E402
from benchmarks.throughput import (  # noqa: E402
    WORK,
    create_topics,
    free_port,
    percentile,
    run_on_broker,
    start_worker,
    wait_ready,
)

TOKEN = "bench-" + uuid.uuid4().hex
TENANTS = [f"tenant-{n:02d}" for n in range(24)]


def summary(name: str, latencies: list[float], seconds: float) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    figures = {
        "p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95), "p99": percentile(ms, 0.99),
        "rate": len(ms) / seconds,
    }  # fmt: skip
    print(f"{name:>10}: {len(ms)} requests, {figures['rate']:,.0f}/s,"
          f" p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms,"
          f" p99 {figures['p99']:.1f} ms")  # fmt: skip
    return figures


Once = Callable[[int], Awaitable[None]]


async def paced(clients: int, rate: float, seconds: float, once: Once) -> tuple[list[float], float]:
    """Run ``once()`` from ``clients`` tasks, paced to ``rate`` per second in total."""
    latencies: list[float] = []
    began = time.perf_counter()
    interval = clients / rate if rate > 0 else 0.0

    async def client(n: int) -> None:
        due = began + n * (interval / clients if interval else 0.0)
        while time.perf_counter() - began < seconds:
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += interval
            t0 = time.perf_counter()
            await once(n)
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies, time.perf_counter() - began


async def baseline(bootstrap: str, topic: str, args: argparse.Namespace) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                fetch_max_wait_ms=args.fetch_wait_ms)  # fmt: skip
    await producer.start()
    await consumer.start()
    waiting: dict[bytes, asyncio.Future[None]] = {}

    async def drain() -> None:
        async for message in consumer:
            future = waiting.pop(message.value, None)
            if future is not None and not future.done():
                future.set_result(None)

    drainer = asyncio.create_task(drain())
    await asyncio.sleep(2)  # assigned, at the end

    async def once(n: int) -> None:
        value = uuid.uuid4().bytes
        arrived = waiting[value] = asyncio.get_running_loop().create_future()
        await producer.send_and_wait(topic, value, key=TENANTS[n % len(TENANTS)].encode())
        await arrived

    try:
        latencies, took = await paced(args.clients, args.rate, args.seconds, once)
    finally:
        drainer.cancel()
        await consumer.stop()
        await producer.stop()
    return summary("baseline", latencies, took)


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, data=orjson.dumps(body)) as r:
        assert r.status in (200, 201, 202), f"{url}: {r.status} {await r.text()}"
        answer: dict[str, Any] = await r.json()
        return answer


async def validate_requests(http: aiohttp.ClientSession, api: str) -> Callable[[int], str]:
    """Budgets for every tenant; requests go to /fusion/validate."""
    for tenant in TENANTS:
        await post(http, f"{api}/fusion/budgets", {"tenant": tenant, "limit_units": 1e12})
    await asyncio.sleep(3)
    return lambda n: f"{api}/fusion/validate"


async def execute_requests(http: aiohttp.ClientSession, api: str) -> Callable[[int], str]:
    """A zone's load and one executed decision per facility; requests execute them again."""
    facilities = [f"site-{n:02d}" for n in range(len(TENANTS))]
    now = datetime.now(UTC).isoformat()
    for facility in facilities:
        metric = {"event_id": uuid.uuid4().hex, "facility_id": facility, "zone_id": "zone-a",
                  "current_load_kw": 50.0, "capacity_kw": 100.0, "timestamp": now}  # fmt: skip
        await post(http, f"{api}/load/metrics", metric)
    await asyncio.sleep(3)
    decisions = []
    for facility in facilities:
        manual = {"facility_id": facility, "action": "scale_up", "zone_id": "zone-a",
                  "amount_kw": 1.0, "reason": "benchmark"}  # fmt: skip
        created = await post(http, f"{api}/balancing/decisions", manual)
        decision_id = created["decisions"][0]["decision_id"]
        await post(http, f"{api}/balancing/decisions/{decision_id}/execute", {})
        decisions.append(decision_id)
    return lambda n: f"{api}/balancing/decisions/{decisions[n % len(decisions)]}/execute"


async def governor(bootstrap: str, prefix: str, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    worker = start_worker(bootstrap, prefix, port, False, GOVERNOR_API__TOKEN=TOKEN,
                          GOVERNOR_LEDGER__MODE="off")  # fmt: skip
    try:
        wait_ready(port, worker)
        api = f"http://127.0.0.1:{port}/api/v1"
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as http:
            setup = execute_requests if args.endpoint == "execute" else validate_requests
            url_of = await setup(http, api)
            answered: dict[int, int] = {}

            async def once(n: int) -> None:
                body = {"tenant": TENANTS[n % len(TENANTS)], "scenario_type": "triage",
                        "overlay": "reflect", "overlay_version": "1",
                        "estimated_units": 10}  # fmt: skip
                async with http.post(url_of(n), data=orjson.dumps(body)) as r:
                    await r.read()
                    answered[r.status] = answered.get(r.status, 0) + 1

            await paced(args.clients, 0, 3, once)  # warm up
            answered.clear()
            recordings = (
                [Recording(worker.pid, WORK / f"profile-worker-{port}.txt"),
                 Recording(os.getpid(), WORK / f"profile-clients-{port}.txt")]
                if args.profile else []
            )  # fmt: skip
            latencies, took = await paced(args.clients, args.rate, args.seconds, once)
            for recording in recordings:
                recording.stop()
            print(f"  answers by status: {dict(sorted(answered.items()))}")
            names = ("the worker", "this process's clients")
            for recording, what in zip(recordings, names, strict=False):
                print(f"  {what} while measured ({recording.out}):")
                print("\n".join(profile_summary(recording.out)))
            return summary("governor", latencies, took)
    finally:
        worker.terminate()
        worker.wait(30)


async def topics_with_baseline(bootstrap: str, prefix: str, baseline: str) -> str:
    """Governor's topics under ``prefix``, and the baseline's own topic of 6 partitions (not
    one the worker reads); its name."""
    await create_topics(bootstrap, prefix)
    topic = prefix + baseline
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 6, 1)])
    finally:
        await admin.close()
    return topic


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    prefix = f"adm{uuid.uuid4().hex[:6]}-"
    baseline_topic = await topics_with_baseline(bootstrap, prefix, "admission-baseline")
    print(f"{args.clients} clients, rate {args.rate or 'unpaced'}/s, {args.seconds:.0f} s each")
    base = await baseline(bootstrap, baseline_topic, args)
    mine = await governor(bootstrap, prefix, args)
    print(
        f"governor p99 / baseline p99: {mine['p99'] / base['p99']:.1f}x;"
        f" governor p50 / baseline p50: {mine['p50'] / base['p50']:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s; 0: unpaced")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--endpoint", choices=("validate", "execute"), default="validate")
    wait = int(os.environ.get("FETCH_WAIT_MS", "500"))
    parser.add_argument("--fetch-wait-ms", type=int, default=wait)
    parser.add_argument(
        "--profile", action="store_true",
        help="record the worker and this process (the clients) with py-spy while measured",
    )  # fmt: skip
    run_on_broker(run, parser.parse_args())


if __name__ == "__main__":
    main()
