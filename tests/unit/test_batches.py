"""Records handled as batches (issue 17, part 2): the rules decide many records of one key
in one pass with the same decisions as one at a time, and the carbon agent takes what Faust
buffered, writes and sends once per facility, and still dead-letters only the bad record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest

from agents.carbon.rules import DayTotals, Emission, process_readings, process_records
from agents.carbon.settings import CarbonSettings
from agents.facility.rules import carbon_budget as budgets
from agents.facility.rules.carbon_state import FacilityCarbon
from agents.facility.rules.carbon_usage import apply_records
from agents.facility.settings import CarbonBudgetSettings
from app.core.dedup import DedupIndex, Position
from app.runtime.batches import runs_by_partition
from app.runtime.topology import Topology, build
from app.settings import load_settings
from schemas.carbon_budget import CarbonBudget, CarbonPeriod
from schemas.carbon_emission import CarbonEmission
from schemas.common import EnergySource
from schemas.dead_letter import DeadLetterReason
from schemas.meter_reading import MeterReading
from tests.factories import BASE_TIME, reading

CONFIG = CarbonSettings()
BUDGETS = CarbonBudgetSettings()


def records_with_duplicates() -> list[tuple[Position, list[MeterReading]]]:
    """Five records of one facility on partition 3: two days, an event id repeated in a
    later record and one repeated inside a record."""
    late = BASE_TIME.replace(hour=23, minute=58)
    return [
        (Position(partition=3, offset=10), [reading(0), reading(1)]),
        (Position(partition=3, offset=11), [reading(2, timestamp=late)]),
        (Position(partition=3, offset=12), [reading(1), reading(3)]),  # evt-1 again
        (Position(partition=3, offset=14), [reading(4, timestamp=late + timedelta(minutes=3))]),
        (Position(partition=3, offset=15), [reading(5), reading(5)]),  # twice in one record
    ]


def fresh_index() -> DedupIndex:
    return DedupIndex(CONFIG.dedup_window_s, CONFIG.dedup_max_events_per_partition)


class OneAtATime:
    """What the agent keeps when it decides the records one by one."""

    def __init__(self) -> None:
        self.days: dict[Any, DayTotals] = {}
        self.index = fresh_index()
        self.emissions: list[Emission] = []
        self.duplicates: list[str] = []
        self.replayed: list[str] = []

    def run(self, records: Sequence[tuple[Position, list[MeterReading]]]) -> None:
        for position, readings in records:
            outcome = process_readings(readings, position, self.days, self.index, CONFIG)
            self.days.update(outcome.updated_days)
            for segment in outcome.segments:
                self.index.add(segment)
            self.emissions += outcome.emissions
            self.duplicates += outcome.duplicate_event_ids
            self.replayed += outcome.replayed_event_ids


def test_records_decided_together_give_what_one_at_a_time_gives() -> None:
    records = records_with_duplicates()
    alone = OneAtATime()
    alone.run(records)
    index = fresh_index()
    together = process_records(records, {}, index, CONFIG)
    assert [e.to_json_bytes() for e in together.emissions] == [
        e.to_json_bytes() for e in alone.emissions
    ]
    assert together.duplicate_event_ids == alone.duplicates == ["evt-000001", "evt-000005"]
    assert together.emitted == [2, 1, 1, 1, 1]
    assert together.updated_days == alone.days  # each day written once, same totals and mark
    for segment in together.segments:
        index.add(segment)
    assert [s.position.offset for s in together.segments] == [10, 11, 12, 14, 15]
    for position, readings in records:  # each reading is known at its own record's position
        for r in readings:
            found = index.lookup("facility-001", r.event_id)
            assert found is not None and found.position.offset <= position.offset


def test_a_redelivered_batch_re_emits_what_was_applied_and_counts_the_rest() -> None:
    """After a crash the first three records are in the state: a batch of all five re-emits
    theirs (the outputs may have been lost) and counts only the last two."""
    records = records_with_duplicates()
    before = OneAtATime()
    before.run(records[:3])
    alone = OneAtATime()
    alone.days, alone.index = dict(before.days), before.index
    together = process_records(records, before.days, before.index, CONFIG)
    alone.run(records)
    replayed = ["evt-000000", "evt-000001", "evt-000002", "evt-000003"]
    assert together.replayed_event_ids == alone.replayed == replayed
    assert [e.event_id for e in together.emissions] == [e.event_id for e in alone.emissions]
    merged = {**before.days, **together.updated_days}
    assert merged == alone.days
    day = merged[BASE_TIME.date()]
    assert day.by_source[EnergySource.GRID].readings == 5  # 0, 1, 2, 3, 5: each once


def emission(n: int, kwh: float) -> CarbonEmission:
    from agents.carbon.rules import emission_of

    return emission_of(reading(n, consumption_kwh=kwh), CONFIG).to_contract()


def budget_state() -> FacilityCarbon:
    limit = CarbonBudget(facility_id="facility-001", period=CarbonPeriod.MONTH,
                         limit_kg_co2e=100.0, updated_at=BASE_TIME)  # fmt: skip
    out = budgets.apply_budget(None, limit, Position(partition=1, offset=0), BUDGETS)
    assert out.state is not None
    return out.state


def budget_records() -> list[tuple[Position, Sequence[CarbonEmission]]]:
    """Records whose emissions (63 kg each at 150 kWh) cross the warning and the limit."""
    return [
        (Position(partition=1, offset=5), [emission(0, 150.0)]),
        (Position(partition=1, offset=6), []),  # all duplicates: nothing to count
        (Position(partition=1, offset=7), [emission(1, 50.0), emission(2, 50.0)]),
        (Position(partition=1, offset=8), [emission(3, 150.0)]),
    ]


def test_budget_usage_of_a_batch_is_one_update_with_the_same_alerts() -> None:
    records = budget_records()
    state: FacilityCarbon | None = budget_state()
    alerts: list[Any] = []
    for position, emissions in records:
        if emissions:
            out = budgets.apply_emissions(state, "facility-001", emissions, position, BUDGETS)
            state = out.state or state
            alerts += out.outputs.alerts
    assert len(alerts) == 2  # warning, then exceeded
    ((position, together),) = apply_records(budget_state(), "facility-001", records, BUDGETS)
    assert position.offset == 8 and together.records == 3 and together.counted == 4
    assert together.state == state
    assert [a.to_json_bytes() for a in together.outputs.alerts] == [
        a.to_json_bytes() for a in alerts
    ]


def test_a_redelivered_budget_batch_replays_each_counted_record_alone() -> None:
    records = budget_records()
    first = apply_records(budget_state(), "facility-001", records[:3], BUDGETS)
    ((_, counted),) = first
    again = apply_records(counted.state, "facility-001", records, BUDGETS)
    assert [(p.offset, o.replayed) for p, o in again] == [(5, True), (7, True), (8, False)]
    assert again[-1][1].counted == 1 and again[-1][1].records == 1


class Event:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.message = type("M", (), {"topic": topic, "partition": partition, "offset": offset})


def test_a_batch_is_handled_as_one_run_per_partition_in_order() -> None:
    events = [Event("t", 1, 0), Event("t", 0, 0), Event("t", 1, 1), Event("u", 1, 0)]
    runs = runs_by_partition(events)
    assert [[(e.message.topic, e.message.partition, e.message.offset) for e in run]
            for run in runs] == [[("t", 1, 0), ("t", 1, 1)], [("t", 0, 0)],
                                 [("u", 1, 0)]]  # fmt: skip


# The carbon agent, taking batches from Faust's buffer.


def _batching(monkeypatch: pytest.MonkeyPatch, max_wait_ms: str) -> Topology:
    """A worker's topology taking batches of up to 500 records within ``max_wait_ms``."""
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_WORKER__BATCH_MAX_RECORDS", "500")
    monkeypatch.setenv("GOVERNOR_WORKER__BATCH_MAX_WAIT_MS", max_wait_ms)
    return build(load_settings())


