"""``governor worker``, ``topics``, ``kafka``, ``demo``: running Governor (a worker, its
topics, a local broker, the demo)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from app.cli.common import require_cluster, settings_of
from app.runtime.connection import aiokafka_options
from app.runtime.topic_admin import apply_catalogue
from app.settings import Settings
from app.topics import TopicStatus


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker; several with the same app id form one consumer group."""
    from app.runtime.topology import build
    from app.runtime.worker import run_worker

    if args.config:  # the ledger process a worker starts reads the same file
        os.environ["GOVERNOR_CONFIG"] = str(Path(args.config).resolve())
    settings = settings_of(args)
    require_cluster(settings)
    topology = build(settings)
    run_worker(topology.gov.faust, settings.worker.log_level)
    return 0


async def _apply_topics(settings: Settings, create: bool) -> int:
    from agents.registry import catalogue_for  # the pipelines' own topics too

    reports = await apply_catalogue(
        aiokafka_options(settings.kafka), catalogue_for(settings), settings.kafka.topic_prefix,
        create=create,
    )  # fmt: skip
    for report in reports:
        detail = f"  ({'; '.join(report.drift)})" if report.drift else ""
        print(f"{report.status.value:8} {report.name}{detail}")
    bad = {TopicStatus.DRIFT, TopicStatus.MISSING}
    return 1 if any(r.status in bad for r in reports) else 0


def cmd_topics(args: argparse.Namespace) -> int:
    """Create missing topics and report drift (``--check``: create nothing)."""
    settings = settings_of(args)
    require_cluster(settings)
    return asyncio.run(_apply_topics(settings, create=not args.check))


def cmd_kafka(args: argparse.Namespace) -> int:
    """Run a local single-node broker in the foreground until interrupted (Ctrl-C, SIGTERM,
    SIGHUP); the broker also ends if this process is killed (see app/tools/localkafka.py)."""
    from app.tools.localkafka import LocalBroker

    settings = settings_of(args)
    work = Path(args.dir)
    broker = LocalBroker(
        args.version or settings.kafka.local_version, settings.kafka.local_cache_dir, work
    )

    def end(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # leaves the `with`, which stops the broker

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGHUP, end)
    with broker:
        (work / "bootstrap").write_text(broker.bootstrap_servers, encoding="utf-8")
        print(f"Kafka {broker.version} at {broker.bootstrap_servers} (log: {broker.log_file})")
        print(f"export GOVERNOR_KAFKA__BOOTSTRAP_SERVERS={broker.bootstrap_servers}")
        try:
            while broker.process is not None and broker.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything at once: broker, topics, worker, sample traffic, results, then serve."""
    from app.tools.demo import run_demo

    # The demo reads topics to print results; aiokafka's per-subscription INFO lines would
    # interleave with them.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    return run_demo(
        settings_of(args), readings=args.readings, serve=not args.once, requests=args.requests
    )


def add(sub: Any) -> None:
    """Register worker, topics, kafka, demo on the ``governor`` parser."""
    sub.add_parser("worker", help="run a stream-processing worker").set_defaults(func=cmd_worker)
    topics = sub.add_parser("topics", help="create or verify the topics of topics.yaml")
    topics.add_argument("--check", action="store_true", help="only verify; exit 1 on drift")
    topics.set_defaults(func=cmd_topics)
    kafka = sub.add_parser("kafka", help="run a local Apache Kafka broker (KRaft) until Ctrl-C")
    kafka.add_argument("--version", help="Kafka version (default: kafka.local_version)")
    kafka.add_argument("--dir", default="var/kafka", help="data and log directory (wiped)")
    kafka.set_defaults(func=cmd_kafka)
    demo = sub.add_parser("demo", help="local broker + worker + sample traffic + results")
    demo.add_argument("--readings", type=int, default=5000)
    demo.add_argument("--requests", type=int, default=3000, help="API request events")
    demo.add_argument("--once", action="store_true", help="exit after showing the results")
    demo.set_defaults(func=cmd_demo)
