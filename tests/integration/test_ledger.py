"""Every decision on a real broker lands in the ledger once, chains verify, proofs check."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from app.ledger.chain import Decision, append_decisions, head_from_records
from app.ledger.merkle import Frontier
from app.ledger.note import Signer, checkpoint_text
from app.runtime.topic_reader import read_partition, read_partitions
from app.tools.localkafka import free_port
from schemas.dead_letter import DeadLetter
from schemas.ledger import LedgerRecord, RecordKind
from tests.factories import batch
from tests.integration.harness import (
    REPO,
    Cluster,
    WorkerProcess,
    end_offsets,
    governor_env,
    http_get,
    kill_mid_stream,
    metric_value,
    produce,
    read_all,
    wait_for,
)
from tests.integration.test_audit_pipeline import SITES_ENV, sample_ticks
from tests.integration.test_audit_pipeline import as_records as tick_records
from tests.integration.test_carbon_pipeline import sample_readings

pytestmark = pytest.mark.integration

SEED = base64.b64encode(os.urandom(32)).decode()
LEDGER_ENV = {
    "GOVERNOR_LEDGER__SIGNING_KEY": SEED,
    "GOVERNOR_LEDGER__CHECKPOINT_EVERY_RECORDS": "100",
    "GOVERNOR_LEDGER__CHECKPOINT_EVERY_S": "1",
    "GOVERNOR_AUDIT__SITES": SITES_ENV,
}
VKEY = Signer.from_seed("governor-ledger", base64.b64decode(SEED)).verifier_key()


async def produce_to(
    cluster: Cluster, topic: str, partition: int, key: bytes | None, value: bytes
) -> None:
    producer = AIOKafkaProducer(**cluster.client_options())
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def committed_records(cluster: Cluster, topic: str) -> int:
    """Records a reader of committed records finds: chains are written in transactions, so
    end offsets also count commit markers and a killed appender's aborted records."""
    found = asyncio.run(read_partitions(cluster.client_options(), topic))
    return sum(len(records) for records in found.values())


def appended(worker: WorkerProcess) -> int:
    """Decisions the worker's ledger process appended (``ledger.mode: process``)."""
    series = 'governor_ledger_records_total{outcome="appended"}'
    return int(metric_value(worker, series, base=worker.ledger_url))


