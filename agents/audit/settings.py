"""Settings of the budget audit (``audit:``): the reference's ceiling formula and its
inputs per site, the compliance period, and the pipeline's windows and bounds."""

from __future__ import annotations

from pydantic import Field

from app.settings_base import Section, WithOutbox
from schemas.budget_audit import CompliancePeriod

DAYS_PER_YEAR = 365
"""The reference's year for projections and ceilings (not 365.25)."""


class SiteSettings(Section):
    """One controlled site as the budget audit sees it."""

    capacity_kw: float = Field(gt=0, allow_inf_nan=False)


class AuditSettings(WithOutbox):
    """Control ticks → slot log, rollups and compliance against the annual ceiling.

    ceiling (kWh/year) = capacity_kw x peak_sun_hours x 365 x max_energy_reduction_pct / 100,
    the reference's formula and defaults. A site without a capacity (none under ``sites``
    and no ``default_capacity_kw``) is audited but has no ceiling, so no compliance verdict.
    """

    peak_sun_hours: float = Field(default=6.0, gt=0, le=24)
    max_energy_reduction_pct: float = Field(default=5.0, gt=0, le=100)
    sites: dict[str, SiteSettings] = Field(default_factory=dict)
    default_capacity_kw: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    compliance_period: CompliancePeriod = CompliancePeriod.WEEK
    max_future_skew_s: float = Field(default=300.0, ge=0)
    dedup_window_s: float = Field(default=7 * 86_400.0, gt=0)
    dedup_max_events_per_partition: int = Field(default=1_000_000, ge=1_000)
    rollup_retention_days: int = Field(default=400, ge=1)
    max_sites_per_partition: int = Field(default=10_000, ge=1)
    """Sites with rollups per partition; a tick of one more is dead-lettered."""

    def capacity_kw(self, site_id: str) -> float | None:
        """The site's configured capacity, else the default, else ``None``."""
        site = self.sites.get(site_id)
        return site.capacity_kw if site is not None else self.default_capacity_kw

    def ceiling_kwh(self, site_id: str) -> float | None:
        """The site's annual energy-reduction ceiling, ``None`` without a capacity."""
        capacity = self.capacity_kw(site_id)
        if capacity is None:
            return None
        annual_potential_kwh = capacity * self.peak_sun_hours * DAYS_PER_YEAR
        return annual_potential_kwh * self.max_energy_reduction_pct / 100.0
