"""The Grafana dashboards are generated, current, and query only metrics Governor exports."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry

from agents.audit.metrics import AuditMetrics
from agents.carbon.metrics import CarbonMetrics
from agents.facility.metrics import FacilityMetrics
from agents.fusion.metrics import FusionMetrics
from agents.ledger.metrics import LedgerMetrics
from agents.traffic.metrics import TrafficMetrics
from app.metrics import Metrics
from app.tools.dashboards import DASHBOARDS, OUT, files

FAUST = {"faust_topic_partition_end_offset", "faust_topic_partition_offset_commited",
         "faust_total_rebalances", "up"}  # fmt: skip


def test_the_checked_in_dashboards_are_current() -> None:
    for name, text in files().items():
        assert (OUT / name).read_text(encoding="utf-8") == text, "run `governor dashboards`"
    assert {p.name for p in OUT.glob("*.json")} == set(files())


def test_every_panel_and_variable_queries_an_exported_metric() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(10, registry)
    FusionMetrics(metrics, 1_000, 10_000)
    CarbonMetrics(metrics)
    AuditMetrics(metrics)
    TrafficMetrics(metrics, 1_000)
    FacilityMetrics(metrics)
    LedgerMetrics(metrics)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    exported = {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    for dashboard in DASHBOARDS:
        model = json.loads(files()[f"{dashboard.uid}.json"])
        names = {v["name"] for v in model["templating"]["list"]}
        assert "datasource" in names
        queries = [p["targets"][0]["expr"] for p in model["panels"]]
        queries += [v["definition"] for v in model["templating"]["list"] if "definition" in v]
        for query in queries:
            for metric in re.findall(r"\b(governor_[a-z_]+|faust_[a-z_]+|up)\b", query):
                assert metric in exported or metric in FAUST, (dashboard.uid, metric)
            for variable in re.findall(r"\$(\w+)", query):
                assert variable in names, (dashboard.uid, variable)
