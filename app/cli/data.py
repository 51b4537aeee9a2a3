"""``governor generate``, ``replay``, ``report``, ``tail``, ``produce``: data in and out
without a worker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from app.cli.common import UsageError, require_cluster, settings_of
from app.runtime.connection import aiokafka_options
from app.topics import Catalogue, TopicRole


def cmd_produce(args: argparse.Namespace) -> int:
    """Validate every line of a JSONL or CSV file (or stdin), then publish the good ones."""
    from app.tools.produce import detect_format, parse, read_input, send, summary

    settings = settings_of(args)
    catalogue = Catalogue.load()
    try:
        spec = catalogue[args.topic]
    except KeyError:
        inputs = ", ".join(s.name for s in catalogue.topics if s.role is TopicRole.INPUT)
        raise UsageError(f"unknown topic {args.topic!r} (input topics: {inputs})") from None
    if spec.role is not TopicRole.INPUT:
        raise UsageError(f"{spec.name} is an output topic: Governor writes it")
    fmt = detect_format(args.source, args.format)
    try:
        with read_input(args.source) as text:
            parsed = parse(text, spec, fmt)
    except OSError as exc:
        raise UsageError(f"cannot read {args.source}: {exc}") from None
    seconds = 0.0
    if not args.dry_run and parsed.good:
        require_cluster(settings)
        topic = settings.kafka.topic_prefix + spec.name
        seconds = asyncio.run(
            send(aiokafka_options(settings.kafka), topic, parsed.good, len(parsed.good), args.rate)
        )
    if args.dry_run:
        print(f"{len(parsed.good)} valid record(s), {len(parsed.bad)} bad (dry run, none sent)")
        for number, why in parsed.bad[:50]:
            print(f"  line {number}: {why[:300]}")
    else:
        print(summary(parsed, seconds, spec.name))
    return 1 if parsed.bad else 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Write a seeded workload for an input topic as JSONL (stdout or --out)."""
    from datetime import UTC, datetime

    from app.tools.generate import GENERATORS, Workload, generate

    if args.topic not in GENERATORS:
        raise UsageError(f"no generator for {args.topic!r} (have: {', '.join(GENERATORS)})")
    try:
        start = datetime.fromisoformat(args.start) if args.start else None
    except ValueError as exc:
        raise UsageError(f"--start: {exc}") from None
    if start is not None and start.tzinfo is None:
        raise UsageError("--start needs a timezone, e.g. 2024-01-15T00:00:00Z")
    workload = Workload(seed=args.seed, hours=args.hours, facilities=args.facilities)
    if start is not None:
        workload = dataclasses.replace(workload, start=start.astimezone(UTC))
    out = open(args.out, "wb") if args.out else sys.stdout.buffer  # noqa: SIM115
    count = 0
    try:
        for line in generate(args.topic, workload):
            out.write(line + b"\n")
            count += 1
    except BrokenPipeError:  # e.g. piped into `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if args.out:
            out.close()
    print(f"{count} {args.topic} record(s), seed {args.seed}", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Run a pipeline's rules over a JSONL or Parquet file offline; write decisions and ledger."""
    from agents.traffic.rules.policy import ActivePolicy
    from app.tools.replay import ReplayError, read_values, replay, write

    settings = settings_of(args)
    source = Path(args.file)
    try:
        values = list(read_values(source))
        out = replay(args.topic, values, settings,
                     ActivePolicy.of(settings.traffic.policy, "settings"))  # fmt: skip
    except (OSError, ReplayError) as exc:
        raise UsageError(str(exc)) from None
    written = write(out, Path(args.out), Catalogue.load(), settings.ledger.recent_ids_per_chain)
    for name, count in written.items():
        print(f"{count:8d} {Path(args.out) / name}")
    for line, why in out.rejected[:50]:
        print(f"  record {line} refused: {why}", file=sys.stderr)
    return 1 if out.rejected else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a self-contained HTML report of a facility, site or tenant over a period."""
    from datetime import UTC, datetime, timedelta

    from app.tools.report import Subject, build, render

    settings = settings_of(args)
    require_cluster(settings)
    try:
        end = datetime.fromisoformat(args.to) if args.to else datetime.now(UTC)
        start = datetime.fromisoformat(args.since) if args.since else end - timedelta(days=30)
    except ValueError as exc:
        raise UsageError(f"--from/--to: {exc}") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise UsageError("--from and --to need a timezone, e.g. 2024-01-15T00:00:00Z")
    budgets = settings.carbon_budgets
    report = asyncio.run(build(
        aiokafka_options(settings.kafka), settings.kafka.topic_prefix, Subject(args.subject),
        args.id, start, end, (budgets.warning_threshold_pct, budgets.critical_threshold_pct),
    ))  # fmt: skip
    out = Path(args.out or f"report-{args.subject}-{args.id}.html")
    out.write_text(render(report), encoding="utf-8")
    print(f"{out}: {len(report.charts)} plots, {len(report.tables)} tables")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print a topic's records live (or from its beginning), filtered by key."""
    from app.tools.tail import tail

    settings = settings_of(args)
    try:
        spec = Catalogue.load()[args.topic]
    except KeyError:
        raise UsageError(f"unknown topic {args.topic!r} (see topics.yaml)") from None
    require_cluster(settings)
    topic = settings.kafka.topic_prefix + spec.name
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(aiokafka_options(settings.kafka), topic, args.key,
                         args.from_beginning, args.max, args.compact))  # fmt: skip
    return 0


