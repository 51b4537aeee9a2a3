"""``POST /api/v1/fusion/execute``: the AI cost reference's execute endpoint in Governor's
terms, admission plus run accounting in one call.

Governor does not run AI workflows, so the caller runs it and reports: the body is an
admission request (Governor's, or the reference's ``scenario_type``/``complexity``/
``trust_score``/``estimated_cost``) and, once the run has happened, its figures under
``run`` (``actual_units``, ``token_delta_pct``, ``latency_ms``, ``quality_score``,
``result``). The request is admitted as ``/validate`` admits it (403 with the reference's
``status``/``reason``/``requires_approval`` when rejected); with ``run`` the result is then
published to fusion-results and the answer carries the settlement decision and the
reference's ``energy_governance`` block (``budget_approved``, ``tripwire_status``,
``multipliers``). Without ``run`` it answers ``admitted`` and the run's result is expected
on fusion-results (or a later call with the same ``event_id`` and ``run``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.fusion.api_admission import DECISION_WAIT_S, Admission, Admitted, parse_request
from agents.fusion.rules.routing import scope_of
from agents.fusion.tenants import FusionContext
from app.runtime.faust_app import Governor
from app.runtime.web import View
from app.web.http import BadInput, authorised, problem, read_body, reply, too_large
from schemas.energy import EnergyDecision, Outcome
from schemas.fusion_result import FusionRequest, FusionResult, RunResult

ROUTE = "/api/v1/fusion/execute"


class RunReport(BaseModel):
    """What the caller measured of the run it executed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actual_units: float = Field(ge=0, allow_inf_nan=False)
    token_delta_pct: float = Field(default=0.0, allow_inf_nan=False)
    latency_ms: float = Field(ge=0, allow_inf_nan=False)
    quality_score: float = Field(ge=0, le=1, allow_inf_nan=False)
    result: RunResult = RunResult.SUCCESS

    def of(self, request: FusionRequest) -> FusionResult:
        """The run's result record: the request's fields, these figures, ended at the
        request's time plus its latency."""
        fields = request.model_dump(exclude={"schema_version", "routing_key",
                                             "manual_approval_id", "timestamp"})  # fmt: skip
        ended = request.timestamp + timedelta(milliseconds=self.latency_ms)
        return FusionResult(**fields, **self.model_dump(), timestamp=ended)


def _split(body: bytes) -> tuple[FusionRequest, RunReport | None]:
    """The request and the run report of a body (raises :class:`BadInput`)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(400, f"body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadInput(400, "body must be a JSON object")
    run = raw.pop("run", None)
    request = parse_request(orjson.dumps(raw))
    try:
        return request, RunReport.model_validate(run) if run is not None else None
    except ValidationError as exc:
        details = [
            {"field": ".".join(("run", *map(str, e["loc"]))), "message": e["msg"]}
            for e in exc.errors()
        ]
        raise BadInput(422, "run does not match RunReport", details) from None


def governance(ctx: FusionContext, admission: EnergyDecision) -> dict[str, Any]:
    """The reference's ``energy_governance`` block for an admission."""
    scope = scope_of(admission.scenario_type, admission.overlay)
    routing = ctx.routing.routing.get(scope)
    tripwire = {
        "scope": scope,
        "downgrade_active": routing.downgrade_active if routing else False,
        "mode": routing.mode.value if routing else "overlay",
        "routing_version": routing.version if routing else 0,
    }
    return {
        "budget_approved": admission.final_units,
        "tripwire_status": tripwire,
        "multipliers": {m.name: m.factor for m in admission.multipliers},
    }


def _json(decision: EnergyDecision) -> dict[str, Any]:
    return decision.model_dump(mode="json")


def register(gov: Governor, ctx: FusionContext, admission: Admission) -> None:

    @gov.faust.page(ROUTE)
    class Execute(View):
        async def post(self, request: Any) -> Any:
            ok, why = authorised(gov, request)
            if not ok:
                return problem(self, request, gov, ROUTE, 401, why)
            body = await read_body(request, gov)
            if body is None:
                return problem(self, request, gov, ROUTE, 413, too_large(gov))
            try:
                fusion_request, run = _split(body)
            except BadInput as exc:
                return problem(self, request, gov, ROUTE, exc.status, str(exc),
                               details=exc.details)  # fmt: skip
            admitted = await admission.admit(self, request, ROUTE, fusion_request, body)
            if not isinstance(admitted, Admitted):
                return admitted
            decided = admitted.decision
            event_id = admitted.request.event_id
            if decided is None:
                return self.pending(request, event_id, "admission")
            if decided.outcome is Outcome.REJECTED:
                refused = {
                    "status": "rejected", "reason": decided.reasons[0].value,
                    "requires_approval": decided.requires_manual_approval,
                    "admission": _json(decided),
                }  # fmt: skip
                return reply(self, request, gov, ROUTE, refused, status=403)
            block = governance(ctx, decided)
            if run is None:
                body_out = {"status": "admitted", "admission": _json(decided),
                            "energy_governance": block}  # fmt: skip
                return reply(self, request, gov, ROUTE, body_out)
            result = run.of(admitted.request)
            settled = await ctx.waiters.publish_and_wait(
                (result.tenant, result.event_id),
                lambda: gov.publish(
                    "fusion-results", result.tenant.encode(), result.to_json_bytes()
                ),
                DECISION_WAIT_S,
            )
            if settled is None:
                return self.pending(request, event_id, "settlement")
            done = {"status": "success", "result": _json(settled), "admission": _json(decided),
                    "energy_governance": block}  # fmt: skip
            return reply(self, request, gov, ROUTE, done)

        def pending(self, request: Any, event_id: str, stage: str) -> Any:
            waiting = {
                "status": "pending", "event_id": event_id,
                "message": f"published; the {stage} decision will be on energy-decisions",
            }  # fmt: skip
            return reply(self, request, gov, ROUTE, waiting, status=202)
