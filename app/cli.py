"""``governor``: the command line. Each subcommand is a small function over the same settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.connection import aiokafka_options
from app.settings import Settings, SettingsError, load_settings
from app.topics import Catalogue, TopicStatus, apply_catalogue

log = logging.getLogger("governor")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if args.config else None)


def _require_cluster(settings: Settings) -> None:
    if not settings.kafka.bootstrap_servers:
        raise SettingsError(
            "kafka.bootstrap_servers is not set: set GOVERNOR_KAFKA__BOOTSTRAP_SERVERS, or run"
            " `governor kafka` for a local broker, or `bin/demo` for everything at once"
        )


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker; several with the same app id form one consumer group."""
    from faust.worker import Worker

    from app.topology import build

    settings = _settings(args)
    _require_cluster(settings)
    topology = build(settings)
    worker = Worker(topology.gov.app, loglevel=settings.worker.log_level.upper())
    worker.execute_from_commandline()
    return 0


async def _apply_topics(settings: Settings, create: bool) -> int:
    admin = AIOKafkaAdminClient(**aiokafka_options(settings.kafka))
    await admin.start()
    try:
        reports = await apply_catalogue(
            admin, Catalogue.load(), settings.kafka.topic_prefix, create=create
        )
    finally:
        await admin.close()
    for report in reports:
        detail = f"  ({'; '.join(report.drift)})" if report.drift else ""
        print(f"{report.status.value:8} {report.name}{detail}")
    bad = {TopicStatus.DRIFT, TopicStatus.MISSING}
    return 1 if any(r.status in bad for r in reports) else 0


def cmd_topics(args: argparse.Namespace) -> int:
    """Create missing topics and report drift (``--check``: create nothing)."""
    settings = _settings(args)
    _require_cluster(settings)
    return asyncio.run(_apply_topics(settings, create=not args.check))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="governor", description=__doc__)
    top.add_argument("--config", help="YAML settings file (default: $GOVERNOR_CONFIG or config/governor.yaml)")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a stream-processing worker").set_defaults(func=cmd_worker)
    topics = sub.add_parser("topics", help="create or verify the topics of topics.yaml")
    topics.add_argument("--check", action="store_true", help="only verify; exit 1 on drift")
    topics.set_defaults(func=cmd_topics)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SettingsError as exc:
        print(f"governor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
