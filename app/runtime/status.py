"""What the Faust app says of a worker's readiness, read without side effects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AppStatus:
    """The app's part of /health: partitions assigned, no rebalance, tables recovered."""

    partitions_assigned: bool
    rebalance_finished: bool
    table_recovery_finished: bool


def app_status(app: Any) -> AppStatus:
    """The status of ``app`` (a Faust app). Faust's public ``consumer`` and
    ``tables.recovery`` properties create those services when missing, and the web server
    answers before they exist: their private attributes are read instead."""
    consumer = getattr(app, "_consumer", None)
    assignment = consumer.assignment() if consumer is not None else set()
    recovery = getattr(app.tables, "_recovery", None)
    return AppStatus(
        partitions_assigned=bool(assignment),
        rebalance_finished=not app.rebalancing,
        table_recovery_finished=recovery is not None and recovery.completed.is_set(),
    )
