"""The drain loop's per-record ``wait_first`` without tasks (app/runtime/delivery_in_place.py):
the same results as mode's, a delivery that waits still abandoned when flow is suspended,
and Faust's drain loop still making the call the workaround recognises."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from typing import Any

import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.consumer import Consumer
from mode import Service

from app.runtime.delivery_in_place import DeliveryInPlace, is_delivery


class Drainer(DeliveryInPlace, Service):
    """A mode service with the consumer's flow event, as Faust's consumer has."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()
        self.tasks_created = 0


def count_tasks(monkeypatch: pytest.MonkeyPatch, drainer: Drainer) -> None:
    ensure = asyncio.ensure_future

    def counted(*args: Any, **kwargs: Any) -> Any:
        drainer.tasks_created += 1
        return ensure(*args, **kwargs)

    monkeypatch.setattr(asyncio, "ensure_future", counted)


async def test_a_delivery_that_does_not_wait_runs_in_place_and_creates_no_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drainer = Drainer()
    delivered: list[int] = []

    async def on_message(n: int) -> int:
        delivered.append(n)
        return n * 2

    count_tasks(monkeypatch, drainer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the unused flow wait is closed, not left un-awaited
        result = await drainer.wait_first(on_message(21), drainer.suspend_flow.wait())
    assert delivered == [21]
    assert result.results == [42] and not result.stopped
    assert drainer.tasks_created == 0


async def test_a_delivery_that_waits_finishes_through_modes_wait_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drainer = Drainer()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(0)  # full: the delivery waits for room

    async def on_message(n: int) -> str:
        await queue.put(n)
        return "delivered"

    count_tasks(monkeypatch, drainer)
    waiting = asyncio.ensure_future(drainer.wait_first(on_message(1), drainer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert queue.get_nowait() == 0  # room: the delivery goes on where it stopped
    result = await asyncio.wait_for(waiting, 1)
    assert result.results == ["delivered"]
    assert queue.get_nowait() == 1
    assert drainer.tasks_created > 1  # mode's own path, as before


async def test_a_delivery_blocked_when_flow_is_suspended_is_abandoned() -> None:
    drainer = Drainer()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(0)
    cancelled = asyncio.Event()

    async def on_message(n: int) -> None:
        try:
            await queue.put(n)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(drainer.wait_first(on_message(1), drainer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    drainer.suspend_flow.set()  # a rebalance
    result = await asyncio.wait_for(waiting, 1)
    assert len(result.done) == 1 and result.done[0] is not None
    await asyncio.sleep(0)
    assert cancelled.is_set() and queue.qsize() == 1  # not delivered


async def test_an_error_in_the_delivery_propagates() -> None:
    drainer = Drainer()

    async def on_message() -> None:
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        await drainer.wait_first(on_message(), drainer.suspend_flow.wait())


async def test_other_calls_and_suspended_flow_take_modes_path() -> None:
    drainer = Drainer()

    async def value() -> int:
        return 1

    other, pause = value(), asyncio.sleep(0)
    assert not is_delivery((other, pause))
    pause.close()
    assert (await drainer.wait_first(other, asyncio.sleep(0.5))).results[0] == 1
    drainer.suspend_flow.set()
    result = await drainer.wait_first(value(), drainer.suspend_flow.wait())
    assert result.results  # mode's path: the flow wait is among the winners


def test_fausts_drain_loop_still_makes_the_call_this_replaces() -> None:
    flat = " ".join(inspect.getsource(Consumer._drain_messages).split())
    assert "await self.wait_first( callback(message), self.suspend_flow.wait() )" in flat
    assert faust_consumer.Event is asyncio.Event  # what suspend_flow is made of
