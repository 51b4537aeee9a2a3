"""Dead letters for the records of decision topics that are not decisions.

The chain keeps a gap record at such a record's place (:func:`app.ledger.chain.read_decision`);
the original bytes go to dead-letters, as every pipeline's bad input does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from app.ledger.chain import Gap
from app.metrics import Metrics
from app.runtime.dead_letters import letter_of
from app.runtime.sender import Sender
from schemas.dead_letter import DeadLetterReason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GapLetters:
    """Where and how the ledger dead-letters: its producer, topic names and bounds."""

    sender: Sender
    prefix: str
    max_bytes: int
    metrics: Metrics


async def dead_letter_gaps(
    sink: GapLetters, gaps: list[Gap], messages: list[tuple[str, Any]]
) -> None:
    """Dead-letter each gap's record (``messages``: (unprefixed topic, record)), acknowledged
    before the chain's offsets are committed."""
    by_place = {(topic, m.offset): m for topic, m in messages}
    for gap in gaps:
        message = by_place[(gap.topic, gap.offset)]
        undecodable = gap.reason.startswith("not JSON")
        reason = DeadLetterReason.UNDECODABLE if undecodable else DeadLetterReason.INVALID_SCHEMA
        topic = sink.prefix + gap.topic
        letter = letter_of(
            pipeline="ledger", source_topic=topic, partition=gap.partition, offset=gap.offset,
            timestamp_ms=message.timestamp, key=message.key, value=message.value, reason=reason,
            error=f"not a decision: {gap.reason}", max_bytes=sink.max_bytes,
        )  # fmt: skip
        await sink.sender.send(sink.prefix + "dead-letters", letter.to_json_bytes(), message.key)
        sink.metrics.dead_letters.labels(topic=topic, reason=reason.value).inc()
        log.warning(
            "ledger: %s[%d]@%d is not a decision (%s): dead-lettered, gap record appended",
            topic, gap.partition, gap.offset, gap.reason,
        )  # fmt: skip
