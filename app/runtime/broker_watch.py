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

from aiokafka.protocol.metadata import MetadataRequest

from app.runtime.failstop import fail_stop

log = logging.getLogger(__name__)


class BrokerWatch:
    """Asks the cluster for its brokers every ``interval_s`` through the worker's producer.

    Why not aiokafka's ``fetch_all_metadata``: it asks for every topic of the cluster and
    parses the answer in Python on the event loop. With the ~60 topics (~370 partitions) of
    one Governor deployment that was about 70 ms of the loop every check, 3 % of a worker
    draining single readings and a stall in every latency figure; a shared cluster's
    thousands of topics would make it worse. A metadata request for no topics (an empty
    list, Metadata v1 and later) answers just as surely whether a broker is there.
    """

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
        """``True`` if a broker of the cluster answered a metadata request for no topics
        within the timeout (each known broker in turn: one down is not an outage)."""
        try:
            client = self._app.producer._ensure_producer().client
            return await asyncio.wait_for(self._ask(client), self._timeout_s)
        except Exception as exc:  # no broker answered: the outage, not a bug
            log.debug("broker check failed: %r", exc)
            return False

    @staticmethod
    async def _ask(client: Any) -> bool:
        nodes = [broker.nodeId for broker in client.cluster.brokers()]
        if not nodes:  # nothing known yet: the bootstrap servers answer the full request
            await client.fetch_all_metadata()
            return True
        for node_id in nodes:
            try:
                await client.send(node_id, MetadataRequest([]))
            except Exception as exc:
                log.debug("broker %s did not answer: %r", node_id, exc)
                continue
            return True
        return False

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
