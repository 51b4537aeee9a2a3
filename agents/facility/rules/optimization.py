"""Optimization recommendations from a facility's own data: its current period's usage by
hour and source (carbon budget state) and its zones' loads.

Pure; the estimates' assumptions are configuration (``optimization:``) and each
recommendation states its basis, so an operator can check the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agents.facility.rules.carbon_state import FacilityCarbon, Usage
from agents.facility.rules.load import FacilityLoad
from agents.facility.settings import LoadSettings, OptimizationSettings
from app.core.units import MG_PER_KG
from schemas.common import EnergySource


class RecommendationKind(StrEnum):
    SHIFT_LOAD_IN_TIME = "shift_load_in_time"
    CHANGE_SOURCE_MIX = "change_source_mix"
    REDUCE_PEAK_UTILIZATION = "reduce_peak_utilization"


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: RecommendationKind
    description: str
    estimated_savings_kwh: float
    estimated_savings_kg_co2e: float
    basis: str


def _intensity(usage: Usage) -> float:
    """kg CO2e per kWh (location-based)."""
    return usage.location_mg / MG_PER_KG / usage.energy_kwh


def shift_in_time(carbon: FacilityCarbon, config: OptimizationSettings) -> Recommendation | None:
    """Move the flexible share of the dirtiest hours' consumption to the cleanest hours."""
    hours = sorted(
        ((_intensity(u), h, u) for h, u in carbon.by_hour.items() if u.energy_mwh > 0),
        key=lambda t: (t[0], t[1]),
    )
    n = min(config.shifted_hours, len(hours) // 2)
    if n == 0:
        return None
    clean, dirty = hours[:n], hours[-n:]
    clean_int = (
        sum(u.location_mg for _, _, u in clean) / MG_PER_KG / sum(u.energy_kwh for _, _, u in clean)
    )
    dirty_kwh = sum(u.energy_kwh for _, _, u in dirty)
    dirty_int = sum(u.location_mg for _, _, u in dirty) / MG_PER_KG / dirty_kwh
    if dirty_int <= clean_int:
        return None
    moved = config.flexible_load_share * dirty_kwh
    saved = moved * (dirty_int - clean_int)
    return Recommendation(
        kind=RecommendationKind.SHIFT_LOAD_IN_TIME,
        description=(
            f"Shift flexible load from hours {sorted(h for _, h, _ in dirty)} to hours"
            f" {sorted(h for _, h, _ in clean)} (local time)"
        ),
        estimated_savings_kwh=0.0,
        estimated_savings_kg_co2e=round(saved, 3),
        basis=(
            f"{config.flexible_load_share:.0%} of {dirty_kwh:.1f} kWh at {dirty_int:.3f}"
            f" kg/kWh moved to hours at {clean_int:.3f} kg/kWh; the energy is the same"
        ),
    )


def change_source_mix(
    carbon: FacilityCarbon, config: OptimizationSettings
) -> Recommendation | None:
    """Replace part of the highest-factor source with the lowest-factor one already used.

    Batteries store energy rather than generate it, so they are never the replacement.
    """
    used = sorted(
        (
            (_intensity(u), s.value, u)
            for s, u in carbon.by_source.items()
            if u.energy_mwh > 0 and s is not EnergySource.BATTERY
        ),
        key=lambda t: (t[0], t[1]),
    )
    if len(used) < 2 or used[-1][0] <= used[0][0]:
        return None
    (low, low_name, _), (high, high_name, high_usage) = used[0], used[-1]
    replaced = config.source_mix_shift_share * high_usage.energy_kwh
    return Recommendation(
        kind=RecommendationKind.CHANGE_SOURCE_MIX,
        description=f"Replace {config.source_mix_shift_share:.0%} of {high_name} with {low_name}",
        estimated_savings_kwh=0.0,
        estimated_savings_kg_co2e=round(replaced * (high - low), 3),
        basis=(
            f"{replaced:.1f} kWh at {high:.3f} instead of {low:.3f} kg/kWh (this period's"
            " figures of each source)"
        ),
    )


def reduce_peaks(
    carbon: FacilityCarbon | None,
    load: FacilityLoad,
    load_config: LoadSettings,
    config: OptimizationSettings,
) -> list[Recommendation]:
    """Zones above the target band: the losses of serving the excess, per day at this load."""
    intensity = (
        _intensity(carbon.total) if carbon is not None and carbon.total.energy_mwh > 0 else 0.0
    )
    found: list[Recommendation] = []
    for zone_id, zone in sorted(load.zones.items()):
        excess_kw = zone.load_kw - load_config.target_utilization_max / 100 * zone.capacity_kw
        if excess_kw <= 0:
            continue
        kwh = excess_kw * 24 * config.peak_loss_ratio
        found.append(
            Recommendation(
                kind=RecommendationKind.REDUCE_PEAK_UTILIZATION,
                description=(
                    f"Bring {zone_id} from {zone.utilization_pct:.1f}% to"
                    f" {load_config.target_utilization_max:g}% of capacity"
                ),
                estimated_savings_kwh=round(kwh, 3),
                estimated_savings_kg_co2e=round(kwh * intensity, 3),
                basis=(
                    f"{excess_kw:.1f} kW above the band for 24 h at {config.peak_loss_ratio:.0%}"
                    f" losses, at the facility's {intensity:.3f} kg/kWh"
                ),
            )
        )
    return found


def recommend(
    carbon: FacilityCarbon | None,
    load: FacilityLoad | None,
    load_config: LoadSettings,
    config: OptimizationSettings,
) -> list[Recommendation]:
    """All recommendations, largest estimated carbon saving first."""
    found: list[Recommendation] = []
    if carbon is not None:
        for candidate in (shift_in_time(carbon, config), change_source_mix(carbon, config)):
            if candidate is not None:
                found.append(candidate)
    if load is not None:
        found.extend(reduce_peaks(carbon, load, load_config, config))
    return sorted(found, key=lambda r: (-r.estimated_savings_kg_co2e, r.kind.value))
