"""``governor audit``: budget-audit reports and Parquet export, read from the slot log."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import Any

from app.cli.common import UsageError, require_cluster, settings_of
from app.runtime.connection import aiokafka_options
from app.settings import Settings


def _day_arg(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} must be a date YYYY-MM-DD, got {value!r}") from None


def _day_range(args: argparse.Namespace) -> tuple[date | None, date | None]:
    first, last = _day_arg(args.date_from, "--from"), _day_arg(args.date_to, "--to")
    if (first is None) != (last is None):
        raise UsageError("give --from and --to together")
    if first is not None and last is not None and first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    return first, last


def cmd_audit(args: argparse.Namespace) -> int:
    """Budget-audit reports and Parquet export, read from the slot log topic."""
    from app.tools.audit_log import CorruptSlotLog

    settings = settings_of(args)
    require_cluster(settings)
    first, last = _day_range(args)
    try:
        if args.action == "export":
            return _audit_export(settings, args, first, last)
        return _audit_report(settings, args, first, last)
    except (CorruptSlotLog, LookupError) as exc:
        print(f"governor: {exc}", file=sys.stderr)
        return 1


def _audit_export(
    settings: Settings, args: argparse.Namespace, first: date | None, last: date | None
) -> int:
    from app.tools.audit_log import export_parquet

    if first is None or last is None:
        raise UsageError("audit export needs --from and --to")
    options = aiokafka_options(settings.kafka)
    topic = settings.kafka.topic_prefix + "budget-audit"
    summary = asyncio.run(
        export_parquet(options, topic, first, last, Path(args.out), site=args.site)
    )
    print(f"wrote {summary.rows} slot(s) in {summary.row_groups} row group(s) to {summary.path}")
    return 0


def _audit_report(
    settings: Settings, args: argparse.Namespace, first: date | None, last: date | None
) -> int:
    import json

    from app.tools.audit_log import as_table, read_slots, reports
    from schemas.budget_audit import SlotRecord

    options = aiokafka_options(settings.kafka)
    topic = settings.kafka.topic_prefix + "budget-audit"

    async def collect() -> list[SlotRecord]:
        return [logged.slot async for logged in read_slots(options, topic)]

    daily = _day_arg(args.daily, "--daily")
    whole = args.period == "all"
    rows = reports(asyncio.run(collect()), settings.audit, args.site, daily, first, last, whole)
    if args.format == "table":
        print(as_table(rows))
    elif args.site is not None and len(rows) == 1:
        print(json.dumps(rows[0].model_dump(mode="json"), indent=2))
    else:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    if args.site is not None and not rows:
        print(f"governor: no slots for site {args.site}", file=sys.stderr)
        return 1
    return 0


def add(sub: Any) -> None:
    """Register audit on the ``governor`` parser."""
    audit = sub.add_parser("audit", help="budget-audit reports and Parquet export")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    report = audit_sub.add_parser("report", help="period compliance or daily summary, as JSON")
    report.add_argument("--site", help="one site (default: every site in the log)")
    report.add_argument(
        "--period", choices=["all", "current"], default="all",
        help="without --from/--to: every day in the log (the reference's --report), or the"
        " current compliance period (as GET /api/v1/audit/report)",
    )  # fmt: skip
    report.add_argument("--daily", metavar="YYYY-MM-DD", help="daily summary of this UTC day")
    report.add_argument("--format", choices=["json", "table"], default="json")
    export = audit_sub.add_parser("export", help="write the slot log of a period to Parquet")
    export.add_argument("--out", default="budget-audit.parquet", help="Parquet file to write")
    export.add_argument("--site", help="one site (default: every site)")
    export.set_defaults(daily=None)
    for command in (report, export):
        command.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first day")
        command.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last day")
        command.set_defaults(func=cmd_audit)
