"""ledger and ledger-checkpoints: the tamper-evident record of every decision.

A ledger record's bytes are canonical JSON: UTF-8, keys sorted, no whitespace; integers
as integers; other numbers in their shortest round-trip form (as Python's ``repr`` and
orjson write them; never NaN or infinity); times as RFC 3339 UTC with ``Z``.
``record_hash`` = SHA-256("governor.ledger.record.v1" 0x00 || the canonical JSON of the
record without ``record_hash``), hex. Each chain (one per ledger partition) starts with a
genesis record: ``seq`` 0, ``kind`` "genesis", ``prev_hash`` 64 zeros, no decision.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from schemas.common import Contract


class RecordKind(StrEnum):
    GENESIS = "genesis"
    DECISION = "decision"
    GAP = "gap"
    """A record on a decision topic that is not a decision (not JSON, or no id): the chain
    says so at its place (``source``, ``gap_reason``) and the record is dead-lettered."""


class SourceRef(Contract):
    """Where the decision was read: its decision topic (unprefixed), partition and offset."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class LedgerRecord(Contract):
    """One link of a partition's hash chain. Kafka key: the decision's key (genesis: none);
    the partition is the chain."""

    schema_version: Literal[1] = 1
    chain: str
    seq: int = Field(ge=0)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    kind: RecordKind
    decision_type: str | None = None
    decision_id: str | None = None
    decision_key: str | None = None
    decision: dict[str, Any] | None = None
    source: SourceRef | None = None
    watermarks: dict[str, int] = Field(default_factory=dict)
    """Per decision topic, the highest source offset appended to this chain so far."""
    gap_reason: str | None = None
    """Gap records only: why the source record is not a decision."""
    record_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class LedgerCheckpoint(Contract):
    """A signed Merkle tree head over the first ``tree_size`` records of one chain.

    ``note`` is a C2SP signed note (tlog-checkpoint body: origin, size, base64 root) signed
    with Ed25519; ``frontier`` (base64 subtree roots) and ``ledger_offset`` (the offset of the
    last record covered) let a restarted writer continue the tree without rereading it.
    Kafka key: ``chain``.
    """

    schema_version: Literal[1] = 1
    chain: str
    partition: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    root_hash: str
    ledger_offset: int = Field(ge=0)
    frontier: list[str]
    note: str
