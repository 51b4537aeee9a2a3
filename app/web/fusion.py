"""AI cost governance under /api/v1/fusion: synchronous admission, budgets, budget and
tripwire status, routing, tripwire reset.

``POST /api/v1/fusion/validate`` is served by the worker that owns the tenant's partition:
it publishes the request to fusion-requests and answers with the decision the admission
agent makes there, reserving the spend in the same table the stream uses. Manual approvals
and overrides carry an HMAC-SHA256 token (``X-Approval-Token``) over the canonical request;
it is checked here against the wall clock (at most ``fusion.approvals.max_age_s`` old), used
once, and compared in constant time; the secret is never logged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from faust.web import View

from agents.fusion import FusionContext, OverlayPipeline, RequestsPipeline
from app.faust_app import Governor
from app.rules.fusion import budget as budgets
from app.rules.fusion import tokens
from app.web.http import authorised, problem, publish, read_body, read_contract, reply, too_large
from app.web.peers import reply_from_owner
from schemas.energy import EnergyBudget, Outcome
from schemas.fusion_result import FusionRequest
from schemas.overlay import ObservationKind, OverlayObservation
from schemas.seed_forms import SEED_TENANT, SeedFusionRequest

DECISION_WAIT_S = 10.0
APPROVAL_HEADER = "X-Approval-Token"


class UsedTokens:
    """Approval tokens seen on this worker, kept until they could no longer verify."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def claim(self, token_id: str, now_s: float, max_age_s: float) -> bool:
        self._seen = {k: t for k, t in self._seen.items() if now_s - t <= 2 * max_age_s}
        if token_id in self._seen:
            return False
        self._seen[token_id] = now_s
        return True


def seed_request_now(raw: dict[str, Any]) -> FusionRequest | None:
    """The AI cost reference's request body, as Governor's (tenant ``default``, stamped
    now: the endpoint is its producer); ``None`` for any other body."""
    if not SeedFusionRequest.matches(raw):
        return None
    now_ms = int(time.time() * 1000)
    return SeedFusionRequest.model_validate(raw).to_contract(raw, SEED_TENANT, now_ms)


def register(
    gov: Governor,
    ctx: FusionContext,
    requests: RequestsPipeline,
    overlay: OverlayPipeline,
    health_of: Callable[[], dict[str, Any]],
) -> None:
    app = gov.app
    config = gov.settings.fusion
    used = UsedTokens()

    def approval_check(request: Any, signed: dict[str, Any]) -> tuple[int, str] | None:
        """``None`` if the token verifies and is fresh; else (status, message)."""
        token = request.headers.get(APPROVAL_HEADER)
        secret = config.approvals.secret()
        if token is None:
            return 401, f"this needs an {APPROVAL_HEADER} (HMAC-SHA256 over the request)"
        if secret is None:
            return 403, "approvals are disabled: no fusion.approvals.hmac_secret configured"
        now_s = time.time()
        verdict = tokens.check_token(secret, token, signed, now_s, config.approvals.max_age_s)
        if verdict is not tokens.TokenCheck.OK:
            return 401, f"approval token refused: {verdict.value}"
        if not used.claim(tokens.token_id(token), now_s, config.approvals.max_age_s):
            return 401, "approval token refused: already used"
        return None

    @app.page("/api/v1/fusion/validate")
    class Validate(View):
        ROUTE = "/api/v1/fusion/validate"

        async def post(self, request: Any) -> Any:
            defaults = {
                "event_id": f"api-{uuid.uuid4().hex}",
                "timestamp": datetime.now(UTC).isoformat(),
            }
            parsed = await read_contract(
                self, request, gov, self.ROUTE, FusionRequest, defaults, seed_request_now
            )
            if not isinstance(parsed, tuple):
                return parsed
            fusion_request, body = parsed
            if fusion_request.manual_approval_id is not None:
                return problem(self, request, gov, self.ROUTE, 422,
                               "manual_approval_id is set by Governor, not by callers;"
                               f" send an {APPROVAL_HEADER} instead")  # fmt: skip
            # The owner parses the caller's bytes itself: an approval token signs them.
            forwarded = await reply_from_owner(
                self, gov, ctx.tenants, fusion_request.tenant, request, body
            )
            if forwarded is not None:
                return forwarded
            if not requests.tenants.has_room_for(fusion_request.tenant):
                return problem(self, request, gov, self.ROUTE, 429,
                               f"tenant {fusion_request.tenant!r} is new and its partition holds"
                               " fusion.max_tenants_per_partition tenants already")  # fmt: skip
            if APPROVAL_HEADER in request.headers:
                signed = orjson.loads(body)
                failed = approval_check(request, signed)
                if failed is not None:
                    return problem(self, request, gov, self.ROUTE, failed[0], failed[1])
                token = request.headers[APPROVAL_HEADER]
                secret = config.approvals.secret()
                assert secret is not None  # approval_check refused the request otherwise
                fusion_request = fusion_request.model_copy(
                    update={"manual_approval_id": tokens.seal_approval(
                        secret, tokens.token_id(token), tokens.approval_fields(fusion_request)
                    )}
                )  # fmt: skip
            topic = requests.source
            decision = await ctx.waiters.publish_and_wait(
                (fusion_request.tenant, fusion_request.event_id),
                lambda: topic.send(
                    key=fusion_request.tenant.encode(), value=fusion_request.to_json_bytes()
                ),
                DECISION_WAIT_S,
            )
            if decision is None:
                pending = {
                    "status": "pending",
                    "event_id": fusion_request.event_id,
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
                body["budget"] = budgets.snapshot(state, config).model_dump(mode="json")
                body["reservations"] = len(state.reservations)
                body["tenant_tripwire"] = routing.get(budgets.tenant_scope(tenant))
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
            failed = approval_check(request, signed)
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
            await overlay.source.send(key=scope.encode(), value=command.to_json_bytes())
            accepted = {"scope": scope, "event_id": command.event_id}
            return reply(self, request, gov, self.ROUTE, accepted, status=202)
