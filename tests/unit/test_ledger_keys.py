"""Issue 16 part 5: a key set with validity ranges, and proofs only from checkpoints a valid
key signed."""

from __future__ import annotations

import base64

import orjson
import pytest

from app.ledger.audit_trail import ChainLog, prove_inclusion, signed_checkpoints
from app.ledger.keys import KeySet, configured_keys
from app.ledger.merkle import Frontier, leaf_hash
from app.ledger.note import NoteError, Signer, checkpoint_text
from app.ledger.verify import verify_checkpoints, verify_records
from tests.unit.test_ledger import CHAIN, SIGNER, build

NEW = Signer.from_seed("governor-test", bytes(range(1, 33)))
STRANGER = Signer.from_seed("governor-test", bytes(32))
ROTATED_AT = "2026-06-01T00:00:00+00:00"
BEFORE_MS, AFTER_MS = 1_760_000_000_000, 1_790_000_000_000  # 2025-10 and 2026-09


def signed_by(signer: Signer, values: list[bytes], size: int) -> bytes:
    frontier = Frontier()
    for value in values[:size]:
        frontier = frontier.append(leaf_hash(value))
    root = frontier.root()
    return orjson.dumps({
        "schema_version": 1, "chain": CHAIN, "partition": 0, "tree_size": size,
        "root_hash": base64.b64encode(root).decode(), "ledger_offset": size - 1,
        "frontier": [base64.b64encode(h).decode() for h in frontier.hashes],
        "note": signer.sign(checkpoint_text(CHAIN, size, root)),
    })  # fmt: skip


def failure(values: list[bytes], cps: list[bytes], times: list[int], keys: KeySet) -> str | None:
    leaves, broken = verify_records(0, list(enumerate(values)))
    assert broken is None
    found = verify_checkpoints(
        0, leaves, list(enumerate(cps)), keys, CHAIN, times=dict(enumerate(times))
    )
    return found.reason if found else None


VALUES = build(20)
CPS = [signed_by(SIGNER, VALUES, 8), signed_by(NEW, VALUES, 21)]
ROTATION = KeySet.of([
    f"{SIGNER.verifier_key()},,{ROTATED_AT}", f"{NEW.verifier_key()},{ROTATED_AT}",
])  # fmt: skip


def test_a_rotated_key_set_verifies_old_and_new_checkpoints() -> None:
    assert failure(VALUES, CPS, [BEFORE_MS, AFTER_MS], ROTATION) is None


def test_one_key_alone_fails_the_other_keys_checkpoints() -> None:
    """Today's single --vkey: rotating the key failed every older checkpoint."""
    only_new = KeySet.of([NEW.verifier_key()])
    assert "checkpoint rejected" in (failure(VALUES, CPS, [BEFORE_MS, AFTER_MS], only_new) or "")


def test_an_old_key_cannot_sign_after_its_range() -> None:
    late = [signed_by(SIGNER, VALUES, 8), signed_by(SIGNER, VALUES, 21)]
    reason = failure(VALUES, late, [BEFORE_MS, AFTER_MS], ROTATION) or ""
    assert "checkpoint rejected" in reason


def test_bad_key_specs_are_refused() -> None:
    for spec in ["nonsense", f"{NEW.verifier_key()},yesterday", f"{NEW.verifier_key()},2026-01-01"]:
        with pytest.raises(NoteError):
            KeySet.of([spec])
    with pytest.raises(NoteError, match="no verifier key"):
        configured_keys([], [], None)
    assert configured_keys([], [], NEW.verifier_key()).specs == (NEW.verifier_key(),)


def test_proofs_use_only_checkpoints_a_valid_key_signed() -> None:
    forged = signed_by(STRANGER, VALUES, 21)
    chain = ChainLog(0, list(enumerate(VALUES)), [(0, CPS[0]), (1, forged)], {0: 1, 1: 2})
    keys = KeySet.of([SIGNER.verifier_key()])
    origin = CHAIN.rsplit("/", 1)[0]
    assert [c.tree_size for c in signed_checkpoints(chain, keys, origin)] == [8]
    decision_id = orjson.loads(VALUES[3])["decision_id"]
    proof = prove_inclusion([chain], decision_id, keys, origin)
    assert proof.tree_size == 8 and proof.checkpoint_note == orjson.loads(CPS[0])["note"]
    late = orjson.loads(VALUES[15])["decision_id"]
    with pytest.raises(LookupError, match="valid key"):
        prove_inclusion([chain], late, keys, origin)
