"""The tools' sender says when a queued record was refused, at its flush."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.runtime.sender import Sender


class Producer:
    """aiokafka's shape: ``send`` queues and returns the record's future; ``flush`` returns
    once each is delivered or failed (here: those sent to ``refused`` fail)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, asyncio.Future[Any]]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queued.append((topic, future))
        return future

    async def flush(self) -> None:
        for topic, future in self.queued:
            if topic == "refused":
                future.set_exception(ValueError("MessageSizeTooLarge"))
            else:
                future.set_result(None)
        self.queued = []


async def test_a_refused_queued_record_fails_the_flush_and_the_next_flush_is_clean() -> None:
    sender = Sender(Producer())  # type: ignore[arg-type]
    await sender.queue("fine", b"v")
    await sender.flush()  # all delivered: nothing raised
    for topic in ("fine", "refused", "fine"):
        await sender.queue(topic, b"v")
    with pytest.raises(RuntimeError, match="1 queued record"):
        await sender.flush()
    await sender.queue("fine", b"v")
    await sender.flush()  # the failure was reported once