def ledger_cli(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = governor_env(worker.cluster, worker.prefix, **LEDGER_ENV)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "ledger", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def decision_inputs(
    readings: int, batches: int
) -> tuple[list[tuple[bytes, bytes]], list[Any], int]:
    """Meter-reading records (singles and batches) and control ticks; how many decisions."""
    singles = sample_readings(readings, facilities=6)
    records = [(r.facility_id.encode(), r.to_json_bytes()) for r in singles]
    for n in range(batches):
        items = sample_readings(100, facilities=1, start=50_000 + n * 100)
        items = [r.model_copy(update={"facility_id": f"facility-00{n % 6}"}) for r in items]
        records.append((items[0].facility_id.encode(), batch(items, f"b{n}").to_json_bytes()))
    ticks = sample_ticks(sites=3, days=2, per_day=24)
    return records, ticks, readings + 100 * batches + 2 * len(ticks)  # slot + rollup per tick


def test_every_decision_is_chained_once_and_proofs_verify(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    records, ticks, decisions = decision_inputs(readings=600, batches=20)
    worker = workers(**LEDGER_ENV)
    worker.wait_ready()
    asyncio.run(produce(cluster, prefix + "meter-readings", records))
    asyncio.run(produce(cluster, prefix + "control-ticks", tick_records(ticks)))
    alerts = wait_for(
        lambda: metric_value(
            worker, 'governor_audit_compliance_alerts_total{state="non_compliant"}'
        ),
        60,
    )
    try:
        wait_for(lambda: appended(worker) >= decisions + alerts, 90)
    except AssertionError:
        skipped = metric_value(worker, 'governor_ledger_records_total{outcome="skipped"}')
        readings = metric_value(worker, 'governor_meter_readings_total{outcome="applied"}')
        ticks_done = metric_value(worker, 'governor_audit_ticks_total{outcome="applied"}')
        raise AssertionError(
            f"appended {appended(worker)} (skipped {skipped}) of {decisions} + {alerts};"
            f" readings {readings}, ticks {ticks_done}"
        ) from None
    assert appended(worker) == decisions + alerts  # nothing twice
    wait_for(
        lambda: metric_value(worker, "governor_ledger_checkpoints_total", worker.ledger_url) >= 6,
        30,
    )

    verified = ledger_cli(worker, "verify", "--vkey", VKEY)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    chains = [line for line in verified.stdout.splitlines() if line.startswith("chain ")]
    assert len(chains) == 6 and all(line.endswith(": ok") for line in chains)
    # A key set: a key retired before these checkpoints were written does not verify them.
    stranger = Signer.from_seed("governor-ledger", bytes(32)).verifier_key()
    retired = ledger_cli(worker, "verify", "--vkey", f"{VKEY},,2020-01-01T00:00:00+00:00")
    assert retired.returncode == 1 and "no verifier key is valid" in retired.stdout
    rotated = ledger_cli(worker, "verify", "--vkey", f"{stranger},,2020-01-01T00:00:00+00:00",
                         "--vkey", f"{VKEY},2020-01-01T00:00:00+00:00")  # fmt: skip
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr

    status, body = http_get(f"{worker.url}/api/v1/ledger/verify")
    assert status == 200 and body["ok"] and len(body["chains"]) == 6, body
    # Issue 16: each call read both ledger topics whole; now one runs at a time and its
    # result serves every caller for ledger.verify_cache_s.
    again = [http_get(f"{worker.url}/api/v1/ledger/verify")[1] for _ in range(3)]
    assert all(a["verified_at"] == body["verified_at"] for a in again)
    assert http_get(f"{worker.url}/api/v1/ledger/key")[1] == {"vkey": VKEY}
    status, body = http_get(f"{worker.url}/api/v1/ledger/verify?vkey=nonsense")
    assert status == 400 and "verifier key" in body["error"]

    proved = ledger_cli(worker, "prove", "tick-000007")
    assert proved.returncode == 0, proved.stderr
    proof = orjson.loads(proved.stdout)
    assert proof["decision_id"] == "tick-000007" and proof["checkpoint_note"].startswith(
        proof["chain"]
    )

    checkpoints = asyncio.run(read_all(cluster, prefix + "ledger-checkpoints", 6, 10))
    by_chain: dict[int, list[int]] = {}
    for m in checkpoints:
        by_chain.setdefault(m.partition, []).append(orjson.loads(m.value)["tree_size"])
    partition, sizes = max(by_chain.items(), key=lambda item: len(item[1]))
    assert len(sizes) >= 2, by_chain
    consistent = ledger_cli(
        worker, "prove", "--consistency", str(partition), str(sizes[0]), str(sizes[-1])
    )
    assert consistent.returncode == 0, consistent.stderr
    assert orjson.loads(consistent.stdout)["size2"] == sizes[-1]

    # A record replayed into a chain by someone else is found, with where it is.
    ledger = asyncio.run(read_all(cluster, prefix + "ledger", decisions, 30))
    replayed = next(m for m in ledger if m.partition == partition and m.offset == 3)
    landed = asyncio.run(end_offsets(cluster, prefix + "ledger"))[partition]
    asyncio.run(produce_to(cluster, prefix + "ledger", partition, replayed.key, replayed.value))
    tampered = ledger_cli(worker, "verify", "--vkey", VKEY)
    assert tampered.returncode == 1
    assert f"FAILED ledger[{partition}]@{landed}: prev_hash does not link" in tampered.stdout


def test_sigkill_during_appends_leaves_verifiable_chains_without_duplicates(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    records = []
    for n in range(120):
        items = sample_readings(500, facilities=1, start=100_000 + n * 500)
        facility = f"facility-{n % 12:03d}"
        items = [r.model_copy(update={"facility_id": facility}) for r in items]
        records.append((facility.encode(), batch(items, f"k{n}").to_json_bytes()))
    total = 120 * 500
    member = {"GOVERNOR_WORKER__GROUP_INSTANCE_ID": "ledger-crash-worker"}
    worker = workers(**LEDGER_ENV, **member)
    worker.wait_ready()
    asyncio.run(produce(cluster, prefix + "meter-readings", records))
    progress = kill_mid_stream(worker, appended, total, past=0.2, interval_s=0.2)
    chains = 6

    def ledger_size() -> int:
        return committed_records(cluster, prefix + "ledger")

    wait_for(lambda: ledger_size() >= total + chains, 180, 1.0)
    time.sleep(3)  # anything appended twice would land by now
    assert ledger_size() == total + chains, "a decision was appended twice"
    verified = ledger_cli(worker, "verify", "--vkey", VKEY)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    print(f"killed after {progress}/{total} appends; {verified.stdout.strip()}")


def test_the_ledger_as_its_own_process(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Workers with ledger.mode=off and one `governor ledger run` beside them."""
    records, ticks, decisions = decision_inputs(readings=300, batches=5)
    worker = workers(**{**LEDGER_ENV, "GOVERNOR_LEDGER__MODE": "off"})
    worker.wait_ready()
    port = free_port()
    env = governor_env(cluster, prefix, GOVERNOR_WORKER__APP_ID=worker.app_id, **LEDGER_ENV)
    log = (tmp_path / "ledger.log").open("wb")
    appender = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ledger", "run", "--metrics-port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        asyncio.run(produce(cluster, prefix + "meter-readings", records))
        asyncio.run(produce(cluster, prefix + "control-ticks", tick_records(ticks)))

        def ledger_size() -> int:
            return committed_records(cluster, prefix + "ledger")

        wait_for(lambda: ledger_size() >= decisions + 6, 90, 1.0)
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "governor_ledger_records_total" in text
        status, _ = http_get(worker.ledger_url + "/metrics")
        assert status == 0, "mode off: the worker started no ledger process"
        verified = ledger_cli(worker, "verify", "--vkey", VKEY)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        appender.terminate()
        assert appender.wait(timeout=30) == 0, (tmp_path / "ledger.log").read_text()[-3000:]
        log.close()


def test_a_foreign_record_on_a_decision_topic_leaves_a_gap_not_a_crash_loop(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Issue 16 part 5: a non-JSON record (or one without its id) on a decision topic made
    the appender raise, so every worker that took the partition crash-looped on it."""
    worker = workers(**LEDGER_ENV)
    worker.wait_ready()
    topic = prefix + "carbon-emissions"
    foreign = [(b"facility-000", b"\xff\xfe not json"), (b"facility-000", b'{"no": "id"}')]
    for key, value in foreign:
        asyncio.run(produce_to(cluster, topic, 0, key, value))
    records, _, _ = decision_inputs(readings=60, batches=0)
    asyncio.run(produce(cluster, prefix + "meter-readings", records))
    wait_for(lambda: appended(worker) >= len(records) + len(foreign), 90)

    def ledger_letters() -> list[DeadLetter] | None:
        letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 10**9, 3))
        found = [DeadLetter.from_json_bytes(m.value) for m in letters]
        mine = sorted((d for d in found if d.pipeline == "ledger"), key=lambda d: d.source_offset)
        return mine if len(mine) >= 2 else None  # the carbon-usage stage letters its own

    decoded = wait_for(ledger_letters, 30)
    assert [(d.pipeline, d.source_topic, d.source_partition) for d in decoded] == [
        ("ledger", topic, 0), ("ledger", topic, 0),
    ]  # fmt: skip
    assert [d.reason.value for d in decoded] == ["undecodable", "invalid_schema"]
    assert [d.original_value() for d in decoded] == [v for _, v in foreign]
    chained = asyncio.run(read_all(cluster, prefix + "ledger", 10**9, 5))
    gaps = [LedgerRecord.from_json_bytes(m.value) for m in chained]
    gaps = [r for r in gaps if r.kind is RecordKind.GAP]
    assert sorted(g.source.offset for g in gaps if g.source) == [0, 1]
    verified = ledger_cli(worker, "verify", "--vkey", VKEY)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    status, _ = http_get(worker.url + "/health")
    assert status == 200


def test_a_restarted_appender_builds_on_nothing_it_cannot_check(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Issue 16 part 5: the appender adopted the newest checkpoint without checking its
    signature, and the last record as it found it; record hashes need no secret, so anyone
    who could write to the ledger topic could plant a record it then built on and signed."""
    first = workers(**LEDGER_ENV)
    first.wait_ready()
    records, _, _ = decision_inputs(readings=120, batches=0)
    asyncio.run(produce(cluster, prefix + "meter-readings", records))
    wait_for(lambda: appended(first) >= len(records), 90)
    checkpoints_seen = "governor_ledger_checkpoints_total"
    wait_for(lambda: metric_value(first, checkpoints_seen, first.ledger_url) >= 6, 30)
    first.stop()

    ends = asyncio.run(end_offsets(cluster, prefix + "ledger"))
    planted_in, forged_in = sorted(ends, key=lambda p: -ends[p])[:2]  # two busy chains
    chain, _ = asyncio.run(read_partition(cluster.client_options(), prefix + "ledger", planted_in))
    head = head_from_records(f"governor.local/ledger/{planted_in}", Frontier(), -1, chain, 1000)
    fake = Decision("carbon-emissions", planted_in, 10**6, "facility-x", "evt-planted", {"x": 1})
    _, out = append_decisions(head, [fake])
    asyncio.run(produce_to(cluster, prefix + "ledger", planted_in, None, out.records[0][1]))
    other = Signer.from_seed("governor-ledger", bytes(32))  # a key that is not the ledger's
    cps, _ = asyncio.run(
        read_partition(cluster.client_options(), prefix + "ledger-checkpoints", forged_in)
    )
    forged = orjson.loads(cps[-1][1])
    text = checkpoint_text(
        forged["chain"], forged["tree_size"], base64.b64decode(forged["root_hash"])
    )
    forged["note"] = other.sign(text)
    asyncio.run(
        produce_to(cluster, prefix + "ledger-checkpoints", forged_in, None, orjson.dumps(forged))
    )

    second = workers(**LEDGER_ENV)
    second.wait_ready()

    def halted(partition: int) -> float:
        series = f'governor_ledger_chain_halted{{chain="governor.local/ledger/{partition}"}}'
        return metric_value(second, series, second.ledger_url)

    wait_for(lambda: halted(planted_in) == 1 and halted(forged_in) == 1, 60)
    before = asyncio.run(end_offsets(cluster, prefix + "ledger"))
    more, _, _ = decision_inputs(readings=240, batches=0)
    more = [(k, v.replace(b"evt-", b"evt-more-")) for k, v in more]
    asyncio.run(produce(cluster, prefix + "meter-readings", more))
    healthy = [p for p in before if p not in (planted_in, forged_in)]
    wait_for(lambda: sum(asyncio.run(end_offsets(cluster, prefix + "ledger")).values())
             > sum(before.values()) + 50, 60)  # fmt: skip
    after = asyncio.run(end_offsets(cluster, prefix + "ledger"))
    assert after[planted_in] == before[planted_in], "appended to a chain with a planted record"
    assert after[forged_in] == before[forged_in], "appended under a forged checkpoint"
    assert any(after[p] > before[p] for p in healthy)
    log = second.log_file.read_text()
    assert "its source record is gone" in log and "checkpoint rejected" in log
