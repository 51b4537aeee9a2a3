"""Workaround: Faust's consumer spends four tasks on every record it delivers.

``Consumer._drain_messages`` (faust/transport/consumer.py, faust-streaming 0.15) hands each
fetched record to the conductor with ``await self.wait_first(callback(message),
self.suspend_flow.wait())``. mode's ``Service.wait_first`` wraps both, and the service's
stopped and crashed events, in a task each, waits for the first with ``asyncio.wait`` and
cancels the other three: per record, four tasks, several event-loop iterations and three
cancellations, whether or not anything waits. The callback (the conductor's
``on_message``: decode, then put the event on each subscribed channel's queue) almost
never waits: only while flow is suspended, the producer's buffer is over its high-water
mark or a channel's queue is full.

So the delivery is run in place up to its first suspension. If it finishes there (the
common case) nothing else is created, and the result is what ``wait_first`` would have
returned. If it suspends, the rest of it goes to mode's ``wait_first`` with the flow wait,
exactly as before: a rebalance that suspends flow still abandons a delivery blocked on a
full queue. Only that call is changed (a callback and the ``suspend_flow`` wait, in that
order); ``tests/unit/test_delivery_in_place.py`` fails if Faust's drain loop stops making
it.

Off by default (``worker.deliver_in_place``): measured on 2026-12-04, the carbon agent
drained single readings 8-16 % faster with it, but HTTP ingest beside the agents fell from
2,710 to 1,303 readings/s one per call (29,606 to 20,998 in batches), and a bare Faust
``stream.events()`` agent from about 16,000 to 10,000 events/s, idle twice as much; why is
not yet known (benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any

from mode.services import WaitResults

_FLOW_WAIT = asyncio.Event.wait.__code__
"""The code of ``Consumer.suspend_flow.wait()`` (an ``asyncio.Event``)."""


@types.coroutine
def _continued(coro: Coroutine[Any, Any, Any], first: Any) -> Generator[Any, Any, Any]:
    """The rest of ``coro``, which yielded ``first`` at its first suspension: every value
    sent or thrown in (a future's completion, a cancellation) goes on to ``coro``."""
    yielded = first
    while True:
        try:
            received = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # a cancellation included: ``coro`` decides
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(received)
            except StopIteration as stop:
                return stop.value


async def _rest(coro: Coroutine[Any, Any, Any], first: Any) -> Any:
    return await _continued(coro, first)


def is_delivery(coros: tuple[Any, ...]) -> bool:
    """Whether a ``wait_first`` call is the drain loop's: a coroutine, then the flow wait."""
    return (
        len(coros) == 2
        and isinstance(coros[0], types.CoroutineType)
        and isinstance(coros[1], types.CoroutineType)
        and coros[1].cr_code is _FLOW_WAIT
    )


class DeliveryInPlace:
    """Mixin for Faust's consumer: the drain loop's ``wait_first`` without tasks when the
    delivery does not wait."""

    suspend_flow: asyncio.Event

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109
        if is_delivery(coros) and not self.suspend_flow.is_set():
            delivery, flow_wait = coros
            try:
                first = delivery.send(None)
            except StopIteration as stop:
                flow_wait.close()
                return WaitResults([delivery], [stop.value], False)
            except BaseException:
                flow_wait.close()
                raise
            coros = (_rest(delivery, first), flow_wait)
        done: WaitResults = await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc]
        return done
