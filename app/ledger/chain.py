"""Ledger rules: decisions → hash-chained ledger records, one chain per ledger partition.

Pure: ``(chain head, decisions) -> (new head, record bytes)``; no I/O, no clock. The head a
writer starts from is read back from the ledger topic itself (:func:`head_from_records`),
so a restarted or newly assigned writer continues the chain where the log ends.

Effectively once: every record carries, per decision topic, the highest source offset the
chain holds (``watermarks``); a decision at or below it is one the chain already has (it
was re-delivered after a crash) and is skipped. A decision re-*published* after a crash has
a new offset but the same decision id; the head remembers the newest ``recent_ids_limit``
ids, so it is skipped too.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.ledger.merkle import Frontier, leaf_hash

RECORD_DOMAIN = b"governor.ledger.record.v1\x00"
ZERO_HASH = "0" * 64


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8, shortest round-trip floats."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def record_hash(record_without_hash: dict[str, Any]) -> str:
    return hashlib.sha256(RECORD_DOMAIN + canonical(record_without_hash)).hexdigest()


def seal(record: dict[str, Any]) -> tuple[str, bytes]:
    """Add ``record_hash`` to a record; return the hash and the record's canonical bytes."""
    digest = record["record_hash"] = record_hash(record)
    return digest, canonical(record)


