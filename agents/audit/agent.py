"""control-ticks → budget-audit slot log, day and period rollups, compliance alerts.

Thin adapter: decode, dead-letter what cannot be accepted, call the audit rules, write the
tables, send the slot record, the day's rollup version and any alert. All decisions are in
:mod:`agents.audit.rules.ticks`.

A tick's rollup version comes from its day's state and its alert from its period's state,
so each is kept in an outbox in the table of the state it came from (:mod:`app.runtime.outbox`):
after a SIGKILL, a day (or period) recovered with a tick's effect holds that tick's rollup
(or alert) too, and the re-delivered tick re-sends it, even when later ticks of the same
day were applied as well. (The rules alone can re-send only the last tick's: the state
holds no earlier version.)
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from agents.audit.metrics import AuditMetrics
from agents.audit.rules.ticks import (
    AuditOutcome,
    DayRollup,
    PeriodRollup,
    check_tick,
    day_key,
    period_key,
    process_tick,
)
from app.core.checks import Rejection
from app.core.dedup import Position
from app.core.outbox_entry import Entry
from app.core.periods import period_bounds
from app.core.retention import DayIndex
from app.metrics import JOULES_PER_KWH
from app.runtime.dedup_store import StagedIds
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor
from app.runtime.outbox import Outbox
from app.runtime.producer import send_same_key
from app.runtime.table_view import Overlay
from app.runtime.template import Admitted, ApplyBatch, Pipeline
from schemas.budget_audit import ComplianceAlert, DayRollupRecord
from schemas.control_tick import ControlTick
from schemas.seed_forms import parse_tick

log = logging.getLogger(__name__)

PIPELINE = "audit"
SOURCE = "control-ticks"


class DayOutputs(BaseModel):
    """What a tick sent from its day's state: the rollup version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollup: DayRollupRecord | None = None


class PeriodOutputs(BaseModel):
    """What a tick sent from its period's state: a compliance alert, if it flipped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert: ComplianceAlert | None = None


class DayEntry(Entry[DayRollup, DayOutputs]):
    """A value of audit-day-rollups: a day's rollup, or a block of outbox entries."""

    @model_validator(mode="before")
    @classmethod
    def _bare_rollup(cls, data: Any) -> Any:
        """A changelog written before the outbox holds bare rollups."""
        return _wrap_bare(data)


class PeriodEntry(Entry[PeriodRollup, PeriodOutputs]):
    """A value of audit-period-rollups: a period's rollup, or a block of outbox entries."""

    @model_validator(mode="before")
    @classmethod
    def _bare_rollup(cls, data: Any) -> Any:
        return _wrap_bare(data)


def _wrap_bare(data: Any) -> Any:
    """A rollup names its site; an entry never does."""
    if isinstance(data, dict) and "site_id" in data:
        return {"state": data}
    return data


class _Staged:
    """What decided ticks will write and send, kept until the batch is decided: reads of
    the tables go through its overlays, so each tick sees the ticks before it."""

    def __init__(self, pipeline: AuditPipeline) -> None:
        self.days = Overlay(pipeline.days)
        self.periods = Overlay(pipeline.periods)
        self.indexes = Overlay(pipeline.site_days)
        self.ids = StagedIds(pipeline.ticks_dedup)
        self.day_outputs: list[tuple[Position, DayOutputs]] = []
        self.period_outputs: list[tuple[Position, PeriodOutputs]] = []
        self.sent: list[tuple[str, AuditOutcome]] = []
        """(site, outcome) of each tick, in offset order: what to send."""


