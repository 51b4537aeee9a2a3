"""Reading a chain's head back from the log when an appender takes the chain.

With a signing key, nothing found is adopted unchecked (:mod:`app.ledger.resume`): the
newest checkpoint must verify, the records after it must link from what it signed, and each
must be what the ledger makes of the decision record it names. Without a key there is no
anchor to check against; the head is taken as found (and a warning says so at start).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from app.ledger.chain import ChainHead, head_from_records
from app.ledger.merkle import Frontier
from app.ledger.note import Verifier
from app.ledger.resume import (
    Untrusted,
    check_tail,
    first_needed,
    source_mismatch,
    trusted_frontier,
)
from app.runtime.topic_reader import partition_end, read_keyed, read_last, read_partition
from schemas.ledger import LedgerCheckpoint, LedgerRecord


@dataclass(frozen=True)
class ChainLocation:
    """Where one chain lives, and what its records may name."""

    options: dict[str, Any]
    prefix: str
    partition: int
    chain: str
    id_fields: dict[str, str]
    """Decision topic (unprefixed) → the field that identifies its decisions."""
    recent_ids: int


async def load_head(
    where: ChainLocation, verifier: Verifier | None
) -> tuple[ChainHead | None, int, int]:
    """The chain's head (None if its log is empty), the ledger offset its next record gets
    and the offset of its last record (-1: none; commit markers lie between records);
    raises :class:`Untrusted` if a key is set and what was found does not check out."""
    ledger, checkpoints = where.prefix + "ledger", where.prefix + "ledger-checkpoints"
    # Only the newest checkpoint: the log of checkpoints grows without bound.
    newest = await read_last(where.options, checkpoints, where.partition)
    frontier, covered_until = Frontier(), -1
    if newest is not None:
        if verifier is not None:
            frontier = trusted_frontier(newest.value, verifier, where.chain)
        checkpoint = LedgerCheckpoint.from_json_bytes(newest.value)
        if verifier is None:
            frontier = Frontier(checkpoint.tree_size, tuple(map(_b64, checkpoint.frontier)))
        covered_until = checkpoint.ledger_offset
    end = await partition_end(where.options, ledger, where.partition)
    back = max(0, end - where.recent_ids)
    start = min(first_needed(frontier) if verifier else covered_until + 1, back)
    records, end = await read_partition(where.options, ledger, where.partition, start=start)
    if not records:
        if frontier.size:
            raise Untrusted(f"chain {where.chain}: empty log under a checkpoint of {frontier.size}")
        return None, end, -1
    if verifier is not None:
        await check_sources(where, check_tail(where.chain, frontier, covered_until, records))
    head = head_from_records(where.chain, frontier, covered_until, records, where.recent_ids)
    return head, end, records[-1][0]


async def check_sources(where: ChainLocation, records: list[LedgerRecord]) -> None:
    """Each record must be what the ledger makes of the decision record it names."""
    by_topic: dict[str, list[LedgerRecord]] = defaultdict(list)
    for record in records:
        source = record.source
        if source is None or source.partition != where.partition:
            raise Untrusted(f"chain {where.chain}: seq {record.seq} names no source of its chain")
        if source.topic not in where.id_fields:
            raise Untrusted(f"chain {where.chain}: seq {record.seq} names {source.topic!r}")
        by_topic[source.topic].append(record)
    for topic, named in by_topic.items():
        offsets = [r.source.offset for r in named if r.source is not None]
        read, _ = await read_keyed(
            where.options, where.prefix + topic, where.partition, min(offsets), max(offsets) + 1
        )
        sources = {f.offset: (f.key, f.value) for f in read}
        for record in named:
            assert record.source is not None
            key, value = sources.get(record.source.offset, (None, None))
            why = (
                "its source record is gone"
                if record.source.offset not in sources
                else source_mismatch(record, key, value, where.id_fields[topic])
            )
            if why is not None:
                raise Untrusted(f"chain {where.chain}: seq {record.seq} ({topic}): {why}")


def _b64(text: str) -> bytes:
    return base64.b64decode(text)
