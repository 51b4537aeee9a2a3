"""Reading the dead-letter topic and re-publishing its records after a fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from app.topic_reader import read_topic
from schemas.dead_letter import DeadLetter, DeadLetterReason


@dataclass(frozen=True)
class Letter:
    """A dead letter and where it sits in the dead-letter topic."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"


async def read_letters(
    options: dict[str, Any], topic: str, reason: DeadLetterReason | None = None
) -> list[Letter]:
    """Every dead letter present now (up to the current end offsets), oldest first."""
    letters: list[Letter] = []
    async for m in read_topic(options, topic):
        letter = DeadLetter.from_json_bytes(m.value)
        if reason is None or letter.reason is reason:
            letters.append(Letter(m.partition, m.offset, letter))
    return sorted(letters, key=lambda x: (x.letter.dead_lettered_at, x.partition, x.offset))


async def republish(options: dict[str, Any], letters: Sequence[Letter]) -> int:
    """Publish each letter's original key and value bytes to its source topic, as they were."""
    producer = AIOKafkaProducer(**options, enable_idempotence=True)
    await producer.start()
    try:
        for item in letters:
            await producer.send_and_wait(
                item.letter.source_topic,
                item.letter.original_value(),
                key=item.letter.original_key(),
            )
    finally:
        await producer.stop()
    return len(letters)
