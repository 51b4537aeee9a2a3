"""``governor produce``: publish JSONL or CSV records to an input topic, validated first.

Every line is checked against the topic's contract before anything is sent; bad lines are
reported with their line numbers and never sent. Good lines are sent as the contract's
canonical bytes, keyed by the topic's key field, at an optional target rate.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
from pydantic import ValidationError

from app.runtime.sender import Sender
from app.topics import TopicSpec
from schemas.common import Contract


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class Parsed:
    good: list[Line] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)


def _rows(text: TextIO, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) per record; a parse error is yielded as the exception."""
    if fmt == "csv":
        reader = csv.DictReader(text)
        for row in reader:
            # Empty cells are left out, so the contract's defaults apply. Other cells stay
            # strings, which the contract converts (numbers, booleans, timestamps), except
            # schema_version, a literal number.
            record: dict[str, Any] = {k: v for k, v in row.items() if k and v not in ("", None)}
            version = record.get("schema_version")
            if isinstance(version, str) and version.isdigit():
                record["schema_version"] = int(version)
            yield reader.line_num, record
        return
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, exc


def _validate(obj: Any, models: list[type[Contract]]) -> Contract:
    """The first contract the object satisfies; the first model's error otherwise."""
    first_error: ValidationError | None = None
    for model in models:
        try:
            return model.model_validate(obj)
        except ValidationError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def parse(text: TextIO, spec: TopicSpec, fmt: str) -> Parsed:
    """Validate every record of ``text`` for ``spec``'s topic."""
    models = spec.value_models()
    parsed = Parsed()
    for number, obj in _rows(text, fmt):
        if isinstance(obj, Exception):
            parsed.bad.append((number, f"not JSON: {obj}"))
            continue
        try:
            record = _validate(obj, models)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<record>'}: {e['msg']}"
                for e in exc.errors()
            )
            parsed.bad.append((number, problems))
            continue
        key = getattr(record, spec.key, None)
        parsed.good.append(
            Line(number, str(key).encode() if key is not None else None, record.to_json_bytes())
        )
    return parsed


def read_input(source: str) -> TextIO:
    return sys.stdin if source == "-" else open(source, encoding="utf-8", newline="")


def detect_format(source: str, given: str | None) -> str:
    if given:
        return given
    return "csv" if source.lower().endswith(".csv") else "jsonl"


class Progress:
    """A one-line progress bar on stderr when it is a terminal."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = total
        self.out = out
        self.enabled = out.isatty()
        self.started = time.monotonic()

    def update(self, done: int) -> None:
        if not self.enabled or (done % 200 and done != self.total):
            return
        width = 30
        filled = width * done // max(self.total, 1)
        rate = done / max(time.monotonic() - self.started, 1e-9)
        bar = "#" * filled + "." * (width - filled)
        self.out.write(f"\r[{bar}] {done}/{self.total} records, {rate:,.0f}/s")
        if done == self.total:
            self.out.write("\n")
        self.out.flush()


async def send(
    options: dict[str, Any],
    topic: str,
    lines: Iterable[Line],
    total: int,
    rate: float | None = None,
) -> float:
    """Send ``lines`` (idempotent producer), paced to ``rate`` records/s; seconds taken."""
    import asyncio

    progress = Progress(total)
    async with Sender.opened(options) as producer:
        started = time.monotonic()
        pending = []
        for done, line in enumerate(lines, start=1):
            if rate:
                delay = started + (done - 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await producer.queue(topic, line.value, line.key))
            progress.update(done)
        await asyncio.gather(*pending)
    return time.monotonic() - started


def summary(parsed: Parsed, seconds: float, topic: str) -> str:
    sent = len(parsed.good)
    rate = sent / seconds if seconds > 0 else 0.0
    head = f"sent {sent} record(s) to {topic} in {seconds:.2f} s ({rate:,.0f}/s)"
    if not parsed.bad:
        return head
    shown = "\n".join(f"  line {n}: {why[:300]}" for n, why in parsed.bad[:50])
    more = f"\n  ... and {len(parsed.bad) - 50} more" if len(parsed.bad) > 50 else ""
    return f"{head}; {len(parsed.bad)} bad line(s) not sent:\n{shown}{more}"
