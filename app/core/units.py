"""Integer units for running totals: sums of integers do not depend on the order of addition,
so totals built from the same events in any order (or replayed) are exactly equal."""

MWH_PER_KWH = 1_000_000
"""Energy totals are kept in milliwatt-hours: 1 kWh = 10^6 mWh."""
MG_PER_KG = 1_000_000
"""Emission totals are kept in milligrams CO2e: 1 kg = 10^6 mg."""


def kwh_to_mwh(kwh: float) -> int:
    """One reading's or tick's energy, rounded once to whole milliwatt-hours."""
    return round(kwh * MWH_PER_KWH)
