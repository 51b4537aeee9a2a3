"""The fusion agents through Faust's agent.test_context(): budgets, admissions and results
share the tenants table; dead letters; outbox; observations forwarded by scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from agents.fusion.rules import overlay as overlay_rules
from agents.fusion.rules.settlement import observations_of
from app.core.dedup import Position
from app.runtime.topology import Topology, build
from app.settings import Settings, load_settings
from schemas.dead_letter import DeadLetterReason
from schemas.energy import EnergyDecision, Outcome
from schemas.overlay import ObservationKind, OverlayObservation
from tests.factories import BASE_TIME, energy_budget, fusion_request, fusion_result


@pytest.fixture
def topology(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    yield build(load_settings())


class Sent:
    def __init__(self, topology: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
        self.records: dict[str, list[bytes]] = {}
        self.dead: list[dict[str, Any]] = []
        self.markers: list[tuple[str, int, bytes]] = []

        async def send(app: Any, topic: str, key: bytes, values: Any) -> None:
            self.records.setdefault(topic, []).extend(values)

        async def send_to_partition(app: Any, topic: str, partition: int, value: bytes) -> None:
            self.markers.append((topic, partition, value))

        async def dead_letter(**fields: Any) -> None:
            self.dead.append(fields)

        async def no_metadata_wait(app: Any, topics: Any) -> None:
            return None

        monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
        monkeypatch.setattr("agents.fusion.tenants.send_same_key", send)
        monkeypatch.setattr("agents.fusion.overlays.send_same_key", send)
        monkeypatch.setattr("agents.fusion.progress.send_to_partition", send_to_partition)
        for agent_name in (
            "fusion-budgets",
            "fusion-admissions",
            "fusion-settlements",
            "fusion-overlays",
        ):
            pipeline = topology.gov.faust.agents[agent_name].fun.__self__
            monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)

    def decisions(self) -> list[EnergyDecision]:
        return [EnergyDecision.from_json_bytes(v) for v in self.records.get("energy-decisions", [])]


async def test_budget_admission_settlement_through_the_agents(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = Sent(topology, monkeypatch)
    topology.fusion_context.routing.caught_up.set()
    app = topology.gov.faust
    key = b"tenant-a"
    async with app.agents["fusion-budgets"].test_context() as budgets:
        await budgets.put(energy_budget(1000.0).to_json_bytes(), key=key)
    async with app.agents["fusion-admissions"].test_context() as requests:
        await requests.put(fusion_request(0).to_json_bytes(), key=key)
        await requests.put(fusion_request(0).to_json_bytes(), key=key)  # published twice
        await requests.put(fusion_request(1, estimated_units=2000.0).to_json_bytes(), key=key)
        await requests.put(b"{oops", key=key)
        await requests.put(fusion_request(2).to_json_bytes(), key=b"tenant-b")
    async with app.agents["fusion-settlements"].test_context() as results:
        await results.put(fusion_result(0, actual_units=80.0).to_json_bytes(), key=key)
        await results.put(orjson.dumps({"event_id": "x"}), key=key)
    decided = [(d.decision_id, d.outcome) for d in sent.decisions()]
    assert decided == [
        ("run-000000|admission", Outcome.APPROVED),
        ("run-000001|admission", Outcome.REJECTED),
        ("run-000000|settlement", Outcome.SETTLED),
    ]
    assert [d["reason"] for d in sent.dead] == [
        DeadLetterReason.UNDECODABLE,
        DeadLetterReason.KEY_MISMATCH,
        DeadLetterReason.INVALID_SCHEMA,
    ]
    state = topology.fusion_context.tenant_state("tenant-a")
    assert state is not None and state.spent_units == 80.0 and not state.reservations
    # After the run, its partition's progress went to every fusion-observations partition.
    targets = topology.gov.catalogue["fusion-observations"].partitions
    progress = [(p, OverlayObservation.from_json_bytes(v)) for _, p, v in sent.markers]
    assert sorted(p for p, _ in progress) == list(range(targets))
    late_by = topology.gov.settings.fusion.ordering.allowed_lateness_s
    assert {(m.kind, m.source_partition, m.watermark) for _, m in progress} == {
        (ObservationKind.PROGRESS, 0, fusion_result(0).timestamp - timedelta(seconds=late_by))
    }
    observations = [orjson.loads(v) for v in sent.records["fusion-observations"]]
    assert [o["scope"] for o in observations] == ["refund_processing|rollback_first"]
    requests_pipeline = app.agents["fusion-admissions"].fun.__self__
    assert requests_pipeline.box.get(Position(partition=0, offset=0)) is not None
    # The AI cost reference's cost efficiency: estimated 100 units, 80 used.
    samples = topology.fusion_context.metrics.cost_efficiency.collect()[0].samples
    total = {s.name: s.value for s in samples if s.name.endswith(("_sum", "_count"))}
    assert total == {
        "governor_fusion_cost_efficiency_ratio_sum": 1.25,
        "governor_fusion_cost_efficiency_ratio_count": 1.0,
    }
    routed = topology.fusion_context.metrics.routing.collect()[0].samples
    assert {s.labels["routing"]: s.value for s in routed if s.name.endswith("_total")} == {
        "overlay": 2.0  # the two admissions (the rejected one was routed too)
    }
    # The AI cost reference's tenant alert input: a budgeted tenant's use after its last
    # decision (tenant-b has no budget, so no ratio).
    used = topology.fusion_context.metrics.budget_used.collect()[0].samples
    assert {s.labels["tenant"]: s.value for s in used} == {"tenant-a": 0.08}


def run(n: int, seconds: float, token_delta_pct: float = 30.0) -> OverlayObservation:
    when = BASE_TIME + timedelta(seconds=seconds)
    result = fusion_result(n, token_delta_pct=token_delta_pct, timestamp=when)
    [obs] = observations_of(result, Settings().fusion)
    return obs


def marker(source: int, seconds: float | None) -> bytes:
    """Progress of fusion-results partition ``source`` to ``seconds``; ``None``: idle."""
    at = None if seconds is None else BASE_TIME + timedelta(seconds=seconds)
    kind = ObservationKind.IDLE if at is None else ObservationKind.PROGRESS
    return OverlayObservation(
        kind=kind, event_id=f"{kind.value}-{source}", scope=f"~{kind.value}",
        scenario_type="-", overlay="-", source_partition=source, watermark=at,
        timestamp=at or BASE_TIME,
    ).to_json_bytes()  # fmt: skip


async def test_overlay_agent_applies_runs_in_event_time_order(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of one scope from two fusion-results partitions, arriving out of order: held
    until both partitions have passed them, applied in event-time order (the third breach
    in event time trips the wire, although it arrived first); a re-sent run is ignored, a
    late one applied at once and counted, idle partitions release the rest."""
    sent = Sent(topology, monkeypatch)
    agent = topology.gov.faust.agents["fusion-overlays"]
    scope = b"refund_processing|rollback_first"
    sources = topology.gov.catalogue["fusion-results"].partitions
    async with agent.test_context() as ctx:
        await ctx.put(run(2, 20).to_json_bytes(), key=scope)  # from partition 1
        for source in range(2, sources):  # the other partitions of fusion-results: quiet
            await ctx.put(marker(source, None), key=None)
        await ctx.put(run(0, 0).to_json_bytes(), key=scope)  # from partition 0
        await ctx.put(run(1, 10).to_json_bytes(), key=scope)
        await ctx.put(marker(0, 15), key=None)  # partition 1 not heard from: nothing yet
        assert topology.fusion_context.metrics.observations.collect()[0].samples == []
        await ctx.put(marker(1, 12), key=None)  # runs 0 and 1 released
        assert "tripwire-events" not in sent.records  # two breaches applied
        await ctx.put(marker(1, 25), key=None)  # partition 0 holds it at 15
        assert "tripwire-events" not in sent.records
        await ctx.put(marker(0, 30), key=None)  # both past 20: run 2 released
        await ctx.put(run(1, 10).to_json_bytes(), key=scope)  # re-sent after a restart
        await ctx.put(run(3, 5).to_json_bytes(), key=scope)  # late: 25 was released
        await ctx.put(run(4, 40, token_delta_pct=0.0).to_json_bytes(), key=scope)
        state = topology.fusion_overlays.scope_state(scope.decode())
        assert state is not None and state.tripwire.consecutive_breaches == 4
        await ctx.put(marker(0, None), key=None)
        await ctx.put(marker(1, None), key=None)  # both idle: run 4 released
        await ctx.put(run(4, 40).to_json_bytes(), key=b"elsewhere")
    events = [orjson.loads(v) for v in sent.records["tripwire-events"]]
    assert [(e["kind"], e["consecutive_breaches"], e["event_id"]) for e in events] == [
        ("activated", 3, "run-000002")
    ]
    routing = [orjson.loads(v) for v in sent.records["overlay-routing"]]
    assert [(r["version"], r["mode"], r["gate_state"], r["event_id"]) for r in routing] == [
        (1, "downgraded", "pass", "run-000002"),
        (2, "downgraded", "warn", "run-000004"),  # a token-delta mean over 12 % in 5 runs
    ]
    assert [d["reason"] for d in sent.dead] == [DeadLetterReason.KEY_MISMATCH]
    state = topology.fusion_overlays.scope_state(scope.decode())
    assert state is not None and state.tripwire.downgrade_active
    assert state.tripwire.consecutive_breaches == 0  # run 4 was under the threshold
    assert topology.fusion_overlays.buffer(0).pending == ()
    taken = topology.fusion_context.metrics.observations.collect()[0].samples
    assert {s.labels["how"]: s.value for s in taken if s.name.endswith("_total")} == {
        "in_order": 4.0, "late": 1.0, "duplicate": 1.0,
    }  # fmt: skip
    breaches = topology.fusion_context.metrics.consecutive_breaches.collect()[0].samples
    assert {s.labels["scope"]: s.value for s in breaches} == {scope.decode(): 0.0}


