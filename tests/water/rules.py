"""The water budget rules: pure, ``(state, reading, config) -> (new state, outputs)``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from app.core.dedup import Position
from app.core.watermark import Watermarked
from tests.water.schemas import WaterBudgetAlert, WaterReading


class WaterSettings(BaseModel):
    """The pipeline's section of the settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    daily_limit_litres: float = Field(default=1_000.0, gt=0)
    max_facilities_per_partition: int = Field(default=10_000, ge=1)


class WaterDay(Watermarked):
    """A facility's litres on its newest UTC day, and the alert that day raised (kept so a
    re-delivered record re-sends the same bytes)."""

    facility_id: str
    day: date
    litres: float = 0.0
    alert: WaterBudgetAlert | None = None
    alert_offset: int | None = None


@dataclass(frozen=True)
class WaterOutcome:
    """What one reading did: the new state (``None``: unchanged) and the alert to send."""

    state: WaterDay | None
    alert: WaterBudgetAlert | None = None


def apply(
    state: WaterDay | None, reading: WaterReading, position: Position, config: WaterSettings
) -> WaterOutcome:
    """Add the reading to its day; the first reading over the limit raises the day's alert.
    A reading of an older day than the newest is left out (this test pipeline keeps one)."""
    day = reading.timestamp.date()
    if state is not None and state.has_applied(position):
        resend = state.alert if state.alert_offset == position.offset else None
        return WaterOutcome(state=None, alert=resend)
    if state is not None and day < state.day:
        return WaterOutcome(state=state.stamped(position))
    current = state if state is not None and state.day == day else None
    current = current or WaterDay(facility_id=reading.facility_id, day=day)
    litres = current.litres + reading.litres
    update: dict[str, object] = {"litres": litres}
    alert = None
    if current.alert is None and litres > config.daily_limit_litres:
        alert = WaterBudgetAlert(
            alert_id=f"{reading.facility_id}|{day.isoformat()}", facility_id=reading.facility_id,
            day=day, used_litres=litres, limit_litres=config.daily_limit_litres,
            event_id=reading.event_id, event_time=reading.timestamp,
        )  # fmt: skip
        update |= {"alert": alert, "alert_offset": position.offset}
    return WaterOutcome(state=current.model_copy(update=update).stamped(position), alert=alert)
