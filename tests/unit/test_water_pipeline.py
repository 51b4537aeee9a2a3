"""A pipeline defined only in the tests (tests/water: water readings → water budgets) plugs in
through its folder, its own topics and one registry entry, and runs through the template
like the built-in ones (issue "One folder per pipeline")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from agents import registry
from agents.spec import Installed
from app.core.dedup import Position
from app.runtime.topology import Topology, build
from app.settings import load_settings
from schemas.dead_letter import DeadLetterReason
from tests.factories import BASE_TIME
from tests.water import SPEC
from tests.water.agent import WaterPipeline
from tests.water.rules import WaterSettings, apply
from tests.water.schemas import WaterReading


def water(n: int, litres: float, facility: str = "f1", days: int = 0) -> WaterReading:
    at = BASE_TIME + timedelta(days=days, minutes=n)
    return WaterReading(event_id=f"w-{n}", facility_id=facility, litres=litres, timestamp=at)


def test_the_rules_alert_once_per_day_and_resend_it_on_redelivery() -> None:
    config = WaterSettings(daily_limit_litres=10)
    first = apply(None, water(1, 6), Position(partition=0, offset=0), config)
    second = apply(first.state, water(2, 6), Position(partition=0, offset=1), config)
    third = apply(second.state, water(3, 6), Position(partition=0, offset=2), config)
    assert first.alert is None and third.alert is None
    assert second.alert is not None and second.alert.used_litres == 12
    again = apply(third.state, water(2, 6), Position(partition=0, offset=1), config)
    assert again.state is None and again.alert == second.alert
    next_day = apply(third.state, water(4, 11, days=1), Position(partition=0, offset=3), config)
    assert next_day.alert is not None and next_day.alert.day == (BASE_TIME + timedelta(1)).date()


@pytest.fixture
def topology(monkeypatch: pytest.MonkeyPatch, placed_where_delivered: None) -> Iterator[Topology]:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    yield build(load_settings(), extra=(SPEC,))


def test_one_registry_entry_brings_the_pipeline_and_its_topics(topology: Topology) -> None:
    assert isinstance(topology.added["water"], WaterPipeline)
    assert "water-budgets" in topology.gov.faust.agents
    assert {"water-readings", "water-budget-alerts"} <= {
        s.name for s in topology.gov.catalogue.topics
    }


def test_built_in_and_added_pipelines_install_through_the_one_registry(
    topology: Topology,
) -> None:
    assert list(topology.added) == [spec.name for spec in registry.PIPELINES] + ["water"]
    assert topology.added["carbon"] is topology.carbon
    assert topology.carbon.budget_usage is not None  # the facility pipelines asked for it by spec


def test_a_pipeline_asks_only_for_what_was_installed_before_it() -> None:
    installed = Installed(health=dict)
    with pytest.raises(LookupError, match="'carbon' is not installed"):
        installed.handle(registry.CARBON)
    installed.add("water", object())
    with pytest.raises(ValueError, match="two pipelines are named 'water'"):
        installed.add("water", object())


def test_worker_pipelines_setting_names_it_by_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNOR_WORKER__PIPELINES", '["tests.water:SPEC"]')
    settings = load_settings()
    assert registry.pipelines(settings) == (*registry.PIPELINES, SPEC)
    assert "water-readings" in registry.catalogue_for(settings)
    monkeypatch.setenv("GOVERNOR_WORKER__PIPELINES", '["tests.water.schemas:WaterReading"]')
    with pytest.raises(TypeError, match="is not a PipelineSpec"):
        registry.pipelines(load_settings())


async def test_readings_are_totalled_alerted_and_bad_ones_dead_lettered(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = topology.added["water"]
    assert isinstance(pipeline, WaterPipeline)
    alerts: list[bytes] = []
    dead: list[dict[str, Any]] = []

    async def send(app: Any, topic: str, key: bytes, values: list[bytes]) -> None:
        alerts.extend(values)

    async def dead_letter(**fields: Any) -> None:
        dead.append(fields)

    async def no_metadata_wait(app: Any, topics: Any) -> None:
        return None

    monkeypatch.setattr("app.runtime.stage.await_metadata", no_metadata_wait)
    monkeypatch.setattr("tests.water.agent.send_same_key", send)
    monkeypatch.setattr(pipeline.dead_letters, "send", dead_letter)
    agent = topology.gov.faust.agents["water-budgets"]
    async with agent.test_context() as ctx:
        await ctx.put(water(1, 600).to_json_bytes(), key=b"f1")
        await ctx.put(b"{not json", key=b"f1")
        await ctx.put(water(2, 600).to_json_bytes(), key=b"f2")  # its key says f2
        await ctx.put(orjson.dumps({**orjson.loads(water(3, 1).to_json_bytes()), "litres": -1}),
                      key=b"f1")  # fmt: skip
        await ctx.put(water(4, 600).to_json_bytes(), key=b"f1")
        await ctx.put(water(5, 600).to_json_bytes(), key=b"f1")
    assert [d["reason"] for d in dead] == [
        DeadLetterReason.UNDECODABLE,
        DeadLetterReason.KEY_MISMATCH,
        DeadLetterReason.INVALID_SCHEMA,
    ]
    assert [orjson.loads(a)["used_litres"] for a in alerts] == [1200]
    state = pipeline.days.get("f1")
    assert state is not None and state.litres == 1800
