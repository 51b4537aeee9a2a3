"""The ledger rules and verifier: chains, effectively-once appends, and every tamper case."""

from __future__ import annotations

import base64

import orjson
import pytest

from app.ledger.chain import (
    Decision,
    Gap,
    append_decisions,
    head_from_records,
    new_head,
    read_decision,
)
from app.ledger.merkle import Frontier, leaf_hash
from app.ledger.note import NoteError, Signer, Verifier, checkpoint_text
from app.ledger.verify import verify_checkpoints, verify_records
from schemas.ledger import LedgerRecord, RecordKind

CHAIN = "governor.test/ledger/0"
SIGNER = Signer.from_seed("governor-test", bytes(range(32)))
VERIFIER = Verifier.parse(SIGNER.verifier_key())


def decision(n: int, topic: str = "carbon-emissions", offset: int | None = None) -> Decision:
    return Decision(
        topic=topic,
        partition=0,
        offset=n if offset is None else offset,
        key=f"facility-{n % 3}",
        decision_id=f"evt-{n}",
        body={"event_id": f"evt-{n}", "emissions_kg_co2e": n * 0.1, "z": [1, 2.5]},
    )


def build(count: int, salt: str = "") -> list[bytes]:
    head, genesis = new_head(CHAIN, 1000)
    decisions = [decision(n) for n in range(count)]
    if salt:
        decisions = [
            Decision(d.topic, d.partition, d.offset, d.key, d.decision_id, {**d.body, "s": salt})
            for d in decisions
        ]
    head, out = append_decisions(head, decisions)
    return [genesis, *(value for _, value in out.records)]


def checkpoint(values: list[bytes], size: int, ledger_offset: int | None = None) -> bytes:
    frontier = Frontier()
    for value in values[:size]:
        frontier = frontier.append(leaf_hash(value))
    root = frontier.root()
    return orjson.dumps(
        {
            "schema_version": 1,
            "chain": CHAIN,
            "partition": 0,
            "tree_size": size,
            "root_hash": base64.b64encode(root).decode(),
            "ledger_offset": size - 1 if ledger_offset is None else ledger_offset,
            "frontier": [base64.b64encode(h).decode() for h in frontier.hashes],
            "note": SIGNER.sign(checkpoint_text(CHAIN, size, root)),
        }
    )


def check(values: list[bytes], checkpoints: list[bytes]) -> str | None:
    """The first failure's reason, or None."""
    leaves, failure = verify_records(0, list(enumerate(values)))
    if failure is not None:
        return failure.reason
    found = verify_checkpoints(0, leaves, list(enumerate(checkpoints)), VERIFIER, CHAIN)
    return found.reason if found else None


class TestIntact:
    def test_a_chain_and_its_checkpoints_verify(self) -> None:
        values = build(20)
        assert check(values, [checkpoint(values, 8), checkpoint(values, 21)]) is None

    def test_records_are_canonical_and_linked(self) -> None:
        values = build(3)
        first, second = orjson.loads(values[1]), orjson.loads(values[2])
        assert second["prev_hash"] == first["record_hash"] and second["seq"] == 2
        assert values[1] == orjson.dumps(first, option=orjson.OPT_SORT_KEYS)
        assert orjson.loads(values[0])["kind"] == "genesis"


class TestTampering:
    def test_one_byte_changed(self) -> None:
        values = build(10)
        forged = bytearray(values[5])
        at = forged.index(b"evt-4") + 4
        forged[at] = ord("9")
        values[5] = bytes(forged)
        assert "record_hash does not match" in str(check(values, []))

    def test_a_record_deleted(self) -> None:
        values = build(10)
        del values[4]
        assert "prev_hash does not link" in str(check(values, []))

    def test_two_records_swapped(self) -> None:
        values = build(10)
        values[3], values[4] = values[4], values[3]
        assert "prev_hash does not link" in str(check(values, []))

    def test_a_duplicate_replayed(self) -> None:
        values = build(10)
        values.append(values[6])
        assert "prev_hash does not link" in str(check(values, []))

    def test_the_tail_truncated_below_a_later_checkpoint(self) -> None:
        values = build(10)
        signed = [checkpoint(values, 11)]
        assert "truncated" in str(check(values[:8], signed))

    def test_a_checkpoint_with_a_bad_signature(self) -> None:
        values = build(10)
        signed = orjson.loads(checkpoint(values, 11))
        text, _, signature_line = signed["note"].rstrip("\n").rpartition(" ")
        blob = bytearray(base64.b64decode(signature_line))
        blob[-1] ^= 0x01
        signed["note"] = f"{text} {base64.b64encode(bytes(blob)).decode()}\n"
        assert "does not verify" in str(check(values, [orjson.dumps(signed)]))

    def test_a_checkpoint_signed_by_another_key(self) -> None:
        values = build(10)
        signed = orjson.loads(checkpoint(values, 11))
        other = Signer.from_seed("governor-test", bytes(32))
        root = base64.b64decode(signed["root_hash"])
        signed["note"] = other.sign(checkpoint_text(CHAIN, 11, root))
        assert "no signature by governor-test" in str(check(values, [orjson.dumps(signed)]))

    def test_a_checkpoint_over_a_rewritten_log(self) -> None:
        values = build(10)
        signed = checkpoint(values, 11)
        rewritten = build(10, salt="rewritten")  # a different, internally valid chain
        assert rewritten != values
        assert "differs from the log" in str(check(rewritten, [signed]))

    def test_a_non_canonical_encoding(self) -> None:
        values = build(3)
        values[2] = orjson.dumps(orjson.loads(values[2]), option=orjson.OPT_INDENT_2)
        assert "not canonical" in str(check(values, []))


