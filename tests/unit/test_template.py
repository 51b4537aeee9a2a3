"""The pipeline template: one ``handle`` for every pipeline. A pipeline defined here, with only
the hooks, gets bad input dead-lettered at the right step, a rules bug dead-lettered instead of
stopping the stream, the parts its rules failed on dead-lettered beside the rest applied, and
a failure to apply raised (the consume loop fail-stops on it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from app.core.checks import Rejection, key_rejection
from app.core.dedup import Position
from app.metrics import Metrics
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor, create_app
from app.runtime.template import Admitted, ApplyBatch, Pipeline
from app.settings import load_settings
from app.topics import Catalogue
from schemas.dead_letter import DeadLetterReason


@dataclass(frozen=True)
class Reading:
    facility_id: str
    litres: int


@dataclass
class Decided:
    total: int
    failures: list[str] = field(default_factory=list)


class WaterTotals(Pipeline[Reading, Decided]):
    """Litres per facility, kept in memory: the hooks and nothing else."""

    def __init__(self, gov: Governor) -> None:
        super().__init__(gov, "water-test", "meter-readings")
        self.totals: dict[str, int] = {}
        self.bound = EntityBound("water-test", lambda: self.totals, 6, limit=2)
        self.applied: list[tuple[Reading, Decided, Position]] = []
        self.fail_apply = False

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> Reading:
        data = orjson.loads(value)
        if not isinstance(data.get("litres"), int):
            raise ValueError("litres: an integer is required")
        return Reading(str(data["facility_id"]), data["litres"])

    def check(
        self, key: bytes | None, event: Reading, timestamp_ms: int | None
    ) -> Rejection | None:
        return key_rejection(key, event.facility_id, "facility_id")

    def entity(self, event: Reading) -> tuple[EntityBound, str]:
        return self.bound, event.facility_id

    def decide(self, event: Reading, position: Position) -> Decided:
        if event.litres < 0:
            raise ArithmeticError("a negative reading")  # a bug in the rules, say
        failures = ["part 2 of the record"] if event.litres == 13 else []
        return Decided(self.totals.get(event.facility_id, 0) + event.litres, failures)

    async def apply(self, event: Reading, outcome: Decided, position: Position) -> None:
        if self.fail_apply:
            raise ConnectionError("the producer cannot send")
        self.totals[event.facility_id] = outcome.total
        self.applied.append((event, outcome, position))

    def failures(self, outcome: Decided) -> Sequence[str]:
        return outcome.failures


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[WaterTotals]:
    settings = load_settings()
    catalogue = Catalogue.load()
    settings.kafka.bootstrap_servers = "127.0.0.1:9"
    gov = create_app(settings, catalogue, Metrics(50, CollectorRegistry()))
    water = WaterTotals(gov)
    dead: list[dict[str, Any]] = []

    async def dead_letter(**fields: Any) -> None:
        dead.append(fields)

    monkeypatch.setattr(water.dead_letters, "send", dead_letter)
    water.dead = dead  # type: ignore[attr-defined]
    yield water


def record(offset: int, value: Any, key: bytes = b"f1") -> Any:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SimpleNamespace(topic="meter-readings", partition=0, offset=offset, key=key,
                           value=raw, timestamp=1.0, headers=None)  # fmt: skip


def reasons(pipeline: WaterTotals) -> list[tuple[int, DeadLetterReason]]:
    dead: list[dict[str, Any]] = pipeline.dead  # type: ignore[attr-defined]
    return [(d["offset"], d["reason"]) for d in dead]


async def test_each_step_dead_letters_what_it_cannot_accept(pipeline: WaterTotals) -> None:
    await pipeline.handle(record(0, {"facility_id": "f1", "litres": 5}))
    await pipeline.handle(record(1, b"{not json"))
    await pipeline.handle(record(2, {"facility_id": "f1", "litres": "five"}))
    await pipeline.handle(record(3, {"facility_id": "f2", "litres": 1}))  # key says f1
    await pipeline.handle(record(4, {"facility_id": "f2", "litres": 1}, key=b"f2"))
    await pipeline.handle(record(5, {"facility_id": "f3", "litres": 1}, key=b"f3"))  # 3rd
    await pipeline.handle(record(6, {"facility_id": "f1", "litres": -1}))
    await pipeline.handle(record(7, {"facility_id": "f1", "litres": 2}))
    assert reasons(pipeline) == [
        (1, DeadLetterReason.UNDECODABLE),
        (2, DeadLetterReason.INVALID_SCHEMA),
        (3, DeadLetterReason.KEY_MISMATCH),
        (5, DeadLetterReason.ENTITY_LIMIT),
        (6, DeadLetterReason.PROCESSING_ERROR),  # the rules bug: dead-lettered, stream goes on
    ]
    assert pipeline.totals == {"f1": 7, "f2": 1}
    assert [p.offset for _, _, p in pipeline.applied] == [0, 4, 7]


async def test_parts_the_rules_failed_on_are_dead_lettered_after_the_rest_applied(
    pipeline: WaterTotals,
) -> None:
    await pipeline.handle(record(0, {"facility_id": "f1", "litres": 13}))
    assert pipeline.totals == {"f1": 13}
    dead: list[dict[str, Any]] = pipeline.dead  # type: ignore[attr-defined]
    assert [(d["reason"], d["error"]) for d in dead] == [
        (DeadLetterReason.PROCESSING_ERROR, "part 2 of the record")
    ]


async def test_a_failure_to_apply_is_raised_for_the_fail_stop(pipeline: WaterTotals) -> None:
    pipeline.fail_apply = True
    with pytest.raises(ConnectionError):
        await pipeline.handle(record(0, {"facility_id": "f1", "litres": 1}))
    assert pipeline.totals == {} and reasons(pipeline) == []


class WaterTotalsTogether(WaterTotals):
    """The same rules, deciding a batch at once: totals per facility, one apply per batch."""

    def __init__(self, gov: Governor) -> None:
        super().__init__(gov)
        self.batches_applied: list[list[int]] = []

    def decide_together(self, batch: Sequence[Admitted[Reading]]) -> ApplyBatch:
        totals = dict(self.totals)
        for item in batch:
            if item.event.litres < 0:
                raise ArithmeticError("a negative reading")
            totals[item.event.facility_id] = (
                totals.get(item.event.facility_id, 0) + item.event.litres
            )

        async def apply() -> None:
            self.totals = totals
            self.batches_applied.append([item.position.offset for item in batch])

        return apply


async def test_a_batch_is_decided_together_and_one_at_a_time_when_the_rules_fail_on_it(
    pipeline: WaterTotals, monkeypatch: pytest.MonkeyPatch
) -> None:
    together = WaterTotalsTogether(pipeline.gov)
    monkeypatch.setattr(together.dead_letters, "send", pipeline.dead_letters.send)
    together.dead = pipeline.dead  # type: ignore[attr-defined]
    await together.handle_batch([
        record(0, {"facility_id": "f1", "litres": 5}),
        record(1, b"{not json"),  # dead-lettered before the rules: the rest decided together
        record(2, {"facility_id": "f1", "litres": 2}),
    ])  # fmt: skip
    assert together.batches_applied == [[0, 2]] and together.applied == []
    await together.handle_batch([
        record(3, {"facility_id": "f1", "litres": 1}),
        record(4, {"facility_id": "f1", "litres": -1}),  # the rules fail on the batch
        record(5, {"facility_id": "f1", "litres": 3}),
    ])  # fmt: skip
    # decided one at a time instead: only the record the rules fail on is dead-lettered
    assert together.batches_applied == [[0, 2]]
    assert [p.offset for _, _, p in together.applied] == [3, 5]
    assert together.totals == {"f1": 11}
    assert reasons(together) == [
        (1, DeadLetterReason.UNDECODABLE),
        (4, DeadLetterReason.PROCESSING_ERROR),
    ]
    await together.handle_batch([record(6, {"facility_id": "f1", "litres": 1})])  # one: alone
    assert together.batches_applied == [[0, 2]] and together.totals == {"f1": 12}
