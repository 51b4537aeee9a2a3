"""``governor ledger``: the appender process, keys, verification, proofs, checkpoints."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from app.cli.common import UsageError, require_cluster, settings_of
from app.runtime.connection import aiokafka_options
from app.topics import Catalogue


def _ledger_run(args: argparse.Namespace) -> int:
    """The ledger appender as its own process: a worker's child (``ledger.mode: process``),
    or run by hand beside workers with ``ledger.mode: off``. /metrics on
    ``ledger.metrics_port``; SIGTERM or Ctrl-C stops it after its batch."""

    from prometheus_client import CollectorRegistry, start_http_server

    from agents.ledger.agent import LedgerAppender
    from app.metrics import Metrics

    settings = settings_of(args)
    require_cluster(settings)
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
        settings = settings_of(args)
        print(Signer.from_seed(settings.ledger.key_name, new_seed).verifier_key())
        return 0
    settings = settings_of(args)
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
    require_cluster(settings)
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


def add(sub: Any) -> None:
    """Register ledger on the ``governor`` parser."""
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
