"""control-ticks → budget audit on a real broker: slot log, rollups, alerts, reports, export."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from agents.audit.rules.report import fold_slots, period_report
from agents.audit.rules.ticks import slot_record_of
from agents.audit.settings import AuditSettings, SiteSettings
from schemas.budget_audit import ComplianceAlert, DayRollupRecord, SlotRecord
from schemas.control_tick import ControlTick
from schemas.dead_letter import DeadLetter, DeadLetterReason
from tests.factories import BASE_TIME, tick
from tests.integration.harness import (
    REPO,
    Cluster,
    WorkerProcess,
    governor_env,
    http_get,
    produce,
    read_all,
    wait_for,
)
from tests.unit.test_audit_rules import Audit

pytestmark = pytest.mark.integration

SITES_ENV = '{"site-000": {"capacity_kw": 1.0}, "site-001": {"capacity_kw": 1000.0}}'
CONFIG = AuditSettings(
    sites={"site-000": SiteSettings(capacity_kw=1.0), "site-001": SiteSettings(capacity_kw=1000.0)}
)
DAY = BASE_TIME.date()


def sample_ticks(
    sites: int = 3, days: int = 3, per_day: int = 24, start: int = 0
) -> list[ControlTick]:
    """Hourly ticks per site; costs vary so the projections cross site-000's ceiling."""
    out = []
    for n in range(start, start + sites * days * per_day):
        site, slot = n % sites, n // sites
        out.append(
            tick(
                n,
                event_id=f"tick-{n:06d}",
                site_id=f"site-{site:03d}",
                timestamp=BASE_TIME.replace(hour=0, minute=0) + timedelta(hours=slot),
                slot_index=slot % per_day,
                energy_cost_kwh=round(0.002 * (n * 7919 % 97), 3),
                actual_offset_deg=round(((n * 31) % 200) / 10 - 10, 1),
                gate_passed=n % 3 == 0,
            )
        )
    return out


def as_records(ticks: list[ControlTick]) -> list[tuple[bytes, bytes]]:
    return [(t.site_id.encode(), t.to_json_bytes()) for t in ticks]


def expected_reports(ticks: list[ControlTick]) -> dict[str, dict[str, Any]]:
    """Each site's current-period report from the unique ticks, without the worker."""
    unique = {t.event_id: t for t in ticks}
    by_site = fold_slots(slot_record_of(t) for t in unique.values())
    reports = {}
    for site, days in by_site.items():
        newest = max(days)
        start = newest - timedelta(days=newest.weekday())
        report = period_report(site, start, start + timedelta(days=6), days.values(), CONFIG)
        reports[site] = report.model_dump(mode="json")
    return reports


def http_reports(worker: WorkerProcess, sites: list[str]) -> dict[str, Any]:
    found = {}
    for site in sites:
        status, body = http_get(f"{worker.url}/api/v1/audit/report/{site}")
        if status == 200:
            found[site] = body
    return found


def wait_for_reports(
    worker: WorkerProcess, expected: dict[str, dict[str, Any]], timeout_s: float = 90.0
) -> None:
    """Until every site's HTTP report equals ``expected``; on timeout, show the differences."""
    sites = sorted(expected)
    try:
        wait_for(lambda: http_reports(worker, sites) == expected, timeout_s)
    except AssertionError:
        got = http_reports(worker, sites)
        diff = {s: (got.get(s), expected[s]) for s in sites if got.get(s) != expected[s]}
        raise AssertionError(f"reports of {worker.url} differ (got, want): {diff}") from None


