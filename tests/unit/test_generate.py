"""`governor generate`: seeded, reproducible, valid, and shaped like the real thing."""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean

import pytest

from app.tools.generate import GENERATORS, Workload, generate
from app.topics import Catalogue, TopicRole
from schemas.common import EnergySource
from schemas.load import LoadMetric
from schemas.meter_reading import MeterReading
from schemas.request_event import RequestEvent

SMALL = Workload(hours=24, facilities=2, meters_per_facility=4, requests_per_s=0.1)
BUSY = Workload(hours=6, requests_per_s=1.0)
SHORT = Workload(hours=2, facilities=2, meters_per_facility=4)


@pytest.mark.parametrize("topic", sorted(GENERATORS))
def test_same_seed_same_bytes_and_every_line_is_the_contract(topic: str) -> None:
    first = list(generate(topic, SHORT))
    assert first and first == list(generate(topic, SHORT))
    spec = Catalogue.load()[topic]
    assert spec.role is TopicRole.INPUT
    model = spec.value_models()[0]
    for line in first[:500]:
        model.from_json_bytes(line)


def test_another_seed_gives_another_workload() -> None:
    other = Workload(seed=2, hours=24, facilities=2, meters_per_facility=4)
    assert list(generate("meter-readings", SMALL)) != list(generate("meter-readings", other))


def test_readings_follow_the_day_and_the_sun() -> None:
    by_hour: dict[tuple[EnergySource, int], list[float]] = defaultdict(list)
    for line in generate("meter-readings", SMALL):
        r = MeterReading.from_json_bytes(line)
        by_hour[(r.energy_source, r.timestamp.hour)].append(r.consumption_kwh)
    grid = {h: fmean(by_hour[(EnergySource.GRID, h)]) for h in range(1, 24)}
    assert grid[11] > 1.6 * grid[3]  # the morning peak against the night
    assert all(v == 0 for h in (1, 3, 22) for v in by_hour[(EnergySource.SOLAR, h)])
    assert fmean(by_hour[(EnergySource.SOLAR, 12)]) > 0
    assert all(r for (source, _), r in by_hour.items() if source is EnergySource.GRID)


def test_requests_have_incidents_and_loads_cross_the_thresholds() -> None:
    requests = [RequestEvent.from_json_bytes(x) for x in generate("request-events", BUSY)]
    per_10_min: dict[int, int] = defaultdict(int)
    for r in requests:
        bucket = (r.timestamp.hour * 60 + r.timestamp.minute) // 10
        per_10_min[bucket] += r.status_code >= 500
    counts = sorted(per_10_min[b] for b in range(36))
    assert counts[-1] >= 10 and counts[18] <= 1  # incidents stand out of a quiet background
    loads = [LoadMetric.from_json_bytes(x) for x in generate("load-metrics", SMALL)]
    utilization = [m.current_load_kw / m.capacity_kw for m in loads]
    assert max(utilization) > 0.85 and min(utilization) < 0.5
