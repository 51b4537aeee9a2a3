"""The water pipeline's Faust side: the template's hooks and nothing else."""

from __future__ import annotations

from app.core.checks import Rejection, key_rejection
from app.core.dedup import Position
from app.runtime.entity_bound import EntityBound
from app.runtime.faust_app import Governor
from app.runtime.producer import send_same_key
from app.runtime.template import Pipeline
from tests.water import rules
from tests.water.rules import WaterDay, WaterOutcome, WaterSettings
from tests.water.schemas import WaterReading


class WaterPipeline(Pipeline[WaterReading, WaterOutcome]):
    """water-readings → litres per facility and day → water-budget-alerts."""

    def __init__(self, gov: Governor, config: WaterSettings | None = None) -> None:
        super().__init__(gov, "water-budgets", "water-readings")
        self.config = config or WaterSettings()
        self.days = self.table("water-days", WaterDay, "Litres per facility, newest UTC day")
        self.bound = self.entity_bound(self.days, self.config.max_facilities_per_partition)
        self.alerts = self.output("water-budget-alerts")
        self.start_agent("water-budgets")

    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> WaterReading:
        return WaterReading.from_json_bytes(value)

    def check(
        self, key: bytes | None, event: WaterReading, timestamp_ms: int | None
    ) -> Rejection | None:
        return key_rejection(key, event.facility_id, "facility_id")

    def entity(self, event: WaterReading) -> tuple[EntityBound, str]:
        return self.bound, event.facility_id

    def decide(self, event: WaterReading, position: Position) -> WaterOutcome:
        return rules.apply(self.days.get(event.facility_id), event, position, self.config)

    async def apply(self, event: WaterReading, outcome: WaterOutcome, position: Position) -> None:
        if outcome.state is not None:
            self.days[event.facility_id] = outcome.state
        if outcome.alert is not None:
            await send_same_key(
                self.gov.faust, self.alerts.get_topic_name(), event.facility_id.encode(),
                [outcome.alert.to_json_bytes()],
            )  # fmt: skip
        self.metrics.records.labels(pipeline=self.name, outcome="accepted").inc()
