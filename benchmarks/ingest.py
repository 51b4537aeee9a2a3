"""HTTP ingest: POST /api/v1/readings on one worker, one reading per call and in batches,
against the transport's own publish measured in the same run.

Run: .venv/bin/python benchmarks/ingest.py [--clients 32] [--seconds 15] [--batch 500]

1. Baseline: one aiokafka producer in this process (no linger, acks all), ``--clients``
   tasks each publishing a reading's bytes and waiting for the acknowledgement, on a topic
   of its own with meter-readings' partition count: the floor of publish-and-acknowledge.
2. Governor: a worker (separate process, ledger off); ``--clients`` concurrent HTTP clients
   posting readings of 50 facilities as fast as they get their 202, first one reading per
   call, then batches of ``--batch`` readings of one facility per call.

Prints readings/s and latency per call for each, and Governor's rate as a ratio of the
baseline's. The readings are timed now, so the carbon pipeline takes them as live input.
Uses KAFKA_BOOTSTRAP_SERVERS if set, otherwise a local broker.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.admission import paced, summary, topics_with_baseline  # noqa: E402
from benchmarks.throughput import (  # noqa: E402
    free_port,
    run_on_broker,
    start_worker,
    wait_ready,
)

TOKEN = "bench-" + uuid.uuid4().hex
FACILITIES = [f"facility-{n:03d}" for n in range(50)]


def reading(facility: str) -> dict[str, Any]:
    """One live reading of ``facility`` (a fresh event id, timed now)."""
    return {
        "event_id": uuid.uuid4().hex, "meter_id": f"{facility}-m1", "facility_id": facility,
        "zone_id": "zone-a", "energy_source": "grid", "consumption_kwh": 1.5,
        "voltage_v": 400.0, "current_a": 62.5, "power_factor": 0.95,
        "timestamp": datetime.now(UTC).isoformat(),
    }  # fmt: skip


def per_reading(name: str, latencies: list[float], seconds: float, size: int) -> float:
    """Print the calls' figures and return readings/s."""
    figures = summary(name, latencies, seconds)
    rate = figures["rate"] * size
    print(f"{'':>10}  = {rate:,.0f} readings/s ({size} per call)")
    return rate


async def baseline(bootstrap: str, topic: str, args: argparse.Namespace) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                enable_idempotence=True)  # fmt: skip
    await producer.start()

    async def once(n: int) -> None:
        facility = FACILITIES[n % len(FACILITIES)]
        await producer.send_and_wait(topic, orjson.dumps(reading(facility)), key=facility.encode())

    try:
        latencies, took = await paced(args.clients, 0, args.seconds, once)
    finally:
        await producer.stop()
    return per_reading("baseline", latencies, took, 1)


async def governor(bootstrap: str, prefix: str, args: argparse.Namespace) -> tuple[float, float]:
    port = free_port()
    worker = start_worker(bootstrap, prefix, port, False, GOVERNOR_API__TOKEN=TOKEN,
                          GOVERNOR_LEDGER__MODE="off")  # fmt: skip
    try:
        wait_ready(port, worker)
        url = f"http://127.0.0.1:{port}/api/v1/readings"
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
            answered: dict[int, int] = {}

            async def post(body: dict[str, Any]) -> None:
                async with http.post(url, data=orjson.dumps(body)) as r:
                    await r.read()
                    answered[r.status] = answered.get(r.status, 0) + 1

            async def single(n: int) -> None:
                await post(reading(FACILITIES[n % len(FACILITIES)]))

            async def batch(n: int) -> None:
                facility = FACILITIES[n % len(FACILITIES)]
                readings = [reading(facility) for _ in range(args.batch)]
                await post({"batch_id": uuid.uuid4().hex, "facility_id": facility,
                            "readings": readings})  # fmt: skip

            await paced(args.clients, 0, 3, single)  # warm up
            answered.clear()
            latencies, took = await paced(args.clients, 0, args.seconds, single)
            print(f"  answers by status: {dict(sorted(answered.items()))}")
            one = per_reading("governor", latencies, took, 1)
            answered.clear()
            latencies, took = await paced(args.clients, 0, args.seconds, batch)
            print(f"  answers by status: {dict(sorted(answered.items()))}")
            many = per_reading("batches", latencies, took, args.batch)
            return one, many
    finally:
        worker.terminate()
        worker.wait(30)


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    prefix = f"ing{uuid.uuid4().hex[:6]}-"
    baseline_topic = await topics_with_baseline(bootstrap, prefix, "ingest-baseline")
    print(f"{args.clients} clients, unpaced, {args.seconds:.0f} s each")
    base = await baseline(bootstrap, baseline_topic, args)
    one, many = await governor(bootstrap, prefix, args)
    print(f"one reading per call: {one / base:.2f}x the baseline;"
          f" batches of {args.batch}: {many / base:.1f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--batch", type=int, default=500)
    run_on_broker(run, parser.parse_args())


if __name__ == "__main__":
    main()
