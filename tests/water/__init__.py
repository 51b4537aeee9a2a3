"""A sixth pipeline defined only in the tests (water readings → water budgets), plugged in
through its folder, its topics and one registry entry (issue "One folder per pipeline"):
proof that the template, the spec and the registry are enough to add a pipeline.

Install it with ``build(settings, extra=(SPEC,))`` or, in a worker process,
``GOVERNOR_WORKER__PIPELINES='["tests.water:SPEC"]'``.
"""

from __future__ import annotations

from agents.spec import PipelineSpec
from app.topics import CleanupPolicy, TopicRole, TopicSpec
from tests.water import api
from tests.water.agent import WaterPipeline

TOPICS = (
    TopicSpec(
        name="water-readings", role=TopicRole.INPUT, key="facility_id",
        value_schema="tests.water.schemas:WaterReading", partitions=6, replication_factor=1,
        cleanup_policy=CleanupPolicy.DELETE, retention_ms=604_800_000,
        description="Water meter readings (test pipeline).",
    ),
    TopicSpec(
        name="water-budget-alerts", role=TopicRole.OUTPUT, key="facility_id",
        value_schema="tests.water.schemas:WaterBudgetAlert", partitions=6,
        replication_factor=1, cleanup_policy=CleanupPolicy.DELETE, retention_ms=604_800_000,
        description="A facility over its daily water budget (test pipeline).",
    ),
)  # fmt: skip

SPEC = PipelineSpec(
    name="water", register=lambda gov, _: WaterPipeline(gov), views=api.register, topics=TOPICS
)
