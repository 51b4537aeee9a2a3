"""Every record the worker gives its producer reaches the broker before the offsets that
cover it are committed, or the worker stops.

aiokafka reports a record the broker refused (larger than the topic's ``max.message.bytes``,
a topic deleted, no authorization) or could not take within its retries only on the future
that ``send`` returned, and its ``flush`` returns all the same. Faust flushes the producer
before each offset commit (``Consumer.commit``) and then commits: a failure nobody looked at
let the commit go ahead, and the changelog record or output it covered was lost while its
source record counted as done. Seen on 2026-12-05 (benchmarks/README.md): a fusion tenant's
state grew to 1 MB, its later changelog records never reached the changelog, and the worker
went on committing (only its stop noticed: "stopped with unsent changelog records"). A
record alone in a batch goes out however large (aiokafka's batch builder always takes the
first record) and the broker refuses it past ``max.message.bytes``.

The guard watches every future the runtime's own sends get (outputs, changelog batches,
forwarded records, dead letters through Faust's ``topic.send``): a failure stops the worker
at once (:func:`fail_stop`, as for any failure to send), and the flush before each commit,
once the producer has drained and the callbacks already due have run, looks at every
watched future itself before Faust may commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.runtime.failstop import fail_stop

_ATTRIBUTE = "_governor_delivery_guard"


class DeliveryGuard:
    """The watched deliveries of one Faust app's producer."""

    def __init__(self, app: Any) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        self._install(app)

    def watch(self, future: asyncio.Future[Any]) -> None:
        """Stop the worker if ``future`` (a send's delivery) fails."""
        if future.done():
            self._settled(future)
            return
        self._pending.add(future)
        future.add_done_callback(self._settled)

    def check(self) -> None:
        """Stop the worker if any watched delivery has failed (called once the producer has
        drained, before a commit)."""
        for future in list(self._pending):
            if future.done():
                self._settled(future)

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if future.cancelled():
            fail_stop("delivery", asyncio.CancelledError("a record's delivery was cancelled"))
        exc = future.exception()
        if exc is not None:
            fail_stop("delivery", exc)

    def _install(self, app: Any) -> None:
        """Make the flush that precedes every offset commit check the deliveries."""
        producer = app.producer
        original = producer.flush

        async def flush() -> None:
            await original()
            await asyncio.sleep(0)  # callbacks already due (Faust's, that fail its own futures)
            self.check()

        producer.flush = flush


def delivery_guard(app: Any) -> DeliveryGuard:
    """The guard of ``app``'s producer (made, and its flush wrapped, at the first call)."""
    guard: DeliveryGuard | None = getattr(app, _ATTRIBUTE, None)
    if guard is None:
        guard = DeliveryGuard(app)
        setattr(app, _ATTRIBUTE, guard)
    return guard