class TestEffectivelyOnce:
    def test_redelivered_and_republished_decisions_are_skipped(self) -> None:
        head, _ = new_head(CHAIN, 1000)
        head, first = append_decisions(head, [decision(n) for n in range(5)])
        redelivered = [decision(n) for n in range(3, 7)]  # offsets 3, 4 are held already
        republished = decision(2, offset=9)  # the same decision re-sent at a new offset
        head, second = append_decisions(head, [*redelivered, republished])
        ids = [orjson.loads(v)["decision_id"] for _, v in [*first.records, *second.records]]
        assert ids == [f"evt-{n}" for n in range(7)]
        assert second.skipped == 3 and head.watermarks == {"carbon-emissions": 9}

    def test_a_head_read_back_from_the_log_continues_the_same_chain(self) -> None:
        values = build(10)
        frontier = Frontier()
        for value in values[:4]:
            frontier = frontier.append(leaf_hash(value))
        head = head_from_records(CHAIN, frontier, 3, list(enumerate(values))[2:], 1000)
        head, more = append_decisions(head, [decision(n) for n in range(8, 14)])
        extended = values + [v for _, v in more.records]
        uninterrupted = build(14)
        assert extended == uninterrupted
        assert check(extended, [checkpoint(extended, 15)]) is None

    def test_the_verifier_key_round_trips_and_rejects_a_forgery(self) -> None:
        assert VERIFIER.public_key == SIGNER.public_key
        with pytest.raises(NoteError):
            Verifier.parse(SIGNER.verifier_key().replace("+", "+00", 1))


class TestForeignRecords:
    """Issue 16 part 5: a record on a decision topic that is not a decision made the
    appender raise, and every worker that took the partition crash-looped."""

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (b"\xff not json", "not JSON"),
            (b"[1, 2]", "not a JSON object"),
            (b'{"other": 1}', "no decision id ('event_id')"),
            (b'{"event_id": ""}', "no decision id ('event_id')"),
            (b'{"event_id": true}', "no decision id ('event_id')"),
            (None, "not a JSON object"),
        ],
    )
    def test_a_record_that_is_not_a_decision_is_a_gap(
        self, value: bytes | None, reason: str
    ) -> None:
        found = read_decision("carbon-emissions", 2, 7, b"facility-1", value, "event_id")
        assert isinstance(found, Gap) and found.reason.startswith(reason), found
        assert (found.topic, found.partition, found.offset, found.key) == (
            "carbon-emissions", 2, 7, "facility-1",
        )  # fmt: skip

    def test_a_decision_reads_as_one(self) -> None:
        found = read_decision("carbon-emissions", 0, 3, b"f", b'{"event_id": 12}', "event_id")
        assert isinstance(found, Decision) and found.decision_id == "12" and found.key == "f"
        assert isinstance(read_decision("t", 0, 3, b"\xff", b'{"id": "x"}', "id"), Gap)

    def test_the_chain_holds_a_gap_in_its_place_and_still_verifies(self) -> None:
        head, genesis = new_head(CHAIN, 1000)
        gap = read_decision("carbon-emissions", 0, 1, b"facility-1", b"junk", "event_id")
        assert isinstance(gap, Gap)
        head, out = append_decisions(head, [decision(0), gap, decision(2)])
        assert out.gaps == [gap] and len(out.records) == 3
        values = [genesis, *(v for _, v in out.records)]
        assert check(values, [checkpoint(values, 4)]) is None
        record = LedgerRecord.from_json_bytes(values[2])
        assert record.kind is RecordKind.GAP and record.decision is None
        assert record.source is not None and record.source.offset == 1
        assert record.gap_reason is not None and record.gap_reason.startswith("not JSON")
        # Re-delivered after a crash: the watermark says the gap is already in the chain.
        _, out = append_decisions(head, [gap, decision(2)])
        assert out.records == [] and out.skipped == 2 and out.gaps == []
        # A decision record's bytes are as before gaps existed (no gap_reason key).
        assert "gap_reason" not in orjson.loads(values[1])
        restored = head_from_records(CHAIN, Frontier(), -1, list(enumerate(values)), 1000)
        assert restored.hash == head.hash and restored.watermarks == head.watermarks
