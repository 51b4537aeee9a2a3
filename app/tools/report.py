"""`governor report`: a self-contained HTML report (inline SVG plots, no scripts, no external
files) of one facility, site or tenant over a period, read from the decision topics.

- facility: emissions over time (location- and market-based), emissions by source, budget
  usage over time against the warning and critical thresholds, budget alerts and load
  decisions;
- site: the controller's budget spend over time, energy cost per day, gate results,
  compliance alerts;
- tenant: AI energy spend over time against its limit, decisions by outcome, rejections.

Records re-sent after a crash are counted once (by their ids).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from html import escape
from typing import Any

import orjson

from app.runtime.topic_reader import read_topic
from app.tools.svg import bar_chart, line_chart

MAX_POINTS = 400


class Subject(StrEnum):
    FACILITY = "facility"
    SITE = "site"
    TENANT = "tenant"


@dataclass
class Report:
    subject: Subject
    entity: str
    start: datetime
    end: datetime
    charts: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    summary: list[tuple[str, str]] = field(default_factory=list)


async def _values(
    options: dict[str, Any], topic: str, entity: str, id_field: str
) -> AsyncIterator[dict[str, Any]]:
    """The entity's records of ``topic``, each id once, in offset order."""
    seen: set[str] = set()
    async for message in read_topic(options, topic):
        if message.key != entity.encode():
            continue
        value = orjson.loads(message.value)
        if value[id_field] in seen:
            continue
        seen.add(value[id_field])
        yield value


def _within(value: dict[str, Any], field_name: str, start: datetime, end: datetime) -> bool:
    return start <= datetime.fromisoformat(value[field_name]) < end


