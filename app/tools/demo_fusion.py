"""The demo's AI cost governance part, on `governor generate`'s fusion runs (with a token
regression and a timeout burst): budgets per tenant, then decisions by outcome, and the
routing each scenario and overlay ended with (tripwire downgrade, open breaker)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.runtime.connection import aiokafka_options
from app.runtime.sender import Sender
from app.runtime.topic_reader import read_topic
from app.settings import Settings
from app.tools.generate import Workload, generate
from schemas.energy import EnergyDecision

HOURS = 0.25
"""450 runs, one every 2 s, over three tenants."""


async def publish(settings: Settings, now: datetime) -> int:
    """Tenants' budgets, then the runs' results; returns how many runs."""
    workload = Workload(seed=11, start=now - timedelta(hours=1), hours=HOURS, tenants=3)
    prefix = settings.kafka.topic_prefix
    runs = 0
    async with Sender.opened(aiokafka_options(settings.kafka)) as producer:
        for topic in ("energy-budgets", "fusion-results"):
            for line in generate(topic, workload):
                key = line.split(b'"tenant":"', 1)[1].split(b'"', 1)[0]
                await producer.queue(prefix + topic, line, key)
                runs += topic == "fusion-results"
        await producer.flush()
    return runs


async def _outcomes(settings: Settings) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    async for m in read_topic(aiokafka_options(settings.kafka),
                              settings.kafka.topic_prefix + "energy-decisions"):  # fmt: skip
        d = EnergyDecision.from_json_bytes(m.value)
        counts[(d.kind.value, d.outcome.value)] += 1
    return counts


def show(settings: Settings, http: Callable[..., Any], base: str) -> None:
    print("\nAI cost governance (energy-decisions, overlay-routing), generated runs:")
    for (kind, outcome), count in sorted(asyncio.run(_outcomes(settings)).items()):
        print(f"  {kind:11} {outcome:11} {count:6d}")
    status = http("GET", f"{base}/api/v1/fusion/budget/status")["budget_tripwire"]
    for scope, routing in sorted(status.items()):
        print(f"  {scope}: routing {routing['mode']}")
    tenant = http("GET", f"{base}/api/v1/fusion/budget/status?tenant=tenant-0")["budget"]
    print(
        f"  tenant-0: {tenant['spent_units']:.1f} of {tenant['limit_units'] or 0:.0f} units spent"
    )
