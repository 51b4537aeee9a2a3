"""Placement: a record is forwarded to its key's murmur2 partition of the repartition topic
only when it is elsewhere, with its bytes, timestamp and headers and its source coordinates;
state recognises a repeated forward by those coordinates."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.partitioner import murmur2

from app.core.dedup import Position
from app.core.origin import FORWARDED_FROM, Origin, origin_of
from app.core.watermark import SourcesWatermarked, Watermarked
from app.runtime.dead_letters import source_coordinates
from app.runtime.placement import FORWARD_MAX_BYTES, Placement, TooLargeToForward

PARTITIONS = 6


@dataclass
class _TP:
    partition: int


@dataclass
class _Producer:
    sent: list[tuple[Any, ...]] = field(default_factory=list)
    lookups: int = 0

    def _ensure_producer(self) -> _Producer:
        return self

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def key_partition(self, topic: str, key: bytes) -> _TP:
        self.lookups += 1
        return _TP((murmur2(key) & 0x7FFFFFFF) % PARTITIONS)

    async def send(self, *args: Any) -> asyncio.Future[None]:
        self.sent.append(args)
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    async def flush(self) -> None:
        return None


@dataclass
class _App:
    producer: _Producer = field(default_factory=_Producer)


@dataclass
class _Counter:
    value: int = 0

    def inc(self) -> None:
        self.value += 1


@dataclass
class _Record:
    key: bytes | None
    partition: int
    offset: int = 7
    topic: str = "t-meter-readings"
    value: bytes | None = b"{}"
    timestamp: float | None = 1_700_000_000.5
    headers: Any = field(default_factory=list)


def _home(key: bytes) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def _placement() -> tuple[Placement, _App, _Counter]:
    app, counter = _App(), _Counter()
    return Placement(app, "t-meter-readings-repartition", counter), app, counter


async def test_a_record_in_its_keys_partition_stays() -> None:
    placement, app, counter = _placement()
    assert not await placement.forward_if_misplaced(_Record(b"facility-1", _home(b"facility-1")))
    assert app.producer.sent == [] and counter.value == 0


async def test_a_misplaced_record_is_forwarded_whole_with_its_origin() -> None:
    placement, app, counter = _placement()
    home = _home(b"facility-1")
    record = _Record(b"facility-1", (home + 1) % PARTITIONS, headers=[("trace", b"abc")])
    assert await placement.forward_if_misplaced(record)
    ((topic, key, value, partition, timestamp, headers),) = app.producer.sent
    assert (topic, key, value, partition, timestamp) == (
        "t-meter-readings-repartition", b"facility-1", b"{}", home, 1_700_000_000.5,
    )  # fmt: skip
    assert headers == [
        ("trace", b"abc"),
        (FORWARDED_FROM, b"t-meter-readings:%d:7" % record.partition),
    ]
    assert counter.value == 1


async def test_a_producers_own_origin_header_is_replaced() -> None:
    """Only Governor says where a forwarded record came from."""
    placement, app, _ = _placement()
    forged = Origin("t-meter-readings", 5, 10**12).encode()
    record = _Record(
        b"k", (_home(b"k") + 2) % PARTITIONS, offset=3, headers=[(FORWARDED_FROM, forged)]
    )
    assert await placement.forward_if_misplaced(record)
    assert app.producer.sent[0][5] == [
        (FORWARDED_FROM, b"t-meter-readings:%d:3" % record.partition)
    ]


async def test_no_key_no_forward_and_homes_are_cached() -> None:
    placement, app, _ = _placement()
    assert not await placement.forward_if_misplaced(_Record(None, 3))
    for _ in range(3):
        await placement.forward_if_misplaced(_Record(b"facility-2", 0))
    assert app.producer.lookups == 1
    placement.forget()
    await placement.forward_if_misplaced(_Record(b"facility-2", 0))
    assert app.producer.lookups == 2


def test_origin_headers_round_trip_and_refuse_junk() -> None:
    origin = Origin("a:b-topic", 3, 12)
    assert Origin.decode(origin.encode()) == origin
    for junk in (b"", b"\xff", b"t:x:1", b"t:1", b":1:2", b"t:-1:2"):
        assert Origin.decode(junk) is None
    assert origin_of("a:b-topic-repartition", {FORWARDED_FROM: origin.encode()}) == origin
    assert origin_of("a:b-topic-repartition", [(FORWARDED_FROM, b"other:1:2")]) is None
    # On any topic but a repartition topic (which producers cannot write), the header is
    # a producer's claim and is ignored.
    assert origin_of("a:b-topic", [(FORWARDED_FROM, origin.encode())]) is None
    assert origin_of("a:b-topic-repartition", None) is None


def test_a_dead_letter_of_a_forwarded_copy_names_where_its_producer_wrote_it() -> None:
    header = Origin("t-meter-readings", 4, 40).encode()
    copy = _Record(b"k", 1, offset=900, topic="t-meter-readings-repartition",
                   headers=[(FORWARDED_FROM, header)])  # fmt: skip
    coordinates = source_coordinates(copy)
    assert (coordinates["source_topic"], coordinates["partition"], coordinates["offset"]) == (
        "t-meter-readings", 4, 40,
    )  # fmt: skip
    claimed = _Record(b"k", 1, offset=9, headers=[(FORWARDED_FROM, header)])
    assert (source_coordinates(claimed)["partition"], source_coordinates(claimed)["offset"]) == (
        1,
        9,
    )


def _forward(partition: int, offset: int, source_partition: int, source_offset: int) -> Position:
    return Position(
        partition=partition, offset=offset, forwarded_from=(source_partition, source_offset)
    )


def test_state_recognises_a_forward_repeated_at_a_new_position() -> None:
    state = Watermarked().stamped(_forward(1_048_577, 10, 4, 40))
    assert state.has_applied(_forward(1_048_577, 10, 4, 40))  # redelivered: same position
    assert state.has_applied(_forward(1_048_577, 55, 4, 40))  # forwarded again after a crash
    assert state.has_applied(_forward(1_048_577, 56, 4, 39))
    assert not state.has_applied(_forward(1_048_577, 57, 4, 41))  # the next one
    assert not state.has_applied(_forward(1_048_577, 58, 3, 40))  # another source partition
    assert not state.has_applied(Position(partition=1, offset=40))  # the source's own lane


def test_state_of_several_sources_recognises_repeats_per_source() -> None:
    state = SourcesWatermarked().stamped("m", _forward(9, 1, 2, 20))
    assert state.has_applied("m", _forward(9, 5, 2, 20))
    assert not state.has_applied("c", _forward(9, 5, 2, 20))
    assert state.stamped("m", _forward(9, 6, 2, 7)).forwarded == {"m": {2: 20}}


async def test_a_record_too_large_to_forward_is_refused_before_it_is_sent() -> None:
    """The producer takes large table values, so the repartition topic's limit is checked
    here: refused by the broker, the forward would stop the worker on every restart. With
    the topic's limit unknown, records are held to Kafka's default."""
    placement, app, counter = _placement()
    misplaced = (_home(b"k") + 1) % PARTITIONS
    largest = FORWARD_MAX_BYTES - 1 - len(FORWARDED_FROM) - len(f"t-meter-readings:{misplaced}:7")
    assert await placement.forward_if_misplaced(_Record(b"k", misplaced, value=b"x" * largest))
    with pytest.raises(TooLargeToForward, match="1,000,001 bytes"):
        await placement.forward_if_misplaced(_Record(b"k", misplaced, value=b"x" * (largest + 1)))
    assert len(app.producer.sent) == 1 and counter.value == 1


async def test_a_larger_record_is_held_to_the_topics_own_limit_asked_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """topics.yaml makes repartition topics take twice Kafka's default, so a record its
    source took is forwarded whatever partitioner put it where it is."""
    asked: list[int] = []
    answers: list[int | Exception | None] = [OSError("broker away"), 2_097_152]

    async def read_limit() -> int | None:
        asked.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    now = [1_000.0]
    monkeypatch.setattr("app.runtime.placement.time.monotonic", lambda: now[0])
    app, counter = _App(), _Counter()
    placement = Placement(app, "t-meter-readings-repartition", counter, read_limit)
    misplaced = (_home(b"k") + 1) % PARTITIONS
    source_limit = _Record(b"k", misplaced, value=b"x" * 1_048_000)  # Kafka's default took it
    with pytest.raises(TooLargeToForward, match="over 1,000,000"):  # the broker did not say
        await placement.forward_if_misplaced(source_limit)
    with pytest.raises(TooLargeToForward):  # not asked again at once
        await placement.forward_if_misplaced(source_limit)
    assert len(asked) == 1
    now[0] += 61
    assert await placement.forward_if_misplaced(source_limit)
    assert await placement.forward_if_misplaced(_Record(b"k", misplaced, value=b"x" * 2_000_000))
    with pytest.raises(TooLargeToForward, match="over 2,096,128"):
        await placement.forward_if_misplaced(_Record(b"k", misplaced, value=b"x" * 2_096_128))
    assert len(asked) == 2 and counter.value == 2
    assert await placement.forward_if_misplaced(_Record(b"k", misplaced))  # small: not asked
    assert len(asked) == 2