class AuditPipeline(Pipeline[ControlTick, AuditOutcome]):
    """The budget-audit agent, its tables and the local queries the HTTP views use."""

    def __init__(self, gov: Governor) -> None:
        super().__init__(gov, PIPELINE, SOURCE)
        self.config = gov.settings.audit
        self.audit_metrics = AuditMetrics(gov.metrics)
        self.slot_log = self.output("budget-audit")
        self.alerts_topic = self.output("budget-compliance-alerts")
        self.rollups_topic = self.output("budget-audit-rollups")
        self.days = self.table(
            "audit-day-rollups", DayEntry, "Slots, cost and interventions per site and UTC day"
        )
        self.periods = self.table(
            "audit-period-rollups", PeriodEntry, "Compliance rollup per site and period"
        )
        keep = self.config.outbox_records_per_partition
        self.day_box: Outbox[DayOutputs] = self.outbox(self.days, DayEntry, keep)
        self.period_box: Outbox[PeriodOutputs] = self.outbox(self.periods, PeriodEntry, keep)
        self.site_days = self.table("audit-site-days", DayIndex, "UTC days with slots, per site")
        self.sites = self.entity_bound(self.site_days, self.config.max_sites_per_partition)
        self.ticks_dedup = self.dedup_store(
            "audit-dedup", self.config.dedup_window_s, self.config.dedup_max_events_per_partition
        )
        self.start_agent("budget-audit")

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> ControlTick:
        return parse_tick(value, key)

    def check(
        self, key: bytes | None, tick: ControlTick, timestamp_ms: int | None
    ) -> Rejection | None:
        return check_tick(key, tick, timestamp_ms, self.config)

    def entity(self, tick: ControlTick) -> tuple[EntityBound, str]:
        return self.sites, tick.site_id

    def decide(self, tick: ControlTick, position: Position) -> AuditOutcome:
        return self._recorded(self._decide(tick, position), position)

    async def apply(self, tick: ControlTick, outcome: AuditOutcome, position: Position) -> None:
        staged = _Staged(self)
        self._stage(staged, tick, outcome, position)
        await self._write_and_send(staged)
        self._count([(tick, outcome)])

    def decide_together(self, batch: Sequence[Admitted[ControlTick]]) -> ApplyBatch:
        """A batch's ticks decided in offset order against the batch's own state (one read
        and one write per day, period and site index; one send per topic and site): the
        same decisions as one at a time."""
        staged = _Staged(self)
        for item in batch:
            outcome = self._recorded(self._decide(item.event, item.position, staged), item.position)
            self._stage(staged, item.event, outcome, item.position)
        ticks = [item.event for item in batch]
        return lambda: self._apply_together(staged, ticks)

    async def _apply_together(self, staged: _Staged, ticks: list[ControlTick]) -> None:
        await self._write_and_send(staged)
        self._count([(tick, o) for tick, (_, o) in zip(ticks, staged.sent, strict=True)])

    def _decide(
        self, tick: ControlTick, position: Position, staged: _Staged | None = None
    ) -> AuditOutcome:
        """The rules' decision against the state as the batch (``staged``) has left it so
        far, or as the tables hold it."""
        staged = staged or _Staged(self)
        self.ticks_dedup.ensure_indexed(position.partition)
        self.day_box.ensure_indexed(position.partition)
        self.period_box.ensure_indexed(position.partition)
        utc_day = tick.timestamp.date()
        start, _ = period_bounds(utc_day, self.config.compliance_period)
        day = staged.days.get(day_key(tick.site_id, utc_day))
        period = staged.periods.get(period_key(tick.site_id, self.config.compliance_period, start))
        return process_tick(
            tick,
            position,
            day.state if day is not None else None,
            period.state if period is not None else None,
            staged.ids.first_position(tick.site_id, tick.event_id),
            self.config,
        )

    def _recorded(self, outcome: AuditOutcome, position: Position) -> AuditOutcome:
        """A tick whose day (or period) already holds it re-sends the rollup (or alert) it
        sent then, from the outbox beside that state."""
        if outcome.duplicate:
            return outcome
        if outcome.day is None and (sent := self.day_box.get(position)) is not None:
            outcome.rollup = sent.rollup
        if outcome.period is None and (alerted := self.period_box.get(position)) is not None:
            outcome.alert = alerted.alert
        return outcome

    def _stage(
        self, staged: _Staged, tick: ControlTick, outcome: AuditOutcome, position: Position
    ) -> None:
        """The tick's writes and sends, kept in ``staged`` (nothing reaches a table yet)."""
        site_id = tick.site_id
        if outcome.segment is not None:
            staged.ids.add(outcome.segment)
        staged.sent.append((site_id, outcome))
        if outcome.period is not None:
            staged.period_outputs.append((position, PeriodOutputs(alert=outcome.alert)))
            staged.periods[outcome.period.key] = PeriodEntry(state=outcome.period)
        if outcome.day is not None:
            staged.day_outputs.append((position, DayOutputs(rollup=outcome.rollup)))
            staged.days[outcome.day.key] = DayEntry(state=outcome.day)
            index = staged.indexes.get(site_id) or DayIndex(entity_id=site_id)
            updated, expired = index.with_days(
                [outcome.day.utc_day], self.config.rollup_retention_days
            )
            if updated is not index:
                staged.indexes[site_id] = updated
            self._expire(staged, site_id, expired, updated)

    def _expire(self, staged: _Staged, site_id: str, expired: list[date], index: DayIndex) -> None:
        """Drop rollups of days past retention, and periods that ended before the oldest
        retained day."""
        oldest = index.days[0] if index.days else None
        for old_day in expired:
            staged.days.pop(day_key(site_id, old_day))
            start, end = period_bounds(old_day, self.config.compliance_period)
            if oldest is None or end < oldest:
                staged.periods.pop(period_key(site_id, self.config.compliance_period, start))

    async def _write_and_send(self, staged: _Staged) -> None:
        """Every outbox entry before the states they came with (one write per key), the
        dedup segments in offset order, then the records: one send per topic and site.
        Each write is idempotent under re-delivery."""
        for position, day_outputs in staged.day_outputs:
            self.day_box.record(position, day_outputs)
        for position, period_outputs in staged.period_outputs:
            self.period_box.record(position, period_outputs)
        staged.days.write_back()
        staged.periods.write_back()
        staged.indexes.write_back()
        staged.ids.write()
        await self._send(staged.sent)

    async def _send(self, decided: list[tuple[str, AuditOutcome]]) -> None:
        """Each tick's slot record, its day's rollup version and any alert, to their topics:
        one send per topic and site, in offset order."""
        values: dict[tuple[str, str], list[bytes]] = {}
        for site_id, outcome in decided:
            for topic, record in (
                (self.slot_log, outcome.slot),
                (self.rollups_topic, outcome.rollup),
                (self.alerts_topic, outcome.alert),
            ):
                if record is not None:
                    key = (topic.get_topic_name(), site_id)
                    values.setdefault(key, []).append(record.to_json_bytes())
        for (topic, site_id), site_values in values.items():
            await send_same_key(self.gov.faust, topic, site_id.encode(), site_values)

    def _count(self, decided: Sequence[tuple[ControlTick, AuditOutcome]]) -> None:
        """Count decided ticks: summed per outcome and site, one metric update each."""
        outcomes: Counter[str] = Counter()
        energy: defaultdict[str, float] = defaultdict(float)
        utilization: dict[str, float] = {}
        alerts: Counter[str] = Counter()
        for tick, outcome in decided:
            if outcome.duplicate or outcome.replayed:
                outcomes["duplicate" if outcome.duplicate else "replayed"] += 1
                continue
            outcomes["applied"] += 1
            energy[tick.site_id] += tick.energy_cost_kwh * JOULES_PER_KWH
            ceiling = self.config.ceiling_kwh(tick.site_id)
            if outcome.period is not None and ceiling:
                ratio = outcome.period.projection().projected_annual_kwh / ceiling
                utilization[tick.site_id] = ratio
            if outcome.alert is not None:
                alerts[outcome.alert.state.value] += 1
        m = self.audit_metrics
        self.metrics.records.labels(pipeline=PIPELINE, outcome="accepted").inc(len(decided))
        for name, count in outcomes.items():
            m.ticks.labels(outcome=name).inc(count)
        for site_id, joules in energy.items():
            m.energy.labels(site=m.site_label(site_id)).inc(joules)
        for site_id, ratio in utilization.items():
            m.utilization.labels(site=m.site_label(site_id)).set(ratio)
        for state, count in alerts.items():
            m.alerts.labels(state=state).inc(count)
        self.metrics.dedup_events.labels(pipeline=PIPELINE).set(len(self.ticks_dedup))

    # Local queries for the HTTP views (the view routes to the owning worker first).

    def site_rollups(self, site_id: str) -> list[DayRollup] | None:
        """All retained day rollups of a site, oldest first; ``None`` for an unknown site."""
        index = self.site_days.get(site_id)
        if index is None:
            return None
        found = (self.days.get(day_key(site_id, d)) for d in index.days)
        return [d.state for d in found if d is not None and d.state is not None]

    def local_sites(self) -> list[str]:
        """Sites of the partitions this worker actively owns (not standby copies, which may
        lag: only the owner answers for a site)."""
        return self.actively_owned_keys(self.site_days)


def _where(message: Any) -> tuple[str, int, int]:
    return message.topic, message.partition, message.offset


def register(gov: Governor) -> AuditPipeline:
    """Wire the budget-audit pipeline into ``gov``'s app."""
    return AuditPipeline(gov)
