"""The grid's carbon intensity over event time, per zone, and facilities' contractual
instruments: what the carbon rules need besides the reading to compute both Scope 2 figures.

Pure data structures. Workers fill them from compacted topics (:mod:`app.runtime.feeds`); a replay
that feeds them the same records gets the same answers.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.carbon_budget import ContractualInstrument, GridIntensity

MAX_INTERVALS_PER_ZONE = 50_000
"""About five years of hourly intensities; the oldest are forgotten first."""


@dataclass(slots=True)
class GridIntensityHistory:
    """Per zone, intensities sorted by ``valid_from``; each holds until the next one."""

    _starts: dict[str, list[float]] = field(default_factory=dict)
    _values: dict[str, dict[float, float]] = field(default_factory=dict)

    def add(self, record: GridIntensity) -> None:
        """Insert or replace the interval starting at ``record.valid_from``."""
        start = record.valid_from.timestamp()
        starts = self._starts.setdefault(record.zone, [])
        values = self._values.setdefault(record.zone, {})
        if start not in values:
            insort(starts, start)
        values[start] = record.intensity_g_co2e_per_kwh
        if len(starts) > MAX_INTERVALS_PER_ZONE:
            values.pop(starts.pop(0), None)

    def at(self, zone: str, when: datetime) -> tuple[float, datetime] | None:
        """The intensity (g CO2e/kWh) in force in ``zone`` at ``when`` and since when."""
        starts = self._starts.get(zone)
        if not starts:
            return None
        i = bisect_right(starts, when.timestamp()) - 1
        if i < 0:
            return None
        start = starts[i]
        return self._values[zone][start], datetime.fromtimestamp(start, UTC)

    def zones(self) -> dict[str, int]:
        """Intervals held per zone (for the API and logs)."""
        return {zone: len(starts) for zone, starts in self._starts.items()}


@dataclass(slots=True)
class EmissionContext:
    """What an emission depends on besides its reading and the static factors."""

    grid: GridIntensityHistory | None = None
    instruments: Mapping[str, tuple[ContractualInstrument, ...]] = field(default_factory=dict)