def run_cli(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = governor_env(worker.cluster, worker.prefix, GOVERNOR_AUDIT__SITES=SITES_ENV)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_ticks_become_slot_log_rollups_alerts_and_reports(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    ticks = sample_ticks()
    day_one = [t for t in ticks if t.timestamp.date() == DAY]
    later = [t for t in ticks if t.timestamp.date() != DAY]
    # Day one arrives after the later days (late ticks), and two ticks are published twice.
    ordered = [*later, *day_one, ticks[5], ticks[40]]
    bad = [
        (b"site-000", b"\xff not json"),
        (b"site-999", tick(999, site_id="site-000").to_json_bytes()),
    ]
    worker = workers(GOVERNOR_AUDIT__SITES=SITES_ENV)
    worker.wait_ready()
    asyncio.run(produce(cluster, prefix + "control-ticks", [*as_records(ordered), *bad]))

    expected = expected_reports(ordered)
    sites = sorted(expected)
    wait_for_reports(worker, expected)
    assert expected["site-000"]["slots"] == 72 and expected["site-000"]["period_days"] == 3
    assert expected["site-000"]["compliant"] is False
    assert expected["site-001"]["compliant"] is True
    assert expected["site-002"]["compliant"] is None  # no capacity configured

    # Slot log: every tick once (no crash here, so no re-sends), keyed by site.
    logged = asyncio.run(read_all(cluster, prefix + "budget-audit", len(ticks), 30))
    slots = [SlotRecord.from_json_bytes(m.value) for m in logged]
    assert sorted(s.event_id for s in slots) == sorted(t.event_id for t in ticks)
    assert all(m.key == s.site_id.encode() for m, s in zip(logged, slots, strict=True))

    # Rollups: one version per applied tick; the last of a day is its summary.
    versions = asyncio.run(read_all(cluster, prefix + "budget-audit-rollups", len(ticks), 30))
    rollups = [DayRollupRecord.from_json_bytes(m.value) for m in versions]
    assert len({r.rollup_id for r in rollups}) == len(rollups) == len(ticks)
    last = max((r for r in rollups if r.site_id == "site-000" and r.utc_day == DAY),
               key=lambda r: r.slots)  # fmt: skip
    assert last.slots == 24 and last.rollup_id == f"site-000|{DAY}|24"

    # Alerts: exactly those the rules give for each site's ticks in partition order.
    want_alerts = Audit(config=CONFIG).run(ordered).alerts
    got = asyncio.run(read_all(cluster, prefix + "budget-compliance-alerts", len(want_alerts), 30))
    assert len(want_alerts) >= 1
    assert sorted(ComplianceAlert.from_json_bytes(m.value).alert_id for m in got) == sorted(
        a.alert_id for a in want_alerts
    )

    # The two bad records are dead-lettered with their bytes and reasons.
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 2, 30))
    decoded = [DeadLetter.from_json_bytes(m.value) for m in letters]
    assert sorted(d.reason for d in decoded) == [
        DeadLetterReason.KEY_MISMATCH,
        DeadLetterReason.UNDECODABLE,
    ]
    assert b"\xff not json" in {base64.b64decode(d.value_b64) for d in decoded}

    # Daily summaries and the all-sites report over HTTP.
    status, daily = http_get(f"{worker.url}/api/v1/audit/daily/site-000/{DAY}")
    assert status == 200 and daily["slots"] == 24
    status, everyone = http_get(f"{worker.url}/api/v1/audit/report")
    assert status == 200 and [r["site_id"] for r in everyone] == sites
    assert http_get(f"{worker.url}/api/v1/audit/report/nowhere")[0] == 404
    status, body = http_get(f"{worker.url}/api/v1/audit/daily/site-000/yesterday")
    assert status == 400 and "YYYY-MM-DD" in body["error"]
    status, body = http_get(f"{worker.url}/api/v1/audit/report/site-000?from={DAY}")
    assert status == 400 and "both from and to" in body["error"]

    # The command line reads the slot log and agrees with the worker's tables.
    cli = run_cli(worker, "report", "--site", "site-000", "--period", "current")
    assert cli.returncode == 0, cli.stderr
    assert orjson.loads(cli.stdout) == expected["site-000"]
    whole = orjson.loads(run_cli(worker, "report", "--site", "site-000").stdout)
    site_days = sorted({t.timestamp.date() for t in ordered if t.site_id == "site-000"})
    assert (whole["from_date"], whole["to_date"]) == (str(site_days[0]), str(site_days[-1]))
    same = ("slots", "total_cost_kwh", "period_days", "projected_annual_kwh", "compliant")
    assert {k: whole[k] for k in same} == {k: expected["site-000"][k] for k in same}
    cli = run_cli(worker, "report", "--site", "site-001", "--daily", str(DAY))
    status, daily = http_get(f"{worker.url}/api/v1/audit/daily/site-001/{DAY}")
    assert cli.returncode == 0 and orjson.loads(cli.stdout) == daily
    ranged = f"from={DAY}&to={DAY + timedelta(days=1)}"
    status, body = http_get(f"{worker.url}/api/v1/audit/report/site-002?{ranged}")
    cli = run_cli(worker, "report", "--site", "site-002", "--from", str(DAY), "--to",
                  str(DAY + timedelta(days=1)))  # fmt: skip
    assert status == 200 and body["period_days"] == 2
    assert orjson.loads(cli.stdout) == body
    table = run_cli(worker, "report", "--format", "table")
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 1 + len(sites)

    # Export: the slot log of days two and three, each tick once, as Parquet.
    out = tmp_path / "slots.parquet"
    first, last = DAY + timedelta(days=1), DAY + timedelta(days=2)
    cli = run_cli(worker, "export", "--from", str(first), "--to", str(last), "--out", str(out))
    assert cli.returncode == 0, cli.stderr
    exported = pq.read_table(out).to_pylist()
    assert sorted(r["event_id"] for r in exported) == sorted(t.event_id for t in later)
    row = next(r for r in exported if r["event_id"] == later[0].event_id)
    assert row["energy_cost_kwh"] == later[0].energy_cost_kwh
    assert row["date"] == later[0].timestamp.date() and isinstance(row["date"], date)
    assert not (tmp_path / "slots.parquet.partial").exists()
