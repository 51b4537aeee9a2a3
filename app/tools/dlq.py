"""Reading the dead-letter topic and re-publishing its records after a fix."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.runtime.sender import Sender
from app.runtime.topic_reader import read_range, read_topic
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


class CannotRepublish(Exception):
    """A letter whose record cannot be published again (named topic, bytes gone)."""


async def original_record(
    options: dict[str, Any], letter: DeadLetter
) -> tuple[bytes | None, bytes]:
    """The key and value the letter's producer wrote: from the letter, or, when the letter
    carries only a cut of them, read again from the source topic and checked against the
    letter's SHA-256."""
    if not letter.truncated:
        return letter.original_key(), letter.original_value()
    where = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
    found = await read_range(
        options, letter.source_topic, letter.source_partition, letter.source_offset,
        letter.source_offset + 1,
    )  # fmt: skip
    if not found or found[0].offset != letter.source_offset:
        raise CannotRepublish(f"{where} is no longer in its topic (retention)")
    value = found[0].value or b""
    if hashlib.sha256(value).hexdigest() != letter.value_sha256:
        raise CannotRepublish(f"{where} does not match the letter's SHA-256")
    return found[0].key, value


async def republish(
    options: dict[str, Any], letters: Sequence[Letter], allowed_topics: Iterable[str]
) -> int:
    """Publish each letter's original key and value bytes to its source topic, as they were.

    Only to ``allowed_topics`` (the catalogue's input topics): a letter names its topic,
    and anyone who can write the dead-letter topic could name any other.
    """
    allowed = set(allowed_topics)
    refused = [x for x in letters if x.letter.source_topic not in allowed]
    if refused:
        names = sorted({x.letter.source_topic for x in refused})
        raise CannotRepublish(f"not an input topic: {', '.join(names)}")
    records = [(x.letter.source_topic, await original_record(options, x.letter)) for x in letters]
    async with Sender.opened(options, max_request_size=1_048_576) as producer:
        for topic, (key, value) in records:
            await producer.send(topic, value, key)
    return len(letters)
