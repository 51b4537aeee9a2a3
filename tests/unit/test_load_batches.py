"""The load-metrics pipeline decides a batch as it decides one record at a time: the same
decisions per facility, byte for byte, the same states and counts, also when the batch is
delivered again (a SIGKILL before the commit)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.runtime.lanes import handled_as_current
from app.runtime.topic_reader import SourceRecord
from app.runtime.topology import build
from app.settings import load_settings
from schemas.load import LoadMetric
from tests.factories import BASE_TIME


def metric(facility: int, zone: str, load: float, capacity: float, minutes: float) -> LoadMetric:
    return LoadMetric(
        event_id=f"m-{facility}-{zone}-{minutes}", facility_id=f"facility-{facility:03d}",
        zone_id=zone, current_load_kw=load, capacity_kw=capacity,
        timestamp=BASE_TIME + timedelta(minutes=minutes),
    )  # fmt: skip


METRICS = [
    metric(1, "a", 65, 100, 0),
    metric(2, "a", 50, 100, 0),
    metric(1, "b", 110, 200, 0),
    metric(1, "a", 95, 100, 1),  # overloaded: a shift to b
    metric(2, "b", 20, 100, 0),
    metric(2, "a", 97, 100, 1),  # overloaded: a shift to b
    metric(1, "a", 60, 100, 0.5),  # older than the zone's newest: ignored
    metric(1, "b", 190, 200, 2),  # b overloaded too: nowhere to go
    metric(2, "a", 40, 100, 3),  # back down
]
RECORDS = [
    SourceRecord("load-metrics", 0, offset, m.facility_id.encode(), m.to_json_bytes(),
                 m.timestamp.timestamp() + 60)
    for offset, m in enumerate(METRICS)
]  # fmt: skip


async def test_a_batch_of_metrics_decides_what_one_at_a_time_decides(
    monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")

    async def run(batch_size: int) -> tuple[Any, ...]:
        monkeypatch.setenv("GOVERNOR_WORKER__DATA_DIR", str(tmp_path / f"batches-of-{batch_size}"))
        topology = build(load_settings())
        sent: dict[bytes, list[bytes]] = {}
        dead: list[Any] = []

        async def send(app: Any, topic: str, key: bytes, values: Any) -> None:
            assert topic.endswith("load-decisions")
            sent.setdefault(key, []).extend(values)

        async def dead_letter(**fields: Any) -> None:
            dead.append(fields)

        monkeypatch.setattr("agents.facility.load_agent.send_same_key", send)
        pipeline = topology.gov.faust.agents["load-metrics"].fun.__self__
        monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)
        for _delivery in range(2):  # the second: re-delivered, as after a SIGKILL
            for start in range(0, len(RECORDS), batch_size):
                chunk = RECORDS[start : start + batch_size]
                with handled_as_current(chunk[0]):
                    await pipeline.handle_batch(chunk)
        ctx = topology.facilities
        states = {f: ctx.load_state(f) for f in ("facility-001", "facility-002")}
        decisions = {
            tuple(sorted(s.labels.items())): s.value
            for metric in ctx.facility_metrics.load_decisions.collect()
            for s in metric.samples
            if s.name.endswith("_total")
        }
        accepted = topology.gov.metrics.records.labels(pipeline="load-metrics", outcome="accepted")
        return sent, dead, states, decisions, accepted._value.get()

    one_by_one, batched = await run(1), await run(len(RECORDS))
    assert batched == one_by_one
    sent, dead, states, decisions, accepted = batched
    assert dead == [] and accepted == 2 * len(METRICS)
    for key in (b"facility-001", b"facility-002"):
        first, again = sent[key][: len(sent[key]) // 2], sent[key][len(sent[key]) // 2 :]
        assert first and first == again  # re-delivered: the same decisions re-sent, byte for byte
    assert sum(decisions.values()) == len(sent[b"facility-001"] + sent[b"facility-002"]) // 2
    assert all(s is not None and s.zones["a"].at > BASE_TIME for s in states.values())
