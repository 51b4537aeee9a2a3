"""The overlay circuit breaker, in event time (the fusion optimizer reference).

``failure_threshold`` consecutive failures (failure or timeout) open it: runs are routed
baseline-only. After ``recovery_timeout_s`` the next run finds it HALF_OPEN and is a probe:
a success closes it, a failure re-opens it. A HALF_OPEN breaker that sees no probe within
``max_wait_half_open_s`` re-opens, so it cannot stay half-open forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from agents.fusion.settings import OverlayBreakerSettings
from schemas.overlay import BreakerState


class OverlayBreaker(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    since_s: float | None = None
    transitions: int = 0


@dataclass(frozen=True, slots=True)
class BreakerChange:
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    consecutive_failures: int
    number: int


def _move(
    breaker: OverlayBreaker, to: BreakerState, at_s: float, reason: str
) -> tuple[OverlayBreaker, BreakerChange]:
    number = breaker.transitions + 1
    failures = breaker.consecutive_failures
    moved = breaker.model_copy(update={"state": to, "since_s": at_s, "transitions": number})
    return moved, BreakerChange(breaker.state, to, reason, failures, number)


def advance_time(
    breaker: OverlayBreaker, now_s: float, config: OverlayBreakerSettings
) -> tuple[OverlayBreaker, list[BreakerChange]]:
    """Transitions that event time alone causes."""
    since = breaker.since_s
    if since is None:
        return breaker, []
    if breaker.state is BreakerState.OPEN and now_s >= since + config.recovery_timeout_s:
        moved, change = _move(breaker, BreakerState.HALF_OPEN, now_s, "recovery timeout elapsed")
        return moved, [change]
    if breaker.state is BreakerState.HALF_OPEN and now_s >= since + config.max_wait_half_open_s:
        moved, change = _move(
            breaker, BreakerState.OPEN, now_s, "no probe within the half-open wait"
        )
        return moved, [change]
    return breaker, []


def record(
    breaker: OverlayBreaker, now_s: float, failed: bool, config: OverlayBreakerSettings
) -> tuple[OverlayBreaker, BreakerChange | None]:
    """Count one run's outcome."""
    failures = breaker.consecutive_failures + 1 if failed else 0
    counted = breaker.model_copy(update={"consecutive_failures": failures})
    if breaker.state is BreakerState.HALF_OPEN:
        if failed:
            return _move(counted, BreakerState.OPEN, now_s, "probe failed")
        return _move(counted, BreakerState.CLOSED, now_s, "probe succeeded")
    if (
        breaker.state is BreakerState.CLOSED
        and failures >= config.failure_threshold
        and config.emergency_brake_enabled
    ):
        return _move(counted, BreakerState.OPEN, now_s, f"{failures} consecutive failures")
    return counted, None
