"""Faust's monitor without per-record bookkeeping: per-record hooks update nothing, the
per-partition and per-commit ones that the dashboards read still do, and a worker uses the
lean monitors unless ``worker.faust_event_metrics`` asks for Faust's own."""

from __future__ import annotations

import pytest
from faust.sensors import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry

from app.runtime.monitor import LeanMonitor, LeanPrometheusMonitor
from app.runtime.topology import build
from app.settings import load_settings

TOPIC_PARTITION = TP("meter-readings", 0)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_per_record_hooks_update_nothing_and_offsets_still_do() -> None:
    registry = CollectorRegistry()
    monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(registry, "faust"))
    monitor.on_message_in(TOPIC_PARTITION, 5, object())
    assert monitor.on_stream_event_in(TOPIC_PARTITION, 5, object(), object()) is None
    monitor.on_table_set(object(), "k", 1)
    monitor.on_send_error(object(), RuntimeError("broker gone"), None)  # no state to time
    assert sample(registry, "faust_messages_received_total") == 0.0
    assert monitor.messages_received_total == 0

    monitor.track_tp_end_offset(TOPIC_PARTITION, 120)
    monitor.on_tp_commit({TOPIC_PARTITION: 100})
    partition = {"topic": "meter-readings", "partition": "0"}
    assert sample(registry, "faust_topic_partition_end_offset", **partition) == 120.0
    assert sample(registry, "faust_topic_partition_offset_commited", **partition) == 100.0


def test_the_stock_sensor_still_counts_per_record() -> None:
    registry = CollectorRegistry()
    monitor = PrometheusMonitor(metrics=FaustMetrics.create(registry, "faust"))
    monitor.on_message_in(TOPIC_PARTITION, 5, type("M", (), {"stream_meta": {}})())
    assert sample(registry, "faust_messages_received_total") == 1.0


@pytest.mark.parametrize(
    ("sensor", "event_metrics", "expected"),
    [
        ("true", "false", LeanPrometheusMonitor),
        ("true", "true", PrometheusMonitor),
        ("false", "false", LeanMonitor),
        ("false", "true", Monitor),
    ],
)
def test_a_worker_uses_the_lean_monitor_unless_asked(
    monkeypatch: pytest.MonkeyPatch,
    sensor: str,
    event_metrics: str,
    expected: type[Monitor],
) -> None:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_WORKER__FAUST_PROMETHEUS_SENSOR", sensor)
    monkeypatch.setenv("GOVERNOR_WORKER__FAUST_EVENT_METRICS", event_metrics)
    monitor = build(load_settings()).gov.faust.monitor
    assert type(monitor) is expected