def _thin(points: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    kept = [points[int(i * step)] for i in range(MAX_POINTS)]
    return [*kept, points[-1]]


def _cumulative(rows: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    total, out = 0.0, []
    for when, value in sorted(rows, key=lambda r: r[0]):
        total += value
        out.append((when, total))
    return _thin(out)


async def facility_report(
    options: dict[str, Any], prefix: str, report: Report, thresholds: tuple[float, float]
) -> None:
    location: list[tuple[datetime, float]] = []
    market: list[tuple[datetime, float]] = []
    by_source: dict[str, float] = defaultdict(float)
    kwh = 0.0
    async for e in _values(options, prefix + "carbon-emissions", report.entity, "event_id"):
        if not _within(e, "timestamp", report.start, report.end):
            continue
        when = datetime.fromisoformat(e["timestamp"])
        location.append((when, e["emissions_kg_co2e"]))
        market.append((when, e.get("market_based_kg_co2e", e["emissions_kg_co2e"])))
        by_source[e["energy_source"]] += e["emissions_kg_co2e"]
        kwh += e["consumption_kwh"]
    report.charts.append(line_chart(
        "Cumulative emissions", {"location-based": _cumulative(location),
                                 "market-based": _cumulative(market)}, "kg CO2e"))  # fmt: skip
    report.charts.append(bar_chart("Emissions by source", dict(by_source), "kg CO2e"))
    usage: list[tuple[datetime, float]] = []
    alerts: list[list[str]] = []
    async for a in _values(options, prefix + "carbon-budget-alerts", report.entity, "alert_id"):
        when = a["reading_timestamp"] or a["period_start"]
        if _within({"t": when}, "t", report.start, report.end):
            usage.append((datetime.fromisoformat(when), a["usage_ratio"] * 100))
            alerts.append([when, a["previous_state"], a["state"], a["reason"],
                           f"{100 * a['usage_ratio']:.1f} %"])  # fmt: skip
    report.charts.append(line_chart(
        "Budget usage at each state change", {"usage": usage}, "% of the period's limit",
        threshold=(f"critical {thresholds[1]:g} %", thresholds[1]),
    ))  # fmt: skip
    report.tables.append(("Budget alerts", ["time", "from", "to", "reason", "usage"], alerts))
    decisions: list[list[str]] = []
    async for d in _values(options, prefix + "load-decisions", report.entity, "record_id"):
        if _within(d, "decided_at", report.start, report.end):
            decisions.append([d["decided_at"], d["decision_id"], d["action"], d["zone_id"],
                              str(d["amount_kw"]), d["status"], d["reason"]])  # fmt: skip
    report.tables.append(("Load-balancing decisions",
                          ["decided", "id", "action", "zone", "kW", "status", "reason"],
                          decisions))  # fmt: skip
    report.summary += [
        ("energy", f"{kwh:,.3f} kWh"),
        ("emissions, location-based", f"{sum(v for _, v in location):,.3f} kg CO2e"),
        ("emissions, market-based", f"{sum(v for _, v in market):,.3f} kg CO2e"),
        ("budget alerts", str(len(alerts))),
        ("load decisions", str(len(decisions))),
    ]


async def site_report(options: dict[str, Any], prefix: str, report: Report) -> None:
    spend: list[tuple[datetime, float]] = []
    per_day: dict[str, float] = defaultdict(float)
    gates: dict[str, float] = defaultdict(float)
    async for s in _values(options, prefix + "budget-audit", report.entity, "event_id"):
        if not _within(s, "timestamp", report.start, report.end):
            continue
        spend.append((datetime.fromisoformat(s["timestamp"]), s["energy_cost_kwh"]))
        per_day[s["utc_day"]] += s["energy_cost_kwh"]
        gates["gate passed" if s["gate_passed"] else "gate failed"] += 1
    report.charts.append(line_chart("Cumulative controller energy", {"energy cost":
                                    _cumulative(spend)}, "kWh"))  # fmt: skip
    report.charts.append(bar_chart("Energy cost per day", dict(per_day), "kWh"))
    report.charts.append(bar_chart("Gate results", dict(gates), "slots"))
    alerts = [
        [a["event_time"], a["period_start"], a["previous_state"], a["state"]]
        async for a in _values(options, prefix + "budget-compliance-alerts", report.entity,
                               "alert_id")
        if _within(a, "event_time", report.start, report.end)
    ]  # fmt: skip
    report.tables.append(("Compliance alerts", ["time", "period", "from", "to"], alerts))
    report.summary += [("slots", str(len(spend))),
                       ("energy cost", f"{sum(v for _, v in spend):,.3f} kWh")]  # fmt: skip


async def tenant_report(options: dict[str, Any], prefix: str, report: Report) -> None:
    spend: list[tuple[datetime, float]] = []
    outcomes: dict[str, float] = defaultdict(float)
    rejections: list[list[str]] = []
    limit: float | None = None
    async for d in _values(options, prefix + "energy-decisions", report.entity, "decision_id"):
        if not _within(d, "event_time", report.start, report.end):
            continue
        when = datetime.fromisoformat(d["event_time"])
        outcomes[d["outcome"]] += 1
        limit = d["budget"]["limit_units"] or limit
        if d["kind"] == "settlement":
            spend.append((when, d["final_units"]))
        if d["outcome"] == "rejected":
            rejections.append([d["event_time"], d["event_id"], d["scenario_type"],
                               d["overlay"], ", ".join(d["reasons"])])  # fmt: skip
    report.charts.append(line_chart(
        "Cumulative energy spend (settled)", {"spent": _cumulative(spend)}, "units",
        threshold=(f"limit {limit:g}", limit) if limit else None,
    ))  # fmt: skip
    report.charts.append(bar_chart("Decisions by outcome", dict(outcomes), "decisions"))
    report.tables.append(("Rejections", ["time", "run", "scenario", "overlay", "reasons"],
                          rejections))  # fmt: skip
    report.summary += [("settled runs", str(len(spend))),
                       ("units spent", f"{sum(v for _, v in spend):,.3f}")]  # fmt: skip


async def build(
    options: dict[str, Any], prefix: str, subject: Subject, entity: str, start: datetime,
    end: datetime, thresholds: tuple[float, float] = (80.0, 95.0),
) -> Report:  # fmt: skip
    """Read the subject's decision topics and lay out its report."""
    report = Report(subject, entity, start, end)
    if subject is Subject.FACILITY:
        await facility_report(options, prefix, report, thresholds)
    elif subject is Subject.SITE:
        await site_report(options, prefix, report)
    else:
        await tenant_report(options, prefix, report)
    return report


def render(report: Report) -> str:
    """The self-contained HTML document."""
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in report.summary)
    tables = []
    for title, header, body in report.tables:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        lines = (
            "".join(
                "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                for row in body[:500]
            )
            or f'<tr><td colspan="{len(header)}">none</td></tr>'
        )
        tables.append(f"<h2>{escape(title)}</h2><table><tr>{head}</tr>{lines}</table>")
    title = f"Governor report: {report.subject.value} {report.entity}"
    period = f"{report.start.isoformat()} to {report.end.isoformat()}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
        "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;"
        "text-align:left}svg.chart{display:block;margin:1em 0}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(period)} (UTC)</p>"
        f'<table class="summary">{rows}</table>'
        + "\n".join(report.charts)
        + "\n".join(tables)
        + "</body></html>\n"
    )
