"""An outbox: the outputs of recent source records, in the same table as the state they
came with, so that a re-delivered record can re-send exactly what it sent.

Why the same table: a table's changelog writes for one source partition all go to the same
changelog partition, in order. If a SIGKILL cuts the producer's buffer, whatever state
survives was written after the outbox entries of every record it includes; so a record
whose effect is in the recovered state has its outputs in the recovered outbox, even when
the output topics lost them. (State and outputs in different partitions have no such
order: the state of record N can survive while the outputs of record N-5 are lost, and
N-5's decision could not be recomputed from a state that already holds N.)

Entries are kept for the newest ``keep_per_partition`` records of each source partition,
far more than are ever uncommitted (Faust commits every second); older ones are deleted,
at most ``DELETES_PER_RECORD`` per new entry.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from app.rules.dedup import Position

log = logging.getLogger(__name__)

PREFIX = "@"
"""Outbox keys start with this; state keys never do."""
DELETES_PER_RECORD = 2

Outputs = TypeVar("Outputs")
State = TypeVar("State")


class Entry(BaseModel, Generic[State, Outputs]):
    """A value of a table with an outbox: a key's state, or the outputs of one source record
    (under an outbox key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: State | None = None
    outputs: Outputs | None = None


def outbox_key(position: Position, name: str = "") -> str:
    """``@<name>:<partition>:<offset>`` (``@<partition>:<offset>`` without a name)."""
    named = f"{name}:" if name else ""
    return f"{PREFIX}{named}{position.partition}:{position.offset}"


class Outbox(Generic[Outputs]):
    """Outbox entries of one table; ``wrap``/``unwrap`` convert to and from its values."""

    def __init__(
        self,
        table: Any,
        wrap: Callable[[Outputs], Any],
        unwrap: Callable[[Any], Outputs | None],
        keep_per_partition: int,
        name: str = "",
    ) -> None:
        self.table = table
        self.name = name
        self._wrap = wrap
        self._unwrap = unwrap
        self._keep = keep_per_partition
        self._index: dict[int, deque[str]] = {}
        self._pending_deletes: deque[str] = deque()

    def ensure_indexed(self, partition: int) -> None:
        """Index ``partition``'s recovered entries, once per assignment."""
        if partition in self._index:
            return
        prefix = outbox_key(Position(partition=partition, offset=0), self.name)[:-1]
        offsets = sorted(int(k[len(prefix) :]) for k in self.table if k.startswith(prefix))
        self._index[partition] = deque(f"{prefix}{o}" for o in offsets)
        log.info("outbox %s[%d] holds %d entries", self.table.name, partition, len(offsets))

    def last_offset(self, partition: int) -> int | None:
        """The newest source offset with an entry (a record known to be processed)."""
        self.ensure_indexed(partition)
        entries = self._index[partition]
        return int(entries[-1].rsplit(":", 1)[1]) if entries else None

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition's index (rebuilt if it comes back)."""
        self._index.pop(partition, None)

    def get(self, position: Position) -> Outputs | None:
        value = self.table.get(outbox_key(position, self.name))
        return None if value is None else self._unwrap(value)

    def record(self, position: Position, outputs: Outputs) -> None:
        """Keep ``outputs`` of the record at ``position``; write it before the state."""
        self.ensure_indexed(position.partition)
        key = outbox_key(position, self.name)
        entries = self._index[position.partition]
        if entries and entries[-1] == key:
            return
        self.table[key] = self._wrap(outputs)
        entries.append(key)
        while len(entries) > self._keep:
            self._pending_deletes.append(entries.popleft())
        for _ in range(min(DELETES_PER_RECORD, len(self._pending_deletes))):
            self.table.pop(self._pending_deletes.popleft(), None)
