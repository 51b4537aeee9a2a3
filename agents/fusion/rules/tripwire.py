"""The budget tripwire: consecutive token-delta breaches switch a downgrade on.

A breach is a token delta above the threshold; ``consecutive_limit`` breaches in a row
activate the downgrade; a non-breach resets the count. The downgrade stays until an
authenticated reset, or, with auto-recovery (off by default), until enough clean runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from agents.fusion.settings import TripwireSettings
from schemas.overlay import TripwireKind


class Tripwire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    consecutive_breaches: int = 0
    downgrade_active: bool = False
    clean_runs: int = 0
    events: int = 0


@dataclass(frozen=True, slots=True)
class Check:
    """One run checked, as the reference's ``check_budget_breach`` reports it."""

    is_breach: bool
    consecutive_breaches: int
    downgrade_triggered: bool
    downgrade_active: bool
    event: TripwireKind | None


def check(
    tripwire: Tripwire, token_delta_pct: float, config: TripwireSettings
) -> tuple[Tripwire, Check]:
    """Count one run's token delta."""
    breach = token_delta_pct > config.breach_threshold_pct
    if breach:
        count = tripwire.consecutive_breaches + 1
        triggered = not tripwire.downgrade_active and count >= config.consecutive_limit
        updated = tripwire.model_copy(
            update={
                "consecutive_breaches": count,
                "clean_runs": 0,
                "downgrade_active": tripwire.downgrade_active or triggered,
                "events": tripwire.events + int(triggered),
            }
        )
        event = TripwireKind.ACTIVATED if triggered else None
        return updated, Check(True, count, triggered, updated.downgrade_active, event)
    clean = tripwire.clean_runs + 1 if tripwire.downgrade_active else 0
    recovered = (
        tripwire.downgrade_active
        and config.auto_recovery
        and clean >= config.auto_recovery_clean_runs
    )
    updated = tripwire.model_copy(
        update={
            "consecutive_breaches": 0,
            "clean_runs": 0 if recovered else clean,
            "downgrade_active": tripwire.downgrade_active and not recovered,
            "events": tripwire.events + int(recovered),
        }
    )
    event = TripwireKind.RECOVERED if recovered else None
    return updated, Check(False, 0, False, updated.downgrade_active, event)


def reset(tripwire: Tripwire) -> tuple[Tripwire, bool]:
    """End the downgrade; returns whether one was active (a reset is recorded either way)."""
    was_active = tripwire.downgrade_active
    return Tripwire(events=tripwire.events + 1), was_active
