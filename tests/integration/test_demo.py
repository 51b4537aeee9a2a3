"""The README's main job (`governor demo --once`) runs end to end and shows its results."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.tools.localkafka import free_port
from tests.integration.harness import Cluster, governor_env

pytestmark = pytest.mark.integration


def test_demo_runs_once_against_the_cluster(cluster: Cluster, prefix: str, tmp_path: Path) -> None:
    env = governor_env(
        cluster,
        prefix,
        GOVERNOR_WORKER__APP_ID=f"demo-{prefix.rstrip('-')}",
        GOVERNOR_WORKER__WEB_PORT=str(free_port()),
        GOVERNOR_LEDGER__METRICS_PORT=str(free_port()),
    )
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "demo",
                "--once",
                "--readings",
                "800",
                "--requests",
                "1500",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        shown = (exc.stdout or b"").decode(errors="replace")[-3000:]
        pytest.fail(f"demo did not finish in {exc.timeout}s; its output:\n{shown}")
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "all 800 readings processed" in out
    assert "facility-007:    100 readings" in out
    assert "negative_consumption" in out and "undecodable" in out
    assert "all 1152 control ticks processed" in out
    site_000 = next(line.split() for line in out.splitlines() if line.startswith("  site-000"))
    assert site_000[4] == "288" and "False" in site_000  # 288 slots, over its ceiling
    assert "1 compliance alert(s)" in out
    assert "Traffic policy 1.0.0 signed and published" in out
    assert "all 1500 request events decided" in out
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("  CONTROL ", "  OBSERVE_ONLY "))]  # fmt: skip
    assert sum(int(r[2]) for r in rows) == 1500, rows
    kinds = {(r[0], r[1]) for r in rows}
    assert {("CONTROL", "ALLOW"), ("CONTROL", "DROP"), ("OBSERVE_ONLY", "ALLOW")} <= kinds
    assert "circuit breaker transition(s)" in out and "requests, circuit" in out
    assert "every decision appended to the ledger" in out
    assert "Carbon budgets set for 8 facilities" in out
    states = re.findall(r"^  facility-\d{3}: .* kg CO2e \(.*\) (\w+) ", out, re.MULTILINE)
    assert sorted(states) == sorted(["ok", "ok", "warning", "warning", "critical", "exceeded",
                                     "exceeded", "ok"]), states  # fmt: skip
    assert "shift 22.0 kW zone-0 → zone-1" in out
    assert "executed\n" in out and "was already executed at" in out
    assert "Shift flexible load" in out or "Replace" in out
    assert "generated AI runs admitted and settled" in out
    outcomes = dict(re.findall(r"^  (admission|settlement) +(\w+) +\d+$", out, re.MULTILINE))
    assert outcomes.get("settlement") == "settled", out[-3000:]
    assert "refund_processing|rollback_first: routing downgraded" in out
    assert "units spent" in out
    chains = [line for line in out.splitlines() if line.startswith("  chain ")]
    assert len(chains) == 6 and all(line.endswith(": ok") for line in chains), chains
    assert "POST /api/v1/readings → {'event_ids': ['http-000000000']" in out
    token = (tmp_path / "var/demo/api-token").read_text()
    assert token not in out + done.stderr, "the API token must not be printed"
    assert (tmp_path / "var/demo/api-token").stat().st_mode & 0o077 == 0
