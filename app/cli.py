"""``governor``: the command line. Each subcommand is a small function over the same settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.connection import aiokafka_options
from app.settings import Settings, SettingsError, load_settings
from app.topics import Catalogue, TopicRole, TopicStatus, apply_catalogue

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

    if args.config:  # the ledger process a worker starts reads the same file
        os.environ["GOVERNOR_CONFIG"] = str(Path(args.config).resolve())
    settings = _settings(args)
    _require_cluster(settings)
    topology = build(settings)
    worker = Worker(topology.gov.app, loglevel=settings.worker.log_level.upper())
    # Faust's terminal spinner sets the root logger to DEBUG when the level is WARNING or
    # above, which makes every aiokafka debug call build a log record: a service needs none.
    worker.spinner = None
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


def cmd_schemas(args: argparse.Namespace) -> int:
    """Write one JSON Schema per topic value (and alternative value, e.g. a batch envelope)."""
    import json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in Catalogue.load().topics:
        for model in spec.value_models():
            schema = model.model_json_schema(mode="serialization")
            schema["$id"] = f"governor/{spec.name}/{model.__name__}"
            schema["x-kafka-topic"] = spec.name
            schema["x-kafka-key"] = spec.key
            path = out / f"{spec.name}.{model.__name__}.json"
            path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            print(path)
    return 0


def cmd_asyncapi(args: argparse.Namespace) -> int:
    """Write (or with --check, verify) the AsyncAPI document of every topic."""
    from importlib.metadata import version

    from app.asyncapi import render

    text = render(Catalogue.load(), version("governor"))
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is out of date: run `governor asyncapi`", file=sys.stderr)
            return 1
        print(f"{out} is current")
        return 0
    out.write_text(text, encoding="utf-8")
    print(out)
    return 0


def cmd_dashboards(args: argparse.Namespace) -> int:
    """Write (or with --check, verify) the Grafana dashboards of deploy/grafana/dashboards."""
    from app.dashboards import OUT, files

    stale = []
    for name, text in files().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(path)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `governor dashboards`", file=sys.stderr)
        return 1
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    """List dead letters, or re-publish selected ones to their source topic."""
    from app.dlq import CannotRepublish, read_letters, republish
    from schemas.dead_letter import DeadLetterReason

    settings = _settings(args)
    _require_cluster(settings)
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


class UsageError(Exception):
    """A command-line argument a person has to fix (exit status 2)."""


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
    from app.audit_log import CorruptSlotLog

    settings = _settings(args)
    _require_cluster(settings)
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
    from app.audit_log import export_parquet

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

    from app.audit_log import as_table, read_slots, reports
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


def _ledger_run(args: argparse.Namespace) -> int:
    """The ledger appender as its own process: a worker's child (``ledger.mode: process``),
    or run by hand beside workers with ``ledger.mode: off``. /metrics on
    ``ledger.metrics_port``; SIGTERM or Ctrl-C stops it after its batch."""
    import signal

    from prometheus_client import CollectorRegistry, start_http_server

    from agents.ledger import LedgerAppender
    from app.metrics import Metrics

    settings = _settings(args)
    _require_cluster(settings)
    registry = CollectorRegistry()
    metrics = Metrics(settings.metrics.max_facility_labels, registry)
    appender = LedgerAppender(settings, Catalogue.load(), metrics)
    port = args.metrics_port or settings.ledger.metrics_port
    start_http_server(port, addr=settings.worker.web_host, registry=registry)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, appender.stop)
        await appender.run()

    asyncio.run(main())
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    """Ledger keys, verification, proofs and checkpoint export."""
    import base64
    import json
    import os

    from app.ledger.audit_trail import (
        prove_consistency,
        prove_indexed,
        read_chains,
        signed_checkpoints,
        verify_ledger,
    )
    from app.ledger.index import ProveIndex
    from app.ledger.keys import configured_keys
    from app.ledger.note import NoteError, Signer

    if args.action == "run":
        return _ledger_run(args)
    if args.action == "keygen":
        new_seed = os.urandom(32)
        out = Path(args.out or "var/ledger.key")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(base64.b64encode(new_seed).decode() + "\n", encoding="utf-8")
        out.chmod(0o600)
        settings = _settings(args)
        print(Signer.from_seed(settings.ledger.key_name, new_seed).verifier_key())
        return 0
    settings = _settings(args)
    seed = settings.ledger.resolved_seed()
    signer = Signer.from_seed(settings.ledger.key_name, seed) if seed else None
    own = signer.verifier_key() if signer else None
    if args.action == "key":
        if own is None:
            raise UsageError("no ledger signing key configured (ledger.signing_key[_file])")
        print(own)
        return 0
    try:
        keys = configured_keys(args.vkey or [], settings.ledger.verifier_keys, own)
    except NoteError as exc:
        raise UsageError(str(exc)) from None
    _require_cluster(settings)
    options = aiokafka_options(settings.kafka)
    prefix, origin = settings.kafka.topic_prefix, settings.ledger.origin
    if args.action == "prove" and not args.consistency:
        if not args.decision_id:
            raise UsageError("prove needs a decision id, or --consistency P SIZE1 SIZE2")
        index = ProveIndex(settings.ledger.index_dir, prefix + "ledger")
        try:
            found = asyncio.run(
                prove_indexed(index, options, prefix, args.decision_id, keys, origin)
            )
        except LookupError as exc:
            print(f"governor: {exc}", file=sys.stderr)
            return 1
        finally:
            index.close()
        print(json.dumps(found.to_json(), indent=2))
        return 0
    if args.action == "verify":
        processes = os.cpu_count() or 1
        reports = asyncio.run(verify_ledger(options, prefix, keys, origin, processes))
        for report in reports:
            status = "ok" if report.failure is None else f"FAILED {report.failure}"
            print(f"chain {report.partition}: {report.records} records,"
                  f" {report.checkpoints} checkpoints: {status}")  # fmt: skip
        return 0 if all(r.failure is None for r in reports) else 1
    chains = asyncio.run(read_chains(options, prefix))
    if args.action == "prove":
        try:
            partition, size1, size2 = args.consistency
            chain = next(c for c in chains if c.partition == partition)
            proof = prove_consistency(chain, size1, size2, keys, origin)
            print(json.dumps(proof, indent=2))
        except (LookupError, StopIteration) as exc:
            print(f"governor: {exc}", file=sys.stderr)
            return 1
        return 0
    out_dir = Path(args.out or "var/ledger-checkpoints")
    out_dir.mkdir(parents=True, exist_ok=True)
    for chain in chains:
        signed = signed_checkpoints(chain, keys, origin)
        if signed:
            newest = max(signed, key=lambda c: c.tree_size)
            (out_dir / f"chain-{chain.partition}.checkpoint").write_text(newest.note)
    (out_dir / "ledger.vkey").write_text("".join(spec + "\n" for spec in keys.specs))
    print(f"wrote the newest checkpoint of each chain to {out_dir}")
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    """Validate every line of a JSONL or CSV file (or stdin), then publish the good ones."""
    from app.produce import detect_format, parse, read_input, send, summary

    settings = _settings(args)
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
        _require_cluster(settings)
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

    from app.generate import GENERATORS, Workload, generate

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
    from app.replay import ReplayError, read_values, replay, write
    from app.rules.traffic.policy import ActivePolicy

    settings = _settings(args)
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

    from app.report import Subject, build, render

    settings = _settings(args)
    _require_cluster(settings)
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
    from app.tail import tail

    settings = _settings(args)
    try:
        spec = Catalogue.load()[args.topic]
    except KeyError:
        raise UsageError(f"unknown topic {args.topic!r} (see topics.yaml)") from None
    _require_cluster(settings)
    topic = settings.kafka.topic_prefix + spec.name
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(aiokafka_options(settings.kafka), topic, args.key,
                         args.from_beginning, args.max, args.compact))  # fmt: skip
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    """Run a local single-node broker in the foreground until interrupted (Ctrl-C, SIGTERM,
    SIGHUP); the broker also ends if this process is killed (see app/localkafka.py)."""
    from app.localkafka import LocalBroker

    settings = _settings(args)
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
    from app.demo import run_demo

    # The demo reads topics to print results; aiokafka's per-subscription INFO lines would
    # interleave with them.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    return run_demo(
        _settings(args), readings=args.readings, serve=not args.once, requests=args.requests
    )


def cmd_policy(args: argparse.Namespace) -> int:
    """Traffic policies: keygen, sign, verify, publish, key."""
    from app import policy_tool

    try:
        if args.action == "keygen":
            out = Path(args.out or "var/policy.key")
            print(policy_tool.keygen(out))
            print(f"private key written to {out} (keep it secret)", file=sys.stderr)
            return 0
        settings = _settings(args)
        if args.action == "key":
            ident, public = policy_tool.public_key_of(settings)
            print(f"{ident} {public}")
            return 0
        if not args.file:
            raise UsageError(f"policy {args.action} needs a file")
        path = Path(args.file)
        if args.action == "sign":
            out = Path(args.out or path.with_suffix(".signed.json"))
            artifact = policy_tool.sign_file(settings, path, out)
            print(f"{out}: policy {artifact.policy.version} hash {artifact.policy_hash}")
            return 0
        if args.action == "verify":
            artifact, problem = policy_tool.verify_file(settings, path)
            if problem is not None:
                print(f"{path}: REFUSED ({problem.value})")
                return 1
            print(f"{path}: ok, policy {artifact.policy.version} signed by {artifact.key_id}")
            return 0
        _require_cluster(settings)
        message, offset = asyncio.run(policy_tool.publish(settings, path.read_bytes()))
        print(f"published {message} at offset {offset}")
        return 0
    except policy_tool.PolicyError as exc:
        raise UsageError(str(exc)) from None


def cmd_fusion(args: argparse.Namespace) -> int:
    """Feature-flag validation and approval tokens for AI cost governance."""
    import json
    import time

    from app.rules.fusion import flags, tokens

    settings = _settings(args)
    config = settings.fusion
    if args.action == "flags":
        for flag in config.flags:
            state = "on" if config.flag_on(flag) else "off"
            print(f"{flag.feature}: {flag.scenario_type}/{flag.overlay} {state},"
                  f" rollout {flag.rollout_pct:g} %")  # fmt: skip
        if config.enabled_features is not None:
            print(f"enabled by override: {', '.join(config.enabled_features) or '(none)'}")
        problems = flags.validate(config)
        for problem in problems:
            print(f"problem: {problem}")
        print("flags: ok" if not problems else f"flags: {len(problems)} problem(s)")
        return 1 if problems else 0
    secret = config.approvals.secret()
    if secret is None:
        raise UsageError("no approval secret: set fusion.approvals.hmac_secret[_file]")
    text = sys.stdin.read() if args.request in (None, "-") else Path(args.request).read_text()
    try:
        request = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the request is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise UsageError("the request must be a JSON object")
    print(tokens.make_token(secret, request, int(time.time())))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="governor", description=__doc__)
    top.add_argument(
        "--config", help="YAML settings file (default: $GOVERNOR_CONFIG or config/governor.yaml)"
    )
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a stream-processing worker").set_defaults(func=cmd_worker)
    topics = sub.add_parser("topics", help="create or verify the topics of topics.yaml")
    topics.add_argument("--check", action="store_true", help="only verify; exit 1 on drift")
    topics.set_defaults(func=cmd_topics)
    schemas = sub.add_parser("schemas", help="export JSON Schemas of every topic value")
    schemas.add_argument("action", choices=["export"])
    schemas.add_argument("--out", default="schemas/json", help="output directory")
    schemas.set_defaults(func=cmd_schemas)
    asyncapi = sub.add_parser("asyncapi", help="write the AsyncAPI document of the topics")
    asyncapi.add_argument("--out", default="asyncapi.yaml")
    asyncapi.add_argument("--check", action="store_true", help="only verify it is current")
    asyncapi.set_defaults(func=cmd_asyncapi)
    gen = sub.add_parser("generate", help="write a seeded, reproducible workload as JSONL")
    gen.add_argument("topic", help="an input topic, e.g. meter-readings")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--start", help="ISO 8601 with zone (default 2024-01-15T00:00:00Z)")
    gen.add_argument("--hours", type=float, default=24.0)
    gen.add_argument("--facilities", type=int, default=4)
    gen.add_argument("--out", help="file (default: stdout)")
    gen.set_defaults(func=cmd_generate)
    rep = sub.add_parser("replay", help="run the rules offline over a JSONL/Parquet file")
    rep.add_argument("topic", help="meter-readings, request-events or fusion-results")
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
    dashboards = sub.add_parser("dashboards", help="write the Grafana dashboards")
    dashboards.add_argument("--check", action="store_true", help="only verify they are current")
    dashboards.set_defaults(func=cmd_dashboards)
    dlq = sub.add_parser("dlq", help="list or re-publish dead letters")
    dlq.add_argument("action", choices=["list", "republish"])
    dlq.add_argument("--reason", help="only dead letters with this reason")
    dlq.add_argument("--limit", type=int, default=50, help="list: newest N")
    dlq.add_argument("--ref", action="append", help="republish: PARTITION:OFFSET (repeatable)")
    dlq.add_argument("--all", action="store_true", help="republish every (matching) letter")
    dlq.add_argument("--dry-run", action="store_true")
    dlq.set_defaults(func=cmd_dlq)
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
    ledger = sub.add_parser("ledger", help="ledger keys, verification, proofs, checkpoints")
    ledger.add_argument(
        "action", choices=["run", "keygen", "key", "verify", "prove", "checkpoints"]
    )
    ledger.add_argument("--metrics-port", type=int, help="run: /metrics port (ledger.metrics_port)")
    ledger.add_argument("decision_id", nargs="?", help="prove: the decision to prove")
    ledger.add_argument(
        "--vkey", action="append",
        help="a verifier key, <vkey>[,<from>[,<until>]] with ISO 8601 times; repeat for a key"
        " set (default: ledger.verifier_keys, else the signing key's own)",
    )  # fmt: skip
    ledger.add_argument(
        "--consistency", nargs=3, type=int, metavar=("PARTITION", "SIZE1", "SIZE2"),
        help="prove: consistency between the checkpoints of these sizes",
    )  # fmt: skip
    ledger.add_argument("--out", help="keygen: key file (var/ledger.key); checkpoints: directory")
    ledger.set_defaults(func=cmd_ledger)
    policy = sub.add_parser("policy", help="traffic policies: keygen, sign, verify, publish")
    policy.add_argument("action", choices=["keygen", "key", "sign", "verify", "publish"])
    policy.add_argument("file", nargs="?", help="sign: policy YAML/JSON; verify, publish: artifact")
    policy.add_argument("--out", help="keygen: key file (var/policy.key); sign: artifact file")
    policy.set_defaults(func=cmd_policy)
    fusion = sub.add_parser("fusion", help="AI cost governance: validate flags, approval tokens")
    fusion.add_argument("action", choices=["flags", "token"])
    fusion.add_argument("request", nargs="?", help="token: the request JSON file (or -)")
    fusion.set_defaults(func=cmd_fusion)
    produce = sub.add_parser("produce", help="validate and publish JSONL/CSV to an input topic")
    produce.add_argument("topic", help="input topic, e.g. meter-readings or control-ticks")
    produce.add_argument("source", nargs="?", default="-", help="file, or - for stdin")
    produce.add_argument("--format", choices=["jsonl", "csv"], help="default: from the name")
    produce.add_argument("--rate", type=float, help="target records per second")
    produce.add_argument("--dry-run", action="store_true", help="validate only")
    produce.set_defaults(func=cmd_produce)
    kafka = sub.add_parser("kafka", help="run a local Apache Kafka broker (KRaft) until Ctrl-C")
    kafka.add_argument("--version", help="Kafka version (default: kafka.local_version)")
    kafka.add_argument("--dir", default="var/kafka", help="data and log directory (wiped)")
    kafka.set_defaults(func=cmd_kafka)
    demo = sub.add_parser("demo", help="local broker + worker + sample traffic + results")
    demo.add_argument("--readings", type=int, default=5000)
    demo.add_argument("--requests", type=int, default=3000, help="API request events")
    demo.add_argument("--once", action="store_true", help="exit after showing the results")
    demo.set_defaults(func=cmd_demo)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (SettingsError, UsageError) as exc:
        print(f"governor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
