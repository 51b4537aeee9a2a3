"""The AI cost reference's per-signal and latency knobs, in event time.

- ``max_collapse_attempts`` (3, "hard limit per signal"): a run may name the signal it is an
  attempt at (``signal_id``). At most that many runs of one signal are admitted within
  ``signal_window_s`` of its first; the next is rejected ``collapse_attempts_exhausted``.
  Rejected attempts do not count (they never ran).
- ``adaptive_backoff_threshold_ms`` (200, "latency trigger"): each settled run slower than
  the threshold adds one to the tenant's slow runs in a row, a faster one resets it; while
  it is above zero every admission carries ``backoff_ms`` = threshold x 2^(slow runs - 1),
  at most ``max_ms``, and the reason ``adaptive_backoff``. It is advice, not a refusal.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agents.fusion.settings import AdaptiveBackoff, BudgetLimits


class SignalAttempts(BaseModel):
    """Runs admitted for one signal, and the event time of the first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int
    first_s: float


def attempts_so_far(signals: dict[str, SignalAttempts], signal_id: str | None) -> int:
    """Runs of ``signal_id`` admitted within the window (0 for a run with no signal)."""
    if signal_id is None:
        return 0
    found = signals.get(signal_id)
    return found.attempts if found is not None else 0


def exhausted(
    signals: dict[str, SignalAttempts], signal_id: str | None, limits: BudgetLimits
) -> bool:
    """Whether one more run of ``signal_id`` would pass the reference's hard limit."""
    used = attempts_so_far(signals, signal_id)
    return signal_id is not None and used >= limits.max_collapse_attempts


def with_attempt(
    signals: dict[str, SignalAttempts], signal_id: str, now_s: float, limits: BudgetLimits
) -> dict[str, SignalAttempts]:
    """``signals`` with one more admitted run of ``signal_id``; the oldest signal is
    forgotten past ``max_signals_per_tenant``."""
    found = signals.get(signal_id)
    counted = SignalAttempts(
        attempts=(found.attempts if found else 0) + 1,
        first_s=found.first_s if found else now_s,
    )
    updated = {**signals, signal_id: counted}
    if len(updated) > limits.max_signals_per_tenant:
        oldest = min(updated, key=lambda k: (updated[k].first_s, k))
        del updated[oldest]
    return updated


def unexpired(
    signals: dict[str, SignalAttempts], now_s: float, limits: BudgetLimits
) -> dict[str, SignalAttempts] | None:
    """``signals`` without those whose window ended by ``now_s``; ``None`` if none did."""
    window = limits.signal_window_s
    if not any(now_s - s.first_s >= window for s in signals.values()):
        return None
    return {k: s for k, s in signals.items() if now_s - s.first_s < window}


def backoff_ms(slow_runs: int, config: AdaptiveBackoff) -> float | None:
    """The advised wait after ``slow_runs`` slow runs in a row (``None``: none)."""
    if not config.enabled or slow_runs <= 0:
        return None
    return min(config.threshold_ms * 2.0 ** min(slow_runs - 1, 62), config.max_ms)


def slow_runs_after(slow_runs: int, latency_ms: float, config: AdaptiveBackoff) -> int:
    """Slow runs in a row once a run that took ``latency_ms`` has settled."""
    return slow_runs + 1 if latency_ms > config.threshold_ms else 0
