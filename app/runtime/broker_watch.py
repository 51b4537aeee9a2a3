"""Whether the worker can reach its Kafka cluster, checked on a timer: ``/health`` says
not-ready while it cannot, a metric counts it, and only an outage past a deadline (minutes,
configured) ends the process. A broker restart or leader election is weather, not a reason
to exit: Faust's and aiokafka's clients retry, and the pipelines resume where they were.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app.runtime.failstop import fail_stop

log = logging.getLogger(__name__)


class BrokerWatch:
    """Asks the cluster for its metadata every ``interval_s`` through the worker's producer."""

    def __init__(
        self, app: Any, metrics: Any, interval_s: float, timeout_s: float, deadline_s: float
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._deadline_s = deadline_s
        self.reachable: bool | None = None
        """``None`` until the first check."""
        self.down_since: float | None = None

    async def check(self) -> bool:
        """One metadata request to the cluster; ``True`` if it answered in time."""
        try:
            client = self._app.producer._ensure_producer().client
            await asyncio.wait_for(client.fetch_all_metadata(), self._timeout_s)
        except Exception as exc:  # no broker answered: the outage, not a bug
            log.debug("broker check failed: %r", exc)
            return False
        return True

    def record(self, ok: bool, now: float) -> None:
        """Note one check's result; past the deadline of an outage, end the worker."""
        self._metrics.broker_reachable.set(1 if ok else 0)
        if ok:
            if self.down_since is not None:
                log.warning("broker reachable again after %.0f s", now - self.down_since)
            self.down_since = None
        else:
            self._metrics.broker_unreachable.inc()
            if self.down_since is None:
                log.warning("broker unreachable: /health says not ready until it is back")
                self.down_since = now
            elif now - self.down_since > self._deadline_s:
                fail_stop("worker", TimeoutError(
                    f"broker unreachable for {now - self.down_since:.0f} s"
                    f" (worker.broker_outage_deadline_s = {self._deadline_s:.0f})"
                ))  # fmt: skip
        self.reachable = ok

    async def run(self) -> None:
        while True:
            self.record(await self.check(), time.monotonic())
            await asyncio.sleep(self._interval_s)
