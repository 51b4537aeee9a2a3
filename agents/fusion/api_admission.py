"""Synchronous admission over HTTP, shared by ``POST /api/v1/fusion/validate`` and
``/execute``: served by the worker that owns the tenant's partition, which publishes the
request to fusion-requests and waits for the decision the admission agent makes there.

Manual approvals and overrides carry an HMAC-SHA256 token (``X-Approval-Token``) over the
body as sent; it is checked here against the wall clock (at most
``fusion.approvals.max_age_s`` old), used once, and compared in constant time; the secret is
never logged. The request is then published with a seal only Governor can make.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from agents.fusion.agent import RequestsPipeline
from agents.fusion.rules import tokens
from agents.fusion.tenants import FusionContext
from app.runtime.faust_app import Governor
from app.web.http import parse, problem
from app.web.peers import reply_from_owner
from schemas.energy import EnergyDecision
from schemas.fusion_result import FusionRequest
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


def request_defaults() -> dict[str, Any]:
    """What an HTTP caller may leave out: a fresh event id, and now as the event time."""
    return {"event_id": f"api-{uuid.uuid4().hex}", "timestamp": datetime.now(UTC).isoformat()}


def parse_request(body: bytes) -> FusionRequest:
    """Governor's request or the reference's (raises :class:`app.web.http.BadInput`)."""
    parsed: FusionRequest = parse(FusionRequest, body, request_defaults(), seed_request_now)
    return parsed


@dataclass(frozen=True, slots=True)
class Admitted:
    """The request as published, and its decision (``None``: not decided in time)."""

    request: FusionRequest
    decision: EnergyDecision | None


class Admission:
    """Admits requests for HTTP views (see the module docstring)."""

    def __init__(self, gov: Governor, ctx: FusionContext, requests: RequestsPipeline) -> None:
        self.gov = gov
        self.ctx = ctx
        self.requests = requests
        self.config = gov.settings.fusion
        self.used = UsedTokens()

    def approval_check(self, request: Any, signed: Any) -> tuple[int, str] | None:
        """``None`` if the token verifies and is fresh; else (status, message)."""
        token = request.headers.get(APPROVAL_HEADER)
        secret = self.config.approvals.secret()
        if token is None:
            return 401, f"this needs an {APPROVAL_HEADER} (HMAC-SHA256 over the request)"
        if secret is None:
            return 403, "approvals are disabled: no fusion.approvals.hmac_secret configured"
        now_s = time.time()
        max_age = self.config.approvals.max_age_s
        verdict = tokens.check_token(secret, token, signed, now_s, max_age)
        if verdict is not tokens.TokenCheck.OK:
            return 401, f"approval token refused: {verdict.value}"
        if not self.used.claim(tokens.token_id(token), now_s, max_age):
            return 401, "approval token refused: already used"
        return None

    async def admit(
        self, view: Any, request: Any, route: str, fusion_request: FusionRequest, body: bytes
    ) -> Admitted | Any:
        """Admit ``fusion_request`` (parsed from ``body``): the decision, or the response to
        give instead (the owner's, when another worker owns the tenant; a 4xx)."""
        gov = self.gov
        if fusion_request.manual_approval_id is not None:
            return problem(view, request, gov, route, 422,
                           "manual_approval_id is set by Governor, not by callers;"
                           f" send an {APPROVAL_HEADER} instead")  # fmt: skip
        # The owner parses the caller's bytes itself: an approval token signs them.
        tenant = fusion_request.tenant
        forwarded = await reply_from_owner(view, gov, self.ctx.tenants, tenant, request, body)
        if forwarded is not None:
            return forwarded
        if not self.requests.tenants.has_room_for(tenant):
            return problem(view, request, gov, route, 429,
                           f"tenant {tenant!r} is new and its partition holds"
                           " fusion.max_tenants_per_partition tenants already")  # fmt: skip
        if APPROVAL_HEADER in request.headers:
            failed = self.approval_check(request, orjson.loads(body))
            if failed is not None:
                return problem(view, request, gov, route, failed[0], failed[1])
            token = request.headers[APPROVAL_HEADER]
            secret = self.config.approvals.secret()
            assert secret is not None  # approval_check refused the request otherwise
            seal = tokens.seal_approval(
                secret, tokens.token_id(token), tokens.approval_fields(fusion_request)
            )
            fusion_request = fusion_request.model_copy(update={"manual_approval_id": seal})
        return Admitted(fusion_request, await self._publish(fusion_request))

    async def _publish(self, fusion_request: FusionRequest) -> EnergyDecision | None:
        return await self.ctx.waiters.publish_and_wait(
            (fusion_request.tenant, fusion_request.event_id),
            lambda: self.gov.publish(
                "fusion-requests", fusion_request.tenant.encode(), fusion_request.to_json_bytes()
            ),
            DECISION_WAIT_S,
        )
