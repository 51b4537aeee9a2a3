"""Synchronous answers from the stream: an HTTP request publishes a record with an id to a
topic this worker owns the partition of, and waits here until the agent that processes it
resolves that id (POST /api/v1/fusion/validate, the balancing commands)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
RecordKey = tuple[str, str]
"""(entity, record id): a tenant and an event id, a facility and a command id."""


class Waiters(Generic[T]):
    """Pending requests by (entity, record id), on this worker's event loop: ids are an
    entity's own, so one caller cannot receive the answer to another entity's record."""

    def __init__(self) -> None:
        self._pending: dict[RecordKey, asyncio.Future[T]] = {}

    async def publish_and_wait(
        self, record_id: RecordKey, publish: Callable[[], Awaitable[Any]], timeout_s: float
    ) -> T | None:
        """Publish, then wait for the answer to ``record_id``; ``None`` after ``timeout_s``
        (the record is published and will still be processed). The waiter is registered
        before publishing, so an answer that comes at once is not missed."""
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[record_id] = answer
        try:
            await publish()
            try:
                return await asyncio.wait_for(answer, timeout_s)
            except TimeoutError:
                return None
        finally:
            self._pending.pop(record_id, None)

    def resolve(self, record_id: RecordKey, value: T) -> None:
        """Answer the request waiting for ``record_id``, if one waits on this worker."""
        answer = self._pending.pop(record_id, None)
        if answer is not None and not answer.done():
            answer.set_result(value)
