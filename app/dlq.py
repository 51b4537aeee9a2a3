"""Reading the dead-letter topic and re-publishing its records after a fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

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


async def partitions_of(options: dict[str, Any], topic: str) -> list[int]:
    """A topic's partition numbers, from a metadata request; raises if it does not exist."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not described or described[0]["error_code"] != 0:
        raise LookupError(f"topic {topic} does not exist")
    return sorted(p["partition"] for p in described[0]["partitions"])


async def read_letters(
    options: dict[str, Any], topic: str, reason: DeadLetterReason | None = None
) -> list[Letter]:
    """Every dead letter present now (up to the current end offsets), oldest first."""
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(options, topic)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        # An explicit seek: after end_offsets(), seek_to_beginning() left getmany() empty here.
        for tp, first in starts.items():
            consumer.seek(tp, first)
        letters: list[Letter] = []
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, messages in batch.items():
                for m in messages:
                    letter = DeadLetter.from_json_bytes(m.value)
                    if reason is None or letter.reason is reason:
                        letters.append(Letter(tp.partition, m.offset, letter))
                    if m.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return sorted(letters, key=lambda x: (x.letter.dead_lettered_at, x.partition, x.offset))
    finally:
        await consumer.stop()


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
