"""The AI cost reference's knobs in Governor's terms (issue 19 part 2): max_collapse_attempts
per signal, adaptive_backoff_threshold_ms, emergency_brake_enabled, the insight cache's
reuse_count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agents.fusion.rules.offline import OfflineFusion
from agents.fusion.settings import FusionSettings, OverlayBreakerSettings
from schemas.energy import Outcome, Reason, RoutingMode
from schemas.fusion_result import RunResult
from schemas.overlay import BreakerState
from tests.factories import BASE_TIME, energy_budget, fusion_request, fusion_result


def governor(**overrides: Any) -> OfflineFusion:
    return OfflineFusion(FusionSettings(**overrides))


def test_three_runs_per_signal_are_admitted_and_the_fourth_is_rejected() -> None:
    fusion = governor()
    fusion.budget(energy_budget(1_000_000.0))
    decided = [fusion.request(fusion_request(n, signal_id="sig-1"))[0] for n in range(4)]
    assert [(d.outcome, d.signal_attempt) for d in decided] == [
        (Outcome.APPROVED, 1), (Outcome.APPROVED, 2), (Outcome.APPROVED, 3),
        (Outcome.REJECTED, 4),
    ]  # fmt: skip
    assert decided[3].reasons == (Reason.COLLAPSE_ATTEMPTS_EXHAUSTED,)
    assert decided[3].final_units == 0.0
    # another signal, and a run with none, are not limited by it
    [other] = fusion.request(fusion_request(10, signal_id="sig-2"))
    [plain] = fusion.request(fusion_request(11))
    assert (other.outcome, other.signal_attempt) == (Outcome.APPROVED, 1)
    assert (plain.outcome, plain.signal_attempt) == (Outcome.APPROVED, None)
    # the window is event time from the signal's first run: a day later it starts again
    later = BASE_TIME + timedelta(days=1, seconds=1)
    *expired, again = fusion.request(fusion_request(20, signal_id="sig-1", timestamp=later))
    assert {e.outcome for e in expired} == {Outcome.EXPIRED}  # the day-old reservations
    assert (again.outcome, again.signal_attempt) == (Outcome.APPROVED, 1)


def test_a_rejected_attempt_does_not_count_and_the_limit_is_configuration() -> None:
    limits = {"max_collapse_attempts": 2, "approval_threshold_units": 150.0}
    fusion = governor(limits=limits)
    big = fusion.request(fusion_request(0, signal_id="s", estimated_units=1_000.0))
    assert big[0].outcome is Outcome.REJECTED and big[0].requires_manual_approval
    decided = [fusion.request(fusion_request(n, signal_id="s"))[0].outcome for n in (1, 2, 3)]
    assert decided == [Outcome.APPROVED, Outcome.APPROVED, Outcome.REJECTED]


def test_slow_runs_advise_a_doubling_backoff_until_a_fast_one() -> None:
    fusion = governor(adaptive_backoff={"threshold_ms": 200, "max_ms": 700})
    advice = []
    for n, latency in enumerate([150, 250, 300, 900, 900, 120]):
        fusion.request(fusion_request(n))
        fusion.result(fusion_result(n, latency_ms=latency))
        [next_admission] = fusion.request(fusion_request(100 + n))
        advice.append(next_admission.backoff_ms)
        assert (Reason.ADAPTIVE_BACKOFF in next_admission.reasons) is (latency > 200)
    assert advice == [None, 200.0, 400.0, 700.0, 700.0, None]
    off = governor(adaptive_backoff={"enabled": False})
    off.result(fusion_result(0, latency_ms=5_000))
    assert off.request(fusion_request(1))[0].backoff_ms is None


def test_cache_hits_count_their_reuses() -> None:
    fusion = governor()
    digest = "cd" * 32
    fusion.result(fusion_result(0, inputs_hash=digest, actual_units=40.0))
    hits = [fusion.request(fusion_request(n, inputs_hash=digest))[0] for n in (1, 2, 3)]
    assert [(h.outcome, h.reuse_count) for h in hits] == [(Outcome.CACHE_HIT, n) for n in (1, 2, 3)]
    [fresh] = fusion.request(fusion_request(4))
    assert fresh.reuse_count is None


def test_with_the_emergency_brake_off_failures_never_open_the_breaker() -> None:
    for enabled, wanted in ((True, RoutingMode.BASELINE_ONLY), (False, RoutingMode.OVERLAY)):
        fusion = governor(breaker=OverlayBreakerSettings(emergency_brake_enabled=enabled))
        for n in range(8):
            fusion.result(fusion_result(n, result=RunResult.FAILURE))
        [decision] = fusion.request(fusion_request(20))
        assert decision.routing is wanted, enabled
        opened = [t for o in fusion.scope_outputs for t in o.breaker_transitions]
        assert [t.to_state for t in opened] == ([BreakerState.OPEN] if enabled else [])
