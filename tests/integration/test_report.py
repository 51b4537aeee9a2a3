"""`governor report`: a self-contained HTML report per facility, site and tenant, read from a
real broker's decision topics and rendered by headless Chromium (Debian's package)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.tools.sample import sample_fusion_run, sample_tick
from schemas.carbon_budget import CarbonBudget, CarbonPeriod
from tests.factories import reading
from tests.integration.harness import (
    REPO,
    Cluster,
    WorkerProcess,
    governor_env,
    metric_value,
    produce,
    wait_for,
)

pytestmark = pytest.mark.integration


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("chromium missing: bin/test installs Debian's chromium package")


def render_dom(html: Path, tmp_path: Path) -> str:
    """The DOM Chromium builds from the file, serialised after it loaded."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", html.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_reports_render_with_their_plots(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) - timedelta(hours=3)
    budget = CarbonBudget(facility_id="plant-9", period=CarbonPeriod.MONTH, limit_kg_co2e=20.0,
                          updated_at=start)  # fmt: skip
    asyncio.run(produce(cluster, prefix + "carbon-budgets", [(b"plant-9", budget.to_json_bytes())]))
    readings = [reading(n, facility_id="plant-9", event_id=f"rp-{n}", consumption_kwh=2.0,
                        timestamp=start + timedelta(minutes=n)) for n in range(40)]  # fmt: skip
    asyncio.run(produce(cluster, prefix + "meter-readings",
                        [(b"plant-9", r.to_json_bytes()) for r in readings]))  # fmt: skip
    runs = [sample_fusion_run(n, start, "rp", tenants=1)[1] for n in range(60)]
    asyncio.run(produce(cluster, prefix + "fusion-results",
                        [(r.tenant.encode(), r.to_json_bytes()) for r in runs]))  # fmt: skip
    ticks = [sample_tick(n, start, 1, "rp") for n in range(24)]
    asyncio.run(produce(cluster, prefix + "control-ticks",
                        [(t.site_id.encode(), t.to_json_bytes()) for t in ticks]))  # fmt: skip
    worker = workers()
    worker.wait_ready()
    for pipeline, count in (("carbon-usage", 40), ("fusion-results", 60), ("audit", 24)):
        series = f'governor_records_total{{outcome="accepted",pipeline="{pipeline}"}}'
        wait_for(lambda s=series, c=count: metric_value(worker, s) >= c, 90)

    period = ["--from", (start - timedelta(hours=1)).isoformat(), "--to",
              (start + timedelta(hours=4)).isoformat()]  # fmt: skip
    for subject, entity, plots in (
        ("facility", "plant-9", 3),
        ("site", ticks[0].site_id, 3),
        ("tenant", runs[0].tenant, 2),
    ):
        out = tmp_path / f"{subject}.html"
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "report", subject, entity, *period,
             "--out", str(out)],
            cwd=REPO, env=governor_env(cluster, prefix), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        html = out.read_text()
        assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
        dom = render_dom(out, tmp_path)
        charts = re.findall(r'<svg[^>]*class="chart"', dom)
        assert len(charts) == plots, (subject, len(charts))
        assert "no data" not in dom, subject
        assert re.search(r'<(path class="series"|rect class="bar")', dom), subject
        if subject == "facility":
            assert (
                'class="threshold"' in dom and "exceeded" in dom
            )  # 40 x 2 kWh x 0.42 = 33.6 kg > 20 kg
            assert dom.count('class="series"') >= 2  # location- and market-based