async def test_a_run_the_rules_fail_on_is_dead_lettered_and_the_others_applied(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One progress record releases many runs: a rules bug on one of them must not hold
    back the rest (nor every later release)."""
    sent = Sent(topology, monkeypatch)
    real = overlay_rules._apply

    def buggy(state: Any, obs: OverlayObservation, config: Any) -> Any:
        if obs.event_id == "run-000001":
            raise ZeroDivisionError("a rules bug")
        return real(state, obs, config)

    monkeypatch.setattr(overlay_rules, "_apply", buggy)
    agent = topology.gov.faust.agents["fusion-overlays"]
    scope = b"refund_processing|rollback_first"
    async with agent.test_context() as ctx:
        for n in range(4):
            await ctx.put(run(n, n).to_json_bytes(), key=scope)
        for source in range(topology.gov.catalogue["fusion-results"].partitions):
            await ctx.put(marker(source, None), key=None)
    [letter] = sent.dead
    assert letter["reason"] == DeadLetterReason.PROCESSING_ERROR
    assert "run run-000001 of refund_processing|rollback_first" in letter["error"]
    events = [orjson.loads(v) for v in sent.records["tripwire-events"]]
    assert [(e["consecutive_breaches"], e["event_id"]) for e in events] == [(3, "run-000003")]
    assert topology.fusion_overlays.buffer(0).pending == ()


async def test_tenants_and_scopes_past_their_partition_limits_are_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None
) -> None:
    """Issue 16 part 4: invented tenant ids and scenario/overlay names each added state for
    good. Past a limit, a new one is dead-lettered; the tenants and scopes held go on."""
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("GOVERNOR_FUSION__MAX_TENANTS_PER_PARTITION", "3")
    monkeypatch.setenv("GOVERNOR_FUSION__MAX_SCOPES_PER_PARTITION", "2")
    topology = build(load_settings())
    sent = Sent(topology, monkeypatch)
    topology.fusion_context.routing.caught_up.set()
    app = topology.gov.faust
    async with app.agents["fusion-budgets"].test_context() as budgets:
        await budgets.put(energy_budget(1000.0).to_json_bytes(), key=b"tenant-a")
    async with app.agents["fusion-admissions"].test_context() as requests:
        for n in range(50):
            tenant = f"tenant-{n:03d}"
            value = fusion_request(n, tenant=tenant).to_json_bytes()
            await requests.put(value, key=tenant.encode())
        await requests.put(fusion_request(99).to_json_bytes(), key=b"tenant-a")
    tenants = {d.tenant for d in sent.decisions()}
    assert tenants == {"tenant-a", "tenant-000", "tenant-001"}
    assert [d["reason"] for d in sent.dead] == [DeadLetterReason.ENTITY_LIMIT] * 48
    held = {k for k in topology.fusion_context.tenants if not k.startswith("@")}
    assert held == tenants

    sent.dead.clear()
    config = Settings().fusion
    async with app.agents["fusion-overlays"].test_context() as ctx:
        for n in range(20):
            scope = f"scenario-{n}|overlay"
            [obs] = observations_of(fusion_result(n, scenario_type=f"scenario-{n}"), config)
            obs = obs.model_copy(update={"scope": scope})
            await ctx.put(obs.to_json_bytes(), key=scope.encode())
        for source in range(topology.gov.catalogue["fusion-results"].partitions):
            await ctx.put(marker(source, None), key=None)  # all quiet: runs released
    assert [d["reason"] for d in sent.dead] == [DeadLetterReason.ENTITY_LIMIT] * 18
    scopes = {k for k in topology.fusion_overlays.scopes if not k.startswith(("@", "~"))}
    assert scopes == {"scenario-0|overlay", "scenario-1|overlay"}
