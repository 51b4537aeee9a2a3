"""The fusion tenant stage decides a batch as it decides one record at a time: the same
records per key, byte for byte, the same tenant states and counts, also when the batch is
delivered again (a SIGKILL before the commit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.runtime.lanes import handled_as_current
from app.runtime.topic_reader import SourceRecord
from app.runtime.topology import build
from app.settings import load_settings
from tests.factories import energy_budget, fusion_request, fusion_result


def records(topic: str, events: list[Any]) -> list[SourceRecord]:
    return [
        SourceRecord(topic, 0, offset, e.tenant.encode(), e.to_json_bytes(),
                     e.timestamp.timestamp() + 60 if hasattr(e, "timestamp") else None)
        for offset, e in enumerate(events)
    ]  # fmt: skip


BUDGETS = records(
    "energy-budgets",
    [energy_budget(1000.0), energy_budget(5000.0, tenant="tenant-b")],
)
REQUESTS = records(
    "fusion-requests",
    [
        fusion_request(0),
        fusion_request(1, tenant="tenant-b"),
        fusion_request(2, estimated_units=600.0),
        fusion_request(2, estimated_units=600.0),  # published twice: decided once
        fusion_request(3, estimated_units=400.0),  # over the budget with run 2 reserved
        fusion_request(4, tenant="tenant-b", estimated_units=20_000.0),  # needs approval
        fusion_request(5, tenant="tenant-c"),  # no budget
    ],
)
RESULTS = records(
    "fusion-results",
    [
        fusion_result(0, actual_units=80.0),
        fusion_result(1, tenant="tenant-b", quality_score=0.95, actual_units=10.0),
        fusion_result(0, actual_units=80.0),  # published twice: settled once
        fusion_result(2, actual_units=650.0),
        fusion_result(6, tenant="tenant-c"),  # never admitted: admitted and settled at once
        fusion_result(7, tenant="tenant-c", result="timeout", latency_ms=30_000.0),
    ],
)


async def test_a_batch_decides_what_one_record_at_a_time_decides(
    monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")

    async def run(batch_size: int) -> tuple[Any, ...]:
        monkeypatch.setenv("GOVERNOR_WORKER__DATA_DIR", str(tmp_path / f"batches-of-{batch_size}"))
        topology = build(load_settings())
        sent: dict[tuple[str, bytes], list[bytes]] = {}
        marks: dict[int, bytes] = {}
        dead: list[tuple[int, Any]] = []

        async def send(app: Any, topic: str, key: bytes, values: Any) -> None:
            sent.setdefault((topic, key), []).extend(values)

        async def send_to_partition(app: Any, topic: str, partition: int, value: bytes) -> None:
            marks[partition] = value  # the newest progress each partition heard

        async def dead_letter(**fields: Any) -> None:
            dead.append((fields["offset"], fields["reason"]))

        monkeypatch.setattr("agents.fusion.tenants.send_same_key", send)
        monkeypatch.setattr("agents.fusion.progress.send_to_partition", send_to_partition)
        agents = topology.gov.faust.agents
        pipelines = [
            agents[name].fun.__self__
            for name in ("fusion-budgets", "fusion-admissions", "fusion-settlements")
        ]
        for pipeline in pipelines:
            monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)
        for _delivery in range(2):  # the second: re-delivered, as after a SIGKILL
            for pipeline, source in zip(pipelines, (BUDGETS, REQUESTS, RESULTS), strict=True):
                for start in range(0, len(source), batch_size):
                    chunk = source[start : start + batch_size]
                    with handled_as_current(chunk[0]):
                        await pipeline.handle_batch(chunk)
        ctx = topology.fusion_context
        states = {
            t: s.model_dump_json() if (s := ctx.tenant_state(t)) is not None else None
            for t in ("tenant-a", "tenant-b", "tenant-c")
        }
        counts = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in (ctx.metrics.decisions, ctx.metrics.latency)
            for metric in family.collect()
            for s in metric.samples
            if s.name.endswith(("_total", "_count", "_sum"))
        }
        accepted = topology.gov.metrics.records.labels(
            pipeline="fusion-results", outcome="accepted"
        )
        return sent, marks, dead, states, counts, accepted._value.get()

    one_by_one, batched = await run(1), await run(len(REQUESTS))
    assert batched == one_by_one
    sent, _, dead, states, counts, accepted = batched
    assert dead == [] and accepted == 2 * len(RESULTS)
    decisions = sent[("energy-decisions", b"tenant-a")]
    assert len(decisions) == 2 * 5  # admissions 0, 2, 3 and settlements 0, 2; again re-sent
    assert decisions[:5] == decisions[5:]  # re-delivered: the same bytes again
    assert all(s is not None for s in states.values())
    outcomes = {
        dict(labels)["result"]: value
        for (name, labels), value in counts.items()
        if name.endswith("decisions_total")
    }
    # counted once, not again on re-delivery: admissions 0, 1, 2, 5 and the retroactive ones
    # of runs 6 and 7 approved, 3 (over budget) and 4 (needs approval) rejected
    assert outcomes == {"approved": 6, "rejected": 2, "settled": 5}
