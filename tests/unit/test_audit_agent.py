"""The budget-audit agent through Faust's agent.test_context(): decode, dead-letter, tables,
outputs. No broker: the outbound sends are recorded (Kafka itself is covered by
tests/integration on a real broker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.audit.agent import AuditPipeline
from agents.audit.rules.ticks import AuditOutcome
from app.runtime.lanes import handled_as_current
from app.runtime.topic_reader import SourceRecord
from app.runtime.topology import Topology, build
from app.settings import load_settings
from schemas.budget_audit import ComplianceAlert, ComplianceState, SlotRecord
from schemas.dead_letter import DeadLetterReason
from tests.factories import tick


@pytest.fixture
def topology(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_AUDIT__SITES", '{"site-001": {"capacity_kw": 1.0}}')
    yield build(load_settings())


class Recorder:
    def __init__(self, pipeline: AuditPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.slots: list[SlotRecord] = []
        self.alerts: list[ComplianceAlert] = []
        self.dead: list[dict[str, Any]] = []

        async def send(decided: list[tuple[str, AuditOutcome]]) -> None:
            for _, outcome in decided:
                if outcome.slot is not None:
                    self.slots.append(outcome.slot)
                if outcome.alert is not None:
                    self.alerts.append(outcome.alert)

        async def dead_letter(**fields: Any) -> None:
            self.dead.append(fields)

        async def no_metadata_wait(app: Any, topics: Any) -> None:
            return None

        monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
        monkeypatch.setattr(pipeline, "_send", send)
        monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)


async def test_ticks_roll_up_and_alert_once(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = topology.audit
    sent = Recorder(pipeline, monkeypatch)
    agent = topology.gov.faust.agents["budget-audit"]
    valid = orjson.loads(tick(9).to_json_bytes())
    async with agent.test_context() as ctx:
        await ctx.put(tick(0, energy_cost_kwh=0.1).to_json_bytes(), key=b"site-001")
        await ctx.put(tick(1, energy_cost_kwh=0.5).to_json_bytes(), key=b"site-001")
        await ctx.put(tick(2, energy_cost_kwh=0.5).to_json_bytes(), key=b"site-001")
        await ctx.put(tick(1, energy_cost_kwh=0.5).to_json_bytes(), key=b"site-001")
        await ctx.put(b"{not json", key=b"site-001")
        await ctx.put(orjson.dumps({**valid, "energy_cost_kwh": -1}), key=b"site-001")
        await ctx.put(tick(3).to_json_bytes(), key=b"site-002")
    assert [s.event_id for s in sent.slots] == ["tick-000000", "tick-000001", "tick-000002"]
    assert [a.state for a in sent.alerts] == [ComplianceState.NON_COMPLIANT]
    assert [d["reason"] for d in sent.dead] == [
        DeadLetterReason.UNDECODABLE,
        DeadLetterReason.INVALID_SCHEMA,
        DeadLetterReason.KEY_MISMATCH,
    ]
    assert sent.dead[0]["value"] == b"{not json"
    rollups = pipeline.site_rollups("site-001")
    assert rollups is not None and [(r.slots, r.cost_mwh) for r in rollups] == [(3, 1_100_000)]
    assert pipeline.site_rollups("site-002") is None


async def test_replay_gives_the_agents_records_byte_for_byte(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`governor replay control-ticks` runs the same rules: slot log, rollup versions and
    alerts as the agent sends them, a duplicate ignored by both."""
    from agents.traffic.rules.policy import ActivePolicy
    from app.tools.replay import replay
    from app.tools.sample import sample_policy

    pipeline = topology.audit
    sent: dict[str, list[bytes]] = {}

    async def send(decided: list[tuple[str, AuditOutcome]]) -> None:
        for _, outcome in decided:
            for topic, record in (
                ("budget-audit", outcome.slot),
                ("budget-audit-rollups", outcome.rollup),
                ("budget-compliance-alerts", outcome.alert),
            ):
                if record is not None:
                    sent.setdefault(topic, []).append(record.to_json_bytes())

    Recorder(pipeline, monkeypatch)
    monkeypatch.setattr(pipeline, "_send", send)
    ticks = [tick(n, energy_cost_kwh=0.05 * n) for n in range(12)]
    ticks.insert(5, ticks[2])  # a duplicate
    values = [t.to_json_bytes() for t in ticks]
    agent = topology.gov.faust.agents["budget-audit"]
    async with agent.test_context() as ctx:
        for value in values:
            await ctx.put(value, key=b"site-001")
    offline = replay("control-ticks", values, topology.gov.settings,
                     ActivePolicy.of(sample_policy(), "settings"))  # fmt: skip
    assert len(sent["budget-audit"]) == 12 and sent["budget-compliance-alerts"]
    assert offline.outputs == sent and not offline.rejected