def add(sub: Any) -> None:
    """Register generate, replay, report, tail, produce on the ``governor`` parser."""
    gen = sub.add_parser("generate", help="write a seeded, reproducible workload as JSONL")
    gen.add_argument("topic", help="an input topic, e.g. meter-readings")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--start", help="ISO 8601 with zone (default 2024-01-15T00:00:00Z)")
    gen.add_argument("--hours", type=float, default=24.0)
    gen.add_argument("--facilities", type=int, default=4)
    gen.add_argument("--out", help="file (default: stdout)")
    gen.set_defaults(func=cmd_generate)
    rep = sub.add_parser("replay", help="run the rules offline over a JSONL/Parquet file")
    rep.add_argument(
        "topic", help="meter-readings, request-events, control-ticks or fusion-results"
    )
    rep.add_argument("file", help=".jsonl (one value per line) or .parquet")
    rep.add_argument(
        "--out", default="var/replay", help="directory for <topic>.jsonl, ledger.jsonl"
    )
    rep.set_defaults(func=cmd_replay)
    rpt = sub.add_parser("report", help="a self-contained HTML report with plots")
    rpt.add_argument("subject", choices=["facility", "site", "tenant"])
    rpt.add_argument("id", help="the facility, site or tenant id")
    rpt.add_argument("--from", dest="since", help="ISO 8601 with zone (default: 30 days ago)")
    rpt.add_argument("--to", help="ISO 8601 with zone (default: now)")
    rpt.add_argument("--out", help="HTML file (default: report-<subject>-<id>.html)")
    rpt.set_defaults(func=cmd_report)
    tail_cmd = sub.add_parser("tail", help="print a topic's records live, filtered by key")
    tail_cmd.add_argument("topic")
    tail_cmd.add_argument("--key", help="only records with this key (e.g. a facility id)")
    tail_cmd.add_argument("--from-beginning", action="store_true")
    tail_cmd.add_argument("--max", type=int, help="stop after this many records")
    tail_cmd.add_argument("--compact", action="store_true", help="one line per record")
    tail_cmd.set_defaults(func=cmd_tail)
    produce = sub.add_parser("produce", help="validate and publish JSONL/CSV to an input topic")
    produce.add_argument("topic", help="input topic, e.g. meter-readings or control-ticks")
    produce.add_argument("source", nargs="?", default="-", help="file, or - for stdin")
    produce.add_argument("--format", choices=["jsonl", "csv"], help="default: from the name")
    produce.add_argument("--rate", type=float, help="target records per second")
    produce.add_argument("--dry-run", action="store_true", help="validate only")
    produce.set_defaults(func=cmd_produce)
