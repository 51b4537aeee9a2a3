"""Every Grafana panel returns data: a real Prometheus (Debian's package) scrapes a worker
fed by `governor generate`, and each panel's and variable's query is evaluated."""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.tools.dashboards import DASHBOARDS
from app.tools.generate import Workload, generate
from app.tools.localkafka import free_port
from app.tools.sample import sample_policy
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    http_get,
    metric_value,
    produce,
    wait_for,
)

pytestmark = pytest.mark.integration

KEYS = {
    "meter-readings": "facility_id", "load-metrics": "facility_id",
    "carbon-budgets": "facility_id", "grid-intensity": None, "request-events": "platform",
    "fusion-results": "tenant", "control-ticks": "site_id",
}  # fmt: skip
PIPELINES = ("carbon", "carbon-usage", "load-metrics", "traffic", "fusion-results", "audit")


def feed(cluster: Cluster, prefix: str) -> None:
    """An afternoon of every input (zone-0 runs hot), and one undecodable record."""
    import orjson

    start = datetime.now(UTC).replace(hour=13, minute=0, second=0, microsecond=0)
    start -= timedelta(days=1)
    workload = Workload(seed=7, start=start, hours=1, facilities=2, requests_per_s=2.0)
    for topic, key_field in KEYS.items():
        lines = list(itertools.islice(generate(topic, workload), 3000))
        records = []
        for line in lines:
            value = orjson.loads(line)
            if topic == "carbon-budgets" and value["facility_id"] == "facility-000":
                value["limit_kg_co2e"] = 5.0  # crossed within the hour: alerts to show
                line = orjson.dumps(value)
            key = (
                f"{value['zone']}|{value['valid_from']}" if key_field is None else value[key_field]
            )
            records.append((key.encode(), line))
        asyncio.run(produce(cluster, prefix + topic, records))
    asyncio.run(produce(cluster, prefix + "meter-readings", [(b"facility-000", b"\xff")]))


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[str]], str]]:
    """Start Prometheus scraping the given targets every second; yield its URL."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: bin/test installs Debian's prometheus package"
    started: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str]) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n  - job_name: governor\n"
            f"    static_configs: [{{targets: {targets!r}}}]\n"
        )
        log = (tmp_path / "prometheus.log").open("wb")
        started.append(subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(url + "/-/ready")[0] == 200, 30)
        return url

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def query(url: str, expr: str) -> list[Any]:
    status, body = http_get(f"{url}/api/v1/query?query={urllib.parse.quote(expr)}")
    assert status == 200 and body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


def test_every_dashboard_panel_returns_data(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess],
    prometheus: Callable[[list[str]], str],
) -> None:  # fmt: skip
    worker = workers(
        GOVERNOR_TRAFFIC__POLICY=sample_policy().model_dump_json(),
        # The AI runs come in one burst: the overlay stage applies them (and sets the
        # breaker and gate gauges) once the quiet fusion-results partitions are passed.
        GOVERNOR_FUSION__ORDERING__IDLE_PARTITION_S="5",
    )
    worker.wait_ready()
    feed(cluster, prefix)
    for pipeline in PIPELINES:
        series = f'governor_records_total{{outcome="accepted",pipeline="{pipeline}"}}'
        wait_for(lambda s=series: metric_value(worker, s) > 0, 90)
    applied = 'governor_fusion_observations_total{how="in_order"}'
    wait_for(lambda: metric_value(worker, applied) > 0, 90)
    url = prometheus([f"127.0.0.1:{worker.port}"])
    empty: list[str] = []
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            expr = re.sub(r"\$\w+", ".*", panel.expr)
            try:
                wait_for(lambda e=expr: query(url, e), 30, 1)
            except AssertionError:
                empty.append(f"{dashboard.uid}: {panel.title}: {expr}")
        for variable in dashboard.variables:
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable.query).groups()  # type: ignore[union-attr]
            values = http_get(f"{url}/api/v1/label/{label}/values?match[]={metric}")[1]["data"]
            if not values:
                empty.append(f"{dashboard.uid}: variable {variable.name}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
