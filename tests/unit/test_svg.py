"""The report's SVG charts: deterministic, escaped, and honest about missing data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.tools.report import Report, Subject, render
from app.tools.svg import bar_chart, line_chart

T0 = datetime(2024, 1, 15, tzinfo=UTC)


def test_line_and_bar_charts_are_deterministic_and_escape_text() -> None:
    series = {"<b>": [(T0 + timedelta(hours=h), float(h)) for h in range(5)]}
    chart = line_chart("A & B", series, "kg", threshold=("limit", 3.0))
    assert chart == line_chart("A & B", series, "kg", threshold=("limit", 3.0))
    assert "A &amp; B" in chart and "&lt;b&gt;" in chart and "<b>" not in chart
    assert chart.count('class="series"') == 1 and 'class="threshold"' in chart
    bars = bar_chart("By source", {"coal": 3.0, "solar": 1.0}, "kg")
    assert bars.index("coal") < bars.index("solar") and bars.count('class="bar"') == 2


def test_empty_data_says_so_and_the_page_is_self_contained() -> None:
    assert "no data" in line_chart("x", {}, "kg") and "no data" in bar_chart("x", {}, "kg")
    report = Report(Subject.FACILITY, "f<1>", T0, T0 + timedelta(days=1))
    report.charts.append(bar_chart("x", {"a": 1.0}, "kg"))
    report.tables.append(("Alerts", ["time"], []))
    page = render(report)
    assert page.startswith("<!DOCTYPE html>") and "f&lt;1&gt;" in page
    assert "<script" not in page and "none</td>" in page
