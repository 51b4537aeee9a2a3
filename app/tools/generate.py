"""`governor generate`: realistic, seeded, reproducible workloads for every input topic.

The same seed, start and size give byte-identical output. Shapes:

- meter readings: each facility has its own source mix (grid, on-site solar, wind, gas,
  ...); grid and gas meters follow a diurnal load curve (low at night, peaks late morning
  and early evening), solar meters the sun (zero before 06:00 and after 18:00, highest at
  noon), all with noise;
- grid intensity: hourly per zone, highest in the evening peak, lowest at midday;
- load metrics: zones follow the diurnal curve against their capacity, one zone per
  facility running hot in the afternoon (so balancing has work);
- request events: steady traffic across the sample contracts, with incidents (windows in
  which one endpoint fails and slows down) and the odd unknown or disallowed call;
- fusion runs and control ticks: the sample generators, which include regressions, breaker
  bursts and gate-passing and failing slots.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.tools.sample import sample_fusion_run, sample_tick
from schemas.carbon_budget import CarbonBudget, CarbonPeriod, GridIntensity
from schemas.common import Contract, EnergySource
from schemas.energy import EnergyBudget
from schemas.load import LoadMetric
from schemas.meter_reading import MeterReading
from schemas.request_event import RequestEvent

GRID_ZONES = ("DE", "FR", "PL")
_MIXES = (
    (EnergySource.GRID, EnergySource.GRID, EnergySource.SOLAR, EnergySource.NATURAL_GAS),
    (EnergySource.GRID, EnergySource.WIND, EnergySource.SOLAR, EnergySource.BATTERY),
    (EnergySource.GRID, EnergySource.GRID, EnergySource.COAL, EnergySource.HYDRO),
    (EnergySource.GRID, EnergySource.NUCLEAR, EnergySource.SOLAR, EnergySource.GRID),
)
_ROUTES = (
    ("GET", "/api/v1/status"), ("GET", "/api/v1/deployments/{n}"),
    ("POST", "/api/v1/deployments"), ("GET", "/api/v1/projects/{n}/pipelines"),
)  # fmt: skip


def diurnal(hour: float) -> float:
    """Relative load over the day: about 0.45 at 03:00, peaks near 1.0 at 11:00 and 19:00."""
    morning = math.exp(-(((hour - 11) / 3.5) ** 2))
    evening = math.exp(-(((hour - 19) / 2.5) ** 2))
    return 0.45 + 0.5 * max(morning, 0.9 * evening)


def solar(hour: float) -> float:
    """Relative solar output: 0 at night, 1 at noon."""
    return max(0.0, math.sin(math.pi * (hour - 6) / 12)) if 6 <= hour <= 18 else 0.0


def _hour(at: datetime) -> float:
    return at.hour + at.minute / 60


@dataclass(frozen=True)
class Workload:
    """What to generate: a seed, a start (UTC), a duration and the entity counts."""

    seed: int = 1
    start: datetime = datetime(2024, 1, 15, tzinfo=UTC)
    hours: float = 24.0
    facilities: int = 4
    meters_per_facility: int = 8
    interval_s: int = 300
    zones_per_facility: int = 4
    requests_per_s: float = 5.0
    tenants: int = 3
    sites: int = 4

    def _steps(self) -> Iterator[datetime]:
        for i in range(int(self.hours * 3600 // self.interval_s)):
            yield self.start + timedelta(seconds=i * self.interval_s)

    def meter_readings(self) -> Iterator[MeterReading]:
        rng = random.Random(f"{self.seed}:readings")
        meters = []
        for f in range(self.facilities):
            mix = _MIXES[(f + self.seed) % len(_MIXES)]
            for m in range(self.meters_per_facility):
                source = mix[m % len(mix)]
                meters.append((f, m, source, rng.uniform(20, 80)))
        n = 0
        for at in self._steps():
            h = _hour(at)
            for f, m, source, kw in meters:
                shape = solar(h) if source is EnergySource.SOLAR else diurnal(h)
                power = kw * shape * rng.uniform(0.9, 1.1)
                kwh = round(power * self.interval_s / 3600, 4)
                pf = round(rng.uniform(0.88, 0.98), 3)
                yield MeterReading(
                    event_id=f"gen{self.seed}-r{n:09d}", meter_id=f"meter-{f:03d}-{m:02d}",
                    facility_id=f"facility-{f:03d}", zone_id=f"zone-{m % self.zones_per_facility}",
                    energy_source=source, consumption_kwh=kwh, voltage_v=400.0,
                    current_a=round(power * 1000 / (400 * pf), 2), power_factor=pf,
                    timestamp=at + timedelta(seconds=self.interval_s),
                    grid_zone=GRID_ZONES[f % len(GRID_ZONES)]
                    if source is EnergySource.GRID else None,
                )  # fmt: skip
                n += 1

    def grid_intensity(self) -> Iterator[GridIntensity]:
        rng = random.Random(f"{self.seed}:grid")
        base = {zone: rng.uniform(250, 450) for zone in GRID_ZONES}
        for i in range(int(self.hours)):
            at = self.start + timedelta(hours=i)
            h = at.hour
            evening = 0.25 * math.exp(-(((h - 19) / 2.5) ** 2))
            midday = 0.3 * solar(h)
            for zone in GRID_ZONES:
                g = base[zone] * (1 + evening - midday) * rng.uniform(0.97, 1.03)
                yield GridIntensity(zone=zone, intensity_g_co2e_per_kwh=round(g, 1), valid_from=at)

    def load_metrics(self) -> Iterator[LoadMetric]:
        rng = random.Random(f"{self.seed}:load")
        n = 0
        for at in self._steps():
            h = _hour(at)
            for f in range(self.facilities):
                for z in range(self.zones_per_facility):
                    hot = z == 0 and 13 <= h < 17
                    utilization = (1.05 if hot else 0.75) * diurnal(h) * rng.uniform(0.93, 1.07)
                    capacity = 100.0 + 50 * z
                    yield LoadMetric(
                        event_id=f"gen{self.seed}-l{n:09d}", facility_id=f"facility-{f:03d}",
                        zone_id=f"zone-{z}", current_load_kw=round(capacity * utilization, 2),
                        capacity_kw=capacity, timestamp=at,
                    )  # fmt: skip
                    n += 1

    def request_events(self) -> Iterator[RequestEvent]:
        rng = random.Random(f"{self.seed}:requests")
        count = int(self.hours * 3600 * self.requests_per_s)
        incidents = []
        for _ in range(max(1, int(self.hours // 6))):
            begin = rng.uniform(0, max(1.0, self.hours * 3600 - 900))
            incidents.append((begin, begin + rng.uniform(300, 900), rng.randrange(len(_ROUTES))))
        for n in range(count):
            offset = n / self.requests_per_s
            route = rng.randrange(len(_ROUTES) + 1)
            method, template = _ROUTES[route] if route < len(_ROUTES) else ("DELETE", "/x/{n}")
            failing = any(b <= offset < e and r == route for b, e, r in incidents)
            status = (503 if rng.random() < 0.7 else 200) if failing else (
                500 if rng.random() < 0.002 else 200
            )  # fmt: skip
            latency = rng.lognormvariate(math.log(60), 0.5) + (900 if failing else 0)
            yield RequestEvent(
                event_id=f"gen{self.seed}-q{n:09d}",
                platform=("gitlab", "github")[rng.random() < 0.2],
                url="https://api.example.com" + template.replace("{n}", str(rng.randrange(50))),
                method=method, status_code=status, latency_ms=round(latency, 1),
                timestamp=self.start + timedelta(seconds=offset),
                retry_count=rng.randrange(3) + (2 if failing else 0),
                client_id=f"client-{rng.randrange(8)}",
            )  # fmt: skip

    def fusion_runs(self) -> Iterator[Contract]:
        """Finished runs, one every 2 s (see :func:`app.tools.sample.sample_fusion_run`)."""
        for n in range(int(self.hours * 1800)):
            yield sample_fusion_run(n, self.start, f"gen{self.seed}", self.tenants)[1]

    def fusion_requests(self) -> Iterator[Contract]:
        for n in range(int(self.hours * 1800)):
            yield sample_fusion_run(n, self.start, f"gen{self.seed}", self.tenants)[0]

    def control_ticks(self) -> Iterator[Contract]:
        for n in range(int(self.hours * 12) * self.sites):
            yield sample_tick(n, self.start, self.sites, f"gen{self.seed}")

    def carbon_budgets(self) -> Iterator[CarbonBudget]:
        rng = random.Random(f"{self.seed}:budgets")
        for f in range(self.facilities):
            yield CarbonBudget(
                facility_id=f"facility-{f:03d}", period=CarbonPeriod.MONTH,
                limit_kg_co2e=round(rng.uniform(5_000, 20_000), 1), updated_at=self.start,
            )  # fmt: skip

    def energy_budgets(self) -> Iterator[EnergyBudget]:
        for t in range(self.tenants):
            yield EnergyBudget(tenant=f"tenant-{t}", limit_units=50_000.0, updated_at=self.start)


GENERATORS = {
    "meter-readings": Workload.meter_readings,
    "grid-intensity": Workload.grid_intensity,
    "load-metrics": Workload.load_metrics,
    "request-events": Workload.request_events,
    "fusion-results": Workload.fusion_runs,
    "fusion-requests": Workload.fusion_requests,
    "control-ticks": Workload.control_ticks,
    "carbon-budgets": Workload.carbon_budgets,
    "energy-budgets": Workload.energy_budgets,
}
"""Every input topic that has a generator (traffic-policies are signed, not generated;
balancing-commands come from operators)."""


def generate(topic: str, workload: Workload) -> Iterator[bytes]:
    """JSONL lines (no newline) of ``topic``'s contract, in event-time order per entity."""
    for value in GENERATORS[topic](workload):
        yield value.to_json_bytes()