@pytest.fixture
def batched(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    yield _batching(monkeypatch, "50")


async def test_the_carbon_agent_takes_a_batch_writes_once_per_facility_and_keeps_good_records(
    batched: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = batched.carbon
    sends: list[list[str]] = []
    dead: list[dict[str, Any]] = []

    async def send_emissions(emissions: Sequence[Emission]) -> None:
        sends.append([e.event_id for e in emissions])

    async def dead_letter(**fields: Any) -> None:
        dead.append(fields)

    async def no_metadata_wait(app: Any, topics: Any) -> None:
        return None

    monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
    monkeypatch.setattr(pipeline, "_send_emissions", send_emissions)
    monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)
    pipeline.grid.caught_up.set()
    pipeline.instruments.caught_up.set()
    written: list[str] = []
    original = pipeline.totals.__class__.on_key_set

    def counted_set(table: Any, key: Any, value: Any) -> None:
        if table is pipeline.totals:
            written.append(key)
        original(table, key, value)

    monkeypatch.setattr(pipeline.totals.__class__, "on_key_set", counted_set)
    agent = batched.gov.faust.agents["carbon-emissions"]
    facilities = ["facility-001", "facility-002", "facility-003"]
    async with agent.test_context() as ctx:
        for n in range(30):
            facility = facilities[n % 3]
            value = reading(n, facility_id=facility, consumption_kwh=1.0 + n).to_json_bytes()
            if n == 13:
                value = b"\x00not json"
            await ctx.put(value, key=facility.encode(), wait=False)
        await ctx.put(reading(3, facility_id="facility-001").to_json_bytes(),
                      key=b"facility-001", wait=False)  # a duplicate of record 3  # fmt: skip
        for _ in range(200):
            if sum(len(s) for s in sends) >= 29 and dead:
                break
            await asyncio.sleep(0.02)
    assert sorted(e for s in sends for e in s) == sorted(
        f"evt-{n:06d}" for n in range(30) if n != 13
    )
    assert len(sends) < 29, "emissions go out per facility and batch, not per record"
    for s in sends:  # each facility's emissions in its records' order
        assert s == sorted(s)
    assert [d["reason"] for d in dead] == [DeadLetterReason.UNDECODABLE]
    assert len(written) < 29, "day totals are written per facility and batch"
    for i, facility in enumerate(facilities):
        (day,) = pipeline.day_totals(facility)
        expected = [n for n in range(30) if n % 3 == i and n != 13]
        assert day.by_source[EnergySource.GRID].readings == len(expected)
        assert day.by_source[EnergySource.GRID].energy_mwh == sum(
            round((1.0 + n) * 1000 * 1000) for n in expected
        )


@pytest.fixture
def no_window(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    """Batches that close as soon as they are opened: only what is already queued joins."""
    yield _batching(monkeypatch, "0.001")


async def test_a_batch_takes_what_faust_queued_at_once_and_in_order(
    no_window: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything queued when a batch opens joins it without a loop iteration per event
    (QueuedEvents), in queue order."""
    pipeline = no_window.carbon
    app = no_window.gov.faust
    batches: list[list[str]] = []
    decide_batch = pipeline.decide_batch

    queued = asyncio.Event()

    async def recorded(admitted: Any) -> Any:
        batches.append([orjson.loads(a.message.value)["event_id"] for a in admitted])
        await queued.wait()  # the first batch is held until the rest are queued
        return await decide_batch(admitted)

    async def send_emissions(emissions: Sequence[Emission]) -> None:
        return None

    async def no_metadata_wait(app: Any, topics: Any) -> None:
        return None

    monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
    monkeypatch.setattr(pipeline, "decide_batch", recorded)
    monkeypatch.setattr(pipeline, "_send_emissions", send_emissions)
    pipeline.grid.caught_up.set()
    pipeline.instruments.caught_up.set()
    agent = app.agents["carbon-emissions"]
    async with agent.test_context() as ctx:
        await ctx.put(reading(0).to_json_bytes(), key=b"facility-001", wait=False)
        for _ in range(100):
            if batches:
                break
            await asyncio.sleep(0.01)
        for n in range(1, 41):
            await ctx.put(reading(n).to_json_bytes(), key=b"facility-001", wait=False)
        queued.set()
        for _ in range(100):
            if sum(len(b) for b in batches) >= 41:
                break
            await asyncio.sleep(0.01)
    assert batches == [["evt-000000"], [f"evt-{n:06d}" for n in range(1, 41)]], (
        "what was queued is one batch, though the window is 1 µs"
    )


class _Message:
    def __init__(self, offset: int, generation_id: int) -> None:
        self.topic, self.partition, self.offset = "t", 0, offset
        self.tp = ("t", 0)
        self.generation_id = generation_id
        self.tracked = False


def _event(offset: int, generation_id: int) -> Any:
    from faust import Event

    return Event(None, None, offset, None, _Message(offset, generation_id))  # type: ignore[arg-type]


async def test_queued_events_skip_what_faust_skips_and_track_what_it_tracks() -> None:
    """QueuedEvents repeats Faust's iterator: an event of an earlier rebalance generation, or
    one taken while flow control is suspended, is skipped; a taken event is tracked as
    unacknowledged and the sensors see it; an error in the queue stops the taking."""
    from types import SimpleNamespace

    from app.runtime.batches import QueuedEvents

    unacked: set[Any] = set()
    seen: list[int] = []
    flow = {"active": True}
    app = SimpleNamespace(
        topics=SimpleNamespace(_acking_topics={"t"}),
        consumer=SimpleNamespace(_unacked_messages=unacked),
        flow_control=SimpleNamespace(is_active=lambda: flow["active"]),
        consumer_generation_id=2,
    )
    stream = SimpleNamespace(
        app=app,
        events_total=0,
        _on_message_in=lambda tp, offset, message: None,
        _on_stream_event_in=lambda tp, offset, stream, event: seen.append(offset),
    )
    queue: asyncio.Queue[Any] = asyncio.Queue()
    queue._errors = []  # type: ignore[attr-defined]
    for offset, generation in [(1, 1), (2, 2), (3, 2), (4, 2), (5, 2)]:
        queue.put_nowait(_event(offset, generation))
    taken = QueuedEvents(stream, queue).take(2)
    assert [e.message.offset for e in taken] == [2, 3] and seen == [2, 3]
    assert {m.offset for m in unacked} == {2, 3} and stream.events_total == 2
    flow["active"] = False
    assert QueuedEvents(stream, queue).take(10) == [] and queue.empty()
    queue.put_nowait(_event(6, 2))
    queue._errors.append(RuntimeError("from the conductor"))  # type: ignore[attr-defined]
    flow["active"] = True
    assert QueuedEvents(stream, queue).take(10) == [] and queue.qsize() == 1


class _Stream:
    """A stream whose events arrive after the given pauses (seconds); acks recorded."""

    def __init__(self, pauses: list[float]) -> None:
        self.pauses = pauses
        self.enable_acks = True
        self.channel = None
        self.acked: list[int] = []

    async def events(self) -> Any:
        for n, pause in enumerate(self.pauses):
            await asyncio.sleep(pause)
            yield n

    async def ack(self, event: int) -> None:
        self.acked.append(event)


async def _batches(stream: _Stream, max_records: int, max_wait_ms: float, idle_ms: float) -> Any:
    from app.runtime.batches import batches_of

    taken: list[tuple[list[int], int]] = []
    async for batch in batches_of(stream, max_records, max_wait_ms, idle_ms):
        taken.append((list(batch), len(stream.acked)))
    return taken


async def test_a_batch_grows_while_records_keep_coming_and_closes_when_they_pause() -> None:
    """Records in quick succession are one batch; a pause longer than the idle time closes
    it (a live trickle is not held for the whole window); each batch is acknowledged only
    after it was handled."""
    stream = _Stream([0.0] * 10 + [0.3] + [0.0] * 2 + [0.3])
    taken = await _batches(stream, 500, 1_000, 50)
    assert [b for b, _ in taken] == [list(range(10)), [10, 11, 12], [13]]
    assert [acked for _, acked in taken] == [0, 10, 13], "acks follow the batch"
    assert stream.acked == list(range(14)) and stream.enable_acks is False


async def test_a_batch_closes_at_its_size_and_at_its_longest_wait() -> None:
    stream = _Stream([0.0] * 30)
    sizes = [len(b) for b, _ in await _batches(stream, 8, 1_000, 50)]
    assert sizes == [8, 8, 8, 6]
    steady = _Stream([0.0] + [0.02] * 20)  # one record every 20 ms, each within the idle time
    batches = [b for b, _ in await _batches(steady, 500, 100, 50)]
    assert len(batches) >= 3, "a steady flow is cut at the longest wait"
    assert [n for b in batches for n in b] == list(range(21))
