"""Traffic rules: the reference's test list, tiers, breakers, burn rates, policy, replay."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from agents.traffic.rules import breaker as breakers
from agents.traffic.rules import risk as risk_rules
from agents.traffic.rules.contracts import ContractIndex
from agents.traffic.rules.engine import process_request, route
from agents.traffic.rules.offline import OfflineTraffic
from agents.traffic.rules.policy import (
    ActivePolicy,
    Verdict,
    canonical_json,
    judge_record,
    policy_hash,
    sign,
    trusted_keys,
)
from agents.traffic.rules.risk import by_threshold, decide
from agents.traffic.rules.windows import Windows
from app.core.dedup import Position
from app.core.sketch import RollingSketch, Sketch
from schemas.request_event import RequestEvent
from schemas.traffic import AlertState, CircuitState, ReasonCode, RiskFactors, TrafficDecision
from schemas.traffic_policy import (
    Action,
    BreakerPolicy,
    Decision,
    Invariant,
    Phase,
    PlatformTier,
    RiskThresholds,
    ServiceContract,
    TrafficPolicy,
)
from tests.factories import BASE_TIME, contracts, request, traffic_policy

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TRUSTED = trusted_keys([KEY.public_key().public_bytes_raw()])
SMALL_BREAKER = BreakerPolicy(
    sliding_window_calls=10, minimum_calls=4, wait_open_s=60, permitted_half_open_calls=3,
    max_wait_half_open_s=30,
)  # fmt: skip


def engine(**overrides: Any) -> OfflineTraffic:
    return OfflineTraffic(ActivePolicy.of(traffic_policy(**overrides), "test"))


def decide_one(event_overrides: dict[str, Any], **policy: Any) -> TrafficDecision:
    return engine(**policy).run([request(0, **event_overrides)])[0].decision


# Contracts


def test_exact_match_carries_contract_id() -> None:
    decision = decide_one({})
    assert decision.contract_id == "status_v1"
    assert decision.endpoint_key == "gitlab|status_v1"


def test_template_match() -> None:
    index = ContractIndex(contracts())
    assert index.match("GET", "/api/v1/deployments/abc123").contract_id == "deployments_v1"
    assert index.match("GET", "/api/v1/deployments/").contract_id is None
    assert index.match("GET", "/api/v1/deployments/a/b").contract_id is None


def test_literal_segment_beats_parameter_and_full_urls_match_by_path() -> None:
    me = ServiceContract(contract_id="me", endpoint_pattern="GET /users/me")
    anyone = ServiceContract(contract_id="user", endpoint_pattern="GET /users/{id}")
    nested = ServiceContract(contract_id="repo", endpoint_pattern="GET /users/{id}/repos/{r}")
    index = ContractIndex((anyone, me, nested))
    assert index.match("GET", "/users/me").contract_id == "me"
    assert index.match("GET", "/users/42").contract_id == "user"
    assert index.match("GET", "/users/me/repos/x").contract_id == "repo"
    event = request(0, url="https://h.example/api/v1/deployments/7?verbose=1#top")
    assert event.path == "/api/v1/deployments/7"


def test_unknown_endpoint_detected_and_raises_risk() -> None:
    known = decide_one({})
    unknown = decide_one({"url": "/api/v2/nothing"})
    assert unknown.contract_id is None and unknown.endpoint_key == "gitlab|_unknown"
    assert unknown.risk_factors.unknown_endpoint == 1.0
    assert ReasonCode.UNKNOWN_ENDPOINT in unknown.reason_codes
    assert unknown.risk_score > known.risk_score
    held = {c.invariant: c.held for c in unknown.invariants}
    assert held[Invariant.CONTRACT_ID_REQUIRED] is False


def test_method_disallowed_is_dropped_under_control() -> None:
    decision = decide_one({"method": "DELETE"})
    assert decision.contract_id == "status_v1"
    assert decision.risk_factors.method_disallowed == 1.0
    assert decision.decision is Decision.DROP
    assert {ReasonCode.METHOD_DISALLOWED, ReasonCode.CRITICAL_FACTOR} <= set(decision.reason_codes)
    assert decision.actions_taken == (Action.LOG, Action.ALERT, Action.BLOCK)


def test_contract_patterns_are_validated() -> None:
    with pytest.raises(ValidationError):
        ServiceContract(contract_id="x", endpoint_pattern="/no/method")
    with pytest.raises(ValidationError, match="unique"):
        traffic_policy(contracts=(*contracts(), contracts()[0]))


# Tiers


def test_observe_only_allows_only_logging() -> None:
    decision = decide_one({"method": "DELETE", "platform": "github"})
    assert decision.platform_tier is PlatformTier.OBSERVE_ONLY
    assert decision.decision is Decision.DROP
    assert decision.recommended_actions == (Action.LOG, Action.ALERT, Action.BLOCK)
    assert decision.actions_taken == (Action.LOG,)
    assert ReasonCode.TIER_LIMITED in decision.reason_codes


def test_unlisted_platform_defaults_to_observe_only() -> None:
    decision = decide_one({"method": "DELETE", "platform": "newcomer"})
    assert decision.platform_tier is PlatformTier.OBSERVE_ONLY
    assert decision.actions_taken == (Action.LOG,)


@pytest.mark.parametrize("tier", list(PlatformTier))
def test_actions_taken_never_exceed_the_tier(tier: PlatformTier) -> None:
    policy = traffic_policy(platform_tiers={"gitlab": tier})
    risk = RiskFactors(**{f: 1.0 for f in RiskFactors.model_fields})
    verdict = decide(risk, 1.0, tier, policy)
    assert set(verdict.taken) <= set(policy.tier_actions[tier])
    assert set(verdict.taken) == set(verdict.recommended) & set(policy.tier_actions[tier])
    if tier is PlatformTier.AUTONOMOUS:
        assert Action.FAIL_FAST in verdict.taken


def test_observe_only_tier_cannot_be_given_more_than_log() -> None:
    with pytest.raises(ValidationError, match="OBSERVE_ONLY"):
        traffic_policy(
            tier_actions={
                PlatformTier.OBSERVE_ONLY: (Action.LOG, Action.BLOCK),
                PlatformTier.CONTROL: (Action.LOG,),
                PlatformTier.AUTONOMOUS: (Action.LOG,),
            }
        )


# Risk and decisions


def test_low_risk_allows_with_reason() -> None:
    decision = decide_one({})
    assert decision.decision is Decision.ALLOW
    assert decision.reason_codes == (ReasonCode.WITHIN_POLICY,)
    assert decision.actions_taken == (Action.LOG,)


def test_thresholds_map_score_to_decision() -> None:
    thresholds = RiskThresholds()
    assert by_threshold(0.29, thresholds) is Decision.ALLOW
    assert by_threshold(0.45, thresholds) is Decision.THROTTLE
    assert by_threshold(0.6, thresholds) is Decision.QUARANTINE
    assert by_threshold(0.95, thresholds) is Decision.DROP
    with pytest.raises(ValidationError, match="rise"):
        RiskThresholds(throttle=0.7, quarantine=0.6)


def test_medium_risk_throttles() -> None:
    # Slow (latency factor 1) and failing: score between the throttle and quarantine marks.
    events = [request(i, status_code=503, latency_ms=250.0) for i in range(3)]
    decision = engine().run(events)[-1].decision
    assert 0.3 <= decision.risk_score < 0.6
    assert decision.decision is Decision.THROTTLE
    assert {ReasonCode.HIGH_LATENCY, ReasonCode.ERROR_RATE} <= set(decision.reason_codes)
    assert decision.actions_taken == (Action.LOG, Action.RATE_LIMIT)


def test_rate_limit_per_client_in_event_time() -> None:
    # deployments_v1 allows 60 requests per minute per client.
    traffic = engine()
    url = "/api/v1/deployments/d1"
    within = [request(i, url=url, timestamp=BASE_TIME + timedelta(seconds=i)) for i in range(60)]
    assert all(o.decision.decision is Decision.ALLOW for o in traffic.run(within))
    over = traffic.run([request(60, url=url, timestamp=BASE_TIME + timedelta(seconds=59.5))])
    assert over[0].decision.risk_factors.rate_limit_violation == 1.0
    assert over[0].decision.decision is Decision.THROTTLE
    other_client = traffic.run(
        [request(61, url=url, client_id="client-2", timestamp=BASE_TIME + timedelta(seconds=59.6))]
    )
    assert other_client[0].decision.risk_factors.rate_limit_violation == 0.0
    later = traffic.run([request(62, url=url, timestamp=BASE_TIME + timedelta(seconds=200))])
    assert later[0].decision.risk_factors.rate_limit_violation == 0.0


def test_retry_storm_quarantines() -> None:
    decision = decide_one({"retry_count": 5})
    assert decision.risk_factors.retry_storm == 1.0
    assert decision.decision is Decision.QUARANTINE


def test_error_rate_and_baseline_tracked() -> None:
    events = [request(i, status_code=500 if i % 4 == 0 else 200) for i in range(8)]
    decision = engine().run(events)[-1].decision
    assert decision.baseline.request_count == 8
    assert decision.baseline.error_rate == 0.25
    assert decision.risk_factors.error_rate == 0.25
    assert decision.baseline.latency_p95_ms == pytest.approx(50.0, rel=0.02)
    assert decision.baseline.requests_per_minute == 8.0
    # 2 errors of 8 against a 0.1 % budget: 250x overspent.
    assert decision.baseline.error_budget_remaining == pytest.approx(1 - 0.25 / 0.001)


def test_traffic_anomaly_and_latency_regression() -> None:
    traffic = engine()
    # 75 minutes at 2 per minute: the first hour is the latency baseline.
    steady = [request(i, timestamp=BASE_TIME + timedelta(seconds=30 * i)) for i in range(150)]
    calm = traffic.run(steady)[-1].decision.risk_factors
    assert calm.traffic_anomaly == 0.0 and calm.latency_regression == 0.0
    start = BASE_TIME + timedelta(seconds=30 * 150)
    burst = [
        request(1000 + i, latency_ms=200.0, timestamp=start + timedelta(milliseconds=100 * i))
        for i in range(50)
    ]
    last = traffic.run(burst)[-1].decision
    assert last.risk_factors.traffic_anomaly == 1.0
    assert last.risk_factors.latency_regression == 1.0
    assert {ReasonCode.TRAFFIC_ANOMALY, ReasonCode.LATENCY_REGRESSION} <= set(last.reason_codes)


# Circuit breaker


def test_breaker_opens_at_threshold_after_minimum_calls() -> None:
    policy = SMALL_BREAKER
    breaker = breakers.Breaker()
    for failed in (True, True, True):
        breaker, move = breakers.record(breaker, 0.0, failed, 0.5, policy)
        assert move is None  # below minimum_calls
    breaker, move = breakers.record(breaker, 1.0, False, 0.5, policy)
    assert move is not None and move.to_state is CircuitState.OPEN
    assert move.failure_rate == 0.75 and move.calls == 4
    assert not breakers.permits(breaker, policy)


def test_breaker_half_open_probes_close_or_reopen() -> None:
    policy = SMALL_BREAKER
    opened = breakers.Breaker(state=CircuitState.OPEN, since_s=100.0, transitions=1)
    same, moves = breakers.advance_time(opened, 159.0, policy)
    assert same is opened and moves == []
    half, moves = breakers.advance_time(opened, 160.0, policy)
    assert half.state is CircuitState.HALF_OPEN and moves[0].to_state is CircuitState.HALF_OPEN
    closing = half
    for _ in range(3):
        assert breakers.permits(closing, policy)
        closing, move = breakers.record(closing, 161.0, False, 0.5, policy)
    assert closing.state is CircuitState.CLOSED and move is not None
    reopening = half
    for failed in (True, True, False):
        reopening, move = breakers.record(reopening, 161.0, failed, 0.5, policy)
    assert reopening.state is CircuitState.OPEN and move is not None
    assert reopening.transitions == 3


def test_half_open_times_out_instead_of_sticking() -> None:
    policy = SMALL_BREAKER
    half = breakers.Breaker(state=CircuitState.HALF_OPEN, since_s=200.0, probes="0")
    still, moves = breakers.advance_time(half, 229.0, policy)
    assert still.state is CircuitState.HALF_OPEN and not moves
    reopened, moves = breakers.advance_time(half, 230.0, policy)
    assert reopened.state is CircuitState.OPEN
    assert "half-open timeout with 1 of 3 probes" in moves[0].reason


def test_breaker_in_the_pipeline_emits_each_transition_once() -> None:
    traffic = engine(breaker=SMALL_BREAKER)
    failing = [request(i, status_code=503) for i in range(6)]
    outputs = traffic.run(failing)
    transitions = [t for o in outputs for t in o.transitions]
    assert [t.to_state for t in transitions] == [CircuitState.OPEN]
    assert transitions[0].transition_id == "gitlab|status_v1|1"
    # While open: the circuit factor forces DROP; the requests are not counted as calls.
    assert outputs[-1].decision.circuit_state is CircuitState.OPEN
    assert outputs[-1].decision.decision is Decision.DROP
    assert ReasonCode.CIRCUIT_OPEN in outputs[-1].decision.reason_codes
    # 60 s later the next three requests are probes; success closes the circuit.
    later = BASE_TIME + timedelta(seconds=70)
    probes = [request(10 + i, timestamp=later + timedelta(seconds=i)) for i in range(3)]
    moves = [t.to_state for o in traffic.run(probes) for t in o.transitions]
    assert moves == [CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_breaker_state_tracked_per_endpoint() -> None:
    traffic = engine(breaker=SMALL_BREAKER)
    traffic.run([request(i, status_code=503) for i in range(4)])
    other = traffic.run([request(9, url="/api/v1/deployments/x")])[0].decision
    assert traffic.endpoints["gitlab|status_v1"].breaker.state is CircuitState.OPEN
    assert other.circuit_state is CircuitState.CLOSED


# Error-budget burn rate


def test_burn_rate_alert_fires_once_then_resolves() -> None:
    traffic = engine()
    healthy = [request(i, timestamp=BASE_TIME + timedelta(seconds=i)) for i in range(200)]
    assert not [a for o in traffic.run(healthy) for a in o.alerts]
    start = BASE_TIME + timedelta(seconds=200)
    errors = [
        request(1000 + i, status_code=500, timestamp=start + timedelta(seconds=i))
        for i in range(20)
    ]
    fired = [a for o in traffic.run(errors) for a in o.alerts]
    page = [a for a in fired if a.rule == "page_fast"]
    assert len(page) == 1 and page[0].state is AlertState.FIRING
    assert page[0].long_burn_rate >= 14.4 and page[0].short_burn_rate >= 14.4
    # Two hours of clean traffic later both windows are quiet: resolved, once.
    later = BASE_TIME + timedelta(hours=2)
    clean = [request(2000 + i, timestamp=later + timedelta(seconds=i)) for i in range(30)]
    resolved = [a for o in traffic.run(clean) for a in o.alerts if a.rule == "page_fast"]
    assert [a.state for a in resolved] == [AlertState.RESOLVED]
    assert resolved[0].alert_id == "gitlab|status_v1|page_fast|2"


def test_windows_answer_from_the_finest_covering_tier() -> None:
    windows = Windows.empty(30)
    t0 = BASE_TIME.timestamp()
    for i in range(120):
        windows = windows.add(t0 + 30 * i, i % 10 == 0, t0 + 30 * i)
    now = t0 + 30 * 119
    assert windows.window(now, 300)[0] in range(10, 13)
    assert windows.window(now, 3600) == (120, 12)
    assert windows.window(now, 3 * 86_400) == (120, 12)


# Sketch


def test_sketch_quantiles_within_relative_accuracy_and_mergeable() -> None:
    values = [1.0 + (i * 7919 % 1000) for i in range(2000)]
    a = Sketch.empty(0.02)
    b = Sketch.empty(0.02)
    for i, v in enumerate(values):
        a, b = (a.add(v), b) if i % 2 else (a, b.add(v))
    merged = a.merge(b)
    exact = sorted(values)
    for q in (0.5, 0.95, 0.99):
        true = exact[int(q * (len(exact) - 1))]
        got = merged.quantile(q)
        assert got is not None and abs(got - true) / true <= 0.021
    assert merged.count == 2000 and len(merged.bins) < 400
    with pytest.raises(ValueError):
        merged.merge(Sketch.empty(0.05))


def test_rolling_sketch_forgets_old_generations() -> None:
    sketch = RollingSketch.start(300, 0.0, 0.02)
    for i in range(100):
        sketch = sketch.add(float(i), 1000.0)
    sketch = sketch.add(301.0, 10.0)
    assert sketch.merged().count == 101
    sketch = sketch.add(1000.0, 10.0)
    assert sketch.merged().count == 1
    assert sketch.merged().quantile(0.95) == pytest.approx(10.0, rel=0.02)


# Policy


def test_policy_hash_is_canonical_with_enums_by_value() -> None:
    policy = traffic_policy()
    text = canonical_json(policy).decode()
    assert '"OBSERVE_ONLY"' in text and "PlatformTier." not in text
    assert text == orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS).decode()
    reordered = TrafficPolicy.model_validate(orjson.loads(text))
    assert policy_hash(reordered) == policy_hash(policy)
    assert policy_hash(traffic_policy(version="1.0.1")) != policy_hash(policy)


def test_signed_policy_verifies_and_applies() -> None:
    current = ActivePolicy.of(traffic_policy(), "settings")
    artifact = sign(traffic_policy(version="1.1.0"), KEY)
    applied, judgement = judge_record(current, 5, artifact.to_json_bytes(), TRUSTED)
    assert judgement.verdict is Verdict.APPLIED and not judgement.rejected
    assert applied.policy.version == "1.1.0" and applied.source == "topic@5"
    again, judgement = judge_record(applied, 6, artifact.to_json_bytes(), TRUSTED)
    assert judgement.verdict is Verdict.ALREADY_ACTIVE and again is applied


def test_tampered_policies_are_refused_and_the_old_one_stays() -> None:
    current = ActivePolicy.of(traffic_policy(), "settings")
    artifact = sign(traffic_policy(version="1.1.0"), KEY)
    raw = orjson.loads(artifact.to_json_bytes())
    raw["policy"]["risk_thresholds"]["drop"] = 0.99  # tampered, hash kept
    kept, judgement = judge_record(current, 1, orjson.dumps(raw), TRUSTED)
    assert judgement.verdict is Verdict.HASH_MISMATCH and kept is current
    rehashed = dict(raw, policy_hash=policy_hash(TrafficPolicy.model_validate(raw["policy"])))
    _, judgement = judge_record(current, 2, orjson.dumps(rehashed), TRUSTED)
    assert judgement.verdict is Verdict.BAD_SIGNATURE
    stranger = sign(traffic_policy(version="1.1.0"), Ed25519PrivateKey.generate())
    _, judgement = judge_record(current, 3, stranger.to_json_bytes(), TRUSTED)
    assert judgement.verdict is Verdict.UNKNOWN_KEY
    older = sign(traffic_policy(version="0.9.0"), KEY)
    _, judgement = judge_record(current, 4, older.to_json_bytes(), TRUSTED)
    assert judgement.verdict is Verdict.NOT_NEWER and "no downgrades" in judgement.message
    _, judgement = judge_record(current, 5, b"{not json", TRUSTED)
    assert judgement.verdict is Verdict.UNDECODABLE and judgement.rejected
    _, judgement = judge_record(current, 6, b'{"policy": {}}', TRUSTED)
    assert judgement.verdict is Verdict.INVALID
    bad_sig = dict(
        orjson.loads(artifact.to_json_bytes()), signature=base64.b64encode(b"x").decode()
    )
    _, judgement = judge_record(current, 7, orjson.dumps(bad_sig), TRUSTED)
    assert judgement.verdict is Verdict.BAD_SIGNATURE


def test_every_decision_records_policy_version_hash_and_the_phases_that_ran() -> None:
    """Issue "Seed parity" part 6: phases were a constant tuple that claimed the ledger
    append, which happens after a decision is published."""
    active = ActivePolicy.of(traffic_policy(), "test")
    paired, unpaired = (
        OfflineTraffic(active).run([request(0, url=url)])[0].decision
        for url in ("https://api.example.com/api/v1/status", "https://api.example.com/nope")
    )
    assert paired.policy_version == "1.0.0" and paired.policy_hash == active.hash
    assert [p.value[:7] for p in paired.phases] == [f"PHASE_{n}" for n in (1, 2, 3, 4, 5, 6)]
    assert all(check.held for check in paired.invariants)
    assert unpaired.contract_id is None
    assert Phase.PHASE_6_STABILITY_CONTROL not in unpaired.phases  # no breaker ran
    assert Phase.PHASE_8_LEDGER_APPEND not in paired.phases + unpaired.phases


def test_a_policy_whose_content_is_not_what_was_applied_takes_no_action() -> None:
    """POLICY_HASH_VERIFIED held by construction; now the content in force is hashed and
    compared with the hash it was applied under (here: a feed applying the wrong bytes)."""
    applied = traffic_policy()
    other = policy_hash(traffic_policy(version="9.9.9"))
    active = ActivePolicy.of(applied, "topic@3", signed_hash=other)
    decision = OfflineTraffic(active).run([request(0, method="DELETE")])[0].decision
    held = {c.invariant: c.held for c in decision.invariants}
    assert held[Invariant.POLICY_HASH_VERIFIED] is False
    assert decision.decision is Decision.DROP and decision.recommended_actions
    assert decision.actions_taken == () and ReasonCode.INVARIANT_VIOLATED in decision.reason_codes
    sound = OfflineTraffic(ActivePolicy.of(applied, "topic@3", signed_hash=policy_hash(applied)))
    assert sound.run([request(0, method="DELETE")])[0].decision.actions_taken


def test_actions_beyond_the_tier_are_caught_on_the_decision_and_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ACTIONS_WITHIN_TIER was checked on actions already filtered by tier, so it could not
    fail; it is now checked on what the verdict takes. A verdict that takes a BLOCK an
    OBSERVE_ONLY platform does not allow (a bug in the risk rules, simulated) is refused."""
    real = risk_rules.decide

    def over_reaching(*args: Any) -> risk_rules.Verdict:
        verdict = real(*args)
        return risk_rules.Verdict(verdict.decision, verdict.reasons, verdict.recommended,
                                  verdict.recommended)  # fmt: skip

    monkeypatch.setattr(risk_rules, "decide", over_reaching)
    decision = decide_one({"method": "DELETE", "platform": "github"})
    held = {c.invariant: c.held for c in decision.invariants}
    assert held[Invariant.ACTIONS_WITHIN_TIER] is False
    assert decision.actions_taken == () and ReasonCode.INVARIANT_VIOLATED in decision.reason_codes


