"""Where the consumer group resumed each partition this worker was assigned: read from the
broker when the assignment arrives, before Faust delivers or commits anything under it.

Why the agents need it: Faust flushes its producer before it commits offsets, so every
record below a committed offset has had its outputs sent. A record at or after the resume
point may have been processed (its state and outbox entry survived a SIGKILL) while its
outputs were lost with the producer's buffer; it is safe only once it is handled again,
which re-sends those outputs from the outbox. When faust-streaming 0.15 then passes over
such a record (acknowledging it without delivering it), the agent's repair must start at
the resume point, not after the newest record its state shows as processed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from app.runtime.topic_reader import resume_offsets

log = logging.getLogger(__name__)

Fetch = Callable[[list[tuple[str, int]]], Awaitable[dict[tuple[str, int], int]]]

FETCH_TIMEOUT_S = 10.0
"""Longest a rebalance waits for the broker's answer (far below the session timeout)."""


class ResumePoints:
    """The resume offsets of the assigned partitions of the watched topics."""

    def __init__(self, fetch: Fetch, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._fetch = fetch
        self._timeout_s = timeout_s
        self._topics: set[str] = set()
        self._points: dict[tuple[str, int], int] = {}

    @classmethod
    def for_group(cls, options: Callable[[], dict[str, Any]], group: str) -> ResumePoints:
        """Resume points of consumer group ``group``, read with the aiokafka ``options()``."""
        return cls(lambda partitions: resume_offsets(options(), group, partitions))

    def watch(self, topic: str) -> None:
        """Track ``topic``'s partitions from the next assignment on."""
        self._topics.add(topic)

    def get(self, topic: str, partition: int) -> int | None:
        """The offset the group resumed ``partition`` at; ``None`` if unknown (not assigned,
        or the broker did not answer)."""
        return self._points.get((topic, partition))

    async def on_partitions_assigned(self, sender: Any, assigned: Iterable[Any], **_: Any) -> None:
        """Read the resume points of the new assignment (Faust awaits this before the
        assigned partitions are recovered and resumed)."""
        wanted = sorted((tp.topic, tp.partition) for tp in assigned if tp.topic in self._topics)
        self._points = {}
        if not wanted:
            return
        started = time.perf_counter()
        try:
            self._points = await asyncio.wait_for(self._fetch(wanted), self._timeout_s)
        except Exception as exc:  # the repair falls back to what the state shows processed
            log.warning("resume offsets of the new assignment unknown: %r", exc)
            return
        log.info(
            "resume offsets of %d assigned partitions read in %.0f ms",
            len(wanted), (time.perf_counter() - started) * 1000,
        )  # fmt: skip

    async def on_partitions_revoked(self, sender: Any, revoked: Iterable[Any], **_: Any) -> None:
        """A revoked partition resumes elsewhere; its point is read again if it comes back."""
        for tp in revoked:
            self._points.pop((tp.topic, tp.partition), None)
