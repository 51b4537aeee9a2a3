"""Per-endpoint circuit breaker in event time: CLOSED → OPEN → HALF_OPEN → CLOSED/OPEN.

CLOSED counts outcomes in a count-based window and opens when, with at least
``minimum_calls`` seen, the failure rate reaches the contract's threshold. OPEN lets no call
through; after ``wait_open_s`` of event time the next request finds it HALF_OPEN, which
admits ``permitted_half_open_calls`` probes: their failure rate closes or re-opens it. If
the probes do not arrive within ``max_wait_half_open_s``, it re-opens rather than waiting
forever (resilience4j's reported stuck-HALF_OPEN bug).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from schemas.traffic import CircuitState
from schemas.traffic_policy import BreakerPolicy


class Breaker(BaseModel):
    """Breaker state. ``window`` and ``probes`` are outcome strings, ``1`` = failure."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: CircuitState = CircuitState.CLOSED
    since_s: float | None = None
    window: str = ""
    probes: str = ""
    transitions: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, with what caused it."""

    from_state: CircuitState
    to_state: CircuitState
    reason: str
    failure_rate: float | None
    calls: int
    number: int


def _rate(outcomes: str) -> float:
    return outcomes.count("1") / len(outcomes) if outcomes else 0.0


def _move(
    breaker: Breaker, to: CircuitState, at_s: float, reason: str, outcomes: str
) -> tuple[Breaker, Transition]:
    number = breaker.transitions + 1
    moved = Breaker(state=to, since_s=at_s, window="", probes="", transitions=number)
    rate = _rate(outcomes) if outcomes else None
    return moved, Transition(breaker.state, to, reason, rate, len(outcomes), number)


def advance_time(
    breaker: Breaker, now_s: float, policy: BreakerPolicy
) -> tuple[Breaker, list[Transition]]:
    """Apply the transitions event time alone causes (OPEN wait over, HALF_OPEN timeout)."""
    moves: list[Transition] = []
    since = breaker.since_s
    if (
        breaker.state is CircuitState.OPEN
        and since is not None
        and now_s >= since + policy.wait_open_s
    ):
        # HALF_OPEN starts with the first request after the wait, as resilience4j's
        # does without automatic transition: sparse traffic still gets its probes.
        breaker, move = _move(breaker, CircuitState.HALF_OPEN, now_s, "open wait elapsed", "")
        moves.append(move)
    elif (
        breaker.state is CircuitState.HALF_OPEN
        and since is not None
        and now_s >= since + policy.max_wait_half_open_s
    ):
        probes = breaker.probes
        reason = (
            f"half-open timeout with {len(probes)} of {policy.permitted_half_open_calls} probes"
        )
        breaker, move = _move(breaker, CircuitState.OPEN, now_s, reason, probes)
        moves.append(move)
    return breaker, moves


def permits(breaker: Breaker, policy: BreakerPolicy) -> bool:
    """Whether a call at this moment goes through (as a normal call or a probe)."""
    if breaker.state is CircuitState.CLOSED:
        return True
    if breaker.state is CircuitState.HALF_OPEN:
        return len(breaker.probes) < policy.permitted_half_open_calls
    return False


def record(
    breaker: Breaker, now_s: float, failed: bool, threshold: float, policy: BreakerPolicy
) -> tuple[Breaker, Transition | None]:
    """Count one permitted call's outcome; a call the breaker did not permit is not counted."""
    outcome = "1" if failed else "0"
    if breaker.state is CircuitState.CLOSED:
        window = (breaker.window + outcome)[-policy.sliding_window_calls :]
        if len(window) >= policy.minimum_calls and _rate(window) >= threshold:
            reason = f"failure rate {_rate(window):.0%} >= {threshold:.0%}"
            return _move(breaker, CircuitState.OPEN, now_s, reason, window)
        return breaker.model_copy(update={"window": window}), None
    if breaker.state is CircuitState.HALF_OPEN:
        probes = breaker.probes + outcome
        if len(probes) < policy.permitted_half_open_calls:
            return breaker.model_copy(update={"probes": probes}), None
        rate = _rate(probes)
        if rate >= threshold:
            return _move(
                breaker, CircuitState.OPEN, now_s, f"probe failure rate {rate:.0%}", probes
            )
        return _move(breaker, CircuitState.CLOSED, now_s, f"probe failure rate {rate:.0%}", probes)
    return breaker, None


def state_score(state: CircuitState) -> float:
    """The circuit-state risk factor."""
    return {CircuitState.CLOSED: 0.0, CircuitState.HALF_OPEN: 0.5, CircuitState.OPEN: 1.0}[state]
