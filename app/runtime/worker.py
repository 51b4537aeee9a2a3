"""Running a worker process: Faust's Worker, set up for a service."""

from __future__ import annotations

import faust
from faust.worker import Worker


def run_worker(app: faust.App, log_level: str) -> None:
    """Run ``app`` in this process until it is stopped (signals, fail-stop)."""
    worker = Worker(app, loglevel=log_level.upper())
    # Faust's terminal spinner sets the root logger to DEBUG when the level is WARNING or
    # above, which makes every aiokafka debug call build a log record: a service needs none.
    worker.spinner = None
    worker.execute_from_commandline()
