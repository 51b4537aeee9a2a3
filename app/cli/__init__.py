"""``governor``: the command line. Each subcommand is a small function over the same
settings, one module per command group (``app/cli/<group>.py``, each with an ``add``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from app.cli import audit, contracts, data, dlq, fusion, ledger, policy, run
from app.cli.common import UsageError
from app.settings import SettingsError

GROUPS = (run, contracts, data, dlq, audit, ledger, policy, fusion)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="governor",
        description="Governor: the stream processor that governs energy, carbon, AI cost and"
        " API traffic. Each command below has its own --help.",
    )
    top.add_argument(
        "--config", help="YAML settings file (default: $GOVERNOR_CONFIG or config/governor.yaml)"
    )
    sub = top.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add(sub)
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
