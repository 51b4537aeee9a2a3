"""Settings of carbon accounting (``carbon:``): emission factor sets (the reference's and
IPCC AR5 life-cycle built in), the one in force, and the pipeline's windows and bounds."""

from __future__ import annotations

from pydantic import Field, model_validator

from app.settings_base import Section
from schemas.common import EnergySource


class FactorSet(Section):
    """A named, versioned table of emission factors in kg CO2e per kWh, one per energy source."""

    version: str = Field(min_length=1)
    description: str = ""
    factors_kg_co2e_per_kwh: dict[EnergySource, float]

    @model_validator(mode="after")
    def _complete_and_non_negative(self) -> FactorSet:
        missing = sorted(set(EnergySource) - set(self.factors_kg_co2e_per_kwh))
        if missing:
            raise ValueError(f"factor set lacks sources: {', '.join(missing)}")
        negative = [s for s, f in self.factors_kg_co2e_per_kwh.items() if f < 0]
        if negative:
            raise ValueError(f"negative emission factor for: {', '.join(negative)}")
        return self


def builtin_factor_sets() -> dict[str, FactorSet]:
    """The two factor sets Governor ships; a YAML file may add more or override these."""
    s = EnergySource
    return {
        "reference": FactorSet(
            version="2024.1",
            description="Energy optimization service reference factors (kg CO2e/kWh).",
            factors_kg_co2e_per_kwh={
                s.COAL: 0.95,
                s.NATURAL_GAS: 0.45,
                s.GRID: 0.42,
                s.SOLAR: 0.041,
                s.HYDRO: 0.024,
                s.NUCLEAR: 0.012,
                s.WIND: 0.011,
                s.BATTERY: 0.0,
            },
        ),
        "ipcc-ar5-lifecycle": FactorSet(
            version="AR5-WGIII-2014-A.III.2",
            description=(
                "IPCC AR5 lifecycle medians: coal 820, gas combined cycle 490, utility solar PV"
                " 48, onshore wind 11, nuclear 12, hydro 24 g/kWh. AR5 has no grid average:"
                " grid uses the reference grid-average factor. Battery is 0: storage"
                " emissions are counted where the charging energy was generated."
            ),
            factors_kg_co2e_per_kwh={
                s.COAL: 0.820,
                s.NATURAL_GAS: 0.490,
                s.GRID: 0.42,
                s.SOLAR: 0.048,
                s.HYDRO: 0.024,
                s.NUCLEAR: 0.012,
                s.WIND: 0.011,
                s.BATTERY: 0.0,
            },
        ),
    }


class CarbonSettings(Section):
    """Meter readings → emissions: factor sets and the plausibility limits of a reading."""

    factor_set: str = "reference"
    factor_sets: dict[str, FactorSet] = Field(default_factory=builtin_factor_sets)
    max_future_skew_s: float = Field(default=300.0, ge=0)
    dedup_window_s: float = Field(default=86_400.0, gt=0)
    dedup_max_events_per_partition: int = Field(default=1_000_000, ge=1_000)
    recent_readings_per_facility: int = Field(default=50, ge=1, le=10_000)
    totals_retention_days: int = Field(default=400, ge=1)
    max_facilities_per_partition: int = Field(default=10_000, ge=1)
    """Facilities with readings per partition; a reading of one more is dead-lettered
    (``entity_limit``). Producers name facilities, so state needs a bound
    (:mod:`app.runtime.entity_bound`)."""
    residual_mix_kg_co2e_per_kwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    """Market-based factor of grid electricity no instrument covers; unset = the location
    factor (the GHG Protocol's fallback when no residual mix is published)."""

    @model_validator(mode="after")
    def _selected_set_exists(self) -> CarbonSettings:
        if self.factor_set not in self.factor_sets:
            known = ", ".join(sorted(self.factor_sets))
            raise ValueError(f"factor_set {self.factor_set!r} is not defined (known: {known})")
        return self

    @property
    def active_factor_set(self) -> FactorSet:
        """The factor set every new emission record is computed with."""
        return self.factor_sets[self.factor_set]
