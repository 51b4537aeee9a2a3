"""An outbox: the outputs of recent source records, in the same table as the state they
came with, so that a re-delivered record can re-send exactly what it sent.

Why the same table: a table's changelog writes for one source partition all go to the same
changelog partition, in order. If a SIGKILL cuts the producer's buffer, whatever state
survives was written after the outbox entries of every record it includes; so a record
whose effect is in the recovered state has its outputs in the recovered outbox, even when
the output topics lost them. (State and outputs in different partitions have no such
order: the state of record N can survive while the outputs of record N-5 are lost, and
N-5's decision could not be recomputed from a state that already holds N.)

Entries live in blocks: consecutive records of a source partition share one table key,
``@<name>:<partition>:<first offset>``, rewritten in place until it holds ``BLOCK_ENTRIES``
records, so a commit interval's records cost one or two changelog records instead of one
each. A block is rewritten after state that came later, so the table flushes outbox keys
before state keys (:mod:`app.runtime.state`): a block as flushed holds the outputs of every
record handled so far.

Blocks are kept while they hold the newest ``keep_per_partition`` records of each source
partition, far more than are ever uncommitted (Faust commits every second); older ones are
deleted, at most ``DELETES_PER_RECORD`` per new entry.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from app.core.dedup import Position
from app.core.outbox_entry import Entry, Outputs
from app.runtime.state import JOURNAL_PREFIX

log = logging.getLogger(__name__)

PREFIX = JOURNAL_PREFIX
"""Outbox keys start with this; state keys never do."""
DELETES_PER_RECORD = 2
BLOCK_ENTRIES = 64
"""Records per block before the next one starts; bounds the bytes a flush rewrites."""


def outbox_key(position: Position, name: str = "") -> str:
    """``@<name>:<partition>:<offset>`` (``@<partition>:<offset>`` without a name)."""
    named = f"{name}:" if name else ""
    return f"{PREFIX}{named}{position.partition}:{position.offset}"


@dataclass(slots=True)
class _Block(Generic[Outputs]):
    key: str
    value: Any
    """The table value (an :class:`Entry`) that holds ``entries``."""
    entries: dict[int, Outputs]
    first: int
    last: int

    def open(self) -> bool:
        """Whether records may still be added (a value from before blocks never is)."""
        return self.value.block is not None and len(self.entries) < BLOCK_ENTRIES


class Outbox(Generic[Outputs]):
    """Outbox blocks of one table, whose values are ``entry``."""

    def __init__(
        self,
        table: Any,
        entry: type[Entry[Any, Outputs]],
        keep_per_partition: int,
        name: str = "",
        out_of_order: Callable[[], None] = lambda: None,
    ) -> None:
        self.table = table
        self._out_of_order = out_of_order
        """Called for each new entry refused as older than one recorded (counted, logged)."""
        self.name = name
        self._entry = entry
        self._keep = keep_per_partition
        self._blocks: dict[int, deque[_Block[Outputs]]] = {}
        self._kept: dict[int, int] = {}
        """Per partition, the entries in its blocks."""
        self._pending_deletes: deque[str] = deque()

    def _prefix(self, partition: int) -> str:
        return outbox_key(Position(partition=partition, offset=0), self.name)[:-1]

    def ensure_indexed(self, partition: int) -> None:
        """Index ``partition``'s recovered blocks, once per assignment."""
        if partition in self._blocks:
            return
        prefix = self._prefix(partition)
        blocks: deque[_Block[Outputs]] = deque()
        found = sorted((int(k[len(prefix) :]), k) for k in self.table if k.startswith(prefix))
        for first, key in found:
            value = self.table[key]
            entries = value.block.entries if value.block is not None else {first: value.outputs}
            if entries:
                blocks.append(_Block(key, value, entries, min(entries), max(entries)))
        self._blocks[partition] = blocks
        self._kept[partition] = sum(len(b.entries) for b in blocks)
        log.info(
            "outbox %s[%d] holds %d entries in %d blocks",
            self.table.name, partition, self._kept[partition], len(blocks),
        )  # fmt: skip

    def last_offset(self, partition: int) -> int | None:
        """The newest source offset with an entry (a record known to be processed)."""
        self.ensure_indexed(partition)
        blocks = self._blocks[partition]
        return blocks[-1].last if blocks else None

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition's index (rebuilt if it comes back)."""
        self._blocks.pop(partition, None)
        self._kept.pop(partition, None)

    def get(self, position: Position) -> Outputs | None:
        """The outputs recorded for the record at ``position`` (newest blocks first: the
        records asked for are re-deliveries of recent ones)."""
        self.ensure_indexed(position.partition)
        for block in reversed(self._blocks[position.partition]):
            if block.first <= position.offset:
                return block.entries.get(position.offset)
        return None

    def record(self, position: Position, outputs: Outputs) -> None:
        """Keep ``outputs`` of the record at ``position``; write it before the state."""
        partition, offset = position.partition, position.offset
        self.ensure_indexed(partition)
        blocks = self._blocks[partition]
        if blocks and offset <= blocks[-1].last:
            if self.get(position) is None:  # not a re-delivery: a record after a later one
                log.warning(
                    "outbox %s[%d]: entry at offset %d refused, offset %d recorded already",
                    self.table.name, partition, offset, blocks[-1].last,
                )  # fmt: skip
                self._out_of_order()
            return  # a re-delivered record: its outputs are there
        if not blocks or not blocks[-1].open():
            value = self._entry.model_validate({"block": {"entries": {}}})
            assert value.block is not None
            key = outbox_key(position, self.name)
            blocks.append(_Block(key, value, value.block.entries, offset, offset))
        block = blocks[-1]
        block.entries[offset] = outputs
        block.last = offset
        self.table[block.key] = block.value  # the same object: marks the block dirty
        self._kept[partition] += 1
        while self._kept[partition] - len(blocks[0].entries) >= self._keep:
            self._kept[partition] -= len(blocks[0].entries)
            self._pending_deletes.append(blocks.popleft().key)
        for _ in range(min(DELETES_PER_RECORD, len(self._pending_deletes))):
            self.table.pop(self._pending_deletes.popleft(), None)
