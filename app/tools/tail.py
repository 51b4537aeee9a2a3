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

from app.runtime.topic_reader import follow


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
    shown = 0
    if max_records == 0:
        return shown
    wanted = key.encode() if key is not None else None
    records = follow(options, topic, from_beginning)
    try:
        async for fetched in records:
            for message in fetched:
                if wanted is not None and message.key != wanted:
                    continue
                emit(format_record(message, compact))
                shown += 1
                if max_records is not None and shown >= max_records:
                    return shown
    except asyncio.CancelledError:
        pass
    finally:
        await records.aclose()
    return shown
