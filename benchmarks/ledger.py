"""Ledger append speed: the chain rule in process, and end to end through a worker.

Run: .venv/bin/python benchmarks/ledger.py [--decisions 200000] [--keys 50]

1. Rule: ``append_decisions`` over N decisions on one chain, in this process (hash chain,
   canonical JSON, Merkle frontier), against a baseline of orjson decode + encode of the
   same values.
2. End to end: N carbon-emission records pre-loaded straight onto carbon-emissions (the
   pipelines are idle); a worker with a signing key starts, and the time from its
   readiness until the ledger holds all N records (plus one genesis per chain) is measured;
   baseline: plain aiokafka consume + produce of the same records to another topic, here.
   ``--keys 1`` puts every decision in one partition: the per-chain figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import (  # noqa: E402
    create_topics,
    preload,
    run_on_broker,
    start_worker,
    wait_ready,
)

from agents.carbon.rules import emission_of  # noqa: E402
from agents.carbon.settings import CarbonSettings  # noqa: E402
from app.ledger.chain import Decision, append_decisions, new_head  # noqa: E402
from app.runtime.topic_reader import partitions_of, read_last  # noqa: E402
from app.tools.localkafka import free_port  # noqa: E402
from app.tools.sample import sample_reading  # noqa: E402


def emissions(count: int, keys: int) -> list[tuple[bytes, bytes, int]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    config = CarbonSettings()
    out = []
    for n in range(count):
        e = emission_of(sample_reading(n, start, keys, run="lb"), config)
        out.append((e.facility_id.encode(), e.to_json_bytes(), 1))
    return out


def rule_rates(records: list[tuple[bytes, bytes, int]]) -> tuple[float, float]:
    """(appends/s of the chain rule, decode+encode/s baseline), one chain, this process."""
    started = time.perf_counter()
    for _, value, _ in records:
        orjson.dumps(orjson.loads(value), option=orjson.OPT_SORT_KEYS)
    baseline = len(records) / (time.perf_counter() - started)
    head, _ = new_head("bench/0", 100_000)
    started = time.perf_counter()
    decisions = []
    for offset, (key, value, _) in enumerate(records):
        body = orjson.loads(value)
        decisions.append(
            Decision("carbon-emissions", 0, offset, key.decode(), body["event_id"], body)
        )
        if len(decisions) == 5000:
            head, _ = append_decisions(head, decisions)
            decisions = []
    head, _ = append_decisions(head, decisions)
    return len(records) / (time.perf_counter() - started), baseline


async def copy_baseline(bootstrap: str, source: str, target: str, count: int) -> float:
    """Seconds for plain aiokafka to consume ``count`` records and produce them elsewhere."""
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=4_194_304,
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await consumer.start()
    await producer.start()
    seen = 0
    started = time.perf_counter()
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for tp, messages in batch.items():
                for m in messages:
                    await producer.send(target, m.value, key=m.key, partition=tp.partition)
                seen += len(messages)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    return time.perf_counter() - started


async def ledger_size(bootstrap: str, topic: str) -> int:
    """Records the chains hold, committed: each chain's last seq plus one (end offsets would
    count the transactions' commit markers too)."""
    options = {"bootstrap_servers": bootstrap}
    total = 0
    for partition in await partitions_of(options, topic):
        last = await read_last(options, topic, partition)
        total += orjson.loads(last.value)["seq"] + 1 if last is not None else 0
    return total


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    records = emissions(args.decisions, args.keys)
    rule_rate, codec_rate = rule_rates(records)
    prefix = f"l{uuid.uuid4().hex[:8]}-"
    await create_topics(bootstrap, prefix)
    await preload(bootstrap, prefix + "carbon-emissions", records)
    copy_s = await copy_baseline(
        bootstrap, prefix + "carbon-emissions", prefix + "request-events", args.decisions
    )
    key = base64.b64encode(os.urandom(32)).decode()
    port = free_port()
    proc = start_worker(
        bootstrap, prefix, port, sensor=True, GOVERNOR_LEDGER__SIGNING_KEY=key,
        GOVERNOR_LEDGER__METRICS_PORT=str(free_port()),
    )  # fmt: skip
    try:
        wait_ready(port, proc)
        began = time.perf_counter()
        partitions = 6
        while await ledger_size(bootstrap, prefix + "ledger") < args.decisions + partitions:
            if time.perf_counter() - began > args.timeout:
                raise TimeoutError("the ledger did not catch up")
            await asyncio.sleep(0.2)
        ledger_s = time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    n = args.decisions
    used = "1 partition" if args.keys == 1 else f"{args.keys} keys over 6 partitions"
    print(f"\nGovernor ledger benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC), {n} decisions")
    ratio = rule_rate / codec_rate
    print(f"  rule, one chain, in process: {rule_rate:>10,.0f} appends/s  = {ratio:.2f} x")
    print(f"    baseline orjson decode+encode:  {codec_rate:>10,.0f} values/s")
    e2e = n / ledger_s
    copy_rate = n / copy_s
    print(f"  end to end, {used}: {e2e:>10,.0f} appends/s ({ledger_s:.2f} s)")
    print(f"    = {e2e / copy_rate:.2f} x baseline aiokafka consume+produce {copy_rate:,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=50, help="1 = one chain gets everything")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    run_on_broker(run, args)


if __name__ == "__main__":
    main()
