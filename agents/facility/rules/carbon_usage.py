"""Meter-readings records counted into their facility's carbon budget period: several
records of one facility and partition in one update, with the same outcome as one at a
time."""

from __future__ import annotations

from collections.abc import Sequence

from agents.facility.rules import carbon_budget
from agents.facility.rules.carbon_state import (
    READINGS,
    BudgetOutcome,
    CountedEmission,
    FacilityCarbon,
)
from agents.facility.settings import CarbonBudgetSettings
from app.core.dedup import Position


def apply_records(
    state: FacilityCarbon | None,
    facility_id: str,
    records: Sequence[tuple[Position, Sequence[CountedEmission]]],
    config: CarbonBudgetSettings,
) -> list[tuple[Position, BudgetOutcome]]:
    """Count several meter-readings records of one facility and partition (offset order)
    in one update: each record the state already holds is a replay (its alerts are re-sent
    from its own outbox entry), the rest are counted together as :func:`apply_emissions`
    counts one record, stamped with the last one's position. The state's watermark only
    grows, so the replays are the first records; records without emissions count nothing.
    """
    decided: list[tuple[Position, BudgetOutcome]] = []
    fresh: list[tuple[Position, Sequence[CountedEmission]]] = []
    for position, emissions in records:
        if not emissions:
            continue
        if not fresh and state is not None and state.has_applied(READINGS, position):
            decided.append((position, BudgetOutcome(replayed=True)))
        else:
            fresh.append((position, emissions))
    if fresh:
        last = fresh[-1][0]
        counted = [e for _, emissions in fresh for e in emissions]
        outcome = carbon_budget.apply_emissions(state, facility_id, counted, last, config)
        outcome.records = len(fresh)
        decided.append((last, outcome))
    return decided
