"""Budget-audit reports under /api/v1/audit: the HTTP equivalents of ``governor audit report``.

Per-site queries are routed to the worker that owns the site's partition; the all-sites
report asks every worker for the sites it holds.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson

from agents.audit.agent import AuditPipeline
from agents.audit.rules.report import (
    PeriodReport,
    current_period,
    daily_summary,
    newest_day,
    period_report,
)
from app.runtime.faust_app import Governor
from app.runtime.web import View
from app.web.http import problem, reply
from app.web.peers import ask_peers, is_peer_request


class BadQuery(ValueError):
    """A query parameter a person has to fix; becomes a 400."""


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


def requested_range(query: Any) -> tuple[date | None, date | None]:
    """``from``/``to`` query parameters: both or neither, ``from`` not after ``to``."""
    raw_from, raw_to = query.get("from"), query.get("to")
    if (raw_from is None) != (raw_to is None):
        raise BadQuery("give both from and to (YYYY-MM-DD), or neither for the current period")
    if raw_from is None or raw_to is None:
        return None, None
    first, last = parse_day(raw_from, "from"), parse_day(raw_to, "to")
    if first > last:
        raise BadQuery(f"from {first} is after to {last}")
    return first, last


def site_report(
    pipeline: AuditPipeline, site_id: str, first: date | None, last: date | None
) -> PeriodReport | None:
    """A site's report over ``[first, last]``, or its current period; ``None`` if unknown."""
    rollups = pipeline.site_rollups(site_id)
    if not rollups:
        return None
    if first is None or last is None:
        newest = newest_day(rollups)
        assert newest is not None
        first, last = current_period(newest, pipeline.config)
    return period_report(site_id, first, last, rollups, pipeline.config)


def register(gov: Governor, pipeline: AuditPipeline) -> None:
    app = gov.faust

    @app.page("/api/v1/audit/report/{site_id}")
    class SiteReport(View):
        ROUTE = "/api/v1/audit/report/{site_id}"

        @app.table_route(table=pipeline.site_days, match_info="site_id")  # type: ignore[arg-type]
        async def get(self, request: Any, site_id: str) -> Any:
            try:
                first, last = requested_range(request.query)
            except BadQuery as exc:
                return problem(self, request, gov, self.ROUTE, 400, str(exc))
            report = site_report(pipeline, site_id, first, last)
            if report is None:
                return problem(self, request, gov, self.ROUTE, 404, f"no slots for {site_id}")
            return reply(self, request, gov, self.ROUTE, report)

    @app.page("/api/v1/audit/report")
    class AllSitesReport(View):
        ROUTE = "/api/v1/audit/report"

        async def get(self, request: Any) -> Any:
            try:
                first, last = requested_range(request.query)
            except BadQuery as exc:
                return problem(self, request, gov, self.ROUTE, 400, str(exc))
            reports = [
                r
                for site in pipeline.local_sites()
                if (r := site_report(pipeline, site, first, last)) is not None
            ]
            if not is_peer_request(request):
                for body in await ask_peers(gov, request.path_qs):
                    if body is not None:
                        reports.extend(PeriodReport.model_validate(r) for r in orjson.loads(body))
            unique = {r.site_id: r for r in reports}
            return reply(self, request, gov, self.ROUTE, [unique[s] for s in sorted(unique)])

    @app.page("/api/v1/audit/daily/{site_id}/{day}")
    class Daily(View):
        ROUTE = "/api/v1/audit/daily/{site_id}/{day}"

        @app.table_route(table=pipeline.site_days, match_info="site_id")  # type: ignore[arg-type]
        async def get(self, request: Any, site_id: str, day: str) -> Any:
            try:
                utc_day = parse_day(day, "day")
            except BadQuery as exc:
                return problem(self, request, gov, self.ROUTE, 400, str(exc))
            rollups = pipeline.site_rollups(site_id)
            if rollups is None:
                return problem(self, request, gov, self.ROUTE, 404, f"no slots for {site_id}")
            found = next((r for r in rollups if r.utc_day == utc_day), None)
            return reply(self, request, gov, self.ROUTE, daily_summary(site_id, utc_day, found))

    @app.page("/api/v1/audit/days/{site_id}")
    class Days(View):
        ROUTE = "/api/v1/audit/days/{site_id}"

        @app.table_route(table=pipeline.site_days, match_info="site_id")  # type: ignore[arg-type]
        async def get(self, request: Any, site_id: str) -> Any:
            rollups = pipeline.site_rollups(site_id)
            if rollups is None:
                return problem(self, request, gov, self.ROUTE, 404, f"no slots for {site_id}")
            summaries = [daily_summary(site_id, r.utc_day, r) for r in rollups]
            return reply(self, request, gov, self.ROUTE, summaries)
