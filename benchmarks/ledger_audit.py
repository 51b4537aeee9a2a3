"""Reading a ledger back: `governor ledger verify` and `governor ledger prove` on a large ledger.

Run: .venv/bin/python benchmarks/ledger_audit.py [--records 1000000] [--chains 6]

The ledger is built in this process with the chain rule (synthetic decisions, a signed
checkpoint every 1,000 records per chain) and written straight to fresh ledger topics;
then, in one run:

- **baseline:** plain aiokafka consume of the whole ledger topic plus ``orjson.loads`` of
  every value, here;
- **verify:** ``governor ledger verify`` as a user runs it (a subprocess), records/s;
- **prove:** ``governor ledger prove <id>`` for a decision in the middle of a chain: the
  first call builds the local index (``ledger.index_dir``), later calls use it and read
  only the ledger's new tail; each timed as a subprocess, start to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import create_topics, run_on_broker  # noqa: E402

from app.ledger.audit_trail import prove_indexed  # noqa: E402
from app.ledger.chain import Decision, append_decisions, new_head  # noqa: E402
from app.ledger.index import ProveIndex  # noqa: E402
from app.ledger.keys import KeySet  # noqa: E402
from app.ledger.merkle import Frontier, leaf_hash  # noqa: E402
from app.ledger.note import Signer, checkpoint_text  # noqa: E402

ORIGIN = "bench.local/ledger"
EVERY = 1_000


def build_chain(partition: int, count: int, signer: Signer) -> tuple[list[bytes], list[bytes]]:
    """``count`` decision records of one chain after its genesis, and its checkpoints."""
    head, genesis = new_head(f"{ORIGIN}/{partition}", 1_000)
    values, checkpoints = [genesis], []
    frontier = Frontier().append(leaf_hash(genesis))
    for start in range(0, count, EVERY):
        chunk = [
            Decision("carbon-emissions", partition, n, f"facility-{n % 50}", f"d-{partition}-{n}",
                     {"event_id": f"d-{partition}-{n}", "kg": n * 0.1, "facility": n % 50})
            for n in range(start, min(start + EVERY, count))
        ]  # fmt: skip
        head, out = append_decisions(head, chunk)
        for _, value in out.records:
            values.append(value)
            frontier = frontier.append(leaf_hash(value))
        root = frontier.root()
        checkpoints.append(orjson.dumps({
            "schema_version": 1, "chain": f"{ORIGIN}/{partition}", "partition": partition,
            "tree_size": frontier.size, "root_hash": base64.b64encode(root).decode(),
            "ledger_offset": frontier.size - 1,
            "frontier": [base64.b64encode(h).decode() for h in frontier.hashes],
            "note": signer.sign(checkpoint_text(f"{ORIGIN}/{partition}", frontier.size, root)),
        }))  # fmt: skip
    return values, checkpoints


async def write(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1_048_576,
        max_request_size=8_388_608, acks=1,
    )  # fmt: skip
    await producer.start()
    try:
        pending = [await producer.send(topic, v, partition=partition) for v in values]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def baseline(bootstrap: str, topic: str, chains: int, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=8_388_608, fetch_max_bytes=52_428_800,
    )  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(chains)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        began, seen = time.perf_counter(), 0
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                for message in messages:
                    orjson.loads(message.value)
            seen += sum(len(m) for m in batch.values())
        return time.perf_counter() - began
    finally:
        await consumer.stop()


def governor(bootstrap: str, prefix: str, index_dir: Path, *args: str) -> tuple[float, str]:
    """``governor <args>`` timed from start to exit."""
    env = {
        **os.environ, "GOVERNOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "GOVERNOR_KAFKA__TOPIC_PREFIX": prefix, "GOVERNOR_LEDGER__ORIGIN": ORIGIN,
        "GOVERNOR_LEDGER__INDEX_DIR": str(index_dir),
    }  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=3_600,
    )  # fmt: skip
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"governor {' '.join(args[:2])} failed: {done.stdout}{done.stderr}")
    return took, done.stdout


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    signer = Signer.from_seed("governor-ledger", os.urandom(32))
    prefix = f"a{uuid.uuid4().hex[:8]}-"
    await create_topics(bootstrap, prefix)
    per_chain = args.records // args.chains
    began = time.perf_counter()
    for partition in range(args.chains):
        values, checkpoints = build_chain(partition, per_chain, signer)
        await write(bootstrap, prefix + "ledger", partition, values)
        await write(bootstrap, prefix + "ledger-checkpoints", partition, checkpoints)
    total = args.chains * (per_chain + 1)
    print(f"built and wrote {total:,} ledger records in {time.perf_counter() - began:.0f} s")

    base_s = await baseline(bootstrap, prefix + "ledger", args.chains, total)
    index_dir = REPO / "var" / f"bench-ledger-index-{prefix}"
    vkey = signer.verifier_key()
    verify_s, out = governor(bootstrap, prefix, index_dir, "ledger", "verify", "--vkey", vkey)
    assert out.count(": ok") == args.chains, out
    target = f"d-0-{per_chain // 2}"
    prove = ("ledger", "prove", target, "--vkey", vkey)
    first_s, _ = governor(bootstrap, prefix, index_dir, *prove)
    again = [governor(bootstrap, prefix, index_dir, *prove)[0] for _ in range(3)]
    floor_s, _ = governor(bootstrap, prefix, index_dir, "schemas", "--help")
    index = ProveIndex(index_dir, prefix + "ledger")
    keys, options = KeySet.of([vkey]), {"bootstrap_servers": bootstrap}
    inside = []
    for _ in range(3):
        began = time.perf_counter()
        await prove_indexed(index, options, prefix, target, keys, ORIGIN)
        inside.append(time.perf_counter() - began)
    index.close()

    print(f"\nGovernor ledger audit benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC),"
          f" {total:,} records in {args.chains} chains")  # fmt: skip
    base_rate, verify_rate = total / base_s, total / verify_s
    print(f"  baseline aiokafka consume + orjson.loads: {base_rate:>10,.0f} records/s")
    print(f"  governor ledger verify:                   {verify_rate:>10,.0f} records/s"
          f" ({verify_s:.1f} s) = {verify_rate / base_rate:.2f} x baseline")  # fmt: skip
    print(f"  governor ledger prove, first (builds the index): {first_s:.2f} s")
    print(f"  governor ledger prove, with the index: {', '.join(f'{s:.2f}' for s in again)} s"
          f" (starting `governor` itself takes {floor_s:.2f} s)")  # fmt: skip
    print(f"  the same proof in process, with the index: {', '.join(f'{s:.3f}' for s in inside)} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chains", type=int, default=6)
    run_on_broker(run, parser.parse_args())


if __name__ == "__main__":
    main()
