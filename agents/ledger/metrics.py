"""The ledger appender's metrics, on its process's registry (the worker's, or the child
process's when ``ledger.mode`` is ``process``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from app.metrics import Metrics


class LedgerMetrics:
    """Decisions appended or skipped, halted chains, signed checkpoints."""

    def __init__(self, metrics: Metrics) -> None:
        self.records = Counter(
            "governor_ledger_records_total",
            "Decisions the ledger appended, or skipped because its chain already held them.",
            ["outcome"],
            registry=metrics.registry,
        )
        self.chain_halted = Gauge(
            "governor_ledger_chain_halted",
            "1 while a ledger chain is halted: what its appender found on the log did not"
            " check out (a checkpoint that does not verify, a record that does not link or"
            " does not match its source), so nothing is appended to it.",
            ["chain"],
            registry=metrics.registry,
        )
        self.checkpoints = Counter(
            "governor_ledger_checkpoints_total",
            "Signed tree heads published to ledger-checkpoints.",
            registry=metrics.registry,
        )
