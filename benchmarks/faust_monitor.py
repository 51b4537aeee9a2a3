"""What Faust's monitor costs per record, in process: the sensor hooks Faust calls for one
record of a Governor pipeline (message in, stream event in and out, three table gets, two
table sets, one send, message out), timed for the stock monitors and Governor's lean ones.

    .venv/bin/python benchmarks/faust_monitor.py [--records 50000]

Baseline: the same loop calling Faust's base ``Sensor`` (every hook a no-op), so the figures
are the bookkeeping itself, beside the absolute µs per record.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import faust
from faust.sensors import Monitor, Sensor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry

from app.runtime.monitor import LeanMonitor, LeanPrometheusMonitor

TOPIC_PARTITION = TP("meter-readings", 0)


class _Message:
    topic = "meter-readings"
    partition = 0
    key = b"facility-001"
    value = b"{}"
    timestamp = 0.0
    tp = TOPIC_PARTITION
    refcount = 0

    def __init__(self) -> None:
        self.stream_meta: dict[str, Any] = {}


class _Event:
    def __init__(self, message: _Message) -> None:
        self.message = message


class _Owner:
    """A stream's task owner (Faust labels event metrics by it)."""


def per_record_us(sensor: Any, records: int) -> float:
    app = faust.App("monitor-bench", store="memory://")
    table = app.Table("t", default=None)
    stream = app.topic("meter-readings").stream()
    stream.task_owner = _Owner()
    message = _Message()
    event = _Event(message)
    producer, metadata = object(), object()
    tp = TOPIC_PARTITION
    began = time.perf_counter()
    for offset in range(records):
        sensor.on_message_in(tp, offset, message)
        state = sensor.on_stream_event_in(tp, offset, stream, event)
        for _ in range(3):
            sensor.on_table_get(table, "facility-001")
        for _ in range(2):
            sensor.on_table_set(table, "facility-001", offset)
        sent = sensor.on_send_initiated(producer, "carbon-emissions", message, 12, 200)
        sensor.on_send_completed(producer, sent, metadata)
        sensor.on_stream_event_out(tp, offset, stream, event, state)
        sensor.on_message_out(tp, offset, message)
    return (time.perf_counter() - began) / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()

    def prometheus(cls: type[PrometheusMonitor]) -> PrometheusMonitor:
        return cls(metrics=FaustMetrics.create(CollectorRegistry(), "faust"))

    baseline = per_record_us(Sensor(), args.records)
    print(f"Faust monitor hooks per record ({args.records:,} records, in process)")
    print(f"  baseline, no-op Sensor:          {baseline:7.2f} µs")
    for name, sensor in (
        ("stock Monitor", Monitor()),
        ("stock PrometheusMonitor", prometheus(PrometheusMonitor)),
        ("LeanMonitor", LeanMonitor()),
        ("LeanPrometheusMonitor", prometheus(LeanPrometheusMonitor)),
    ):
        us = per_record_us(sensor, args.records)
        print(f"  {name + ':':32s} {us:7.2f} µs  = {us / baseline:5.1f} x baseline")


if __name__ == "__main__":
    main()
