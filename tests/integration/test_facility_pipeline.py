"""Carbon budgets, grid intensity, load balancing and optimization on a real broker: the
HTTP API (bad input refused, nothing written), alerts once per crossing, both Scope 2
methods, exactly-once execution; two workers answering for any facility, and a SIGKILL
with every facility's usage exact afterwards."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from agents.carbon.rules import emission_of
from agents.carbon.settings import CarbonSettings
from agents.facility.rules import carbon_budget as budgets
from agents.facility.settings import CarbonBudgetSettings
from app.core.dedup import Position
from schemas.carbon_budget import CarbonBudget, CarbonBudgetAlert, CarbonPeriod, GridIntensity
from schemas.carbon_emission import CarbonEmission
from schemas.dead_letter import DeadLetter
from schemas.ledger import LedgerRecord
from schemas.load import LoadDecision
from tests.factories import reading
from tests.integration.harness import (
    Cluster,
    PacedProducer,
    WorkerProcess,
    end_offsets,
    http_get,
    kill_mid_stream,
    metric_value,
    produce,
    read_all,
    wait_for,
)
from tests.integration.harness import (
    post_json as post,
)

pytestmark = pytest.mark.integration


def test_budgets_alerts_load_balancing_and_the_http_api(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) - timedelta(hours=3)
    intensity = GridIntensity(zone="Z1", intensity_g_co2e_per_kwh=300, valid_from=start)
    asyncio.run(produce(cluster, prefix + "grid-intensity",
                        [(intensity.key.encode(), intensity.to_json_bytes())]))  # fmt: skip
    worker = workers()
    worker.wait_ready()

    # Bad budgets: 4xx with a message, nothing published.
    good = {"facility_id": "plant-1", "period": "month", "limit_kg_co2e": 100}
    for bad, status in [
        ({**good, "limit_kg_co2e": 0}, 422),
        ({**good, "limit_kg_co2e": -1}, 422),
        ({**good, "period": "fortnight"}, 422),
        ({"facility_id": "plant-1", "period": "month"}, 422),
        (b"{not json", 400),
    ]:
        got, body = post(worker, "/api/v1/carbon/budget", bad)
        assert got == status and body["error"], (bad, got, body)
    assert post(worker, "/api/v1/carbon/budget", good, token=None)[0] == 401
    assert sum(asyncio.run(end_offsets(cluster, prefix + "carbon-budgets")).values()) == 0

    market = {"facility_id": "plant-2", "period": "month", "limit_kg_co2e": 100,
              "accounting_method": "market_based",
              "instruments": [{"kind": "certificate", "name": "GOs", "share": 1.0,
                               "factor_kg_co2e_per_kwh": 0.0}]}  # fmt: skip
    assert post(worker, "/api/v1/carbon/budget", good)[0] == 202
    assert post(worker, "/api/v1/carbon/budget", market)[0] == 202
    wait_for(lambda: http_get(worker.url + "/api/v1/carbon/budget/plant-2")[0] == 200)
    _, body = http_get(worker.url + "/api/v1/carbon/budget/plant-1")
    assert body["limit_kg_co2e"] == 100 and body["accounting_method"] == "location_based"
    assert http_get(worker.url + "/api/v1/carbon/budget/nowhere")[0] == 404

    # 40 grid readings of 10 kWh at 300 g/kWh = 3 kg each, for each plant.
    records = []
    for plant in ("plant-1", "plant-2"):
        for n in range(40):
            r = reading(n, facility_id=plant, event_id=f"{plant}-{n}", consumption_kwh=10.0,
                        grid_zone="Z1", timestamp=start + timedelta(minutes=n))  # fmt: skip
            records.append((plant.encode(), r.to_json_bytes()))
    asyncio.run(produce(cluster, prefix + "meter-readings", records))

    def status_of(facility: str) -> dict[str, Any] | None:
        got, body = http_get(f"{worker.url}/api/v1/carbon/status/{facility}")
        return body if got == 200 and body["energy_kwh"] == 400.0 else None

    one = wait_for(lambda: status_of("plant-1"))
    assert one["state"] == "exceeded" and one["used_kg_co2e"] == pytest.approx(120.0)
    assert one["accounting_method"] == "location_based" and one["remaining_kg_co2e"] < 0
    assert one["projected_kg_co2e"] > one["used_kg_co2e"]
    two = wait_for(lambda: status_of("plant-2"))
    assert two["state"] == "ok" and two["used_kg_co2e"] == 0.0
    assert two["location_based_kg_co2e"] == pytest.approx(120.0)

    alert_records = asyncio.run(read_all(cluster, prefix + "carbon-budget-alerts", 3, 30))
    alerts = [CarbonBudgetAlert.from_json_bytes(m.value) for m in alert_records]
    assert [(a.facility_id, a.state.value, a.reading_event_id) for a in alerts] == [
        ("plant-1", "warning", "plant-1-26"),  # 27 x 3 = 81 kg
        ("plant-1", "critical", "plant-1-31"),  # 32 x 3 = 96 kg
        ("plant-1", "exceeded", "plant-1-33"),  # 34 x 3 = 102 kg
    ]
    emissions = asyncio.run(read_all(cluster, prefix + "carbon-emissions", 80, 30))
    first = CarbonEmission.from_json_bytes(emissions[0].value)
    assert first.intensity_source.value == "grid_intensity" and first.factor_kg_co2e_per_kwh == 0.3
    usage = 'governor_carbon_budget_usage_ratio{facility="plant-1"}'
    assert metric_value(worker, usage) == pytest.approx(1.2)

    # Load: an overloaded zone sheds to the zone with headroom; execute once, then "already".
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    for zone, load, capacity in [("b", 110, 200), ("a", 95, 100)]:
        metric = {"facility_id": "plant-1", "zone_id": zone, "current_load_kw": load,
                  "capacity_kw": capacity, "timestamp": now}  # fmt: skip
        assert post(worker, "/api/v1/load/metrics", metric)[0] == 202
    assert post(worker, "/api/v1/load/metrics", {"facility_id": "plant-1"})[0] == 422

    def pending() -> list[Any]:
        got, body = http_get(worker.url + "/api/v1/balancing/decisions/plant-1")
        return body if got == 200 and body else []

    (shift,) = wait_for(pending)
    assert shift["action"] == "shift" and shift["amount_kw"] == 25.0
    assert shift["expected_utilization_pct"] == {"a": 70.0, "b": 67.5}
    _, evaluation = http_get(worker.url + "/api/v1/load/evaluate/plant-1")
    assert [z["state"] for z in evaluation["zones"]] == ["overloaded", "low"]
    _, zones = http_get(worker.url + "/api/v1/load/zones/plant-1")
    assert [z["zone_id"] for z in zones] == ["a", "b"]

    path = f"/api/v1/balancing/decisions/{shift['decision_id']}/execute"
    first_run, second_run = post(worker, path, b""), post(worker, path, b"")
    assert first_run[0] == 200 and first_run[1]["executed"] is True
    assert second_run[0] == 200 and second_run[1]["already_executed"] is True
    assert second_run[1]["executed"] is False
    assert post(worker, "/api/v1/balancing/decisions/plant-1.d99/execute", b"")[0] == 404
    assert post(worker, "/api/v1/balancing/decisions/nonsense/execute", b"")[0] == 400
    assert post(worker, path, b"", token=None)[0] == 401
    assert pending() == []

    manual = {"facility_id": "plant-1", "action": "scale_up", "zone_id": "zz",
              "amount_kw": 10, "reason": "test"}  # fmt: skip
    got, body = post(worker, "/api/v1/balancing/decisions", manual)
    assert got == 409 and "unknown zone" in body["message"]
    assert post(worker, "/api/v1/balancing/decisions", {**manual, "amount_kw": -1})[0] == 422
    got, body = post(worker, "/api/v1/balancing/decisions", {**manual, "zone_id": "b"})
    assert got == 201 and body["decisions"][0]["status"] == "pending"
    assert post(worker, "/api/v1/balancing/auto/plant-1", b"")[0] == 200

    got, recommendations = http_get(worker.url + "/api/v1/optimization/recommend/plant-1")
    assert got == 200 and recommendations
    assert all("estimated_savings_kg_co2e" in r for r in recommendations)
    got, report = http_get(worker.url + "/api/v1/optimization/report/plant-1")
    assert got == 200 and report["consumption_kwh"] == 400.0
    assert report["budget"]["state"] == "exceeded"
    assert [d["decision_id"] for d in report["decisions_taken"]] == [shift["decision_id"]]
    assert report["emissions_by_source"]["grid"]["location_based_kg_co2e"] == pytest.approx(120)

    decision_records = asyncio.run(read_all(cluster, prefix + "load-decisions", 3, 30))
    decisions = [LoadDecision.from_json_bytes(m.value) for m in decision_records]
    assert [(d.decision_id, d.status.value) for d in decisions] == [
        (shift["decision_id"], "pending"),
        (shift["decision_id"], "executed"),
        ("plant-1.d2", "pending"),
    ]
    wanted = {a.alert_id for a in alerts} | {d.record_id for d in decisions}

    # POST /carbon/process publishes like /readings and says what the agent will compute.
    processed = reading(99, facility_id="plant-2", event_id="processed-1", consumption_kwh=10.0,
                        grid_zone="Z1", timestamp=start + timedelta(hours=1))  # fmt: skip
    got, body = post(worker, "/api/v1/carbon/process", processed.to_json_bytes())
    assert got == 202 and body["event_ids"] == ["processed-1"]
    (computed,) = body["emissions"]
    assert computed["intensity_source"] == "grid_intensity"
    assert computed["emissions_kg_co2e"] == pytest.approx(3.0)
    assert computed["market_based_kg_co2e"] == 0.0
    _, totals = http_get(worker.url + "/api/v1/carbon/emissions/plant-2")
    assert totals["market_based_kg_co2e"] == 0.0 and totals["emissions_kg_co2e"] >= 120.0

    def ledgered() -> bool:
        got = asyncio.run(read_all(cluster, prefix + "ledger", 10**9, 3))
        return wanted <= {LedgerRecord.from_json_bytes(m.value).decision_id for m in got}

    wait_for(ledgered, 60, 1)


def pending_of(worker: WorkerProcess, facility: str) -> list[Any]:
    got, body = http_get(f"{worker.url}/api/v1/balancing/decisions/{facility}")
    return body if got == 200 else []


def expected_usage(readings: list[Any], limit: float) -> tuple[dict[str, float], set[str]]:
    """Per facility, location-based kg and the alert ids, from the rules offline."""
    config, carbon = CarbonBudgetSettings(), CarbonSettings()
    states: dict[str, Any] = {}
    alert_ids: set[str] = set()
    for offset, r in enumerate(readings):
        if r.facility_id not in states:
            b = CarbonBudget(facility_id=r.facility_id, period=CarbonPeriod.MONTH,
                             limit_kg_co2e=limit, updated_at=r.timestamp)  # fmt: skip
            states[r.facility_id] = budgets.apply_budget(None, b, Position(partition=0, offset=0),
                                                         config).state  # fmt: skip
        out = budgets.apply_emission(states[r.facility_id], emission_of(r, carbon).to_contract(),
                                     Position(partition=1, offset=offset), config)  # fmt: skip
        states[r.facility_id] = out.state
        alert_ids |= {a.alert_id for a in out.outputs.alerts}
    return {f: s.used_kg for f, s in states.items()}, alert_ids


def test_two_workers_sigkill_every_facility_exact_from_either_worker(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    facilities = [f"site-{i:02d}" for i in range(12)]
    limit = 40.0
    budget_records = [
        (f.encode(), CarbonBudget(facility_id=f, period=CarbonPeriod.MONTH, limit_kg_co2e=limit,
                                  updated_at=start).to_json_bytes())
        for f in facilities
    ]  # fmt: skip
    readings = [
        reading(n, facility_id=facilities[n % 12], event_id=f"crash-{n}", consumption_kwh=1.0,
                timestamp=start + timedelta(seconds=n))
        for n in range(3000)
    ]  # fmt: skip
    asyncio.run(produce(cluster, prefix + "carbon-budgets", budget_records))
    reading_records: list[tuple[bytes | None, bytes]] = [
        (r.facility_id.encode(), r.to_json_bytes()) for r in readings
    ]
    first = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="facility-a")
    second = workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID="facility-b")
    first.wait_ready()
    second.wait_ready()
    feed = PacedProducer(cluster, prefix + "meter-readings", reading_records)

    def counted(worker: WorkerProcess) -> int:
        series = 'governor_records_total{outcome="accepted",pipeline="carbon-usage"}'
        return int(metric_value(worker, series))

    progress = kill_mid_stream(first, counted, len(readings) // 2, past=0.2)
    feed.join()
    want, alert_ids = expected_usage(readings, limit)
    assert alert_ids  # 250 kWh x 0.42 = 105 kg against 40: every state is crossed
    for worker in (first, second):
        for facility in facilities:

            def used(w: WorkerProcess = worker, f: str = facility) -> float | None:
                got, body = http_get(f"{w.url}/api/v1/carbon/status/{f}")
                return body["used_kg_co2e"] if got == 200 else None

            wait_for(lambda u=used, f=facility: u() == pytest.approx(want[f], abs=1e-9), 120)
    # Every endpoint answers for any facility from either worker (the owner is asked).
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    for facility in facilities:
        for zone, load in (("z1", 60.0), ("z0", 95.0)):
            metric = {"facility_id": facility, "zone_id": zone, "current_load_kw": load,
                      "capacity_kw": 100.0, "timestamp": now}  # fmt: skip
            assert post(first, "/api/v1/load/metrics", metric)[0] == 202
    for facility in facilities:
        for worker in (first, second):
            for path in ("load/evaluate", "load/zones", "carbon/budget", "carbon/status",
                         "optimization/recommend", "optimization/report"):  # fmt: skip
                url = f"{worker.url}/api/v1/{path}/{facility}"
                wait_for(lambda u=url: http_get(u)[0] == 200, 30)
        (decision,) = wait_for(lambda f=facility: pending_of(second, f), 30)
        execute = f"/api/v1/balancing/decisions/{decision['decision_id']}/execute"
        once, again = post(first, execute, b""), post(second, execute, b"")
        assert once[1]["executed"] is True and again[1]["already_executed"] is True

    alerts = asyncio.run(read_all(cluster, prefix + "carbon-budget-alerts", 10**9, 5))
    got_ids = [CarbonBudgetAlert.from_json_bytes(m.value).alert_id for m in alerts]
    assert set(got_ids) == alert_ids
    per_facility: dict[str, int] = defaultdict(int)
    for alert_id in set(got_ids):
        per_facility[alert_id.split(":")[0]] += 1
    assert all(n == 3 for n in per_facility.values()), per_facility
    print(
        f"killed after {progress} emissions counted; {len(got_ids) - len(alert_ids)} alerts re-sent"
    )


def test_a_load_metric_from_the_future_cannot_freeze_a_zone(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """Issue 16: load metrics had no clock check, so one dated 2099 froze its zone (every
    later metric is older and ignored). The producer also dates the record 2099 and then 0:
    on a LogAppendTime input the broker's clock replaces both."""
    worker = workers()
    worker.wait_ready()
    now = datetime.now(UTC).replace(microsecond=0)
    year_2099 = datetime(2099, 1, 1, tzinfo=UTC)

    def metric(n: int, load: float, at: datetime) -> tuple[bytes, bytes]:
        return b"plant-9", orjson.dumps({
            "event_id": f"m-{n}", "facility_id": "plant-9", "zone_id": "a",
            "current_load_kw": load, "capacity_kw": 100.0, "timestamp": at.isoformat(),
        })  # fmt: skip

    topic = prefix + "load-metrics"
    hostile_ms = int(year_2099.timestamp() * 1000)
    asyncio.run(produce(cluster, topic, [metric(1, 10.0, now)]))
    asyncio.run(produce(cluster, topic, [metric(2, 99.0, year_2099)], timestamp_ms=hostile_ms))
    asyncio.run(produce(cluster, topic, [metric(3, 98.0, year_2099)], timestamp_ms=0))
    asyncio.run(produce(cluster, topic, [metric(4, 40.0, now + timedelta(seconds=1))]))

    def load_of_a() -> float | None:
        status, zones = http_get(worker.url + "/api/v1/load/zones/plant-9")
        return zones[0]["load_kw"] if status == 200 and zones else None

    wait_for(lambda: load_of_a() == 40.0, 60)
    letters = asyncio.run(read_all(cluster, prefix + "dead-letters", 2, 30))
    assert sorted(DeadLetter.from_json_bytes(m.value).reason.value for m in letters) == [
        "timestamp_in_future", "timestamp_in_future",
    ]  # fmt: skip
