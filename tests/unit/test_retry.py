"""ride_out: a step that fails as an unreachable broker does is tried again until the
deadline; any other error is not."""

from __future__ import annotations

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
