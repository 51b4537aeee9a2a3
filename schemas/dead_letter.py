"""dead-letters: records no pipeline could accept, with everything needed to replay them."""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.common import Contract, UtcDatetime


class DeadLetterReason(StrEnum):
    """Why a record was dead-lettered; a bounded label set for the metric."""

    UNDECODABLE = "undecodable"
    INVALID_SCHEMA = "invalid_schema"
    KEY_MISMATCH = "key_mismatch"
    BATCH_FACILITY_MISMATCH = "batch_facility_mismatch"
    NEGATIVE_CONSUMPTION = "negative_consumption"
    NEGATIVE_MEASUREMENT = "negative_measurement"
    POWER_FACTOR_OUT_OF_RANGE = "power_factor_out_of_range"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    PROCESSING_ERROR = "processing_error"
    RECORD_TOO_LARGE = "record_too_large"
    APPROVAL_NOT_SEALED = "approval_not_sealed"
    POLICY_REJECTED = "policy_rejected"
    ENTITY_LIMIT = "entity_limit"


class DeadLetter(Contract):
    """The original key and value bytes (base64), their source coordinates, the reason.

    ``dead_lettered_at`` is wall-clock time: it records when, and never feeds a decision.
    Kafka key: the source topic name.
    """

    schema_version: Literal[1] = 1
    pipeline: str
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    source_timestamp_ms: int | None
    key_b64: str | None
    value_b64: str
    value_size: int | None = Field(default=None, ge=0)
    """The source value's length in bytes (``None``: a tombstone, or an older letter)."""
    value_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the whole source value, hex."""
    truncated: bool = False
    """The key or value is cut to what fits in a letter; the record stays in its source
    topic for that topic's retention (``governor dlq republish`` reads it from there)."""
    reason: DeadLetterReason
    error: str = Field(max_length=4000)
    dead_lettered_at: UtcDatetime

    @staticmethod
    def encode_bytes(data: bytes | None) -> str | None:
        """Base64 of raw bytes, ``None`` stays ``None`` (a record without a key)."""
        return None if data is None else base64.b64encode(data).decode("ascii")

    def original_key(self) -> bytes | None:
        """The source record's key bytes exactly as they arrived."""
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)

    def original_value(self) -> bytes:
        """The source record's value bytes exactly as they arrived (a prefix of them when
        :attr:`truncated`)."""
        return base64.b64decode(self.value_b64)
