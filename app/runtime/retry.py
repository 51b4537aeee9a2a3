"""Riding out a broker outage at a step that talks to Kafka outside Faust's own retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (KafkaError, OSError, asyncio.TimeoutError)
"""What an unreachable or restarting broker raises: connection refused, unable to
bootstrap, not the leader, request timed out."""


def stray_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is a CancelledError that nobody asked for: aiokafka issue 974, a
    request that times out while the broker is down can surface as ``CancelledError``
    instead of a timeout (seen here: a compacted feed's start, during a broker restart on
    Kafka 4.1.1, ended silently with it while every other feed got KafkaTimeoutError).
    A cancellation of the running task itself is real and must propagate."""
    task = asyncio.current_task()
    return isinstance(exc, asyncio.CancelledError) and task is not None and not task.cancelling()


async def ride_out(
    step: Callable[[], Awaitable[T]], what: str, deadline_s: float, first_wait_s: float = 0.5
) -> T:
    """``step()``, tried again with backoff (to 10 s) while it fails as an unreachable broker
    does (including a :func:`stray_cancellation`); raise its error once the failures have
    lasted ``deadline_s``."""
    started = time.monotonic()
    wait = first_wait_s
    while True:
        try:
            return await step()
        except (*TRANSIENT, asyncio.CancelledError) as exc:
            if not isinstance(exc, TRANSIENT) and not stray_cancellation(exc):
                raise
            if time.monotonic() - started > deadline_s:
                raise
            log.warning("%s: %r; trying again in %.1f s", what, exc, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 10.0)


async def started(client: Any) -> None:
    """Start an aiokafka client; if it cannot, close what it opened before raising (a retry
    then starts a fresh one instead of leaking the half-started one)."""
    try:
        await client.start()
    except BaseException:
        closing = getattr(client, "stop", None) or client.close  # the admin client has close()
        with contextlib.suppress(Exception):
            await closing()
        raise
