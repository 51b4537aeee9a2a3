"""``governor dlq``: list dead letters, or re-publish them to their source topic."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from app.cli.common import require_cluster, settings_of
from app.runtime.connection import aiokafka_options
from app.topics import Catalogue, TopicRole


def cmd_dlq(args: argparse.Namespace) -> int:
    """List dead letters, or re-publish selected ones to their source topic."""
    from app.tools.dlq import CannotRepublish, read_letters, republish
    from schemas.dead_letter import DeadLetterReason

    settings = settings_of(args)
    require_cluster(settings)
    options = aiokafka_options(settings.kafka)
    topic = settings.kafka.topic_prefix + "dead-letters"
    reason = DeadLetterReason(args.reason) if args.reason else None
    letters = asyncio.run(read_letters(options, topic, reason))
    if args.action == "list":
        for item in letters[-args.limit :]:
            d = item.letter
            cut = f"  (cut: {d.value_size} bytes, sha256 {d.value_sha256})" if d.truncated else ""
            print(
                f"{item.ref:>10}  {d.dead_lettered_at:%Y-%m-%dT%H:%M:%SZ}  {d.reason.value:26}"
                f"  {d.source_topic}[{d.source_partition}]@{d.source_offset}  {d.error[:120]}{cut}"
            )
        print(f"{len(letters)} dead letter(s)" + (f" with reason {reason.value}" if reason else ""))
        return 0
    chosen = [x for x in letters if not args.ref or x.ref in set(args.ref)]
    if not args.ref and not args.all:
        print(
            "governor: name dead letters with --ref PARTITION:OFFSET, or pass --all",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        for item in chosen:
            print(f"would re-publish {item.ref} to {item.letter.source_topic}")
        return 0
    inputs = [
        settings.kafka.topic_prefix + spec.name
        for spec in Catalogue.load().topics
        if spec.role is TopicRole.INPUT
    ]
    try:
        count = asyncio.run(republish(options, chosen, inputs))
    except CannotRepublish as exc:
        print(f"governor: {exc}; nothing re-published", file=sys.stderr)
        return 1
    print(f"re-published {count} dead letter(s)")
    return 0


def add(sub: Any) -> None:
    """Register dlq on the ``governor`` parser."""
    dlq = sub.add_parser("dlq", help="list or re-publish dead letters")
    dlq.add_argument("action", choices=["list", "republish"])
    dlq.add_argument("--reason", help="only dead letters with this reason")
    dlq.add_argument("--limit", type=int, default=50, help="list: newest N")
    dlq.add_argument("--ref", action="append", help="republish: PARTITION:OFFSET (repeatable)")
    dlq.add_argument("--all", action="store_true", help="republish every (matching) letter")
    dlq.add_argument("--dry-run", action="store_true")
    dlq.set_defaults(func=cmd_dlq)
