"""The demo's carbon budget and load-balancing part: budgets set over HTTP before the
sample readings, then each facility's budget status, a load imbalance balanced and
executed (twice: the second says so), and the recommendations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from agents.carbon.rules import emission_of
from app.settings import Settings
from app.tools.sample import sample_reading

HttpCall = Callable[..., Any]
USAGE_TARGETS = (0.5, 0.7, 0.85, 0.9, 0.97, 1.1, 1.3, 0.6)
"""The share of its budget each sample facility's readings will use: every state shows."""


def set_budgets(http: HttpCall, base: str, token: str, settings: Settings, readings: int,
                facilities: int, start: datetime,
                wait: Callable[[Callable[[], bool]], None]) -> None:  # fmt: skip
    """A monthly budget per facility, sized from the sample readings it will receive."""
    expected: dict[str, float] = defaultdict(float)
    for n in range(readings):
        r = sample_reading(n, start, facilities, run="demo")
        expected[r.facility_id] += emission_of(r, settings.carbon).emissions_kg_co2e
    for i, (facility, kg) in enumerate(sorted(expected.items())):
        target = USAGE_TARGETS[i % len(USAGE_TARGETS)]
        budget = {"facility_id": facility, "period": "month",
                  "limit_kg_co2e": round(kg / target, 3)}  # fmt: skip
        http("POST", f"{base}/api/v1/carbon/budget", orjson.dumps(budget), token)

    def applied() -> bool:
        return all(
            "limit_kg_co2e" in http("GET", f"{base}/api/v1/carbon/budget/{facility}")
            for facility in expected
        )

    wait(applied)
    print(f"Carbon budgets set for {len(expected)} facilities (POST /api/v1/carbon/budget)")


def show(http: HttpCall, base: str, token: str, readings: int, facilities: int,
         wait: Callable[[Callable[[], bool]], None],
         metric: Callable[[str, str], float]) -> None:  # fmt: skip
    """Budget status per facility, then load balancing and recommendations for one."""
    series = 'governor_records_total{outcome="accepted",pipeline="carbon-usage"}'
    wait(lambda: metric(base, series) >= readings)
    print("\nCarbon budgets this month (GET /api/v1/carbon/status/{facility_id}):")
    for n in range(facilities):
        s = http("GET", f"{base}/api/v1/carbon/status/facility-{n:03d}")
        print(f"  {s['facility_id']}: {s['used_kg_co2e']:10.3f} of {s['limit_kg_co2e']:10.3f}"
              f" kg CO2e ({s['usage_ratio']:6.1%}) {s['state']:9}"
              f" projected {s['projected_kg_co2e'] or 0:12.1f} kg by month end")  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    for zone, load in (("zone-1", 55.0), ("zone-0", 92.0)):
        body = {"facility_id": "facility-000", "zone_id": zone, "current_load_kw": load,
                "capacity_kw": 100.0, "timestamp": now}  # fmt: skip
        http("POST", f"{base}/api/v1/load/metrics", orjson.dumps(body), token)
    found: list[Any] = []

    def pending() -> bool:
        found[:] = http("GET", f"{base}/api/v1/balancing/decisions/facility-000")
        return bool(found)

    wait(pending)
    evaluation = http("GET", f"{base}/api/v1/load/evaluate/facility-000")
    print("\nLoad of facility-000 (GET /api/v1/load/evaluate/facility-000):")
    for z in evaluation["zones"]:
        print(f"  {z['zone_id']}: {z['load_kw']:.0f} of {z['capacity_kw']:.0f} kW"
              f" ({z['utilization_pct']:.0f}%) {z['state']}")  # fmt: skip
    d = found[0]
    print(f"  decision {d['decision_id']}: {d['action']} {d['amount_kw']} kW"
          f" {d['zone_id']} → {d['target_zone_id']}; {d['reason']};"
          f" expected {d['expected_utilization_pct']}")  # fmt: skip
    path = f"{base}/api/v1/balancing/decisions/{d['decision_id']}/execute"
    for _ in range(2):
        print(
            f"  POST .../{d['decision_id']}/execute → {http('POST', path, b'', token)['message']}"
        )
    print("\nRecommendations (GET /api/v1/optimization/recommend/facility-000):")
    for r in http("GET", f"{base}/api/v1/optimization/recommend/facility-000"):
        print(f"  {r['description']}: saves {r['estimated_savings_kwh']} kWh,"
              f" {r['estimated_savings_kg_co2e']} kg CO2e ({r['basis']})")  # fmt: skip
