"""Faust's monitor without its per-event bookkeeping.

Faust calls its monitor, a sensor, several times for every record: message in, stream
event in and out, message out (the acknowledgement), each table get and set, each send
initiated and completed. The stock ``Monitor`` keeps counters and timing deques for Faust's
web statistics pages, which Governor turns off; ``PrometheusMonitor`` (Faust's Prometheus
sensor, on by default through ``worker.faust_prometheus_sensor``) adds a labelled
Prometheus update to each. Timed in process (``benchmarks/faust_monitor.py``), one
pipeline record's hooks cost 31 µs with the Prometheus sensor and 3.7 µs without (0.7 µs
lean), against the 400-500 µs a reading takes through the carbon and carbon-usage agents;
and it duplicates what Governor counts itself (``governor_records_total``,
``governor_record_processing_seconds``, ``governor_changelog_records_total``).

So by default those per-record hooks do nothing. What is kept is what is per commit, per
partition or per rebalance, which the dashboards read: committed and end offsets per
partition (consumer lag), commit latency, rebalances, assignment errors, web requests.
``worker.faust_event_metrics: true`` brings back Faust's own per-record metrics.
"""

from __future__ import annotations

from typing import Any

from faust.sensors import Monitor
from faust.sensors.prometheus import PrometheusMonitor


class _NoPerRecordStats:
    """The per-record sensor hooks, doing nothing (module docstring)."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> Any:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        """Nothing to time (no state from ``on_send_initiated``); a failed send of a
        pipeline fail-stops it, which its own log and exit say."""
        return None


class LeanMonitor(_NoPerRecordStats, Monitor):
    """Faust's monitor (the app's ``Monitor`` setting) without per-record bookkeeping."""


class LeanPrometheusMonitor(_NoPerRecordStats, PrometheusMonitor):
    """Faust's Prometheus sensor without per-record metric updates."""


def lean_prometheus_monitor(app: Any) -> None:
    """Replace the sensor ``setup_prometheus_sensors`` gave ``app`` by the lean one over
    the same metrics (before the app starts, when Faust adds its monitor to the sensors)."""
    stock = app.monitor
    assert isinstance(stock, PrometheusMonitor), "setup_prometheus_sensors comes first"
    app.monitor = LeanPrometheusMonitor(metrics=stock._metrics)
