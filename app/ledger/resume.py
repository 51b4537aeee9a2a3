"""What a starting appender may build on: the checks before it continues a chain.

Record hashes need no secret, so anyone who can write to the ledger topic can append a
well-formed record; an appender that adopted whatever it found would link to it and then
sign over it. So a chain is continued only from a checkpoint whose signature verifies and
whose frontier gives its signed root, through records that link soundly from the last one
that checkpoint covers, each matching the decision record it names on its source topic.
Anything else halts the chain (:class:`Untrusted`): no record is appended to it until an
operator has looked. Pure: the caller reads the topics.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence

from pydantic import ValidationError

from app.ledger.chain import Decision, Gap, read_decision
from app.ledger.merkle import Frontier, leaf_hash
from app.ledger.note import NoteError, Verifier, parse_checkpoint_text
from app.ledger.verify import Link, check_link
from schemas.ledger import LedgerCheckpoint, LedgerRecord, RecordKind


class Untrusted(Exception):
    """What a starting appender found and must not build on; the message says why."""


def trusted_frontier(value: bytes, verifier: Verifier, chain: str) -> Frontier:
    """The frontier of a checkpoint record, once its note verifies and its frontier gives the
    root the note signs."""
    try:
        checkpoint = LedgerCheckpoint.from_json_bytes(value)
        origin, size, root = parse_checkpoint_text(verifier.open(checkpoint.note))
        hashes = tuple(base64.b64decode(h, validate=True) for h in checkpoint.frontier)
    except (ValidationError, ValueError, NoteError) as exc:
        raise Untrusted(f"checkpoint rejected: {str(exc)[:200]}") from None
    # Each record takes an offset, and so does each transaction's commit marker: the last
    # covered record sits at or after offset size - 1.
    if origin != chain or size != checkpoint.tree_size or checkpoint.ledger_offset < size - 1:
        raise Untrusted("checkpoint note does not match its record")
    frontier = Frontier(size=size, hashes=hashes)
    if len(hashes) != size.bit_count() or not hmac.compare_digest(frontier.root(), root):
        raise Untrusted("checkpoint frontier does not give its signed root")
    return frontier


def first_needed(frontier: Frontier) -> int:
    """The first leaf :func:`check_tail` needs: where the frontier's last (smallest) perfect
    subtree starts, so the last covered record can be tied to the signed tree. A leaf's
    ledger offset is at least its index (commit markers take offsets too), so reading from
    this offset reads it."""
    return frontier.size - (frontier.size & -frontier.size)


def check_tail(
    chain: str, frontier: Frontier, last_covered: int, records: Sequence[tuple[int, bytes]]
) -> list[LedgerRecord]:
    """Check the records (offset, value), read from offset :func:`first_needed` to the end
    of the log, given the offset of the last record the checkpoint covers (-1: none);
    return the ones after the checkpoint, to check against their sources.

    Without a checkpoint (an empty frontier), the chain must start with its genesis record.
    """
    size = frontier.size
    wanted = size - first_needed(frontier)
    upto = [(o, v) for o, v in records if o <= last_covered]
    covered = upto[len(upto) - wanted :] if wanted else []
    if len(covered) != wanted or (wanted and covered[-1][0] != last_covered):
        raise Untrusted(f"chain {chain}: the log lacks records its checkpoint of {size} covers")
    if covered:
        subtree = Frontier()
        for _, value in covered:
            subtree = subtree.append(leaf_hash(value))
        if not hmac.compare_digest(subtree.hashes[0], frontier.hashes[-1]):
            raise Untrusted(f"chain {chain}: the records before offset {size} differ from the"
                            " signed tree")  # fmt: skip
    previous: Link | None = None
    after: list[LedgerRecord] = []
    for offset, value in records:
        if offset < last_covered:
            continue
        link, reason = check_link(previous, value, anchor=offset == last_covered)
        if link is None or reason is not None:
            raise Untrusted(f"chain {chain}: ledger offset {offset}: {reason}")
        if link.chain != chain:
            raise Untrusted(f"chain {chain}: ledger offset {offset} is of chain {link.chain}")
        if offset > last_covered and link.kind != RecordKind.GENESIS.value:
            after.append(LedgerRecord.from_json_bytes(value))
        previous = link
    return after


def source_mismatch(
    record: LedgerRecord, key: bytes | None, value: bytes | None, id_field: str
) -> str | None:
    """Why ``record`` is not what the ledger makes of its source record (None if it is)."""
    source = record.source
    if source is None or record.decision_type != source.topic:
        return "names no source"
    found = read_decision(source.topic, source.partition, source.offset, key, value, id_field)
    if record.kind is RecordKind.GAP:
        return None if isinstance(found, Gap) else "a gap where its source is a decision"
    if not isinstance(found, Decision):
        return f"its source is not a decision ({found.reason})"
    if (found.decision_id, found.key, found.body) != (
        record.decision_id,
        record.decision_key,
        record.decision,
    ):
        return "differs from its source decision"
    return None
