"""Publishing records no pipeline could accept to the dead-letter topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.core.origin import origin_of
from app.metrics import Metrics
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
        "timestamp_ms": int(message.timestamp * 1000) if message.timestamp else None,
        "key": message.key,
        "value": message.value,
    }


class DeadLetterSink:
    """Builds :class:`DeadLetter` records and sends them; counts each by topic and reason."""

    def __init__(self, topic: Any, pipeline: str, metrics: Metrics, prefix: str) -> None:
        self._topic = topic
        self._pipeline = pipeline
        self._metrics = metrics
        self._prefix = prefix

    async def send(
        self,
        *,
        source_topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int | None,
        key: bytes | None,
        value: bytes,
        reason: DeadLetterReason,
        error: str,
    ) -> None:
        """Dead-letter one source record with its original bytes and coordinates."""
        letter = DeadLetter(
            pipeline=self._pipeline,
            source_topic=source_topic,
            source_partition=partition,
            source_offset=offset,
            source_timestamp_ms=timestamp_ms,
            key_b64=DeadLetter.encode_bytes(key),
            value_b64=DeadLetter.encode_bytes(value) or "",
            reason=reason,
            error=error[:MAX_ERROR_CHARS],
            dead_lettered_at=datetime.now(UTC),
        )
        await self._topic.send(key=source_topic.encode(), value=letter.to_json_bytes())
        logical = source_topic.removeprefix(self._prefix)
        self._metrics.dead_letters.labels(topic=logical, reason=reason.value).inc()
