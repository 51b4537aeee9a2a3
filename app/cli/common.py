"""What every ``governor`` command shares: its settings, and the errors a person fixes."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.settings import Settings, SettingsError, load_settings


class UsageError(Exception):
    """A command-line argument a person has to fix (exit status 2)."""


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings named by ``--config`` (else ``$GOVERNOR_CONFIG``, else the default)."""
    return load_settings(Path(args.config) if args.config else None)


def require_cluster(settings: Settings) -> None:
    """Commands that talk to Kafka need to know where it is."""
    if not settings.kafka.bootstrap_servers:
        raise SettingsError(
            "kafka.bootstrap_servers is not set: set GOVERNOR_KAFKA__BOOTSTRAP_SERVERS, or run"
            " `governor kafka` for a local broker, or `bin/demo` for everything at once"
        )
