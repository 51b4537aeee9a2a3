"""/health (readiness, with liveness implied), /health/live and /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.runtime.broker_watch import BrokerWatch
from app.runtime.faust_app import Governor
from app.runtime.status import app_status
from app.runtime.web import View
from app.web.http import reply


def readiness(gov: Governor, broker: BrokerWatch) -> dict[str, bool]:
    """Each readiness condition separately, so a 503 says which one is missing."""
    status = app_status(gov.faust)
    return {
        "partitions_assigned": status.partitions_assigned,
        "rebalance_finished": status.rebalance_finished,
        "table_recovery_finished": status.table_recovery_finished,
        "broker_reachable": broker.reachable is not False,
    }


def register(
    gov: Governor, registry: CollectorRegistry, serve_metrics: bool
) -> Callable[[], dict[str, Any]]:
    """The health pages; returns what /health reports, for pages that include it."""
    app = gov.faust
    worker = gov.settings.worker
    broker = BrokerWatch(
        app, gov.metrics, worker.broker_check_interval_s, worker.broker_check_timeout_s,
        worker.broker_outage_deadline_s,
    )  # fmt: skip
    app.task(broker.run)

    def report() -> dict[str, Any]:
        checks = readiness(gov, broker)
        ready = all(checks.values())
        return {"status": "ready" if ready else "not_ready", "live": True, "checks": checks}

    @app.page("/health")
    class Health(View):
        async def get(self, request: Any) -> Any:
            body = report()
            status = 200 if body["status"] == "ready" else 503
            return reply(self, request, gov, "/health", body, status=status)

    @app.page("/health/live")
    class Live(View):
        async def get(self, request: Any) -> Any:
            return reply(self, request, gov, "/health/live", {"live": True})

    if serve_metrics:

        @app.page("/metrics")
        class Metrics(View):
            async def get(self, request: Any) -> Any:
                # aiohttp refuses a charset inside content_type (a 500 on every scrape):
                # the exposition's content type goes in the header, as Faust's sensor does.
                headers = {"Content-Type": CONTENT_TYPE_LATEST}
                return self.bytes(generate_latest(registry), headers=headers)

    return report
