"""The reference designs' payloads as alternative input forms (issue 19 part 1): each maps
to Governor's contract, with an event id derived from it, and the agents decide on them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from app.runtime.topology import Topology, build
from app.settings import load_settings
from schemas.dead_letter import DeadLetterReason
from schemas.seed_forms import (
    SEED_OVERLAY,
    SEED_ZONE,
    MissingField,
    parse_fusion_request,
    parse_reading_record,
    parse_request_event,
    parse_tick,
)
from tests.seed_payloads import SEED_000_REQUEST, SEED_001_TICK, SEED_002_EVENT, SEED_004_READING

STAMP_MS = int(datetime(2024, 1, 15, 10, 31, tzinfo=UTC).timestamp() * 1000)


def test_a_seed_004_reading_maps_field_by_field_with_a_stable_id() -> None:
    reading = parse_reading_record(SEED_004_READING)
    assert reading.model_dump(exclude={"event_id"}) == {
        "schema_version": 1, "meter_id": "meter-001", "facility_id": "facility-001",
        "zone_id": SEED_ZONE, "energy_source": "grid", "consumption_kwh": 150.5,
        "voltage_v": 400.0, "current_a": 62.5, "power_factor": 0.95,
        "timestamp": datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "grid_zone": None,
    }  # fmt: skip
    # the same reading, however it is laid out, is the same event; another is not
    again = parse_reading_record(orjson.dumps(orjson.loads(SEED_004_READING)))
    other = parse_reading_record(SEED_004_READING.replace(b"150.5", b"150.6"))
    assert reading.event_id == again.event_id != other.event_id
    assert reading.event_id.startswith("seed-")


def test_a_seed_002_event_takes_its_platform_from_the_key_and_its_time_from_the_record() -> None:
    event = parse_request_event(SEED_002_EVENT, b"github", STAMP_MS)
    assert (event.platform, event.url, event.method, event.status_code, event.latency_ms) == (
        "github", "https://api.example.com/api/v1/status", "GET", 200, 50.0,
    )  # fmt: skip
    assert event.timestamp == datetime(2024, 1, 15, 10, 31, tzinfo=UTC)
    assert parse_request_event(SEED_002_EVENT, b"github", STAMP_MS).event_id == event.event_id
    assert parse_request_event(SEED_002_EVENT, b"github", STAMP_MS + 1).event_id != event.event_id
    timed = orjson.dumps({**orjson.loads(SEED_002_EVENT), "timestamp": 1705314600.0})
    own = parse_request_event(timed, b"github", STAMP_MS)
    assert own.timestamp == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert parse_request_event(timed, b"github", None).event_id == own.event_id
    with pytest.raises(MissingField, match="platform"):
        parse_request_event(SEED_002_EVENT, None, STAMP_MS)


def test_a_seed_000_request_and_a_seed_001_tick_map_with_documented_defaults() -> None:
    request = parse_fusion_request(SEED_000_REQUEST, b"tenant-a", STAMP_MS)
    assert (request.tenant, request.scenario_type, request.overlay) == (
        "tenant-a", "refund_processing", SEED_OVERLAY,
    )  # fmt: skip
    assert (request.complexity_level, request.trust_score, request.estimated_units) == (
        "high", 0.5, 100.0,
    )  # fmt: skip
    bare = parse_fusion_request(b'{"scenario_type": "triage"}', b"tenant-a", STAMP_MS)
    assert (bare.complexity_level, bare.trust_score, bare.estimated_units) == ("medium", 1.0, 100.0)
    with pytest.raises(MissingField, match="tenant"):
        parse_fusion_request(SEED_000_REQUEST, None, STAMP_MS)
    tick = parse_tick(SEED_001_TICK, b"site-001")
    assert tick.model_dump(exclude={"event_id"}) == {
        "schema_version": 1, "site_id": "site-001",
        "timestamp": datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "slot_index": 126,
        "planned_offset_deg": 2.5, "actual_offset_deg": 1.75, "energy_cost_kwh": 0.42,
        "budget_spent_kwh": 3.1, "budget_remaining_kwh": 46.9, "gate_passed": True,
        "source": "controller", "stage_id": "stage-1",
    }  # fmt: skip
    with pytest.raises(MissingField, match="site_id"):
        parse_tick(SEED_001_TICK, None)


def test_a_seed_payload_with_an_unknown_or_missing_field_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="wattage"):
        parse_reading_record(SEED_004_READING.replace(b'"voltage"', b'"wattage"'))
    with pytest.raises(ValueError, match="scenario_type"):
        parse_fusion_request(b'{"estimated_cost": 5}', b"tenant-a", STAMP_MS)


@pytest.fixture
def topology(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    yield build(load_settings())


Sent = dict[str, list[bytes]]
Dead = list[dict[str, Any]]


def _quiet(topology: Topology, monkeypatch: pytest.MonkeyPatch) -> tuple[Sent, Dead]:
    """Record what the agents send and dead-letter instead of sending it."""
    sent: dict[str, list[bytes]] = {}
    dead: list[dict[str, Any]] = []

    async def send(app: Any, topic: str, key: bytes, values: Any) -> None:
        sent.setdefault(topic.rsplit(".", 1)[-1], []).extend(values)

    async def dead_letter(**fields: Any) -> None:
        dead.append(fields)

    async def no_metadata_wait(app: Any, topics: Any) -> None:
        return None

    monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
    for module in (
        "agents.carbon.agent",
        "agents.audit.agent",
        "agents.traffic.agent",
        "agents.fusion.tenants",
    ):
        monkeypatch.setattr(f"{module}.send_same_key", send)
    for agent in topology.gov.faust.agents.values():
        pipeline = getattr(agent.fun, "__self__", None)
        if pipeline is not None and hasattr(pipeline, "dead_letters"):
            monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)
    return sent, dead


async def test_the_agents_decide_on_the_references_payloads(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each input topic's agent takes its reference's payload (twice: the second is the
    same event), sends canonical outputs, and dead-letters a keyless one naming the field."""
    sent, dead = _quiet(topology, monkeypatch)
    topology.carbon.grid.caught_up.set()
    topology.carbon.instruments.caught_up.set()
    topology.fusion_context.routing.caught_up.set()
    topology.policy_feed.caught_up.set()
    agents = topology.gov.faust.agents
    stamp_s = STAMP_MS / 1000
    for name, value, key in (
        ("carbon-emissions", SEED_004_READING, b"facility-001"),
        ("budget-audit", SEED_001_TICK, b"site-001"),
        ("traffic-router", SEED_002_EVENT, b"github"),
        ("fusion-admissions", SEED_000_REQUEST, b"tenant-a"),
    ):
        async with agents[name].test_context() as ctx:
            await ctx.put(value, key=key, timestamp=stamp_s)
            await ctx.put(value, key=key, timestamp=stamp_s)
            if name != "carbon-emissions":  # a reading names its facility itself
                await ctx.put(value, key=None, timestamp=stamp_s)
    emissions = [orjson.loads(v) for v in sent["carbon-emissions"]]
    assert len(emissions) == 1 and emissions[0]["facility_id"] == "facility-001"
    slots = [orjson.loads(v) for v in sent["budget-audit"]]
    assert [s["site_id"] for s in slots] == ["site-001"]
    routed = [orjson.loads(v) for v in sent["traffic-routed"]]
    assert len(routed) == 2 and {r["event"]["event_id"] for r in routed} == {
        routed[0]["event"]["event_id"]
    }  # the router forwards both; the decider recognises the second as a duplicate
    decisions = [orjson.loads(v) for v in sent["energy-decisions"]]
    assert [(d["tenant"], d["outcome"]) for d in decisions] == [("tenant-a", "approved")]
    assert [(d["reason"], d["error"].split(":")[0]) for d in dead] == [
        (DeadLetterReason.INVALID_SCHEMA, "site_id"),
        (DeadLetterReason.INVALID_SCHEMA, "platform"),
        (DeadLetterReason.INVALID_SCHEMA, "tenant"),
    ]