async def test_a_tick_redelivered_after_later_ones_re_sends_its_own_rollup_and_alert(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a SIGKILL the day and period can be recovered with several ticks applied while
    the rollup versions and alert of the earlier ones never reached their topics: each
    re-delivered tick re-sends exactly what it sent, from the outbox beside the state."""
    from app.core.dedup import Position

    pipeline = topology.audit
    sent: list[tuple[bytes | None, bytes | None]] = []

    async def send(decided: list[tuple[str, AuditOutcome]]) -> None:
        for _, outcome in decided:
            rollup, alert = outcome.rollup, outcome.alert
            sent.append((rollup.to_json_bytes() if rollup else None,
                         alert.to_json_bytes() if alert else None))  # fmt: skip

    Recorder(pipeline, monkeypatch)
    monkeypatch.setattr(pipeline, "_send", send)
    ticks = [tick(n, energy_cost_kwh=0.5) for n in range(3)]
    agent = topology.gov.faust.agents["budget-audit"]
    async with agent.test_context() as ctx:
        for t in ticks:
            await ctx.put(t.to_json_bytes(), key=b"site-001")
    assert len(sent) == 3 and sent[0][1] is not None  # the first tick crossed the ceiling
    positions = sorted(pipeline.day_box._blocks)  # the partition the test context used
    (partition,) = positions
    for offset, t in enumerate(ticks):
        again = pipeline._recorded(pipeline._decide(t, Position(partition=partition,
                                                                offset=offset)),
                                   Position(partition=partition, offset=offset))  # fmt: skip
        assert again.day is None and again.period is None  # already applied: nothing new
        resent = (again.rollup.to_json_bytes() if again.rollup else None,
                  again.alert.to_json_bytes() if again.alert else None)  # fmt: skip
        assert resent == sent[offset], offset


def test_rollups_written_before_the_outbox_still_load() -> None:
    """The tables' changelogs from before the outbox hold bare rollups."""
    from agents.audit.agent import DayEntry, PeriodEntry
    from agents.audit.rules.ticks import DayRollup, PeriodRollup
    from schemas.budget_audit import CompliancePeriod

    day = DayRollup(site_id="site-001", utc_day=tick(0).timestamp.date())
    period = PeriodRollup(
        site_id="site-001", period=CompliancePeriod.WEEK,
        period_start=day.utc_day, period_end=day.utc_day,
    )  # fmt: skip
    assert DayEntry.model_validate_json(day.model_dump_json()).state == day
    assert PeriodEntry.model_validate_json(period.model_dump_json()).state == period
    assert DayEntry.model_validate_json(DayEntry(state=day).model_dump_json()).state == day


async def test_a_batch_decides_what_one_tick_at_a_time_decides(
    monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None, tmp_path: Path
) -> None:
    """Ticks of two sites interleaved in one partition, with a tick published twice, a late
    tick of a day already past retention and ceiling crossings, decided as one batch and
    then re-delivered (a SIGKILL before the commit): the same records, byte for byte, and
    the same rollups as the same ticks decided one at a time."""
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_AUDIT__SITES", '{"site-001": {"capacity_kw": 1.0}}')
    monkeypatch.setenv("GOVERNOR_AUDIT__ROLLUP_RETENTION_DAYS", "2")
    day = 288  # slots per day
    ticks = [
        tick(0, energy_cost_kwh=0.5),
        tick(1, site_id="site-002"),
        tick(2, energy_cost_kwh=0.5),
        tick(2, energy_cost_kwh=0.5),  # published twice: ignored
        tick(3 * day, energy_cost_kwh=0.001),  # three days on: day 0 past retention
        tick(4, energy_cost_kwh=0.5),  # late, of day 0: past retention too
        tick(3 * day + 1, site_id="site-002"),
        tick(3 * day + 2, energy_cost_kwh=0.0),
    ]

    source = [
        SourceRecord("control-ticks", 0, offset, t.site_id.encode(), t.to_json_bytes(),
                     t.timestamp.timestamp() + 60)
        for offset, t in enumerate(ticks)
    ]  # fmt: skip

    async def run(batch_size: int) -> tuple[dict[str, list[bytes]], list[Any], dict[str, float]]:
        monkeypatch.setenv("GOVERNOR_WORKER__DATA_DIR", str(tmp_path / f"batches-of-{batch_size}"))
        pipeline = build(load_settings()).audit
        sent: dict[str, list[bytes]] = {}

        async def send(decided: list[tuple[str, AuditOutcome]]) -> None:
            for _, outcome in decided:
                for topic, record in (("slots", outcome.slot), ("rollups", outcome.rollup),
                                      ("alerts", outcome.alert)):  # fmt: skip
                    if record is not None:
                        sent.setdefault(topic, []).append(record.to_json_bytes())

        Recorder(pipeline, monkeypatch)
        monkeypatch.setattr(pipeline, "_send", send)
        for _delivery in range(2):  # the second: re-delivered, as after a SIGKILL
            for start in range(0, len(source), batch_size):
                chunk = source[start : start + batch_size]
                with handled_as_current(chunk[0]):
                    await pipeline.handle_batch(chunk)
        rollups = [pipeline.site_rollups(s) for s in ("site-001", "site-002")]
        (family,) = pipeline.audit_metrics.ticks.collect()
        counted = {
            s.labels["outcome"]: s.value for s in family.samples if s.name.endswith("_total")
        }
        return sent, rollups, counted

    one_by_one, batched = await run(1), await run(len(ticks))
    assert batched == one_by_one
    sent, rollups, counted = batched
    # counted alike too; on re-delivery, ticks of days past retention (their rollups dropped)
    # are applied again rather than recognised as replayed
    assert counted == {"applied": 11, "duplicate": 2, "replayed": 3}
    slots, alerts = sent["slots"], sent["alerts"]
    assert len(slots) == 14 and slots[:7] == slots[7:]  # re-delivered: the same bytes again
    assert len(alerts) == 2 and alerts[0] == alerts[1]
    assert [[r.utc_day for r in days or []] for days in rollups] == [
        [tick(3 * day).timestamp.date()],
        [tick(3 * day).timestamp.date()],
    ]