def test_request_paired_under_an_older_policy_is_recorded() -> None:
    old = ActivePolicy.of(traffic_policy(), "old")
    new = ActivePolicy.of(traffic_policy(version="2.0.0"), "new")
    position = Position(partition=0, offset=0)
    routed = route(request(0), position, old)
    outcome = process_request(routed, position, None, None, None, new)
    assert outcome.outputs is not None
    held = {c.invariant: c.held for c in outcome.outputs.decision.invariants}
    assert held[Invariant.PAIRED_UNDER_ACTIVE_POLICY] is False
    assert outcome.outputs.decision.policy_version == "2.0.0"


# Determinism and idempotency


def mixed_events() -> list[RequestEvent]:
    out = []
    for i in range(300):
        out.append(
            request(
                i,
                url=["/api/v1/status", "/api/v1/deployments/x", "/nowhere"][i % 3],
                status_code=503 if i % 7 == 0 else 200,
                latency_ms=float(20 + (i * 37) % 400),
                platform=["gitlab", "github"][i % 2],
                client_id=f"client-{i % 4}",
                retry_count=i % 6,
                timestamp=BASE_TIME + timedelta(seconds=i * 3),
            )
        )
    return out


def test_same_events_same_policy_byte_identical_decisions() -> None:
    events = mixed_events()
    first = [o.decision.to_json_bytes() for o in engine().run(events)]
    second = [o.decision.to_json_bytes() for o in engine().run(events)]
    assert first == second and len(first) == 300
    assert len({d for d in first}) == 300


def test_redelivery_changes_nothing_and_leaves_resending_to_the_outbox() -> None:
    active = ActivePolicy.of(traffic_policy(breaker=SMALL_BREAKER), "test")
    traffic = OfflineTraffic(active)
    events = [request(i, status_code=503) for i in range(5)]
    traffic.run(events)
    state = traffic.endpoints["gitlab|status_v1"]
    for offset in (4, 2):  # the newest record, and one before it
        position = Position(partition=0, offset=offset)
        again = traffic.decide(route(events[offset], position, active), position)
        assert again.replayed and again.outputs is None and again.endpoint is None
        assert traffic.outbox[position].decision.event_id == events[offset].event_id
    assert traffic.endpoints["gitlab|status_v1"] == state
    elsewhere = Position(partition=0, offset=99)
    duplicate = traffic.decide(route(events[1], elsewhere, active), elsewhere)
    assert duplicate.duplicate and traffic.duplicates == 1
    assert traffic.endpoints["gitlab|status_v1"].requests == 5
