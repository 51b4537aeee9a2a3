"""The carbon agent through Faust's agent.test_context(): decode, dead-letter, tables, outputs.

No broker: the two outbound sinks (emissions, dead letters) are recorded instead of sent, and
the wait for producer metadata is skipped.
Kafka behaviour itself is covered by tests/integration on a real broker.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest

from agents.carbon.agent import CarbonPipeline
from agents.carbon.rules import Emission
from agents.facility.rules import carbon_budget
from app.core.dedup import Position
from app.runtime.lanes import handled_as_current
from app.runtime.topic_reader import SourceRecord
from app.runtime.topology import Topology, build
from app.settings import load_settings
from schemas.common import EnergySource
from schemas.dead_letter import DeadLetterReason
from tests.factories import BASE_TIME, batch, reading


@pytest.fixture
def topology(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    yield build(load_settings())


class Recorder:
    def __init__(self, pipeline: CarbonPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.emissions: list[Emission] = []
        self.dead: list[dict[str, Any]] = []

        async def send_emissions(emissions: Sequence[Emission]) -> None:
            self.emissions.extend(emissions)

        async def dead_letter(**fields: Any) -> None:
            self.dead.append(fields)

        async def no_metadata_wait(app: Any, topics: Any) -> None:
            return None

        monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
        monkeypatch.setattr(pipeline, "_send_emissions", send_emissions)
        pipeline.grid.caught_up.set()  # no broker: the feeds hold nothing
        pipeline.instruments.caught_up.set()
        monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)


async def test_readings_update_tables_and_emit(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = topology.carbon
    sent = Recorder(pipeline, monkeypatch)
    usage_timed = topology.gov.metrics.processing.labels(pipeline="carbon-usage")
    timed_before = _observations(usage_timed)
    agent = topology.gov.faust.agents["carbon-emissions"]
    async with agent.test_context() as ctx:
        await ctx.put(reading(1, consumption_kwh=10).to_json_bytes(), key=b"facility-001")
        envelope = batch([reading(2, consumption_kwh=5), reading(3, consumption_kwh=1)])
        await ctx.put(envelope.to_json_bytes(), key=b"facility-001")
        await ctx.put(reading(1, consumption_kwh=10).to_json_bytes(), key=b"facility-001")
    assert [e.event_id for e in sent.emissions] == ["evt-000001", "evt-000002", "evt-000003"]
    (day,) = pipeline.day_totals("facility-001")
    assert day.utc_day == BASE_TIME.date()
    assert day.by_source[EnergySource.GRID].energy_mwh == 16_000_000
    assert day.by_source[EnergySource.GRID].readings == 3
    assert [e.event_id for e in pipeline.recent_readings("facility-001")] == [
        "evt-000001",
        "evt-000002",
        "evt-000003",
    ]
    found = pipeline.find_reading("evt-000002")
    assert found is not None and found.consumption_kwh == 5
    assert sent.dead == []
    # the budget usage stage (inside this agent) still reports its time, once per record
    # with emissions (the duplicate has none)
    assert _observations(usage_timed) - timed_before == 2


async def test_a_batch_of_several_facilities_keeps_every_record_deduplicated(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of two facilities in one partition, interleaved, decided as one batch: every
    record's dedup segment is kept, so a reading re-sent in a later batch counts once. (The
    batch used to write the segments facility by facility, and the store, which takes a
    partition's segments in offset order, dropped the second facility's.) Its budget outbox
    entry is written too, for the same reason."""
    pipeline = topology.carbon
    sent = Recorder(pipeline, monkeypatch)
    topic = pipeline.source.get_topic_name()

    def record(offset: int, n: int, facility: str) -> SourceRecord:
        value = reading(n, facility_id=facility, consumption_kwh=1).to_json_bytes()
        return SourceRecord(topic, 0, offset, facility.encode(), value, BASE_TIME.timestamp())

    first = [record(n, n, f"facility-00{n % 2}") for n in range(6)]
    again = [record(6 + n, n, f"facility-00{n % 2}") for n in range(6)]  # producer retries
    for records in (first, again):
        with handled_as_current(records[0]):
            await pipeline.handle_batch(records)
    assert [e.event_id for e in sent.emissions] == [f"evt-00000{n}" for n in (0, 2, 4, 1, 3, 5)]
    for facility in ("facility-000", "facility-001"):
        (day,) = pipeline.day_totals(facility)
        assert day.by_source[EnergySource.GRID].readings == 3
    box = pipeline.budget_usage.writer.box  # type: ignore[union-attr]
    assert {box.get(Position(partition=0, offset=o)) is not None for o in (4, 5)} == {True}


def _observations(histogram: Any) -> float:
    """How many values a histogram child has observed."""
    (metric,) = histogram.collect()
    return next(s.value for s in metric.samples if s.name.endswith("_count"))


