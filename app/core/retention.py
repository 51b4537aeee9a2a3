"""Which UTC days hold state for one key, so queries and retention need no table scan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict


class DayIndex(BaseModel):
    """The UTC days with per-day state for one entity (a facility, a site), oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_id: str
    days: tuple[date, ...] = ()

    def with_days(
        self, new_days: Sequence[date], retention_days: int
    ) -> tuple[DayIndex, list[date]]:
        """Add days; return the updated index and the days that fell out of retention.

        Retention counts back from the newest day with data (event time, not wall clock), so
        a replay expires the same days.
        """
        merged = sorted(set(self.days).union(new_days))
        if not merged:
            return self, []
        horizon = merged[-1].toordinal() - retention_days
        kept = tuple(d for d in merged if d.toordinal() > horizon)
        expired = [d for d in merged if d.toordinal() <= horizon]
        if kept == self.days:
            return self, expired
        return self.model_copy(update={"days": kept}), expired
