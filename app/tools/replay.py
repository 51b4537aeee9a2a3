"""`governor replay`: the pipelines' rules over a JSONL or Parquet file, with no broker.

Writes one JSONL file per output topic (the decision records, byte for byte what the live
pipeline publishes for the same input in the same order) and ``ledger.jsonl``: one hash
chain over every decision, from its genesis record. This is also how to backfill, and how
to try a policy or a threshold on past traffic (run it with other settings).

Supported inputs: meter-readings (carbon emissions), request-events (traffic decisions,
breaker transitions, burn-rate alerts), control-ticks (the budget-audit slot log, day
rollup versions, compliance alerts) and fusion-results (energy decisions, tripwire,
gate and breaker events, routing). Settlements never read live routing, and the overlay
stage applies a scope's runs in event-time order (:mod:`agents.fusion.rules.ordering`), so AI
cost decisions are the live ones too, except for runs the live overlay stage counted late.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from agents.audit.rules.ticks import (
    DayRollup,
    PeriodRollup,
    check_tick,
    period_key,
    process_tick,
)
from agents.audit.rules.ticks import day_key as site_day_key
from agents.carbon.rules import DayTotals, check_record, day_key, process_readings
from agents.fusion.rules.offline import OfflineFusion
from agents.traffic.rules.engine import route
from agents.traffic.rules.offline import OfflineTraffic
from agents.traffic.rules.policy import ActivePolicy
from app.core.dedup import DedupIndex, Position
from app.core.periods import period_bounds
from app.ledger.chain import Decision, append_decisions, new_head
from app.settings import Settings
from app.tools.produce import Progress
from app.topics import Catalogue
from schemas.fusion_result import FusionResult
from schemas.meter_reading import MeterReadingBatch
from schemas.seed_forms import parse_reading_record, parse_request_event, parse_tick

SUPPORTED = ("meter-readings", "request-events", "control-ticks", "fusion-results")


class ReplayError(ValueError):
    """The input cannot be replayed (unknown topic, unreadable file)."""


@dataclass
class Replayed:
    """Output records per topic, in the order the rules produced them, and what was refused."""

    outputs: dict[str, list[bytes]] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def add(self, topic: str, values: Iterable[bytes]) -> None:
        self.outputs.setdefault(topic, []).extend(values)


def read_values(path: Path) -> Iterator[bytes]:
    """The record values of a JSONL file (one JSON value per line) or a Parquet file (one
    row per record, columns named as the contract's fields)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for row in pq.read_table(path).to_pylist():
            yield orjson.dumps(row, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)
        return
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r\n")


def _carbon(values: list[bytes], settings: Settings, out: Replayed, progress: Progress) -> None:
    days: dict[str, DayTotals] = {}
    dedup = DedupIndex(
        settings.carbon.dedup_window_s, settings.carbon.dedup_max_events_per_partition
    )
    emitted: list[bytes] = []
    for offset, value in enumerate(values):
        progress.update(offset + 1)
        try:
            record = parse_reading_record(value)
        except ValueError as exc:
            out.rejected.append((offset + 1, str(exc)[:300]))
            continue
        rejection = check_record(record.facility_id.encode(), record, None, settings.carbon)
        if rejection is not None:
            out.rejected.append((offset + 1, rejection.message))
            continue
        readings = record.readings if isinstance(record, MeterReadingBatch) else [record]
        position = Position(partition=0, offset=offset)
        current: dict[date, DayTotals] = {}
        for r in readings:
            key = day_key(r.facility_id, r.timestamp.date())
            if key in days:
                current[r.timestamp.date()] = days[key]
        outcome = process_readings(readings, position, current, dedup, settings.carbon)
        for totals in outcome.updated_days.values():
            days[totals.key] = totals
        if outcome.segment is not None:
            dedup.add(outcome.segment)
        emitted.extend(e.to_json_bytes() for e in outcome.emissions)
    out.add("carbon-emissions", emitted)


def _traffic(values: list[bytes], active: ActivePolicy, out: Replayed, progress: Progress) -> None:
    offline = OfflineTraffic(active)
    for offset, value in enumerate(values):
        progress.update(offset + 1)
        try:
            event = parse_request_event(value, None, None)
        except ValueError as exc:
            out.rejected.append((offset + 1, str(exc)[:300]))
            continue
        position = Position(partition=0, offset=offset)
        outcome = offline.decide(route(event, position, active), position)
        if outcome.outputs is not None and not outcome.duplicate:
            o = outcome.outputs
            out.add("traffic-decisions", [o.decision.to_json_bytes()])
            out.add("circuit-breaker-events", [t.to_json_bytes() for t in o.transitions])
            out.add("traffic-alerts", [a.to_json_bytes() for a in o.alerts])


def _audit(values: list[bytes], settings: Settings, out: Replayed, progress: Progress) -> None:
    config = settings.audit
    days: dict[str, DayRollup] = {}
    periods: dict[str, PeriodRollup] = {}
    dedup = DedupIndex(config.dedup_window_s, config.dedup_max_events_per_partition)
    for offset, value in enumerate(values):
        progress.update(offset + 1)
        try:
            tick = parse_tick(value, None)
        except ValueError as exc:
            out.rejected.append((offset + 1, str(exc)[:300]))
            continue
        rejection = check_tick(tick.site_id.encode(), tick, None, config)
        if rejection is not None:
            out.rejected.append((offset + 1, rejection.message))
            continue
        position = Position(partition=0, offset=offset)
        day = site_day_key(tick.site_id, tick.timestamp.date())
        start, _ = period_bounds(tick.timestamp.date(), config.compliance_period)
        period = period_key(tick.site_id, config.compliance_period, start)
        seen = dedup.lookup(tick.site_id, tick.event_id)
        outcome = process_tick(tick, position, days.get(day), periods.get(period),
                               seen.position if seen else None, config)  # fmt: skip
        if outcome.duplicate:
            continue
        if outcome.day is not None:
            days[day] = outcome.day
        if outcome.period is not None:
            periods[period] = outcome.period
        if outcome.segment is not None:
            dedup.add(outcome.segment)
        for topic, record in (
            ("budget-audit", outcome.slot),
            ("budget-audit-rollups", outcome.rollup),
            ("budget-compliance-alerts", outcome.alert),
        ):
            if record is not None:
                out.add(topic, [record.to_json_bytes()])


def _fusion(values: list[bytes], settings: Settings, out: Replayed, progress: Progress) -> None:
    offline = OfflineFusion(settings.fusion, ordered=True)
    for offset, value in enumerate(values):
        progress.update(offset + 1)
        try:
            result = FusionResult.from_json_bytes(value)
        except ValueError as exc:
            out.rejected.append((offset + 1, str(exc)[:300]))
            continue
        out.add("energy-decisions", [d.to_json_bytes() for d in offline.result(result)])
    offline.finish()
    for o in offline.scope_outputs:
        out.add("tripwire-events", [e.to_json_bytes() for e in o.tripwire_events])
        out.add("fusion-gate-events", [g.to_json_bytes() for g in o.gate_transitions])
        out.add("overlay-breaker-events", [b.to_json_bytes() for b in o.breaker_transitions])
        out.add("overlay-routing", [r.to_json_bytes() for r in o.routings])


def replay(topic: str, values: list[bytes], settings: Settings, active: ActivePolicy) -> Replayed:
    """Run ``topic``'s rules over ``values`` as one partition, in order."""
    out = Replayed()
    progress = Progress(len(values))
    if topic == "meter-readings":
        _carbon(values, settings, out, progress)
    elif topic == "request-events":
        _traffic(values, active, out, progress)
    elif topic == "control-ticks":
        _audit(values, settings, out, progress)
    elif topic == "fusion-results":
        _fusion(values, settings, out, progress)
    else:
        raise ReplayError(f"cannot replay {topic!r} (supported: {', '.join(SUPPORTED)})")
    return out


def ledger_records(out: Replayed, catalogue: Catalogue, recent_ids: int) -> list[bytes]:
    """One chain ("replay") over every decision, topic by topic, in output order."""
    head, genesis_value = new_head("replay", recent_ids)
    records = [genesis_value]
    for topic, values in out.outputs.items():
        spec = catalogue[topic]
        if spec.ledger_id is None:
            continue
        decisions = []
        for offset, value in enumerate(values):
            body: dict[str, Any] = json.loads(value)
            key = body.get(spec.key) if isinstance(body.get(spec.key), str) else None
            decisions.append(Decision(topic, 0, offset, key, str(body[spec.ledger_id]), body))
        head, appended = append_decisions(head, decisions)
        records.extend(value for _, value in appended.records)
    return records


def write(out: Replayed, directory: Path, catalogue: Catalogue, recent_ids: int) -> dict[str, int]:
    """The output files; returns records written per file."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for topic, values in {
        **out.outputs,
        "ledger": ledger_records(out, catalogue, recent_ids),
    }.items():
        path = directory / f"{topic}.jsonl"
        path.write_bytes(b"".join(v + b"\n" for v in values))
        written[path.name] = len(values)
    return written
