"""Settings of carbon budgets (``carbon_budgets:``), load balancing (``load:``) and
optimization (``optimization:``): the energy optimization reference's thresholds as
defaults."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from app.settings_base import Section, WithOutbox


class CarbonBudgetSettings(WithOutbox):
    """Budget periods' timezone and the default thresholds of a budget that names none."""

    timezone: str = "UTC"
    warning_threshold_pct: float = Field(default=80.0, gt=0, le=100)
    critical_threshold_pct: float = Field(default=95.0, gt=0, le=100)
    dedup_window_s: float = Field(default=86_400.0, gt=0)
    dedup_max_events_per_partition: int = Field(default=1_000_000, ge=1_000)
    max_budgets_per_partition: int = Field(default=10_000, ge=1)
    """Facilities with a carbon budget per partition; a budget for one more is
    dead-lettered (facilities with readings only are bounded by the carbon pipeline's)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r} (an IANA name, e.g. Europe/Berlin)"
            ) from exc
        return value

    @model_validator(mode="after")
    def _ordered(self) -> CarbonBudgetSettings:
        if self.warning_threshold_pct >= self.critical_threshold_pct:
            raise ValueError("warning_threshold_pct must be below critical_threshold_pct")
        return self


class LoadSettings(WithOutbox):
    """Zone utilization targets (percent of capacity) and the decision damping."""

    target_utilization_min: float = Field(default=60.0, gt=0, lt=100)
    target_utilization_max: float = Field(default=80.0, gt=0, le=100)
    scale_up_threshold: float = Field(default=85.0, gt=0)
    scale_down_threshold: float = Field(default=50.0, ge=0)
    cooldown_s: float = Field(default=300.0, ge=0)
    max_future_skew_s: float = Field(default=300.0, ge=0)
    """A load metric may be stamped at most this long after its Kafka record."""
    """Event time a zone waits after a decision before the next automatic one."""
    stale_after_s: float = Field(default=900.0, gt=0)
    """A zone whose newest metric is older than this (behind the facility's newest) is left
    out of evaluations."""
    auto_decisions: bool = True
    """Decide automatically on every load metric; POST /balancing/auto decides on demand."""
    max_pending_per_facility: int = Field(default=100, ge=1)
    recent_decisions_per_facility: int = Field(default=100, ge=1)
    max_facilities_per_partition: int = Field(default=10_000, ge=1)
    """Facilities with zone loads per partition; a metric of one more is dead-lettered."""

    @model_validator(mode="after")
    def _ordered(self) -> LoadSettings:
        if not (
            self.scale_down_threshold
            < self.target_utilization_min
            < self.target_utilization_max
            < self.scale_up_threshold
        ):
            raise ValueError(
                "load thresholds must rise: scale_down < target_min < target_max < scale_up"
            )
        return self

    @property
    def target_midpoint(self) -> float:
        """Where a decision aims a zone's utilization (percent)."""
        return (self.target_utilization_min + self.target_utilization_max) / 2


class OptimizationSettings(Section):
    """Assumptions behind the recommendations' savings estimates (documented in README)."""

    flexible_load_share: float = Field(default=0.2, ge=0, le=1)
    """Share of consumption in the most carbon-intensive hours that could move."""
    shifted_hours: int = Field(default=4, ge=1, le=12)
    """How many of the dirtiest and cleanest hours of the day the shift compares."""
    source_mix_shift_share: float = Field(default=0.1, ge=0, le=1)
    """Share of the highest-factor source that a source-mix change would replace."""
    peak_loss_ratio: float = Field(default=0.05, ge=0, le=1)
    """Energy lost (cooling, conversion) per kWh served above the target band."""
