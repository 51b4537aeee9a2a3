"""One owned chain: its head and its writer.

A chain is ledger partition ``p``, written through a :class:`~app.runtime.fenced_writer.
FencedWriter` whose transactional id is the chain's (``<app id>-ledger-<partition>``): the
chain's next owner fences a zombie appender before reading the head back, and records and
the checkpoints that cover them commit together. A leaf's offset is its index plus the
commit markers before it, which the writer counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.ledger.chain import ChainHead
from app.runtime.fenced_writer import FencedWriter


@dataclass(slots=True)
class ChainWriter:
    """One owned chain: its head, its writer, when it was last checkpointed."""

    head: ChainHead
    out: FencedWriter
    checkpointed_at: float

    @property
    def partition(self) -> int:
        return self.out.partition
