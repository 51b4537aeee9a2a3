"""HTTP views of carbon budgets, load balancing and optimization (the energy optimization
reference's endpoints under /api/v1).

Reads are answered by the worker that owns the facility's partition (others forward).
Writes publish to the input topics; balancing commands are then decided in stream order
by the owner, which answers with their result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agents.facility.context import FacilityContext
from agents.facility.rules import carbon_budget as budgets
from agents.facility.rules import load as loads
from agents.facility.rules import optimization
from app.core.units import MG_PER_KG
from app.runtime.faust_app import Governor
from app.runtime.web import View
from app.web.http import authorised, problem, publish, read_contract, reply
from app.web.peers import reply_from_owner
from schemas.carbon_budget import CarbonBudget
from schemas.common import EntityId
from schemas.load import (
    BalancingCommand,
    CommandKind,
    CommandResult,
    DecisionStatus,
    LoadMetric,
    ManualDecision,
    decision_facility,
)

COMMAND_WAIT_S = 10.0


def _now() -> str:
    return datetime.now(UTC).isoformat()


_ENTITY_ID: TypeAdapter[str] = TypeAdapter(EntityId)


def _valid_id(value: str) -> bool:
    """Whether ``value`` is a well-formed facility id (it becomes a Kafka key)."""
    try:
        _ENTITY_ID.validate_python(value)
    except ValidationError:
        return False
    return True


def register(gov: Governor, ctx: FacilityContext) -> None:
    app = gov.faust
    load_config = gov.settings.load

    async def command(view: Any, request: Any, route: str, facility: str, kind: CommandKind,
                      body: bytes, **fields: Any) -> Any:  # fmt: skip
        """Run a balancing command on the facility's owner and return its result."""
        forwarded = await reply_from_owner(view, gov, ctx.load, facility, request, body)
        if forwarded is not None:
            return forwarded
        cmd = BalancingCommand(
            command_id=f"api-{uuid.uuid4().hex}", facility_id=facility, kind=kind,
            timestamp=datetime.now(UTC), **fields,
        )  # fmt: skip
        result = await ctx.waiters.publish_and_wait(
            (facility, cmd.command_id),
            lambda: gov.publish("balancing-commands", facility.encode(), cmd.to_json_bytes()),
            COMMAND_WAIT_S,
        )
        if result is None:
            pending = {"status": "pending", "command_id": cmd.command_id,
                       "message": "published; see load-decisions for its effect"}  # fmt: skip
            return reply(view, request, gov, route, pending, status=202)
        return result

    @app.page("/api/v1/carbon/budget")
    class PostBudget(View):
        ROUTE = "/api/v1/carbon/budget"

        async def post(self, request: Any) -> Any:
            defaults = {"updated_at": _now()}
            return await publish(self, request, gov, self.ROUTE, CarbonBudget, defaults,
                                 "carbon-budgets", "facility_id")  # fmt: skip

    @app.page("/api/v1/load/metrics")
    class PostMetric(View):
        ROUTE = "/api/v1/load/metrics"

        async def post(self, request: Any) -> Any:
            defaults = {"event_id": f"api-{uuid.uuid4().hex}", "timestamp": _now()}
            return await publish(self, request, gov, self.ROUTE, LoadMetric, defaults,
                                 "load-metrics", "facility_id")  # fmt: skip

    @app.page("/api/v1/balancing/decisions")
    class CreateDecision(View):
        ROUTE = "/api/v1/balancing/decisions"

        async def post(self, request: Any) -> Any:
            parsed = await read_contract(self, request, gov, self.ROUTE, ManualDecision, {})
            if not isinstance(parsed, tuple):
                return parsed
            manual, body = parsed
            result = await command(self, request, self.ROUTE, manual.facility_id,
                                   CommandKind.CREATE, body, decision=manual)  # fmt: skip
            if not isinstance(result, CommandResult):
                return result
            return reply(self, request, gov, self.ROUTE, result,
                         status=201 if result.accepted else 409)  # fmt: skip

    @app.page("/api/v1/balancing/decisions/{decision_id}/execute")
    class Execute(View):
        ROUTE = "/api/v1/balancing/decisions/{decision_id}/execute"

        async def post(self, request: Any, decision_id: str) -> Any:
            ok, why = authorised(gov, request)
            if not ok:
                return problem(self, request, gov, self.ROUTE, 401, why)
            facility = decision_facility(decision_id)
            if facility is None or not _valid_id(facility):
                return problem(self, request, gov, self.ROUTE, 400,
                               f"malformed decision id {decision_id!r}"
                               " (expected <facility_id>.d<number>)")  # fmt: skip
            result = await command(self, request, self.ROUTE, facility, CommandKind.EXECUTE,
                                   b"", decision_id=decision_id)  # fmt: skip
            if not isinstance(result, CommandResult):
                return result
            return reply(self, request, gov, self.ROUTE, result,
                         status=200 if result.accepted else 404)  # fmt: skip

    @app.page("/api/v1/balancing/auto/{facility_id}")
    class Auto(View):
        ROUTE = "/api/v1/balancing/auto/{facility_id}"

        async def post(self, request: Any, facility_id: str) -> Any:
            ok, why = authorised(gov, request)
            if not ok:
                return problem(self, request, gov, self.ROUTE, 401, why)
            if not _valid_id(facility_id):
                return problem(self, request, gov, self.ROUTE, 400,
                               f"malformed facility id {facility_id!r}")  # fmt: skip
            result = await command(self, request, self.ROUTE, facility_id, CommandKind.AUTO, b"")
            if not isinstance(result, CommandResult):
                return result
            return reply(self, request, gov, self.ROUTE, result)

    def recommendations(facility_id: str) -> list[optimization.Recommendation]:
        return optimization.recommend(
            ctx.carbon_state(facility_id), ctx.load_state(facility_id), load_config,
            gov.settings.optimization,
        )  # fmt: skip

    def budget_of(facility_id: str) -> Any:
        state = ctx.carbon_state(facility_id)
        return state.budget if state is not None else None

    def status_of(facility_id: str) -> Any:
        state = ctx.carbon_state(facility_id)
        status = budgets.status_of(state) if state is not None else None
        return asdict(status) if status is not None else None

    def evaluation_of(facility_id: str) -> Any:
        state = ctx.load_state(facility_id)
        return asdict(loads.evaluate(state, load_config)) if state is not None else None

    def zones_of(facility_id: str) -> Any:
        evaluation = evaluation_of(facility_id)
        return evaluation["zones"] if evaluation is not None else None

    def pending_of(facility_id: str) -> Any:
        state = ctx.load_state(facility_id)
        return list(state.pending()) if state is not None else []

    def recommended(facility_id: str) -> Any:
        if ctx.carbon_state(facility_id) is None and ctx.load_state(facility_id) is None:
            return None
        return [asdict(r) for r in recommendations(facility_id)]

    def report_of(facility_id: str) -> Any:
        """The period's consumption, emissions by source in both methods, budget status,
        load evaluation, decisions taken and pending, recommendations."""
        carbon, load = ctx.carbon_state(facility_id), ctx.load_state(facility_id)
        if carbon is None and load is None:
            return None
        by_source = {
            source.value: {
                "energy_kwh": usage.energy_kwh,
                "location_based_kg_co2e": usage.location_mg / MG_PER_KG,
                "market_based_kg_co2e": usage.market_mg / MG_PER_KG,
                "readings": usage.readings,
            }
            for source, usage in sorted((carbon.by_source if carbon else {}).items())
        }
        status = budgets.status_of(carbon) if carbon is not None else None
        decisions = sorted(load.decisions.values() if load else [], key=lambda d: d.decided_at)
        return {
            "facility_id": facility_id,
            "period": carbon.period if carbon else None,
            "period_start": carbon.period_start if carbon else None,
            "period_end": carbon.period_end if carbon else None,
            "consumption_kwh": carbon.total.energy_kwh if carbon else 0.0,
            "emissions_by_source": by_source,
            "budget": asdict(status) if status else None,
            "load": asdict(loads.evaluate(load, load_config)) if load else None,
            "decisions_taken": [d.model_dump(mode="json") for d in decisions
                                if d.status is DecisionStatus.EXECUTED],
            "decisions_pending": [d.model_dump(mode="json") for d in decisions
                                  if d.status is DecisionStatus.PENDING],
            "recommendations": [asdict(r) for r in recommendations(facility_id)],
        }  # fmt: skip

    no_budget, no_load, no_data = (
        "no carbon budget for facility {!r}", "no load metrics for facility {!r}",
        "no data for facility {!r}",
    )  # fmt: skip
    for route, table, answer, missing in (
        ("/api/v1/carbon/budget/{facility_id}", ctx.carbon, budget_of, no_budget),
        ("/api/v1/carbon/status/{facility_id}", ctx.carbon, status_of, no_budget),
        ("/api/v1/load/evaluate/{facility_id}", ctx.load, evaluation_of, no_load),
        ("/api/v1/load/zones/{facility_id}", ctx.load, zones_of, no_load),
        ("/api/v1/balancing/decisions/{facility_id}", ctx.load, pending_of, no_load),
        ("/api/v1/optimization/recommend/{facility_id}", ctx.carbon, recommended, no_data),
        ("/api/v1/optimization/report/{facility_id}", ctx.carbon, report_of, no_data),
    ):
        read_view(gov, route, table, answer, missing)


def read_view(
    gov: Governor, route: str, table: Any, answer: Callable[[str], Any], missing: str
) -> None:
    """A GET of one facility's state, answered by the worker owning its partition (others
    forward): ``answer`` gives the body, or ``None`` for a 404 with ``missing``."""

    @gov.faust.page(route)
    class FacilityRead(View):
        async def get(self, request: Any, facility_id: str) -> Any:
            forwarded = await reply_from_owner(self, gov, table, facility_id, request)
            if forwarded is not None:
                return forwarded
            body = answer(facility_id)
            if body is None:
                return problem(self, request, gov, route, 404, missing.format(facility_id))
            return reply(self, request, gov, route, body)
