"""Reading the budget-audit slot log: reports and Parquet export, with no worker needed.

The slot log is the audit trail: reports here fold it with the same rules the worker's
tables use (:func:`agents.audit.rules.fold_slots`), so the two must agree, and the integration
tests check that they do. The log is at least once; every reader deduplicates by event id.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from agents.audit.rules.report import (
    current_period,
    daily_summary,
    fold_slots,
    newest_day,
    period_report,
)
from agents.audit.settings import AuditSettings
from app.runtime.topic_reader import read_topic
from schemas.budget_audit import SlotRecord

ROW_GROUP_ROWS = 50_000
"""Rows buffered per Parquet row group: memory stays bounded however long the period."""

PARQUET_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("site_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("date", pa.date32()),
        ("slot_index", pa.int64()),
        ("planned_offset_deg", pa.float64()),
        ("actual_offset_deg", pa.float64()),
        ("energy_cost_kwh", pa.float64()),
        ("budget_spent_kwh", pa.float64()),
        ("budget_remaining_kwh", pa.float64()),
        ("gate_passed", pa.bool_()),
        ("source", pa.string()),
        ("stage_id", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)
"""The reference's slot-log columns (``date`` is the UTC day), plus where each row sits in
the topic."""


class CorruptSlotLog(Exception):
    """A record in the slot log is not a slot record; names where it is."""


@dataclass(frozen=True, slots=True)
class LoggedSlot:
    slot: SlotRecord
    partition: int
    offset: int


async def read_slots(options: dict[str, Any], topic: str) -> AsyncIterator[LoggedSlot]:
    """Every slot record in the log now, each event id once (the first logged)."""
    seen: set[str] = set()
    async for message in read_topic(options, topic):
        try:
            slot = SlotRecord.from_json_bytes(message.value)
        except (ValidationError, ValueError) as exc:
            where = f"{topic}[{message.partition}]@{message.offset}"
            raise CorruptSlotLog(f"{where} is not a slot record: {exc}") from exc
        if slot.event_id in seen:
            continue
        seen.add(slot.event_id)
        yield LoggedSlot(slot, message.partition, message.offset)


def reports(
    slots: list[SlotRecord],
    config: AuditSettings,
    site: str | None = None,
    daily: date | None = None,
    first: date | None = None,
    last: date | None = None,
    whole_log: bool = False,
) -> list[BaseModel]:
    """Daily summaries (``daily`` set) or period reports, per site, sorted by site.

    Without ``first``/``last`` a period report covers each site's current compliance period
    (the one holding its newest day), as the HTTP API's does; with ``whole_log``, every day
    the log holds for the site, as the reference's ``--report`` does.
    """
    by_site = fold_slots(slots)
    chosen = [site] if site is not None else sorted(by_site)
    out: list[BaseModel] = []
    for site_id in chosen:
        days = by_site.get(site_id, {})
        if daily is not None:
            out.append(daily_summary(site_id, daily, days.get(daily)))
            continue
        rollups = list(days.values())
        newest = newest_day(rollups)
        if newest is None:
            continue
        if first and last:
            start, end = first, last
        elif whole_log:
            start, end = min(d.utc_day for d in rollups), newest
        else:
            start, end = current_period(newest, config)
        out.append(period_report(site_id, start, end, rollups, config))
    return out


def as_table(rows: Sequence[BaseModel]) -> str:
    """A fixed-width text table of reports, one row per site (or site-day)."""
    if not rows:
        return "no slots"
    dumped = [r.model_dump(mode="json") for r in rows]
    columns = list(dumped[0])
    cells = [[_cell(d[c]) for c in columns] for d in dumped]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    rows_out = [columns, *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows_out
    )


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    rows: int
    row_groups: int
    path: Path


async def export_parquet(
    options: dict[str, Any],
    topic: str,
    first: date,
    last: date,
    out: Path,
    site: str | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> ExportSummary:
    """Write the slot records of UTC days ``[first, last]`` to one Parquet file.

    Streaming: rows are buffered up to one row group and appended to the open file, never
    rewriting it. The file appears at ``out`` only when complete (written beside it, then
    renamed), so a failed export leaves no half file behind.
    """
    partial = out.with_name(out.name + ".partial")
    columns: dict[str, list[Any]] = {name: [] for name in PARQUET_SCHEMA.names}
    rows = groups = 0
    writer = pq.ParquetWriter(partial, PARQUET_SCHEMA, compression="zstd")
    try:
        async for logged in read_slots(options, topic):
            slot = logged.slot
            if not first <= slot.utc_day <= last or (site is not None and slot.site_id != site):
                continue
            _append(columns, logged)
            rows += 1
            if len(columns["event_id"]) >= row_group_rows:
                groups += _flush(writer, columns)
        groups += _flush(writer, columns)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(partial, out)
    return ExportSummary(rows=rows, row_groups=groups, path=out)


def _append(columns: dict[str, list[Any]], logged: LoggedSlot) -> None:
    slot = logged.slot
    for name in PARQUET_SCHEMA.names[:-2]:
        columns[name].append(slot.utc_day if name == "date" else getattr(slot, name))
    columns["kafka_partition"].append(logged.partition)
    columns["kafka_offset"].append(logged.offset)


def _flush(writer: pq.ParquetWriter, columns: dict[str, list[Any]]) -> int:
    if not columns["event_id"]:
        return 0
    writer.write_table(pa.Table.from_pydict(columns, schema=PARQUET_SCHEMA))
    for values in columns.values():
        values.clear()
    return 1
