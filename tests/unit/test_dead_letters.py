"""A dead letter's size is bounded whatever the record's, and says what it cut."""

from __future__ import annotations

import hashlib

from app.runtime.dead_letters import letter_of
from schemas.dead_letter import DeadLetter, DeadLetterReason


def _letter(key: bytes | None, value: bytes | None, max_bytes: int = 1_024) -> DeadLetter:
    return letter_of(
        pipeline="carbon", source_topic="meter-readings", partition=2, offset=9,
        timestamp_ms=1, key=key, value=value, reason=DeadLetterReason.UNDECODABLE,
        error="x" * 10_000, max_bytes=max_bytes,
    )  # fmt: skip


def test_a_small_record_travels_whole() -> None:
    letter = _letter(b"k", b"\xff{")
    assert not letter.truncated
    assert (letter.original_key(), letter.original_value()) == (b"k", b"\xff{")
    assert letter.value_size == 2 and letter.value_sha256 == hashlib.sha256(b"\xff{").hexdigest()
    assert len(letter.error) == 4_000


def test_a_large_value_or_key_is_cut_and_the_letter_stays_small() -> None:
    value = b"v" * 1_048_000
    letter = _letter(b"k", value)
    assert letter.truncated and letter.original_value() == value[:1_024]
    assert letter.value_size == len(value)
    assert letter.value_sha256 == hashlib.sha256(value).hexdigest()
    assert len(letter.to_json_bytes()) < 10_000
    keyed = _letter(b"k" * 5_000, b"{}")
    assert keyed.truncated and keyed.original_key() == b"k" * 1_024
    assert DeadLetter.from_json_bytes(keyed.to_json_bytes()) == keyed


def test_a_tombstone_has_no_size() -> None:
    letter = _letter(b"k", None)
    assert letter.value_b64 == "" and letter.value_size is None and not letter.truncated
