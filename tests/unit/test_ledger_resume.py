"""Issue 16 part 5: what a starting appender may build on."""

from __future__ import annotations

import orjson
import pytest

from app.ledger.chain import append_decisions, head_from_records, new_head
from app.ledger.merkle import Frontier
from app.ledger.note import Signer, Verifier
from app.ledger.resume import Untrusted, check_tail, first_needed, source_mismatch, trusted_frontier
from schemas.ledger import LedgerRecord
from tests.unit.test_ledger import CHAIN, VERIFIER, build, checkpoint, decision

OTHER = Verifier.parse(Signer.from_seed("governor-test", bytes(32)).verifier_key())


def planted_after(values: list[bytes], n: int) -> bytes:
    """A well-formed record linked to the end of ``values``: needs no secret to make."""
    head = head_from_records(CHAIN, Frontier(), -1, list(enumerate(values)), 1000)
    _, out = append_decisions(head, [decision(n, offset=10_000 + n)])
    return out.records[0][1]


def test_a_checkpoint_is_trusted_only_if_its_note_verifies_and_its_frontier_gives_its_root(
) -> None:  # fmt: skip
    values = build(12)
    good = checkpoint(values, 10)
    frontier = trusted_frontier(good, VERIFIER, CHAIN)
    assert frontier.size == 10
    with pytest.raises(Untrusted, match="checkpoint rejected"):
        trusted_frontier(good, OTHER, CHAIN)  # another key signed it
    with pytest.raises(Untrusted, match="does not match"):
        trusted_frontier(good, VERIFIER, "governor.test/ledger/1")
    forged = orjson.loads(good)
    forged["frontier"] = orjson.loads(checkpoint(build(12, salt="x"), 10))["frontier"]
    with pytest.raises(Untrusted, match="frontier does not give its signed root"):
        trusted_frontier(orjson.dumps(forged), VERIFIER, CHAIN)
    with pytest.raises(Untrusted):
        trusted_frontier(b"not a checkpoint", VERIFIER, CHAIN)


@pytest.mark.parametrize("size", [1, 2, 7, 8, 10, 13])
def test_the_tail_after_a_trusted_checkpoint_is_returned_for_the_source_check(size: int) -> None:
    values = build(13)
    frontier = trusted_frontier(checkpoint(values, size), VERIFIER, CHAIN)
    records = list(enumerate(values))[first_needed(frontier) :]
    after = check_tail(CHAIN, frontier, frontier.size - 1, records)
    assert [r.seq for r in after] == list(range(size, 14))


def test_a_planted_record_that_links_is_left_to_the_source_check_and_caught_there() -> None:
    values = build(9)
    values.append(planted_after(values, 77))
    frontier = trusted_frontier(checkpoint(values, 8), VERIFIER, CHAIN)
    after = check_tail(CHAIN, frontier, frontier.size - 1, list(enumerate(values)))
    planted = after[-1]
    assert planted.decision_id == "evt-77"
    # Its source coordinates hold another decision, or none at all.
    real = decision(2)
    value = orjson.dumps(real.body)
    assert source_mismatch(planted, b"facility-2", value, "event_id") is not None
    assert source_mismatch(planted, None, None, "event_id") is not None
    # A genuine record matches its source.
    genuine = LedgerRecord.from_json_bytes(values[3])
    assert source_mismatch(genuine, b"facility-2", value, "event_id") is None


@pytest.mark.parametrize(
    "damage",
    ["swap", "drop_covered", "edit_after", "unlinked_after", "edit_covered"],
)
def test_a_damaged_log_is_untrusted(damage: str) -> None:
    values = build(12)
    frontier = trusted_frontier(checkpoint(values, 8), VERIFIER, CHAIN)
    records = list(enumerate(values))
    if damage == "swap":
        records[9], records[10] = (9, values[10]), (10, values[9])
    elif damage == "drop_covered":
        records = [r for r in records if r[0] != 7]
    elif damage == "edit_after":
        records[10] = (10, values[10].replace(b"evt-9", b"evt-X"))
    elif damage == "unlinked_after":
        head, _ = new_head(CHAIN, 1000)
        _, out = append_decisions(head, [decision(50)])
        records.append((13, out.records[0][1]))
    elif damage == "edit_covered":
        records[7] = (7, values[7].replace(b"evt-6", b"evt-Y"))
    with pytest.raises(Untrusted):
        check_tail(CHAIN, frontier, frontier.size - 1, records)


def test_without_a_checkpoint_the_chain_must_start_with_its_genesis() -> None:
    values = build(3)
    assert len(check_tail(CHAIN, Frontier(), -1, list(enumerate(values)))) == 3
    with pytest.raises(Untrusted, match="genesis"):
        check_tail(CHAIN, Frontier(), -1, list(enumerate(values))[1:])


def test_records_written_in_transactions_are_found_past_their_commit_markers() -> None:
    """Each chain is written in transactions, and each commit marker takes an offset: leaf
    i sits at offset i + (commits before it). The checkpoint names the offset of the last
    record it covers; the tail is placed by that, not by leaf index."""
    values = build(13)
    offsets = [i + i // 4 for i in range(len(values))]  # a commit after every 4 records
    frontier = trusted_frontier(checkpoint(values, 8, ledger_offset=offsets[7]), VERIFIER, CHAIN)
    records = [(o, v) for o, v in zip(offsets, values, strict=True) if o >= first_needed(frontier)]
    after = check_tail(CHAIN, frontier, offsets[7], records)
    assert [r.seq for r in after] == list(range(8, 14))
    with pytest.raises(Untrusted):  # a checkpoint naming a record it does not cover
        check_tail(CHAIN, frontier, offsets[6], records)
    with pytest.raises(Untrusted, match="does not match"):
        trusted_frontier(checkpoint(values, 8, ledger_offset=6), VERIFIER, CHAIN)
