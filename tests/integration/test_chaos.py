"""Issue 15 part 4: a chaos soak that compares with replay.

A mixed workload (meter readings, request events, control ticks and AI runs' results, as
`governor generate` makes them) goes through two workers while a driver SIGKILLs a random
worker at random moments (restarting it each time) and once stops the broker and starts it
again on the same data. At the end every decision, deduplicated by its id, must be byte for
byte what `governor replay` makes of the same input, every facility's total must be the
replay's, and every ledger chain must verify. AI runs' decisions include the overlay
stage's (tripwire, gate, breaker events and routing versions), which it makes in event-time
order whichever worker's partitions the runs come from (agents/fusion/rules/ordering.py).

CI runs the short version; the full soak is the same test with more:
``GOVERNOR_CHAOS_KILLS=20 GOVERNOR_CHAOS_HOURS=6 bin/test tests/integration/test_chaos.py -s``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import orjson
import pytest

from app.ledger.note import Signer
from app.tools.generate import Workload, generate
from app.tools.sample import sample_policy
from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    http_get,
    produce,
    read_all,
    wait_for,
)
from tests.integration.test_ledger import ledger_cli
from tests.integration.test_replay import replay

pytestmark = pytest.mark.integration

KILLS = int(os.environ.get("GOVERNOR_CHAOS_KILLS", "3"))
HOURS = float(os.environ.get("GOVERNOR_CHAOS_HOURS", "1"))
SEED = int(os.environ.get("GOVERNOR_CHAOS_SEED", "20261202"))
OUTAGE_S = float(os.environ.get("GOVERNOR_CHAOS_OUTAGE_S", "10"))


def feed(cluster: Cluster, prefix: str, batches: list[tuple[str, list[tuple[bytes, bytes]]]],
         pause_s: float, failures: list[BaseException]) -> None:  # fmt: skip
    """Produce each batch in turn, a pause between; a batch that fails while the broker is
    down is sent again (idempotent producer; a duplicate is deduplicated downstream).

    Each attempt is bounded: an idempotent aiokafka producer started while the broker is away
    can wait for its producer id indefinitely ("Unable to update metadata from []")."""
    try:
        for topic, records in batches:
            for attempt in range(60):
                try:
                    asyncio.run(asyncio.wait_for(produce(cluster, prefix + topic, records), 30))
                    break
                except Exception:
                    if attempt == 59:
                        raise
                    time.sleep(1.0)
            time.sleep(pause_s)
    except BaseException as exc:  # reported by the test thread
        failures.append(exc)


def by_id(values: list[bytes], field: str) -> dict[str, set[bytes]]:
    found: dict[str, set[bytes]] = {}
    for value in values:
        found.setdefault(str(orjson.loads(value)[field]), set()).add(value)
    return found


def test_chaos_soak_gives_what_replay_gives(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    if cluster.broker is None:
        if os.environ.get("CI"):
            pytest.fail("CI provisions its own broker; the soak needs to restart it")
        pytest.skip("the soak restarts the broker: run it on a broker the suite provisions")
    began = time.monotonic()
    rng = random.Random(SEED)
    policy = sample_policy().model_dump_json()
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) - timedelta(hours=8)
    workload = Workload(
        seed=SEED,
        start=start,
        hours=HOURS,
        facilities=6,
        requests_per_s=1.0,
        sites=8,
        tenants=5,
    )
    readings = list(generate("meter-readings", workload))
    requests = list(generate("request-events", workload))
    ticks = list(generate("control-ticks", workload))
    runs = list(generate("fusion-results", workload))
    run_keys = [orjson.loads(v)["tenant"].encode() for v in runs]
    tick_keys = [orjson.loads(v)["site_id"].encode() for v in ticks]
    reading_keys = [orjson.loads(v)["facility_id"].encode() for v in readings]
    request_keys = [orjson.loads(v)["platform"].encode() for v in requests]
    chunks = 24
    batches: list[tuple[str, list[tuple[bytes, bytes]]]] = []
    for n in range(chunks):
        part = slice(n * len(readings) // chunks, (n + 1) * len(readings) // chunks)
        batches.append(
            ("meter-readings", list(zip(reading_keys[part], readings[part], strict=True)))
        )
        part = slice(n * len(requests) // chunks, (n + 1) * len(requests) // chunks)
        batches.append(
            ("request-events", list(zip(request_keys[part], requests[part], strict=True)))
        )
        part = slice(n * len(ticks) // chunks, (n + 1) * len(ticks) // chunks)
        batches.append(("control-ticks", list(zip(tick_keys[part], ticks[part], strict=True))))
        part = slice(n * len(runs) // chunks, (n + 1) * len(runs) // chunks)
        batches.append(("fusion-results", list(zip(run_keys[part], runs[part], strict=True))))

    seed = base64.b64encode(bytes(range(32))).decode()
    env = {
        "GOVERNOR_TRAFFIC__POLICY": policy,
        "GOVERNOR_LEDGER__SIGNING_KEY": seed,
        "GOVERNOR_LEDGER__CHECKPOINT_EVERY_S": "1",
    }
    audit = {"GOVERNOR_AUDIT__DEFAULT_CAPACITY_KW": "0.05"}  # low: sites cross their ceilings
    env.update(audit)
    pair = [workers(GOVERNOR_WORKER__GROUP_INSTANCE_ID=f"chaos-{n}", **env) for n in "ab"]
    for worker in pair:
        worker.wait_ready()
    failures: list[BaseException] = []
    producer = threading.Thread(
        target=feed, args=(cluster, prefix, batches, 0.5, failures), daemon=True
    )
    producer.start()

    kills, restarts = 0, 0
    for step in range(KILLS + 1):
        time.sleep(rng.uniform(1.0, 4.0))
        if step == KILLS // 2 and restarts == 0:
            cluster.broker.stop()
            time.sleep(OUTAGE_S)
            cluster.broker.restart()
            restarts += 1
            continue
        victim = rng.choice(pair)
        victim.kill()
        kills += 1
        victim.start()
        victim.wait_ready(180)
    producer.join(600)
    assert not producer.is_alive() and not failures, failures

    def everything(topic: str, field: str, wanted: int) -> dict[str, set[bytes]] | None:
        got = asyncio.run(read_all(cluster, prefix + topic, 10**9, 5))
        found = by_id([m.value for m in got], field)
        return found if len(found) >= wanted else None

    live_emissions = wait_for(lambda: everything("carbon-emissions", "event_id", len(readings)),
                              300, 2)  # fmt: skip
    live_decisions = wait_for(lambda: everything("traffic-decisions", "decision_id",
                                                 len(requests)), 300, 2)  # fmt: skip
    live_slots = wait_for(lambda: everything("budget-audit", "event_id", len(ticks)), 300, 2)
    offline = replay(cluster, prefix, "fusion-results", runs, tmp_path / "fusion", policy)
    energy = by_id(offline["energy-decisions"], "decision_id")
    routing = offline.get("overlay-routing", [])
    assert any(b'"downgrade_active":true' in v for v in routing), "the tripwire should trip"
    live_energy = wait_for(lambda: everything("energy-decisions", "decision_id", len(energy)),
                           300, 2)  # fmt: skip
    overlay_stage = []
    for topic, field in (("tripwire-events", "tripwire_event_id"),
                         ("fusion-gate-events", "transition_id"),
                         ("overlay-breaker-events", "transition_id"),
                         ("overlay-routing", "routing_id")):  # fmt: skip
        want = by_id(offline.get(topic, []), field)
        wanted = len(want)
        # The last runs wait for quiet partitions (fusion.ordering.idle_partition_s).
        live = wait_for(partial(everything, topic, field, wanted), 120, 2)
        overlay_stage.append((live, want))

    offline = replay(cluster, prefix, "meter-readings", readings, tmp_path / "carbon", policy)
    emissions = by_id(offline["carbon-emissions"], "event_id")
    offline = replay(cluster, prefix, "request-events", requests, tmp_path / "traffic", policy)
    decisions = by_id(offline["traffic-decisions"], "decision_id")
    offline = replay(cluster, prefix, "control-ticks", ticks, tmp_path / "audit", policy, **audit)
    compared = [
        (live_emissions, emissions),
        (live_decisions, decisions),
        (live_energy, energy),
        *overlay_stage,
        (live_slots, by_id(offline["budget-audit"], "event_id")),
    ]
    for topic, field in (("budget-audit-rollups", "rollup_id"),
                         ("budget-compliance-alerts", "alert_id")):  # fmt: skip
        got = asyncio.run(read_all(cluster, prefix + topic, 10**9, 3))
        compared.append((by_id([m.value for m in got], field), by_id(offline[topic], field)))
    assert offline["budget-compliance-alerts"], "the workload should make compliance alerts"
    mismatches = [k for live, want in compared for k in want if live.get(k) != want[k]]
    extra = {k for live, want in compared for k in set(live) - set(want)}

    readings_per_facility = Counter(
        str(orjson.loads(next(iter(v)))["facility_id"]) for v in emissions.values()
    )
    for facility, count in sorted(readings_per_facility.items()):
        for worker in pair:
            status, body = http_get(f"{worker.url}/api/v1/carbon/emissions/{facility}")
            assert status == 200 and body["readings"] == count, (facility, body)
    slots_per_site = Counter(str(orjson.loads(v)["site_id"]) for v in offline["budget-audit"])
    days = sorted({str(orjson.loads(v)["utc_day"]) for v in offline["budget-audit-rollups"]})
    for site, count in sorted(slots_per_site.items()):
        for worker in pair:
            url = f"{worker.url}/api/v1/audit/report/{site}?from={days[0]}&to={days[-1]}"
            status, body = http_get(url)
            assert status == 200 and body["slots"] == count, (site, body)
    vkey = Signer.from_seed("governor-ledger", bytes(range(32))).verifier_key()
    verified = ledger_cli(pair[0], "verify", "--vkey", vkey)
    duration = time.monotonic() - began
    print(f"\nchaos soak: {kills} kills, {restarts} broker restart, {len(readings)} readings,"
          f" {len(requests)} requests, {len(ticks)} ticks and {len(runs)} AI runs (overlay"
          f" stage: {sum(len(want) for _, want in overlay_stage)} records),"
          f" {duration:.0f} s,"
          f" {len(mismatches)} mismatches, {len(extra)} decisions replay does not"
          " make")  # fmt: skip
    late = [line for worker in pair for line in worker.log_file.read_text().splitlines()
            if "late run" in line]  # fmt: skip
    assert not mismatches and not extra, (mismatches[:5], sorted(extra)[:5], late[:5])
    assert verified.returncode == 0 and verified.stdout.count(": ok") == 6, verified.stdout