def genesis(chain: str) -> tuple[str, bytes]:
    """The documented first record of every chain."""
    return seal(
        {
            "schema_version": 1,
            "chain": chain,
            "seq": 0,
            "prev_hash": ZERO_HASH,
            "kind": "genesis",
            "decision_type": None,
            "decision_id": None,
            "decision_key": None,
            "decision": None,
            "source": None,
            "watermarks": {},
        }
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision as read from its decision topic."""

    topic: str
    """Unprefixed decision topic: also the decision type."""
    partition: int
    offset: int
    key: str | None
    decision_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Gap:
    """A record of a decision topic that is not a decision: appended as a gap record."""

    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str


def read_decision(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, id_field: str
) -> Decision | Gap:
    """A decision topic's record as the ledger takes it, or the gap it leaves.

    Governor writes decision topics from validated contracts, but anyone with write access
    can put anything there; a record that is not a decision must not stop the ledger (every
    worker that took the partition would crash on it in turn).
    """
    try:
        shown_key = key.decode() if key is not None else None
    except UnicodeDecodeError:
        shown_key = None
    try:
        body = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError as exc:
        return Gap(topic, partition, offset, shown_key, f"not JSON: {exc}"[:200])
    if not isinstance(body, dict):
        return Gap(topic, partition, offset, shown_key, "not a JSON object")
    found = body.get(id_field)
    if not isinstance(found, str | int) or isinstance(found, bool) or found == "":
        return Gap(topic, partition, offset, shown_key, f"no decision id ({id_field!r})")
    if shown_key is None and key is not None:
        return Gap(topic, partition, offset, None, "the key is not UTF-8")
    return Decision(topic, partition, offset, shown_key, str(found), body)


@dataclass(slots=True)
class RecentIds:
    """The newest decision ids of a chain, bounded, for skipping re-published decisions."""

    limit: int
    order: deque[str] = field(default_factory=deque)
    members: set[str] = field(default_factory=set)

    def __contains__(self, decision_id: str) -> bool:
        return decision_id in self.members

    def add(self, decision_id: str) -> None:
        self.order.append(decision_id)
        self.members.add(decision_id)
        while len(self.order) > self.limit:
            self.members.discard(self.order.popleft())

    def copy(self) -> RecentIds:
        return RecentIds(self.limit, deque(self.order), set(self.members))


@dataclass(slots=True)
class ChainHead:
    """Where a chain ends: what the next record links to and what it already holds."""

    chain: str
    seq: int
    hash: str
    watermarks: dict[str, int]
    frontier: Frontier
    recent: RecentIds
    since_checkpoint: int = 0

    def copy(self) -> ChainHead:
        return ChainHead(
            self.chain,
            self.seq,
            self.hash,
            dict(self.watermarks),
            self.frontier,
            self.recent.copy(),
            self.since_checkpoint,
        )

    def holds(self, decision: Decision) -> bool:
        """Whether the chain already has this decision (re-delivered or re-published)."""
        if self.watermarks.get(decision.topic, -1) >= decision.offset:
            return True
        return f"{decision.topic}:{decision.decision_id}" in self.recent


@dataclass(slots=True)
class Appended:
    """Records to send for one batch, and what was skipped."""

    records: list[tuple[str | None, bytes]] = field(default_factory=list)
    skipped: int = 0
    gaps: list[Gap] = field(default_factory=list)
    """The gaps among ``records`` (to dead-letter)."""


def append_decisions(
    head: ChainHead, decisions: Iterable[Decision | Gap]
) -> tuple[ChainHead, Appended]:
    """Link each new decision (or gap) to the chain; return the new head and the records.

    ``decisions`` are in source-offset order per topic, as a partition delivers them.
    """
    head = head.copy()
    out = Appended()
    for decision in decisions:
        if isinstance(decision, Gap):
            if head.watermarks.get(decision.topic, -1) >= decision.offset:
                out.skipped += 1
                continue
            out.gaps.append(decision)
        elif head.holds(decision):
            out.skipped += 1
            if head.watermarks.get(decision.topic, -1) < decision.offset:
                head.watermarks[decision.topic] = decision.offset
            continue
        head.watermarks[decision.topic] = decision.offset
        head.seq += 1
        head.hash, value = seal(_linked(head, decision))
        head.frontier = head.frontier.append(leaf_hash(value))
        if isinstance(decision, Decision):
            head.recent.add(f"{decision.topic}:{decision.decision_id}")
        head.since_checkpoint += 1
        out.records.append((decision.key, value))
    return head, out


def _linked(head: ChainHead, decision: Decision | Gap) -> dict[str, Any]:
    """The record that links ``decision`` to ``head`` (already advanced to its seq)."""
    record: dict[str, Any] = {
        "schema_version": 1,
        "chain": head.chain,
        "seq": head.seq,
        "prev_hash": head.hash,
        "kind": "decision",
        "decision_type": decision.topic,
        "decision_id": None,
        "decision_key": decision.key,
        "decision": None,
        "source": {
            "topic": decision.topic,
            "partition": decision.partition,
            "offset": decision.offset,
        },
        "watermarks": dict(head.watermarks),
    }
    if isinstance(decision, Gap):
        record["kind"] = "gap"
        record["gap_reason"] = decision.reason
    else:
        record["decision_id"] = decision.decision_id
        record["decision"] = decision.body
    return record


def new_head(chain: str, recent_ids_limit: int) -> tuple[ChainHead, bytes]:
    """A fresh chain: its genesis record and the head after it."""
    digest, value = genesis(chain)
    head = ChainHead(
        chain=chain,
        seq=0,
        hash=digest,
        watermarks={},
        frontier=Frontier().append(leaf_hash(value)),
        recent=RecentIds(recent_ids_limit),
        since_checkpoint=1,
    )
    return head, value


def head_from_records(
    chain: str,
    frontier: Frontier,
    covered_until: int,
    records: Sequence[tuple[int, bytes]],
    recent_ids_limit: int,
) -> ChainHead:
    """The head of a chain from the end of its log.

    ``frontier`` covers the records up to offset ``covered_until`` (from the newest
    checkpoint; an empty frontier and -1 without one); ``records`` are (offset, value) from
    at most ``recent_ids_limit`` records back, and at least every record after
    ``covered_until``, to the end. The last record gives hash, seq and watermarks; the
    newest ids seed the recent-ids window.
    """
    if not records:
        raise ValueError("a chain head needs at least its last record")
    uncovered = 0
    for offset, value in records:
        if offset > covered_until:
            frontier = frontier.append(leaf_hash(value))
            uncovered += 1
    recent = RecentIds(recent_ids_limit)
    for _, value in records[-recent_ids_limit:]:
        record = orjson.loads(value)
        if record["kind"] == "decision":
            recent.add(f"{record['decision_type']}:{record['decision_id']}")
    last = orjson.loads(records[-1][1])
    return ChainHead(
        chain=chain,
        seq=last["seq"],
        hash=last["record_hash"],
        watermarks=dict(last["watermarks"]),
        frontier=frontier,
        recent=recent,
        since_checkpoint=uncovered,
    )
