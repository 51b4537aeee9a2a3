"""AI cost governance rules: the references' test cases, reservations under bursts, tokens,
breakers, gates, cache, early termination, flags."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from agents.fusion.rules import breaker as breakers
from agents.fusion.rules import cost, flags, tokens, tripwire
from agents.fusion.rules.offline import OfflineFusion
from agents.fusion.settings import (
    FeatureFlag,
    FusionSettings,
    MultiplierSettings,
    OverlayBreakerSettings,
    TripwireSettings,
)
from app.core.dedup import Position
from schemas.energy import BudgetState, DecisionKind, Outcome, Reason, RoutingMode
from schemas.fusion_result import ComplexityLevel, FusionRequest, RunResult
from schemas.overlay import BreakerState, GateName, GateState, TripwireKind
from tests.factories import BASE_TIME, energy_budget, fusion_request, fusion_result

SECRET = b"test-secret"


def governor(**overrides: Any) -> OfflineFusion:
    return OfflineFusion(FusionSettings(**overrides))


# The references' own cases


def test_high_complexity_costs_150() -> None:
    request = fusion_request(complexity_level=ComplexityLevel.HIGH)
    applied = cost.multipliers(request, MultiplierSettings())
    assert cost.apply(100.0, applied) == 150.0
    assert [(m.name, m.factor) for m in applied] == [("complexity", 1.5)]


def test_all_three_multipliers() -> None:
    request = fusion_request(
        complexity_level=ComplexityLevel.HIGH, trust_score=0.5, entropy_score=0.8
    )
    assert cost.apply(100.0, cost.multipliers(request, MultiplierSettings())) == (
        100.0 * 1.5 * 1.3 * 1.4
    )
    emergency = fusion_request(emergency_mode=True)
    assert cost.apply(100.0, cost.multipliers(emergency, MultiplierSettings())) == 60.0


def test_second_breach_triggers_downgrade_with_limit_two() -> None:
    config = TripwireSettings(breach_threshold_pct=10.0, consecutive_limit=2)
    state, first = tripwire.check(tripwire.Tripwire(), 15.0, config)
    assert first.is_breach and first.consecutive_breaches == 1
    assert not first.downgrade_triggered
    state, second = tripwire.check(state, 12.0, config)
    assert second.downgrade_triggered and second.downgrade_active
    assert second.event is TripwireKind.ACTIVATED


def test_non_breach_resets_the_count_and_downgrade_persists_until_reset() -> None:
    config = TripwireSettings()  # 12 %, 3 in a row
    state = tripwire.Tripwire()
    for delta in (13.0, 14.0, 5.0, 13.0, 13.0):
        state, check = tripwire.check(state, delta, config)
    assert not state.downgrade_active and state.consecutive_breaches == 2
    state, check = tripwire.check(state, 12.5, config)
    assert check.downgrade_triggered
    for _ in range(50):
        state, check = tripwire.check(state, 1.0, config)
    assert state.downgrade_active, "no auto-recovery by default"
    state, was_active = tripwire.reset(state)
    assert was_active and not state.downgrade_active
    auto = TripwireSettings(auto_recovery=True, auto_recovery_clean_runs=3)
    state = tripwire.Tripwire(downgrade_active=True)
    kinds = []
    for _ in range(3):
        state, check = tripwire.check(state, 1.0, auto)
        kinds.append(check.event)
    assert kinds == [None, None, TripwireKind.RECOVERED] and not state.downgrade_active


def test_over_the_approval_threshold_needs_manual_approval() -> None:
    fusion = governor()
    [decision] = fusion.request(fusion_request(estimated_units=15_000))
    assert decision.outcome is Outcome.REJECTED and decision.requires_manual_approval
    assert decision.reasons == (Reason.EXCEEDS_APPROVAL_THRESHOLD,)
    [approved] = fusion.request(fusion_request(1, estimated_units=15_000, manual_approval_id="a1"))
    assert approved.outcome is Outcome.APPROVED and Reason.MANUAL_APPROVAL in approved.reasons
    [replayed] = fusion.request(fusion_request(2, estimated_units=15_000, manual_approval_id="a1"))
    assert replayed.outcome is Outcome.REJECTED and replayed.reasons == (Reason.TOKEN_REPLAYED,)


# Budgets and reservations


def test_budget_thresholds_review_hard_limit_emergency() -> None:
    fusion = governor()
    fusion.budget(energy_budget(1000.0))
    decided = [fusion.request(fusion_request(n))[0] for n in range(10)]
    assert [d.outcome for d in decided[:9]] == [Outcome.APPROVED] * 9
    assert [d.auto_review for d in decided[:9]] == [False] * 8 + [True]  # 900 of 1000 ≥ 85 %
    assert decided[9].outcome is Outcome.REJECTED and decided[9].reasons == (Reason.HARD_LIMIT,)
    assert decided[8].budget.reserved_units == 900.0
    # 99 % used: emergency, everything refused, even a tiny run.
    fusion.result(fusion_result(0, actual_units=190.0))  # 900 - 100 + 190 = 990
    [tiny] = fusion.request(fusion_request(20, estimated_units=1.0))
    assert tiny.outcome is Outcome.REJECTED and tiny.reasons == (Reason.EMERGENCY_STATE,)
    assert tiny.budget.state is BudgetState.EMERGENCY


def test_a_burst_cannot_overspend() -> None:
    fusion = governor()
    fusion.budget(energy_budget(1000.0))
    burst = [fusion.request(fusion_request(n, estimated_units=70.0))[0] for n in range(50)]
    approved = [d for d in burst if d.outcome is Outcome.APPROVED]
    assert sum(d.final_units for d in approved) < 950.0
    assert len(approved) == 13  # 13 x 70 = 910 < 950; a 14th would reach 980
    for n in range(50):
        fusion.result(fusion_result(n, actual_units=70.0))
    tenant = fusion.tenants["tenant-a"]
    assert tenant.reserved_units == 0.0
    # Never-admitted runs are admitted, rejected, and still charged: they happened.
    assert tenant.spent_units == 50 * 70.0


def test_settlement_releases_reservation_and_charges_actual() -> None:
    fusion = governor()
    fusion.budget(energy_budget(10_000.0))
    fusion.request(fusion_request(0, complexity_level=ComplexityLevel.HIGH))
    assert fusion.tenants["tenant-a"].reserved_units == 150.0
    [settled] = fusion.result(
        fusion_result(0, complexity_level=ComplexityLevel.HIGH, actual_units=80.0)
    )
    assert settled.kind is DecisionKind.SETTLEMENT and settled.outcome is Outcome.SETTLED
    assert settled.final_units == 120.0 and settled.released_units == 150.0
    assert settled.budget.spent_units == 120.0 and settled.budget.reserved_units == 0.0


def test_result_without_admission_is_admitted_then_settled() -> None:
    fusion = governor()
    admission, settlement = fusion.result(fusion_result(3))
    assert admission.decision_id == "run-000003|admission"
    assert settlement.decision_id == "run-000003|settlement"
    assert Reason.SETTLED_WITHOUT_RESERVATION in settlement.reasons
    assert settlement.budget.state is BudgetState.NO_BUDGET


def test_period_rollover_and_reservation_expiry() -> None:
    fusion = governor()
    fusion.budget(energy_budget(1000.0, period="day"))
    fusion.result(fusion_result(0, actual_units=500.0))
    fusion.request(fusion_request(1))  # reserved, its result never comes
    next_day = BASE_TIME + timedelta(days=1)
    decided = fusion.request(fusion_request(2, timestamp=next_day))
    expiry, admission = decided
    assert expiry.kind is DecisionKind.EXPIRY and expiry.released_units == 100.0
    assert admission.budget.spent_units == 0.0 and admission.budget.reserved_units == 100.0


def test_reservations_expire_oldest_first_whatever_else_came_between() -> None:
    fusion = governor()  # reservations live 3,600 s of event time
    for n in range(10):
        fusion.request(fusion_request(n, timestamp=BASE_TIME + timedelta(seconds=60 * n)))
    fusion.result(fusion_result(3))  # settled: its reservation leaves the middle
    fusion.request(fusion_request(20, timestamp=BASE_TIME))  # late: reserved at the watermark

    def expired_by(seconds: float, n: int) -> list[str]:
        at = BASE_TIME + timedelta(seconds=seconds)
        decided = fusion.request(fusion_request(n, timestamp=at))
        return [d.event_id for d in decided if d.kind is DecisionKind.EXPIRY]

    assert expired_by(3_600 + 120, 30) == ["run-000000", "run-000001", "run-000002"]
    assert expired_by(3_600 + 200, 31) == []
    expected = [f"run-{n:06d}" for n in (4, 5, 6, 7, 8, 9, 20)]
    assert expired_by(3_600 + 540, 32) == expected


def test_tripwire_downgrade_halves_the_cost() -> None:
    fusion = governor()
    for n in range(3):
        fusion.result(fusion_result(n, token_delta_pct=20.0))
    routing = fusion.routing["refund_processing|rollback_first"]
    assert routing.downgrade_active and routing.mode is RoutingMode.DOWNGRADED
    assert routing.parameters["cost_factor"] == 0.5
    [decision] = fusion.request(fusion_request(10))
    assert decision.outcome is Outcome.DOWNGRADED and decision.final_units == 50.0
    assert decision.tripwire_active and Reason.BUDGET_TRIPWIRE_ACTIVE in decision.reasons


def test_settlement_follows_the_admission_not_the_routing_in_force_now() -> None:
    """A reserved run is charged and reported as admitted; a run Governor never admitted is
    charged in full even while the tripwire downgrades admissions: live routing, which
    reaches a worker a moment after the overlay stage decides it, never enters a settlement
    (so replay and live agree on every settlement)."""
    fusion = governor()
    [admitted] = fusion.request(fusion_request(10))  # before the tripwire: full cost
    for n in range(3):
        fusion.result(fusion_result(n, token_delta_pct=20.0))
    assert fusion.routing["refund_processing|rollback_first"].downgrade_active
    settled = fusion.result(fusion_result(10, actual_units=80.0))[-1]
    assert admitted.routing is settled.routing is RoutingMode.OVERLAY
    assert settled.final_units == 80.0 and not settled.tripwire_active
    admission, unreserved = fusion.result(fusion_result(11, actual_units=80.0))
    assert admission.outcome is not Outcome.DOWNGRADED and not admission.tripwire_active
    assert unreserved.final_units == 80.0 and unreserved.routing is RoutingMode.OVERLAY
    [downgraded] = fusion.request(fusion_request(12))  # admissions do follow the tripwire
    assert downgraded.outcome is Outcome.DOWNGRADED
    assert fusion.result(fusion_result(12, actual_units=80.0))[-1].final_units == 40.0


def test_tripwire_per_tenant_when_configured() -> None:
    fusion = governor(tripwire=TripwireSettings(scope="tenant"))
    for n in range(3):
        fusion.result(fusion_result(n, token_delta_pct=20.0, scenario_type=f"s{n}"))
    assert fusion.routing["tenant:tenant-a"].downgrade_active
    [decision] = fusion.request(fusion_request(10, scenario_type="other"))
    assert decision.outcome is Outcome.DOWNGRADED
    [other] = fusion.request(fusion_request(11, tenant="tenant-b"))
    assert other.outcome is Outcome.APPROVED


# Cache and early termination


def test_insight_cache_hit_within_ttl_records_energy_saved() -> None:
    fusion = governor()
    digest = "ab" * 32
    fusion.result(fusion_result(0, inputs_hash=digest, actual_units=40.0))
    [hit] = fusion.request(fusion_request(1, inputs_hash=digest))
    assert hit.outcome is Outcome.CACHE_HIT and hit.energy_saved_units == 40.0
    assert hit.final_units == 0.0
    later = BASE_TIME + timedelta(hours=25)
    [miss] = fusion.request(fusion_request(2, inputs_hash=digest, timestamp=later))
    assert miss.outcome is Outcome.APPROVED


def test_early_termination_advice() -> None:
    fusion = governor()
    fusion.request(fusion_request(0))
    [settled] = fusion.result(fusion_result(0, actual_units=60.0, quality_score=0.9))
    assert settled.early_termination_advised and settled.energy_saved_units == 40.0
    fusion.request(fusion_request(1))
    [low_quality] = fusion.result(fusion_result(1, actual_units=60.0, quality_score=0.5))
    assert low_quality.early_termination_advised is False


# Overlay breaker and gates


def test_breaker_opens_after_five_failures_and_recovers_by_probe() -> None:
    config = OverlayBreakerSettings()
    b = breakers.OverlayBreaker()
    for i in range(4):
        b, change = breakers.record(b, float(i), True, config)
        assert change is None
    b, change = breakers.record(b, 4.0, True, config)
    assert change is not None and b.state is BreakerState.OPEN
    same, moves = breakers.advance_time(b, 303.0, config)
    assert same.state is BreakerState.OPEN and not moves
    half, moves = breakers.advance_time(b, 304.0, config)
    assert half.state is BreakerState.HALF_OPEN
    closed, change = breakers.record(half, 305.0, False, config)
    assert closed.state is BreakerState.CLOSED
    reopened, change = breakers.record(half, 305.0, True, config)
    assert reopened.state is BreakerState.OPEN and change is not None
    stuck, moves = breakers.advance_time(half, 304.0 + 300.0, config)
    assert stuck.state is BreakerState.OPEN and "half-open" in moves[0].reason


def test_breaker_routes_baseline_only_while_open() -> None:
    fusion = governor()
    for n in range(5):
        fusion.result(fusion_result(n, result=RunResult.TIMEOUT))
    routing = fusion.routing["refund_processing|rollback_first"]
    assert routing.mode is RoutingMode.BASELINE_ONLY and routing.breaker_state is BreakerState.OPEN
    [decision] = fusion.request(fusion_request(10))
    assert decision.routing is RoutingMode.BASELINE_ONLY
    probe = BASE_TIME + timedelta(seconds=400)
    fusion.result(fusion_result(11, timestamp=probe))
    assert fusion.routing["refund_processing|rollback_first"].mode is RoutingMode.OVERLAY
    moves = [t.to_state for o in fusion.scope_outputs for t in o.breaker_transitions]
    assert moves == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_gates_warn_and_block_on_token_delta_and_p95_latency() -> None:
    fusion = governor()
    for n in range(5):
        fusion.result(fusion_result(n, token_delta_pct=13.0, latency_ms=2500.0))
    changes = [(t.gate, t.to_state) for o in fusion.scope_outputs for t in o.gate_transitions]
    assert changes == [
        (GateName.TOKEN_DELTA, GateState.WARN),
        (GateName.P95_LATENCY, GateState.WARN),
    ]
    for n in range(5, 15):
        fusion.result(fusion_result(n, token_delta_pct=40.0, latency_ms=6000.0))
    states = fusion.scopes["refund_processing|rollback_first"].gates
    assert states is not None and states.state() is GateState.BLOCK
    assert fusion.routing["refund_processing|rollback_first"].mode is RoutingMode.BASELINE_ONLY
    # The window moves on: an hour of clean runs later the gates pass again.
    later = BASE_TIME + timedelta(hours=1)
    for n in range(20, 30):
        fusion.result(fusion_result(n, token_delta_pct=1.0, timestamp=later + timedelta(seconds=n)))
    assert states is not None
    assert fusion.scopes["refund_processing|rollback_first"].gates.state() is GateState.PASS  # type: ignore[union-attr]


def test_gate_thresholds_must_rise() -> None:
    with pytest.raises(ValidationError, match="warn must be below block"):
        FusionSettings(gates={"token_delta_warn_pct": 30.0})


# Flags and tokens


def test_rollout_is_deterministic_and_monotonic() -> None:
    flag = FeatureFlag(feature="refund_lot_switch", scenario_type="refund_processing",
                       overlay="rollback_first", rollout_pct=30.0)  # fmt: skip
    settings = FusionSettings(flags=(flag,))
    keys = [f"user-{i}" for i in range(2000)]
    on = {
        k for k in keys if flags.overlay_enabled(settings, "refund_processing", "rollback_first", k)
    }
    assert 500 < len(on) < 700  # about 30 %
    wider = FusionSettings(flags=(flag.model_copy(update={"rollout_pct": 60.0}),))
    on_wider = {
        k for k in keys if flags.overlay_enabled(wider, "refund_processing", "rollback_first", k)
    }
    assert on < on_wider
    assert flags.overlay_enabled(settings, "other", "overlay", "anyone")  # no flag: on
    off = FusionSettings(flags=(flag,), enabled_features="")
    assert not flags.overlay_enabled(off, "refund_processing", "rollback_first", keys[0])
    assert flags.validate(FusionSettings(flags=(flag.model_copy(update={"rollout_pct": 0}),)))
    with pytest.raises(ValidationError, match="unknown flags"):
        FusionSettings(flags=(flag,), enabled_features="nope")


def test_flag_outside_rollout_routes_baseline_only() -> None:
    flag = FeatureFlag(feature="f", scenario_type="refund_processing",
                       overlay="rollback_first", rollout_pct=0.0)  # fmt: skip
    fusion = governor(flags=(flag,))
    [decision] = fusion.request(fusion_request(0, routing_key="user-1"))
    assert decision.routing is RoutingMode.BASELINE_ONLY


def test_hmac_tokens_expire_are_bound_to_the_request_and_compare_in_constant_time() -> None:
    request = {"tenant": "tenant-a", "estimated_units": 15000, "event_id": "run-1"}
    token = tokens.make_token(SECRET, request, 1_000)
    check = tokens.check_token
    assert check(SECRET, token, request, 1_100.0, 300) is tokens.TokenCheck.OK
    assert check(SECRET, token, request, 1_301.0, 300) is tokens.TokenCheck.EXPIRED
    assert check(SECRET, token, request, 900.0, 300) is tokens.TokenCheck.FROM_THE_FUTURE
    changed = {**request, "estimated_units": 99999}
    assert check(SECRET, token, changed, 1_100.0, 300) is tokens.TokenCheck.BAD_SIGNATURE
    assert check(b"other", token, request, 1_100.0, 300) is tokens.TokenCheck.BAD_SIGNATURE
    assert check(SECRET, "2024-01-01T00:00:00:abc", request, 1_100.0, 300) is (
        tokens.TokenCheck.MALFORMED
    )
    assert tokens.token_id(token) == token.split(":")[1]
    # Issue 16: these raised (a 500 over HTTP) instead of being refused.
    for odd in ("²:" + "a" * 64, "9" * 5_000 + ":" + "a" * 64, "٣:" + "a" * 64):
        assert check(SECRET, odd, request, 1_100.0, 300) is tokens.TokenCheck.MALFORMED


def test_same_inputs_give_byte_identical_decisions() -> None:
    def run() -> list[bytes]:
        fusion = governor()
        fusion.budget(energy_budget(5000.0))
        for n in range(60):
            fusion.request(fusion_request(n, trust_score=0.5 if n % 3 else 0.9))
            outcome = RunResult.FAILURE if n % 11 == 0 else RunResult.SUCCESS
            fusion.result(fusion_result(n, token_delta_pct=float(n % 20), result=outcome))
        return [d.to_json_bytes() for d in fusion.decisions]

    assert run() == run()


def test_an_admission_arriving_after_its_result_changes_nothing() -> None:
    fusion = governor()
    fusion.budget(energy_budget(1000.0))
    fusion.result(fusion_result(0))
    assert fusion.request(fusion_request(0)) == []
    assert fusion.tenants["tenant-a"].reserved_units == 0.0
    assert fusion.tenants["tenant-a"].spent_units == 100.0


def test_only_governors_seal_approves_a_request_on_the_topic() -> None:
    """Issue 16: a producer on fusion-requests could approve its own spend by setting
    manual_approval_id; only a seal over the request's fields, made with the secret, is an
    approval now."""
    from agents.fusion.rules.tokens import approval_fields, approval_sealed, seal_approval

    secret = b"approval-secret"
    request = FusionRequest(
        event_id="big-1", tenant="acme", scenario_type="s", overlay="o", overlay_version="1",
        estimated_units=50_000, timestamp=BASE_TIME,
    )  # fmt: skip
    seal = seal_approval(secret, "a" * 64, approval_fields(request))
    sealed = request.model_copy(update={"manual_approval_id": seal})
    assert approval_sealed(secret, seal, approval_fields(sealed))
    assert not approval_sealed(secret, "anything", approval_fields(sealed))
    assert not approval_sealed(b"another secret", seal, approval_fields(sealed))
    assert not approval_sealed(None, seal, approval_fields(sealed))
    bigger = sealed.model_copy(update={"estimated_units": 90_000})
    assert not approval_sealed(secret, seal, approval_fields(bigger))
    renamed = sealed.model_copy(update={"event_id": "big-2"})
    assert not approval_sealed(secret, seal, approval_fields(renamed))


def test_a_reset_token_resets_once_whichever_worker_it_reaches() -> None:
    """Issue 16: reset tokens were single use per worker and in memory only; the scope's
    state now keeps the token ids it was reset with."""
    from agents.fusion.rules import overlay as overlays
    from schemas.overlay import ObservationKind, OverlayObservation

    config = FusionSettings()
    state: Any = None

    def reset(n: int, approval_id: str, minutes: int) -> tuple[Any, Any]:
        obs = OverlayObservation(
            kind=ObservationKind.TRIPWIRE_RESET, event_id=f"reset-{n}", scope="s|o",
            scenario_type="s", overlay="o", approval_id=approval_id,
            timestamp=BASE_TIME + timedelta(minutes=minutes),
        )  # fmt: skip
        out = overlays.observe(state, obs, Position(partition=0, offset=n), config)
        return out.state, out.outputs

    state, first = reset(1, "token-a", 0)
    assert [e.kind for e in first.tripwire_events] == [TripwireKind.RESET]
    state, again = reset(2, "token-a", 1)  # the same token, through another worker
    assert again.tripwire_events == () and state is not None
    state, other = reset(3, "token-b", 2)
    assert [e.kind for e in other.tripwire_events] == [TripwireKind.RESET]
    state, _ = reset(4, "token-c", 30)  # ids older than twice a token's life are dropped
    assert set(state.used_resets) == {"token-c"}


def test_a_tenants_state_keeps_only_runs_settled_before_their_admission() -> None:
    """A tenant's state is one changelog record: runs whose reservation their result
    released leave nothing in it (their request's id recognises a re-published request),
    and runs settled before their admission are kept up to a bound, the oldest forgotten."""
    fusion = governor(limits={"max_settled_per_tenant": 3})
    for n in range(5):
        fusion.request(fusion_request(n))
        fusion.result(fusion_result(n))
    assert fusion.tenants["tenant-a"].settled == {}
    assert fusion.request(fusion_request(2)) == []  # re-published after its settlement
    assert fusion.tenants["tenant-a"].reservations == {}
    for n in range(10, 15):  # results whose requests come late
        fusion.result(fusion_result(n))
    assert list(fusion.tenants["tenant-a"].settled) == ["run-000012", "run-000013", "run-000014"]
    assert fusion.request(fusion_request(14)) == []  # remembered: changes nothing
    assert fusion.tenants["tenant-a"].reservations == {}
    # forgotten: reserved until the reservation TTL (budget held, never freed)
    [late] = fusion.request(fusion_request(10))
    assert late.outcome is Outcome.APPROVED and late.budget.reserved_units == 100.0


def test_the_default_bound_keeps_a_tenant_below_kafkas_record_limit() -> None:
    fusion = governor()
    bound = fusion.config.limits.max_settled_per_tenant
    for n in range(bound + 100):  # the longest ids allowed, all within the reservation TTL
        at = BASE_TIME + timedelta(seconds=n / 10)
        fusion.result(fusion_result(n, event_id=f"{n:08d}".ljust(128, "x"), timestamp=at))
    state = fusion.tenants["tenant-a"]
    assert bound - bound // 8 <= len(state.settled) <= bound  # past it, the oldest 8th goes
    assert list(state.settled)[-1].startswith(f"{bound + 99:08d}")
    assert len(state.model_dump_json()) < 700_000  # beside a full insight cache (125 kB)


def test_a_tenant_cannot_hold_more_open_reservations_than_its_bound() -> None:
    fusion = governor(limits={"max_open_reservations_per_tenant": 2})
    assert [d.outcome for n in range(3) for d in fusion.request(fusion_request(n))] == [
        Outcome.APPROVED,
        Outcome.APPROVED,
        Outcome.REJECTED,
    ]
    assert fusion.decisions[-1].reasons == (Reason.TOO_MANY_OPEN_RESERVATIONS,)
    assert list(fusion.tenants["tenant-a"].reservations) == ["run-000000", "run-000001"]
    fusion.result(fusion_result(0))  # settled: room for one more
    [admitted] = fusion.request(fusion_request(3))
    assert admitted.outcome is Outcome.APPROVED
    # a run that happened anyway is still charged in full
    [_, settled] = fusion.result(fusion_result(4, actual_units=70.0))
    assert settled.outcome is Outcome.SETTLED and settled.budget.spent_units == 100.0 + 70.0


def test_the_reserved_sum_kept_with_the_state_is_the_walk_bit_for_bit() -> None:
    """An admission hands its state the sum without walking the open runs; a state read back
    from its changelog record walks them; both must be the same float, or a replay after a
    restart could decide otherwise than the first run."""
    fusion = governor()
    fusion.budget(energy_budget(1_000_000.0))
    for n in range(300):
        fusion.request(fusion_request(n, estimated_units=0.1 + n / 7))
    for n in range(0, 300, 3):
        fusion.result(fusion_result(n, actual_units=1.0))
    for n in range(300, 400):
        fusion.request(fusion_request(n, estimated_units=0.3 + n / 11))
    tenant = fusion.tenants["tenant-a"]
    walked = 0.0
    for reservation in tenant.reservations.values():
        walked += reservation.units
    restored = type(tenant).model_validate_json(tenant.model_dump_json())
    assert tenant.reserved_units == walked == restored.reserved_units
    assert restored == tenant
    # A copy with other reservations does not take the sum kept for the first ones.
    emptied = tenant.model_copy(update={"reservations": {}})
    assert emptied.reserved_units == 0.0 and tenant.reserved_units == walked
