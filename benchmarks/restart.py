"""Restart with large state: how long a worker takes from start to ready (``/health`` 200)
when its tables hold many keys, and how much memory it holds then.

Run: .venv/bin/python benchmarks/restart.py [--facilities 2740] [--days 365]

1. Fills the tables the way the carbon pipeline does: one reading per facility per day for
   ``--days`` days, sent as one batch record per facility, so the worker writes
   facilities x days day-total keys (plus a few keys per facility).
2. Waits until every reading is applied and the changelog is flushed, then stops the worker
   (SIGTERM, a clean stop).
3. Starts it again on the same data directory and times start → ``/health`` 200, with the
   worker's RSS then and the keys it reports (``governor_table_keys``).

The same run also starts a second worker from an empty data directory (which has to read
every changelog), for the store's own baseline. Uses KAFKA_BOOTSTRAP_SERVERS if set,
otherwise a local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.tools.sample import sample_reading  # noqa: E402
from benchmarks.throughput import (  # noqa: E402
    WORK,
    create_topics,
    free_port,
    metric_sum,
    preload,
    run_on_broker,
    start_worker,
    wait_ready,
)
from schemas.meter_reading import MeterReadingBatch  # noqa: E402


def records(facilities: int, days: int, start: datetime) -> list[tuple[bytes, bytes, int]]:
    """One batch per facility: a reading a day."""
    out = []
    for f in range(facilities):
        readings = []
        for d in range(days):
            r = sample_reading(f, start + timedelta(days=d), facilities, "rs")
            readings.append(
                r.model_copy(update={"facility_id": f"facility-{f:05d}", "event_id": f"rs-{f}-{d}"})
            )
        batch = MeterReadingBatch(
            batch_id=f"rs-batch-{f}", facility_id=f"facility-{f:05d}", readings=readings
        )
        out.append((f"facility-{f:05d}".encode(), batch.to_json_bytes(), days))
    return out


async def timed_start(
    bootstrap: str,
    prefix: str,
    port: int,
    data_dir: Path,
    store: str,
    after: list[tuple[bytes, bytes, int]] | None = None,
) -> tuple[float, float, float, float, float | None]:
    """Start a worker on ``data_dir``: seconds to ready, RSS (MiB) then, keys reported,
    changelog records it replayed; with ``after``, also the seconds from sending those
    records once ready until the worker has applied them (the first records of each
    partition after a restart pay for indexing its recovered state)."""
    began = time.perf_counter()
    proc = start_worker(bootstrap, prefix, port, False, GOVERNOR_LEDGER__MODE="off",
                        GOVERNOR_WORKER__DATA_DIR=str(data_dir),
                        GOVERNOR_WORKER__STATE_STORE=store)  # fmt: skip
    try:
        wait_ready(port, proc, timeout_s=900)
        ready_s = time.perf_counter() - began
        rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        keys = metric_sum(port, "governor_table_keys")
        replayed = metric_sum(port, "governor_state_restored_records_total")
        first_s = None
        if after:
            sent = time.perf_counter()
            await preload(bootstrap, prefix + "meter-readings", after)
            while metric_sum(port, "governor_meter_readings_total") < len(after):
                if time.perf_counter() - sent > 600:
                    raise RuntimeError("the readings after the restart were not applied")
                await asyncio.sleep(0.05)
            first_s = time.perf_counter() - sent
        return ready_s, rss, keys, replayed, first_s
    finally:
        proc.terminate()
        proc.wait(600)


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    prefix = f"rs{uuid.uuid4().hex[:6]}-"
    await create_topics(bootstrap, prefix)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=args.days + 1)
    batch = records(args.facilities, args.days, start)
    await preload(bootstrap, prefix + "meter-readings", batch)
    total = args.facilities * args.days
    data_dir = WORK / f"restart-{prefix.rstrip('-')}"
    port = free_port()
    proc = start_worker(bootstrap, prefix, port, False, GOVERNOR_LEDGER__MODE="off",
                        GOVERNOR_WORKER__DATA_DIR=str(data_dir),
                        GOVERNOR_WORKER__STATE_STORE=args.state_store)  # fmt: skip
    try:
        wait_ready(port, proc, timeout_s=900)
        began = time.perf_counter()
        series = "governor_meter_readings_total"
        while metric_sum(port, series) < total:
            if time.perf_counter() - began > args.timeout:
                raise RuntimeError(f"not every reading applied in {args.timeout:.0f} s")
            await asyncio.sleep(1)
        fill_s = time.perf_counter() - began
        await asyncio.sleep(3)  # past the next commit: every write is in the changelog
        filled_rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        filled_keys = metric_sum(port, "governor_table_keys")
    finally:
        proc.terminate()
        proc.wait(600)
    print(f"\nrestart benchmark, state in {args.state_store} ({datetime.now(UTC):%Y-%m-%d %H:%M}"
          f" UTC, broker {bootstrap})")  # fmt: skip
    print(f"  filled: {total:,} readings ({args.facilities:,} facilities x {args.days} days) in"
          f" {fill_s:.1f} s; {filled_keys:,.0f} table keys; RSS {filled_rss:,.0f} MiB")  # fmt: skip
    next_day = records(min(args.facilities, 60), 1, start + timedelta(days=args.days))
    again = await timed_start(bootstrap, prefix, free_port(), data_dir, args.state_store, next_day)
    print(f"  restart, same data directory: ready in {again[0]:.1f} s, RSS {again[1]:,.0f} MiB,"
          f" {again[2]:,.0f} keys, {again[3]:,.0f} changelog records replayed; a reading"
          f" of {len(next_day)} facilities then applied in {again[4]:.2f} s")  # fmt: skip
    empty = data_dir.with_name(data_dir.name + "-empty")
    shutil.rmtree(empty, ignore_errors=True)
    fresh = await timed_start(bootstrap, prefix, free_port(), empty, args.state_store)
    print(f"  start, empty data directory:  ready in {fresh[0]:.1f} s, RSS {fresh[1]:,.0f} MiB,"
          f" {fresh[2]:,.0f} keys, {fresh[3]:,.0f} changelog records replayed")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--facilities", type=int, default=2_740)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--timeout", type=float, default=1_800.0)
    parser.add_argument("--state-store", choices=["rocksdb", "memory"], default="rocksdb")
    run_on_broker(run, parser.parse_args())


if __name__ == "__main__":
    main()
