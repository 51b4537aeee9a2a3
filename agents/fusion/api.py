"""AI cost governance under /api/v1/fusion: synchronous admission, budgets, budget and
tripwire status, routing, tripwire reset.

``POST /api/v1/fusion/validate`` is served by the worker that owns the tenant's partition:
it publishes the request to fusion-requests and answers with the decision the admission
agent makes there, reserving the spend in the same table the stream uses
(:mod:`agents.fusion.api_admission`, which ``/execute`` shares).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from agents.fusion import api_execute as fusion_execute
from agents.fusion.agent import RequestsPipeline
from agents.fusion.api_admission import (
    APPROVAL_HEADER,
    Admission,
    Admitted,
    request_defaults,
    seed_request_now,
)
from agents.fusion.overlays import OverlayPipeline
from agents.fusion.rules import decisions, tokens
from agents.fusion.rules.routing import tenant_scope
from agents.fusion.tenants import FusionContext
from app.runtime.faust_app import Governor
from app.runtime.web import View
from app.web.http import authorised, problem, publish, read_body, read_contract, reply, too_large
from app.web.peers import reply_from_owner
from schemas.energy import EnergyBudget, Outcome
from schemas.fusion_result import FusionRequest
from schemas.overlay import ObservationKind, OverlayObservation


def register(
    gov: Governor,
    ctx: FusionContext,
    requests: RequestsPipeline,
    overlay: OverlayPipeline,
    health_of: Callable[[], dict[str, Any]],
) -> None:
    app = gov.faust
    config = gov.settings.fusion
    admission = Admission(gov, ctx, requests)
    fusion_execute.register(gov, ctx, admission)

    @app.page("/api/v1/fusion/validate")
    class Validate(View):
        ROUTE = "/api/v1/fusion/validate"

        async def post(self, request: Any) -> Any:
            parsed = await read_contract(self, request, gov, self.ROUTE, FusionRequest,
                                         request_defaults(), seed_request_now)  # fmt: skip
            if not isinstance(parsed, tuple):
                return parsed
            fusion_request, body = parsed
            admitted = await admission.admit(self, request, self.ROUTE, fusion_request, body)
            if not isinstance(admitted, Admitted):
                return admitted
            decision = admitted.decision
            if decision is None:
                pending = {
                    "status": "pending",
                    "event_id": admitted.request.event_id,
                    "message": "published; the decision will be on energy-decisions",
                }
                return reply(self, request, gov, self.ROUTE, pending, status=202)
            status = 403 if decision.outcome is Outcome.REJECTED else 200
            return reply(self, request, gov, self.ROUTE, decision, status=status)

    @app.page("/api/v1/fusion/budgets")
    class Budgets(View):
        ROUTE = "/api/v1/fusion/budgets"

        async def post(self, request: Any) -> Any:
            defaults = {"updated_at": datetime.now(UTC).isoformat()}
            return await publish(self, request, gov, self.ROUTE, EnergyBudget, defaults,
                                 "energy-budgets", "tenant")  # fmt: skip

    @app.page("/api/v1/fusion/budget/status")
    class Status(View):
        ROUTE = "/api/v1/fusion/budget/status"

        async def get(self, request: Any) -> Any:
            tenant = request.query.get("tenant")
            routing = {
                scope: r.model_dump(mode="json") for scope, r in sorted(ctx.routing.routing.items())
            }
            # The AI cost reference's status fields: tripwire, system health, the time.
            health = {**health_of(), "routing_feed_caught_up": ctx.routing.caught_up.is_set()}
            body: dict[str, Any] = {
                "budget_tripwire": routing, "system_health": health, "timestamp": time.time(),
            }  # fmt: skip
            if tenant is not None:
                forwarded = await reply_from_owner(self, gov, ctx.tenants, tenant, request)
                if forwarded is not None:
                    return forwarded
                state = ctx.tenant_state(tenant)
                if state is None:
                    return problem(self, request, gov, self.ROUTE, 404,
                                   f"no budget or runs for tenant {tenant!r}")  # fmt: skip
                body["tenant"] = tenant
                body["budget"] = decisions.snapshot(state, config).model_dump(mode="json")
                body["reservations"] = len(state.reservations)
                body["tenant_tripwire"] = routing.get(tenant_scope(tenant))
            return reply(self, request, gov, self.ROUTE, body)

    @app.page("/api/v1/fusion/tripwire/reset")
    class TripwireReset(View):
        ROUTE = "/api/v1/fusion/tripwire/reset"

        async def post(self, request: Any) -> Any:
            ok, why = authorised(gov, request)
            if not ok:
                return problem(self, request, gov, self.ROUTE, 401, why)
            body = await read_body(request, gov)
            if body is None:
                return problem(self, request, gov, self.ROUTE, 413, too_large(gov))
            try:
                signed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                return problem(self, request, gov, self.ROUTE, 400, f"body is not JSON: {exc}")
            scope = signed.get("scope") if isinstance(signed, dict) else None
            if not isinstance(scope, str) or ("|" not in scope and not scope.startswith("tenant:")):
                message = "give the scope: '<scenario>|<overlay>' or 'tenant:<id>'"
                return problem(self, request, gov, self.ROUTE, 422, message)
            failed = admission.approval_check(request, signed)
            if failed is not None:
                return problem(self, request, gov, self.ROUTE, failed[0], failed[1])
            scenario, _, overlay_name = scope.partition("|")
            command = OverlayObservation(
                kind=ObservationKind.TRIPWIRE_RESET,
                event_id=f"reset-{uuid.uuid4().hex}",
                scope=scope,
                scenario_type=scenario if "|" in scope else "-",
                overlay=overlay_name or "-",
                approval_id=tokens.token_id(request.headers[APPROVAL_HEADER])[:64],
                timestamp=datetime.now(UTC),
            )
            await gov.publish(overlay.source_name, scope.encode(), command.to_json_bytes())
            accepted = {"scope": scope, "event_id": command.event_id}
            return reply(self, request, gov, self.ROUTE, accepted, status=202)
