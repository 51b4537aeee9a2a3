"""Checks every pipeline applies to a source record before deciding anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.dead_letter import DeadLetterReason


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record cannot be accepted; becomes a dead letter."""

    reason: DeadLetterReason
    message: str


def key_rejection(key: bytes | None, expected: str, field: str) -> Rejection | None:
    """The record key must be the entity its state is kept under.

    Per-entity state lives in the partition the key hashes to, so a record keyed otherwise
    would split one entity's state across workers.
    """
    if key == expected.encode():
        return None
    shown = key.decode("utf-8", "replace") if key is not None else None
    return Rejection(
        DeadLetterReason.KEY_MISMATCH, f"record key {shown!r} must be the {field} {expected!r}"
    )


def future_rejection(
    event_id: str, timestamp: datetime, record_timestamp_ms: int | None, max_skew_s: float
) -> Rejection | None:
    """Reject an event stamped too far after its own Kafka record was produced.

    The comparison is with the record's timestamp, which is part of the input, so the
    verdict is the same on every replay (no wall clock).
    """
    if record_timestamp_ms is None:  # offline (governor replay): no Kafka record to compare
        return None
    if record_timestamp_ms <= 0:
        return Rejection(
            DeadLetterReason.TIMESTAMP_IN_FUTURE,
            f"event {event_id}: its record's timestamp is {record_timestamp_ms}, so its clock"
            " cannot be checked",
        )
    skew_s = timestamp.timestamp() - record_timestamp_ms / 1000.0
    if skew_s <= max_skew_s:
        return None
    return Rejection(
        DeadLetterReason.TIMESTAMP_IN_FUTURE,
        f"event {event_id}: timestamp {skew_s:.0f}s after its record was produced"
        f" (max {max_skew_s:.0f}s)",
    )
