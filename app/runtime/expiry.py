"""Table keys that lapse a set span of event time after their last use.

State keyed by ids a producer invents (a client id per request, say) would otherwise grow
with every new id until the worker runs out of memory, and slow every recovery on the way.
Time here is event time, per source partition: a partition that lags in event time keeps
its keys as long as its own events need them. Expiring must not change a decision: use it
only for values that decide nothing once ``ttl_s`` of event time has passed (a rate window
that has rolled off, say), so that however the deletes are scheduled, replays agree.

Deletes are paced like the dedup store's (one changelog write each): at most
``DELETES_PER_TOUCH`` per key touched.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.core.watermark import Watermarked

log = logging.getLogger(__name__)

V = TypeVar("V")

DELETES_PER_TOUCH = 4


@dataclass(slots=True)
class _Partition:
    queue: deque[tuple[float, str]] = field(default_factory=deque)
    newest_s: float = float("-inf")


class ExpiringKeys(Generic[V]):
    """Keeps one table's keys to those used within ``ttl_s`` of each partition's newest
    event time."""

    def __init__(
        self,
        table: MutableMapping[str, V],
        ttl_s: float,
        last_used_s: Callable[[V], float],
        partition_of: Callable[[V], int],
    ) -> None:
        self.table = table
        self.ttl_s = ttl_s
        self._last_used_s = last_used_s
        self._partition_of = partition_of
        self._partitions: dict[int, _Partition] = {}
        self.expired = 0

    def ensure_indexed(self, partition: int) -> None:
        """Index ``partition``'s recovered keys, once (after recovery, or when the partition
        comes back to this worker)."""
        if partition in self._partitions:
            return
        part = self._partitions[partition] = _Partition()
        found = sorted(
            (self._last_used_s(v), k)
            for k, v in list(self.table.items())
            if self._partition_of(v) == partition
        )
        part.queue.extend(found)
        if found:
            part.newest_s = found[-1][0]
        log.info(
            "expiry index %s[%d]: %d keys", getattr(self.table, "name", "?"), partition, len(found)
        )

    def touched(self, partition: int, key: str, used_s: float) -> None:
        """``key`` was written with a value last used at ``used_s`` (call once per change of
        that time, not per record: the queue holds one entry per change)."""
        part = self._partitions.setdefault(partition, _Partition())
        part.queue.append((used_s, key))
        part.newest_s = max(part.newest_s, used_s)
        horizon = part.newest_s - self.ttl_s
        for _ in range(DELETES_PER_TOUCH):
            if not part.queue or part.queue[0][0] >= horizon:
                return
            _, old = part.queue.popleft()
            value = self.table.get(old)
            if value is None or self._last_used_s(value) >= horizon:
                continue  # gone already, or used again since (a later entry covers it)
            if self._partition_of(value) == partition:
                self.table.pop(old, None)
                self.expired += 1

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition: its keys may change on another worker."""
        self._partitions.pop(partition, None)

    def queued(self) -> int:
        return sum(len(p.queue) for p in self._partitions.values())


def watermarked_partition(value: Watermarked) -> int:
    """The source partition a watermarked value's records came from (-1 if none yet)."""
    return min(value.applied_offsets, default=-1)
