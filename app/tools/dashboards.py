"""Grafana dashboards of Governor, generated so that every panel is a PromQL query a test can
evaluate against a real Prometheus (tests/integration/test_dashboards.py).

``governor dashboards`` writes ``deploy/grafana/dashboards/*.json``; a unit test fails when
the checked-in files are not what this module generates. Template variables (datasource,
facility, platform, scenario, overlay, pipeline) select series instead of copied panels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    legend: str
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""


@dataclass(frozen=True)
class Variable:
    name: str
    query: str
    """A label_values() query."""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]


FACILITY = Variable("facility", "label_values(governor_energy_consumed_joules_total, facility)")
PLATFORM = Variable("platform", "label_values(governor_traffic_requests_total, platform)")
SCENARIO = Variable("scenario", "label_values(governor_fusion_decisions_total, scenario)")
OVERLAY = Variable("overlay", "label_values(governor_fusion_decisions_total, overlay)")
PIPELINE = Variable("pipeline", "label_values(governor_records_total, pipeline)")
F = 'facility=~"$facility"'
FUSION = 'scenario=~"$scenario", overlay=~"$overlay"'

DASHBOARDS = (
    Dashboard(
        "governor-energy-overview", "Energy Overview",
        "Power and energy by source and facility, zone utilization and balancing decisions"
        " (the energy optimization reference's main dashboard).",
        (FACILITY,),
        (
            Panel("Power drawn by source", f"sum by (source) (rate(governor_energy_consumed_joules_total{{{F}}}[5m])) / 1000", "{{source}}", "kwatt"),
            Panel("Energy consumed per facility (1 h)", f"sum by (facility) (increase(governor_energy_consumed_joules_total{{{F}}}[1h])) / 3.6e6", "{{facility}}", "kwatth"),
            Panel("Zone utilization (highest per facility)", f"max by (facility) (governor_zone_utilization_ratio{{{F}}})", "{{facility}}", "percentunit", "bargauge"),
            Panel("Balancing decisions (1 h)", "sum by (action) (increase(governor_load_balancing_decisions_total[1h]))", "{{action}}"),
        ),
    ),
    Dashboard(
        "governor-carbon-tracking", "Carbon Tracking",
        "Emissions by source, location- and market-based, and carbon budget usage per"
        " facility (the energy optimization reference's carbon dashboard).",
        (FACILITY,),
        (
            Panel("Emissions by source (location-based)", f"sum by (source) (rate(governor_carbon_emissions_grams_total{{{F}}}[5m])) * 3.6", "{{source}}", "kg/h", description="kg CO2e per hour"),
            Panel("Market-based emissions", f"sum by (facility) (rate(governor_carbon_emissions_market_based_grams_total{{{F}}}[5m])) * 3.6", "{{facility}}", "kg/h"),
            Panel("Carbon budget usage", f"max by (facility) (governor_carbon_budget_usage_ratio{{{F}}})", "{{facility}}", "percentunit", "bargauge"),
            Panel("Carbon budget state (0 ok, 1 warning, 2 critical, 3 exceeded)", f"max by (facility) (governor_carbon_budget_state{{{F}}})", "{{facility}}", "short", "stat"),
            Panel("Budget alerts by state (1 h)", "sum by (state) (increase(governor_carbon_budget_alerts_total[1h]))", "{{state}}"),
        ),
    ),
    Dashboard(
        "governor-load-balancing", "Load Balancing",
        "Zone utilization against the target band and the decisions taken.",
        (FACILITY,),
        (
            Panel("Zone utilization", f"max by (facility, zone) (governor_zone_utilization_ratio{{{F}}})", "{{facility}} {{zone}}", "percentunit"),
            Panel("Zones above the scale-up threshold (85 %)", f"count(max by (facility, zone) (governor_zone_utilization_ratio{{{F}}}) > 0.85) or vector(0)", "zones", "short", "stat"),
            Panel("Decisions by action and status (1 h)", "sum by (action, status) (increase(governor_load_balancing_decisions_total[1h]))", "{{action}} {{status}}"),
            Panel("Load metrics evaluated", 'sum(rate(governor_records_total{pipeline="load-metrics"}[5m]))', "metrics/s", "ops"),
        ),
    ),
    Dashboard(
        "governor-ai-cost", "Governor: AI cost governance",
        "Energy decisions, spend, tripwire, budget gates and overlay breakers.",
        (SCENARIO, OVERLAY),
        (
            Panel("Decisions by outcome", f"sum by (result) (rate(governor_fusion_decisions_total{{{FUSION}}}[5m]))", "{{result}}", "ops"),
            Panel("Energy units settled", f"sum by (scenario) (rate(governor_fusion_energy_units_total{{{FUSION}}}[5m]))", "{{scenario}}", "short"),
            Panel("p95 latency", f"histogram_quantile(0.95, sum by (le, scenario, overlay) (rate(governor_fusion_latency_seconds_bucket{{{FUSION}}}[5m])))", "{{scenario}} {{overlay}}", "s"),
            Panel("Token delta p50", f"histogram_quantile(0.5, sum by (le, scenario, overlay) (rate(governor_fusion_token_delta_ratio_bucket{{{FUSION}}}[5m])))", "{{scenario}} {{overlay}}", "percentunit"),
            Panel("Tripwire events (1 h)", f"sum by (scenario, overlay, result) (increase(governor_fusion_tripwire_events_total{{{FUSION}}}[1h]))", "{{scenario}} {{overlay}} {{result}}"),
            Panel("Overlay breaker (0 closed, 1 half-open, 2 open)", f"max by (scenario, overlay) (governor_fusion_breaker_state{{{FUSION}}})", "{{scenario}} {{overlay}}", "short", "stat"),
            Panel("Budget gate (0 pass, 1 warn, 2 block)", f"max by (scenario, overlay) (governor_fusion_gate_state{{{FUSION}}})", "{{scenario}} {{overlay}}", "short", "stat"),
            Panel("Flag usage: admissions by routing", f"sum by (routing) (rate(governor_fusion_routing_total{{{FUSION}}}[5m]))", "{{routing}}", "ops", description="The overlay reference's flag-usage panel: overlay, downgraded or baseline only"),
            Panel("Quality score p50", f"histogram_quantile(0.5, sum by (le, scenario, overlay) (rate(governor_fusion_quality_score_bucket{{{FUSION}}}[15m])))", "{{scenario}} {{overlay}}", "percentunit", description="The overlay reference's quality panel; alerts below 0.85"),
            Panel("Successful runs against the 99.9 % SLO (1 h)", f'sum by (scenario) (increase(governor_fusion_latency_seconds_count{{{FUSION}, result="success"}}[1h])) / sum by (scenario) (increase(governor_fusion_latency_seconds_count{{{FUSION}}}[1h]))', "{{scenario}}", "percentunit", description="Share of finished runs that succeeded; the overlay reference's SLO is 0.999"),
        ),
    ),
    Dashboard(
        "governor-traffic", "Governor: traffic governance",
        "Decisions by kind, risk, circuit breakers and error budgets per platform.",
        (PLATFORM,),
        (
            Panel("Decisions by kind", 'sum by (decision) (rate(governor_traffic_decisions_total{platform=~"$platform"}[5m]))', "{{decision}}", "ops"),
            Panel("Risk score p95", 'histogram_quantile(0.95, sum by (le, platform) (rate(governor_traffic_risk_score_bucket{platform=~"$platform"}[5m])))', "{{platform}}"),
            Panel("Error ratio by contract", 'sum by (contract) (rate(governor_traffic_requests_total{platform=~"$platform", result="error"}[5m])) / sum by (contract) (rate(governor_traffic_requests_total{platform=~"$platform"}[5m]))', "{{contract}}", "percentunit"),
            Panel("Circuit breakers (0 closed, 1 half-open, 2 open)", 'max by (platform, contract) (governor_traffic_circuit_state{platform=~"$platform"})', "{{platform}} {{contract}}", "short", "stat"),
            Panel("Error budget remaining", 'min by (platform, contract) (governor_traffic_error_budget_remaining_ratio{platform=~"$platform"})', "{{platform}} {{contract}}", "percentunit", "bargauge"),
            Panel("Burn-rate alerts (1 h)", "sum by (rule, state) (increase(governor_traffic_burn_rate_alerts_total[1h])) or vector(0)", "{{rule}} {{state}}"),
        ),
    ),
    Dashboard(
        "governor-pipeline-health", "Governor: pipeline health",
        "Throughput, consumer lag, dead letters, processing time and rebalances per worker.",
        (PIPELINE,),
        (
            Panel("Records per second", 'sum by (pipeline) (rate(governor_records_total{pipeline=~"$pipeline"}[1m]))', "{{pipeline}}", "ops"),
            Panel("Consumer lag (records)", "sum by (topic) (max by (topic, partition) (faust_topic_partition_end_offset) - on (topic, partition) max by (topic, partition) (faust_topic_partition_offset_commited))", "{{topic}}"),
            Panel("Dead letters by reason (1 h)", "sum by (topic, reason) (increase(governor_dead_letters_total[1h]))", "{{topic}} {{reason}}"),
            Panel("Processing time p99", 'histogram_quantile(0.99, sum by (le, pipeline) (rate(governor_record_processing_seconds_bucket{pipeline=~"$pipeline"}[5m])))', "{{pipeline}}", "s"),
            Panel("Rebalances", "sum by (instance) (faust_total_rebalances)", "{{instance}}"),
            Panel("Entity tables: fullest partition / limit", "max by (table) (governor_entity_fill_ratio)", "{{table}}", "percentunit", "bargauge"),
            Panel("Workers up", 'sum(up{job="governor"})', "workers", "short", "stat"),
        ),
    ),
)  # fmt: skip


def _panel(panel: Panel, index: int) -> dict[str, Any]:
    width = 12
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": (index % 2) * width, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": [
            {"datasource": DATASOURCE, "expr": panel.expr, "legendFormat": panel.legend,
             "refId": "A"}
        ],
    }  # fmt: skip


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": variable.query, "refId": variable.name},
        "definition": variable.query,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """A Grafana dashboard model (schema version 39)."""
    datasource = {
        "name": "datasource", "type": "datasource", "query": "prometheus",
        "current": {"text": "Prometheus", "value": "prometheus"},
    }  # fmt: skip
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["governor"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource, *(_variable(v) for v in dashboard.variables)]},
        "panels": [_panel(p, i) for i, p in enumerate(dashboard.panels)],
    }


def files() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {
        f"{d.uid}.json": json.dumps(render(d), indent=2, sort_keys=True) + "\n" for d in DASHBOARDS
    }
