"""Publishing records no pipeline could accept to the dead-letter topic."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from app.core.origin import origin_of
from app.metrics import Metrics
from app.runtime.delivery import delivery_guard
from schemas.dead_letter import DeadLetter, DeadLetterReason

MAX_ERROR_CHARS = 4000


def source_coordinates(message: Any) -> dict[str, Any]:
    """A consumed Faust message's coordinates and original bytes, as
    :meth:`DeadLetterSink.send` takes them; for a record forwarded to its key's partition,
    the source coordinates where its producer wrote it (:mod:`app.runtime.placement`)."""
    origin = origin_of(message.topic, getattr(message, "headers", None))
    return {
        "source_topic": origin.topic if origin else message.topic,
        "partition": origin.partition if origin else message.partition,
        "offset": origin.offset if origin else message.offset,
        "timestamp_ms": None if message.timestamp is None else int(message.timestamp * 1000),
        "key": message.key,
        "value": message.value,
    }


class DeadLetterSink:
    """Builds :class:`DeadLetter` records and sends them; counts each by topic and reason."""

    def __init__(
        self, topic: Any, pipeline: str, metrics: Metrics, prefix: str, max_bytes: int
    ) -> None:
        self._topic = topic
        self._pipeline = pipeline
        self._metrics = metrics
        self._prefix = prefix
        self._max_bytes = max_bytes

    async def send(
        self,
        *,
        source_topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int | None,
        key: bytes | None,
        value: bytes | None,
        reason: DeadLetterReason,
        error: str,
    ) -> None:
        """Dead-letter one source record with its original bytes (up to the letter's
        limit, see :func:`letter_of`) and coordinates."""
        letter = letter_of(
            pipeline=self._pipeline,
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms,
            key=key,
            value=value,
            reason=reason,
            error=error,
            max_bytes=self._max_bytes,
        )
        sent = await self._topic.send(key=source_topic.encode(), value=letter.to_json_bytes())
        delivery_guard(self._topic.app).watch(sent)
        logical = source_topic.removeprefix(self._prefix)
        self._metrics.dead_letters.labels(topic=logical, reason=reason.value).inc()


def letter_of(
    *,
    pipeline: str,
    source_topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    reason: DeadLetterReason,
    error: str,
    max_bytes: int,
) -> DeadLetter:
    """A dead letter whose size is bounded whatever the record's: a key or value longer
    than ``max_bytes`` is cut to that, and the letter says so.

    A record the broker accepted can be too large to dead-letter whole (base64 adds a
    third, and the letter adds coordinates and the error); a letter that cannot be sent
    would stop the worker on that record after every restart.
    """
    value_bytes = value or b""
    truncated = len(value_bytes) > max_bytes or (key is not None and len(key) > max_bytes)
    return DeadLetter(
        pipeline=pipeline,
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        source_timestamp_ms=timestamp_ms if timestamp_ms is None or timestamp_ms >= 0 else None,
        key_b64=DeadLetter.encode_bytes(None if key is None else key[:max_bytes]),
        value_b64=DeadLetter.encode_bytes(value_bytes[:max_bytes]) or "",
        value_size=None if value is None else len(value),
        value_sha256=None if value is None else hashlib.sha256(value).hexdigest(),
        truncated=truncated,
        reason=reason,
        error=error[:MAX_ERROR_CHARS],
        dead_lettered_at=datetime.now(UTC),
    )
