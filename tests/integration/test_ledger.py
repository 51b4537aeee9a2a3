"""Every decision on a real broker lands in the ledger once, chains verify, proofs check."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from app.ledger.note import Signer
from tests.factories import batch
from tests.integration.harness import (
    REPO,
    Cluster,
    WorkerProcess,
    governor_env,
    metric_value,
    produce,
    wait_for,
)
from tests.integration.test_audit_pipeline import SITES_ENV, sample_ticks
from tests.integration.test_audit_pipeline import as_records as tick_records
from tests.integration.test_carbon_pipeline import sample_readings

pytestmark = pytest.mark.integration

SEED = base64.b64encode(os.urandom(32)).decode()
LEDGER_ENV = {
    "GOVERNOR_LEDGER__SIGNING_KEY": SEED,
    "GOVERNOR_LEDGER__CHECKPOINT_EVERY_RECORDS": "500",
    "GOVERNOR_LEDGER__CHECKPOINT_EVERY_S": "1",
    "GOVERNOR_AUDIT__SITES": SITES_ENV,
}
VKEY = Signer.from_seed("governor-ledger", base64.b64decode(SEED)).verifier_key()


def appended(worker: WorkerProcess) -> int:
    return int(metric_value(worker, 'governor_ledger_records_total{outcome="appended"}'))


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
    return records, ticks, readings + 100 * batches + len(ticks)


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
    wait_for(lambda: metric_value(worker, "governor_ledger_checkpoints_total") >= 6, 30)

    verified = ledger_cli(worker, "verify", "--vkey", VKEY)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    chains = [line for line in verified.stdout.splitlines() if line.startswith("chain ")]
    assert len(chains) == 6 and all(line.endswith(": ok") for line in chains)

    proved = ledger_cli(worker, "prove", "tick-000007")
    assert proved.returncode == 0, proved.stderr
    proof = orjson.loads(proved.stdout)
    assert proof["decision_id"] == "tick-000007" and proof["checkpoint_note"].startswith(
        proof["chain"]
    )
