"""Where a forwarded record first arrived: its coordinates, carried in a record header.

A record a producer put in a partition other than its key's is forwarded to its key's
partition of the source's repartition topic (:mod:`app.runtime.placement`). The copy
carries the source record's coordinates: a dead letter of the copy names the record the
producer wrote, and state recognises a forward repeated after a crash by them. The header
is trusted only on a repartition topic, which only Governor writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

REPARTITION_SUFFIX = "-repartition"
"""``<source>-repartition`` holds the source's forwarded records (see topics.yaml)."""
FORWARDED_FROM = "governor-forwarded-from"
"""Header name; its value is ``<topic>:<partition>:<offset>`` in UTF-8."""

Headers = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


@dataclass(frozen=True, slots=True)
class Origin:
    """The coordinates of the record a producer wrote."""

    topic: str
    partition: int
    offset: int

    def encode(self) -> bytes:
        return f"{self.topic}:{self.partition}:{self.offset}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> Origin | None:
        """The origin in a header value; ``None`` when it is not one (a header a producer
        set by hand is not trusted to be well formed)."""
        try:
            topic, partition, offset = raw.decode("utf-8").rsplit(":", 2)
            origin = cls(topic, int(partition), int(offset))
        except (UnicodeDecodeError, ValueError):
            return None
        return origin if topic and origin.partition >= 0 and origin.offset >= 0 else None


def header_items(headers: Headers) -> list[tuple[str, bytes]]:
    """Headers as a list of (name, value), whichever form the client gave them in."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def origin_of(topic: str, headers: Headers) -> Origin | None:
    """The source record a record of the repartition topic ``topic`` was forwarded from;
    ``None`` on any other topic."""
    if not topic.endswith(REPARTITION_SUFFIX):
        return None
    source = topic.removesuffix(REPARTITION_SUFFIX)
    for name, value in header_items(headers):
        if name == FORWARDED_FROM and isinstance(value, bytes | bytearray):
            origin = Origin.decode(bytes(value))
            return origin if origin is not None and origin.topic == source else None
    return None
