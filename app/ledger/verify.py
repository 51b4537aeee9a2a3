"""Verifying a ledger: hash chains, canonical bytes, and signed checkpoints against the log.

Pure: it takes what was read from the ledger and ledger-checkpoints topics and returns ok
or the first failure (where and why). Reading the topics is the caller's job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson
from pydantic import ValidationError

from app.ledger.chain import RECORD_DOMAIN, ZERO_HASH, canonical
from app.ledger.keys import KeySet, ValidKey
from app.ledger.merkle import Frontier, leaf_hash
from app.ledger.note import NoteError, Verifier, parse_checkpoint_text
from schemas.ledger import LedgerCheckpoint, RecordKind


@dataclass(frozen=True, slots=True)
class Failure:
    """The first thing wrong with a chain: which topic, partition and offset, and why."""

    topic: str
    partition: int
    offset: int
    reason: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    partition: int
    records: int
    checkpoints: int
    failure: Failure | None


def verify_records(
    partition: int, records: Sequence[tuple[int, bytes]], topic: str = "ledger"
) -> tuple[list[bytes], Failure | None]:
    """Check one chain's records (offset, value) in log order.

    Returns the leaf hashes of the records that checked out, and the first failure.
    """
    leaves: list[bytes] = []
    seen_ids: set[str] = set()
    previous: Link | None = None
    for offset, value in records:
        link, reason = check_link(previous, value)
        if link is None or reason is not None:
            return leaves, Failure(topic, partition, offset, reason or "not a ledger record")
        if link.kind == "decision":
            decision = f"{link.decision_type}:{link.decision_id}"
            if decision in seen_ids:
                return leaves, Failure(
                    topic, partition, offset, f"decision {decision} appears twice"
                )
            seen_ids.add(decision)
        leaves.append(leaf_hash(value))
        previous = link
    return leaves, None


class Link(NamedTuple):
    """What chaining needs of a ledger record (parsed without pydantic: verification reads
    every record of the ledger, and model validation was a third of its cost)."""

    chain: str
    seq: int
    kind: str
    record_hash: str
    decision_type: str | None
    decision_id: str | None


def check_link(
    previous: Link | None, value: bytes, anchor: bool = False
) -> tuple[Link | None, str | None]:
    """One record against the one before it (``None``: it must be the genesis record, unless
    it is an ``anchor`` vouched for otherwise): the record, and why it does not check out
    (``None`` if it does)."""
    try:
        as_dict = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return None, f"not a ledger record: {str(exc)[:200]}"
    problem = _shape_problem(as_dict)
    if problem is not None:
        return None, f"not a ledger record: {problem}"
    record = Link(
        as_dict["chain"], as_dict["seq"], as_dict["kind"], as_dict["record_hash"],
        as_dict.get("decision_type"), as_dict.get("decision_id"),
    )  # fmt: skip
    if canonical(as_dict) != value:
        return record, "record bytes are not canonical JSON"
    del as_dict["record_hash"]
    expected = hashlib.sha256(RECORD_DOMAIN + canonical(as_dict)).hexdigest()
    if not hmac.compare_digest(expected, record.record_hash):
        return record, "record_hash does not match the record's content"
    if previous is None and anchor:
        return record, None
    if previous is None:
        if record.kind != "genesis" or record.seq != 0:
            return record, "the chain does not start with its genesis record"
        if as_dict["prev_hash"] != ZERO_HASH:
            return record, "the genesis record must link to the zero hash"
        return record, None
    if record.chain != previous.chain:
        return record, f"record of chain {record.chain!r} in chain {previous.chain!r}"
    if as_dict["prev_hash"] != previous.record_hash:
        return record, (
            "prev_hash does not link to the previous record (deleted, swapped or inserted record)"
        )
    if record.seq != previous.seq + 1:
        return record, f"seq {record.seq} follows seq {previous.seq}"
    if record.kind == "genesis":
        return record, "a second genesis record"
    return record, None


_REQUIRED = {"chain", "seq", "prev_hash", "kind", "record_hash"}
_OPTIONAL_TEXT = ("decision_type", "decision_id", "decision_key", "gap_reason")
_FIELDS = {*_REQUIRED, *_OPTIONAL_TEXT, "schema_version", "decision", "source", "watermarks"}
_KINDS = {kind.value for kind in RecordKind}


def _shape_problem(record: object) -> str | None:
    """What makes a parsed value not a :class:`LedgerRecord` (the same rules, checked by
    hand, cheapest first), or ``None``."""
    if type(record) is not dict:
        return "not a JSON object"
    keys = record.keys()
    if not (_REQUIRED <= keys <= _FIELDS):
        return f"fields {sorted(record)}"
    seq, version = record["seq"], record.get("schema_version", 1)
    if type(seq) is not int or seq < 0 or type(version) is not int or version != 1:
        return "seq must be a whole number and schema_version 1"
    if type(record["chain"]) is not str or record["kind"] not in _KINDS:
        return "chain or kind"
    if not (_is_hash(record["prev_hash"]) and _is_hash(record["record_hash"])):
        return "prev_hash and record_hash must be 64 hex digits"
    for name in _OPTIONAL_TEXT:
        if name in record and record[name] is not None and type(record[name]) is not str:
            return f"{name} must be text"
    decision, source = record.get("decision"), record.get("source")
    if decision is not None and type(decision) is not dict:
        return "decision must be an object"
    if source is not None and (
        type(source) is not dict
        or source.keys() != _SOURCE
        or type(source["topic"]) is not str
        or type(source["partition"]) is not int
        or type(source["offset"]) is not int
        or source["partition"] < 0
        or source["offset"] < 0
    ):
        return "source must be topic, partition, offset"
    watermarks = record.get("watermarks", {})
    if type(watermarks) is not dict or any(
        type(k) is not str or type(v) is not int for k, v in watermarks.items()
    ):
        return "watermarks must map topics to offsets"
    return None


def _is_hash(value: object) -> bool:
    return type(value) is str and len(value) == 64 and _HEX_DIGITS.issuperset(value)


_SOURCE = {"topic", "partition", "offset"}
_HEX_DIGITS = frozenset("0123456789abcdef")


def verify_checkpoints(
    partition: int,
    leaves: Sequence[bytes],
    checkpoints: Sequence[tuple[int, bytes]],
    keys: KeySet | Verifier,
    chain: str,
    topic: str = "ledger-checkpoints",
    times: Mapping[int, int] | None = None,
) -> Failure | None:
    """Check every checkpoint of one chain: signature (by a key valid at the checkpoint
    record's time, ``times``: offset → ms), origin, and its root against the log.

    A checkpoint larger than the log means the log lost its tail after being checkpointed.
    """
    if isinstance(keys, Verifier):
        keys = KeySet((ValidKey(keys),))
    parsed: list[tuple[int, LedgerCheckpoint, int, bytes]] = []
    for offset, value in checkpoints:
        try:
            checkpoint = LedgerCheckpoint.from_json_bytes(value)
            text = keys.open(checkpoint.note, (times or {}).get(offset))
            origin, size, root = parse_checkpoint_text(text)
        except (ValidationError, ValueError, NoteError) as exc:
            return Failure(topic, partition, offset, f"checkpoint rejected: {str(exc)[:200]}")
        if origin != chain or size != checkpoint.tree_size:
            return Failure(topic, partition, offset, "checkpoint note does not match its record")
        if base64.b64encode(root).decode() != checkpoint.root_hash:
            return Failure(topic, partition, offset, "checkpoint note root differs from record")
        parsed.append((offset, checkpoint, size, root))
    frontier = Frontier()
    for offset, _, size, root in sorted(parsed, key=lambda item: item[2]):
        if size > len(leaves):
            return Failure(
                topic, partition, offset,
                f"the log has {len(leaves)} valid records but a signed checkpoint covers {size}:"
                " records were truncated or removed",
            )  # fmt: skip
        while frontier.size < size:
            frontier = frontier.append(leaves[frontier.size])
        if not hmac.compare_digest(frontier.root(), root):
            return Failure(
                topic, partition, offset, f"tree head of size {size} differs from the log"
            )
    return None
