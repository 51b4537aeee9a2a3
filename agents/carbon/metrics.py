"""The carbon pipeline's metrics, on the process's registry (facility labels pass the shared
bound, :attr:`app.metrics.Metrics.facility_label`)."""

from __future__ import annotations

from prometheus_client import Counter

from app.metrics import Metrics


class CarbonMetrics:
    """Readings by outcome, and energy and emissions of the accepted ones."""

    def __init__(self, metrics: Metrics) -> None:
        self.readings = Counter(
            "governor_meter_readings_total",
            "Meter readings by outcome: applied to totals, duplicate event id, or replayed"
            " (re-delivered record already counted).",
            ["outcome"],
            registry=metrics.registry,
        )
        self.energy = Counter(
            "governor_energy_consumed_joules_total",
            "Energy consumed according to accepted meter readings (1 kWh = 3.6e6 J).",
            ["facility", "source"],
            registry=metrics.registry,
        )
        self.emissions = Counter(
            "governor_carbon_emissions_grams_total",
            "Location-based emissions in grams CO2e of accepted meter readings.",
            ["facility", "source"],
            registry=metrics.registry,
        )
        self.market_emissions = Counter(
            "governor_carbon_emissions_market_based_grams_total",
            "Market-based emissions in grams CO2e of accepted meter readings.",
            ["facility"],
            registry=metrics.registry,
        )
