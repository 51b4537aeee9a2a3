"""ride_out: a step that fails as an unreachable broker does is tried again until the
deadline; any other error is not."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from app.runtime.retry import ride_out


async def test_transient_failures_are_ridden_out() -> None:
    calls: list[int] = []

    async def step() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        return "done"

    assert await ride_out(step, "test", deadline_s=60, first_wait_s=0.01) == "done"
    assert len(calls) == 3


async def test_past_the_deadline_or_not_transient_it_raises() -> None:
    async def down() -> None:
        raise ConnectionRefusedError

    with pytest.raises(ConnectionRefusedError):
        await ride_out(down, "test", deadline_s=0.05, first_wait_s=0.02)

    async def bug() -> None:
        raise KeyError("a bug, not the broker")

    with pytest.raises(KeyError):
        await ride_out(bug, "test", deadline_s=60)


async def test_a_stray_cancellation_is_ridden_out_a_real_one_is_not() -> None:
    """aiokafka issue 974: a timed-out request can raise CancelledError into a task nobody
    cancelled. That is the broker's weather; cancelling the task itself still cancels it."""
    calls: list[int] = []

    async def stray() -> str:
        calls.append(1)
        if len(calls) < 2:
            inner = asyncio.ensure_future(asyncio.sleep(10))
            inner.cancel()
            await inner  # raises CancelledError here, though this task was not cancelled
        return "done"

    assert await ride_out(stray, "test", deadline_s=60, first_wait_s=0.01) == "done"
    assert len(calls) == 2

    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.ensure_future(ride_out(slow, "test", deadline_s=60))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
