"""`governor tail <topic>`: print a topic's records as they arrive, filtered by key.

Reads every partition from its end (or the beginning with ``--from-beginning``), outside
any consumer group, so it never moves a pipeline's offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.runtime.topic_reader import partitions_of


def format_record(message: Any, compact: bool) -> str:
    """A header line (time, coordinates, key) and the value as indented JSON."""
    when = datetime.fromtimestamp(message.timestamp / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    key = message.key.decode(errors="replace") if message.key is not None else "-"
    header = f"{when[:-4]}Z {message.topic}[{message.partition}]@{message.offset} key={key}"
    try:
        value = orjson.loads(message.value) if message.value is not None else None
    except orjson.JSONDecodeError:
        return f"{header}\n  (not JSON) {message.value!r}"
    option = 0 if compact else orjson.OPT_INDENT_2
    body = orjson.dumps(value, option=option | orjson.OPT_SORT_KEYS).decode()
    if compact:
        return f"{header} {body}"
    return header + "\n" + "\n".join("  " + line for line in body.splitlines())


async def tail(
    options: dict[str, Any],
    topic: str,
    key: str | None,
    from_beginning: bool,
    max_records: int | None,
    compact: bool,
    emit: Callable[[str], None] = print,
) -> int:
    """Print matching records until ``max_records`` were printed (or forever)."""
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None)
    await consumer.start()
    shown = 0
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(options, topic)]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        wanted = key.encode() if key is not None else None
        while max_records is None or shown < max_records:
            batch = await consumer.getmany(*tps, timeout_ms=500)
            messages = sorted(
                (m for ms in batch.values() for m in ms), key=lambda m: (m.timestamp, m.partition)
            )
            for message in messages:
                if wanted is not None and message.key != wanted:
                    continue
                emit(format_record(message, compact))
                shown += 1
                if max_records is not None and shown >= max_records:
                    break
    except asyncio.CancelledError:
        pass
    finally:
        await consumer.stop()
    return shown
