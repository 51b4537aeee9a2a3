"""Nothing lost, nothing counted twice across a SIGKILL of a worker and its restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from schemas.budget_audit import ComplianceAlert, SlotRecord
from schemas.carbon_emission import CarbonEmission
from tests.factories import batch
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    applied_readings,
    applied_ticks,
    kill_mid_stream,
    metric_total,
    produce,
    read_to_end,
    wait_for,
)
from tests.integration.test_audit_pipeline import (
    CONFIG,
    SITES_ENV,
    expected_reports,
    sample_ticks,
    wait_for_reports,
)
from tests.integration.test_audit_pipeline import as_records as as_tick_records
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    sample_readings,
    wait_for_totals,
)
from tests.unit.test_audit_rules import Audit

pytestmark = pytest.mark.integration
FACILITIES = 12


OUT_OF_ORDER = "governor_state_out_of_order_writes_total"


def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    singles = sample_readings(12_000, facilities=FACILITIES)
    records = as_records(singles)
    batched = []
    for n in range(60):
        facility = f"facility-{n % FACILITIES:03d}"
        items = sample_readings(50, facilities=1, start=20_000 + n * 50)
        items = [r.model_copy(update={"facility_id": facility}) for r in items]
        batched.extend(items)
        records.insert(n * 200, (facility.encode(), batch(items, f"b-{n}").to_json_bytes()))
    everything = singles + batched
    asyncio.run(produce(cluster, prefix + "meter-readings", records))

    worker = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="crash-test-worker")
    worker.wait_ready()
    total = len(everything)
    progress = kill_mid_stream(worker, applied_readings, total)
    expected = expected_totals(everything)
    wait_for_totals(worker, expected, timeout_s=180)

    wanted = {r.event_id for r in everything}

    def emitted_ids() -> set[str]:
        # Re-sent emissions are on the topic too, so reading `total` records is not enough.
        got = asyncio.run(read_to_end(cluster, prefix + "carbon-emissions"))
        return {CarbonEmission.from_json_bytes(m.value).event_id for m in got}

    try:
        ids = wait_for(lambda: (found := emitted_ids()) >= wanted and found, 90, 1)
    except AssertionError:
        missing = sorted(wanted - emitted_ids())
        pytest.fail(f"{len(missing)} accepted readings have no emission record: {missing[:10]}")
    assert ids == wanted, "an emission record for no accepted reading"
    assert metric_total(worker, OUT_OF_ORDER) == 0  # every dedup segment and outbox entry kept
    print(f"killed after {progress}/{total} applied")


def test_sigkill_mid_audit_stream_loses_no_tick_and_counts_none_twice(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    ticks = sample_ticks(sites=12, days=21, per_day=24)  # three ISO weeks per site
    repeated = ticks[::50]  # producer retries: the same event ids again, later
    asyncio.run(produce(cluster, prefix + "control-ticks", as_tick_records(ticks + repeated)))

    member = {"GOVERNOR_WORKER__GROUP_INSTANCE_ID": "audit-crash-worker"}
    worker = workers(GOVERNOR_AUDIT__SITES=SITES_ENV, **member)
    worker.wait_ready()
    total = len(ticks)
    progress = kill_mid_stream(worker, applied_ticks, total)
    wait_for_reports(worker, expected_reports(ticks), timeout_s=180)

    wanted = {t.event_id for t in ticks}

    def logged_ids() -> set[str]:
        logged = asyncio.run(read_to_end(cluster, prefix + "budget-audit"))
        return {SlotRecord.from_json_bytes(m.value).event_id for m in logged}

    try:
        wait_for(lambda: logged_ids() >= wanted, 60, 1)
    except AssertionError:
        missing = sorted(wanted - logged_ids())
        pytest.fail(f"{len(missing)} applied ticks are missing from the slot log: {missing[:10]}")
    assert logged_ids() == wanted, "a slot record for no tick"
    assert metric_total(worker, OUT_OF_ORDER) == 0

    versions = asyncio.run(read_to_end(cluster, prefix + "budget-audit-rollups"))
    by_version: dict[str, set[bytes]] = {}
    for m in versions:
        by_version.setdefault(orjson.loads(m.value)["rollup_id"], set()).add(m.value)
    assert all(len(values) == 1 for values in by_version.values()), "a rollup version changed"

    want = {a.alert_id: a.to_json_bytes() for a in Audit(config=CONFIG).run(ticks).alerts}

    def alerts_by_id() -> dict[str, set[bytes]]:
        by_id: dict[str, set[bytes]] = {}
        for m in asyncio.run(read_to_end(cluster, prefix + "budget-compliance-alerts")):
            by_id.setdefault(ComplianceAlert.from_json_bytes(m.value).alert_id, set()).add(m.value)
        return by_id

    wait_for(lambda: alerts_by_id().keys() >= want.keys(), 30, 1)
    sent = alerts_by_id()
    assert sent == {alert_id: {value} for alert_id, value in want.items()}
    print(f"killed after {progress}/{total} ticks; {len(versions) - total} rollup versions re-sent")