async def test_bad_records_are_dead_lettered_and_the_agent_continues(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = topology.carbon
    sent = Recorder(pipeline, monkeypatch)
    agent = topology.gov.faust.agents["carbon-emissions"]
    valid = orjson.loads(reading(1).to_json_bytes())
    async with agent.test_context() as ctx:
        await ctx.put(b"\x00garbage", key=b"facility-001")
        await ctx.put(orjson.dumps({**valid, "power_factor": 3}), key=b"facility-001")
        await ctx.put(reading(1).to_json_bytes(), key=b"other-facility")
        await ctx.put(reading(2).to_json_bytes(), key=b"facility-001")
    assert [d["reason"] for d in sent.dead] == [
        DeadLetterReason.UNDECODABLE,
        DeadLetterReason.POWER_FACTOR_OUT_OF_RANGE,
        DeadLetterReason.KEY_MISMATCH,
    ]
    assert sent.dead[0]["value"] == b"\x00garbage"
    assert sent.dead[0]["key"] == b"facility-001"
    assert all(isinstance(d["offset"], int) for d in sent.dead)
    assert [e.event_id for e in sent.emissions] == ["evt-000002"]


async def test_a_reading_lookup_reads_only_the_ring_that_holds_it(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 part 7: a miss on GET /api/v1/readings/{id} scanned every facility's ring."""
    pipeline = topology.carbon
    Recorder(pipeline, monkeypatch)
    agent = topology.gov.faust.agents["carbon-emissions"]
    async with agent.test_context() as ctx:
        for n in range(1, 41):
            facility = f"facility-{n % 8:03d}"
            value = reading(n, facility_id=facility).to_json_bytes()
            await ctx.put(value, key=facility.encode())
    assert pipeline.find_reading("evt-000017") is not None  # builds the index once

    read: list[str] = []
    real_get = pipeline.recent.get

    def counting_get(key: str, default: Any = None) -> Any:
        read.append(key)
        return real_get(key, default)

    monkeypatch.setattr(pipeline.recent, "get", counting_get)
    monkeypatch.setattr(pipeline.recent, "values", lambda: pytest.fail("scanned every ring"))
    assert pipeline.find_reading("no-such-event") is None
    assert read == []
    found = pipeline.find_reading("evt-000017")
    assert found is not None and found.facility_id == "facility-001" and read == ["facility-001"]


async def test_a_budget_rules_failure_dead_letters_the_record_and_writes_nothing(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Budget usage is counted inside the carbon agent: a bug in its rules must dead-letter
    the record, as one in the carbon rules does, not fail-stop the worker on it for ever,
    and must leave no day totals behind that the budget never saw."""
    pipeline = topology.carbon
    sent = Recorder(pipeline, monkeypatch)

    real = carbon_budget.apply_emissions

    def broken_on_the_first(state: Any, facility_id: str, emissions: Any, *rest: Any) -> Any:
        if emissions[0].event_id == "evt-000001":
            raise ZeroDivisionError("budget rules bug")
        return real(state, facility_id, emissions, *rest)

    monkeypatch.setattr(carbon_budget, "apply_emissions", broken_on_the_first)
    agent = topology.gov.faust.agents["carbon-emissions"]
    async with agent.test_context() as ctx:
        await ctx.put(reading(1, consumption_kwh=10).to_json_bytes(), key=b"facility-001")
        await ctx.put(reading(2, consumption_kwh=5).to_json_bytes(), key=b"facility-001")
    assert [d["reason"] for d in sent.dead] == [DeadLetterReason.PROCESSING_ERROR]
    assert "budget rules bug" in sent.dead[0]["error"]
    assert [e.event_id for e in sent.emissions] == ["evt-000002"]
    (day,) = pipeline.day_totals("facility-001")
    assert day.by_source[EnergySource.GRID].readings == 1
    assert [e.event_id for e in pipeline.recent_readings("facility-001")] == ["evt-000002"]


async def test_readings_of_facilities_past_the_partition_limit_are_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None
) -> None:
    """Issue 16 part 4: every new facility id a producer invents added state for good. Past
    the limit a new facility's reading is dead-lettered before it touches any state; the
    facilities already held keep working."""
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_CARBON__MAX_FACILITIES_PER_PARTITION", "2")
    topology = build(load_settings())
    pipeline = topology.carbon
    sent = Recorder(pipeline, monkeypatch)
    agent = topology.gov.faust.agents["carbon-emissions"]
    async with agent.test_context() as ctx:
        for n in range(1, 201):  # 200 readings, each of a facility never seen before
            facility = f"random-{n:05d}"
            await ctx.put(reading(n, facility_id=facility).to_json_bytes(), key=facility.encode())
        known = reading(1000, facility_id="random-00001")
        await ctx.put(known.to_json_bytes(), key=b"random-00001")
    assert [d["reason"] for d in sent.dead] == [DeadLetterReason.ENTITY_LIMIT] * 198
    assert "random-00003" in sent.dead[0]["error"] and sent.dead[0]["offset"] == 2
    assert [e.event_id for e in sent.emissions] == ["evt-000001", "evt-000002", "evt-001000"]
    assert len(pipeline.recent) == 2 and {k for k in pipeline.days} == {
        "random-00001",
        "random-00002",
    }
    samples = topology.gov.metrics.entity_fill.collect()[0].samples
    assert {s.labels["table"]: s.value for s in samples}["recent-readings"] == 1.0
