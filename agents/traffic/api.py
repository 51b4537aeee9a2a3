"""Traffic governance under /api/v1/traffic: the policy in force, publishing a signed policy,
and an endpoint's statistics (served by the worker that owns the endpoint's partition)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agents.traffic.agent import TrafficPipeline
from agents.traffic.policy_feed import PolicyFeed
from agents.traffic.rules.engine import EndpointState
from agents.traffic.rules.policy import ActivePolicy, Verdict, judge_record
from agents.traffic.rules.slo import baseline_of
from app.runtime.faust_app import Governor
from app.runtime.web import View
from app.web.http import authorised, problem, read_body, reply, too_large
from schemas.traffic import Baseline, CircuitState
from schemas.traffic_policy import PolicyArtifact, ServiceContract


class EndpointView(BaseModel):
    """An endpoint's state as the API shows it."""

    endpoint_key: str
    requests: int
    errors: int
    circuit_state: CircuitState
    circuit_since: float | None
    burn_rate_alerts_firing: list[str]
    baseline: Baseline
    last_event_id: str | None


def endpoint_view(state: EndpointState, active: ActivePolicy) -> EndpointView:
    _, _, contract_id = state.endpoint_key.partition("|")
    contract = active.index.by_id.get(contract_id)
    return EndpointView(
        endpoint_key=state.endpoint_key,
        requests=state.requests,
        errors=state.errors,
        circuit_state=state.breaker.state,
        circuit_since=state.breaker.since_s,
        burn_rate_alerts_firing=sorted(r for r, on in state.burn_firing.items() if on),
        baseline=baseline_of(state, contract, active.policy.tuning),
        last_event_id=state.last_event_id,
    )


def register(gov: Governor, feed: PolicyFeed, pipeline: TrafficPipeline) -> None:
    app = gov.faust

    @app.page("/api/v1/traffic/policy")
    class Policy(View):
        ROUTE = "/api/v1/traffic/policy"

        async def get(self, request: Any) -> Any:
            return reply(self, request, gov, self.ROUTE, feed.status())

        async def post(self, request: Any) -> Any:
            """Publish a signed policy artifact, after checking it would be applied."""
            ok, why = authorised(gov, request)
            if not ok:
                return problem(self, request, gov, self.ROUTE, 401, why)
            body = await read_body(request, gov)
            if body is None:
                return problem(self, request, gov, self.ROUTE, 413, too_large(gov))
            _, judgement = judge_record(feed.active, -1, body, feed.trusted)
            if judgement.verdict is not Verdict.APPLIED:
                status = 400 if judgement.verdict is Verdict.UNDECODABLE else 422
                return problem(
                    self, request, gov, self.ROUTE, status, judgement.message,
                    verdict=judgement.verdict.value,
                )  # fmt: skip
            artifact = PolicyArtifact.from_json_bytes(body)
            metadata = await gov.publish(
                "traffic-policies", artifact.policy_hash.encode(), artifact.to_json_bytes()
            )
            accepted = {
                "version": artifact.policy.version,
                "policy_hash": artifact.policy_hash,
                "offset": metadata.offset,
            }
            return reply(self, request, gov, self.ROUTE, accepted, status=202)

    @app.page("/api/v1/traffic/contracts")
    class Contracts(View):
        ROUTE = "/api/v1/traffic/contracts"

        async def get(self, request: Any) -> Any:
            contracts: list[ServiceContract] = list(feed.active.policy.contracts)
            return reply(self, request, gov, self.ROUTE, contracts)

    @app.page("/api/v1/traffic/endpoints/{endpoint_key}")
    class Endpoint(View):
        ROUTE = "/api/v1/traffic/endpoints/{endpoint_key}"

        @app.table_route(table=pipeline.endpoints, match_info="endpoint_key")  # type: ignore[arg-type]
        async def get(self, request: Any, endpoint_key: str) -> Any:
            state = pipeline.endpoint_state(endpoint_key)
            if state is None:
                return problem(
                    self, request, gov, self.ROUTE, 404,
                    f"no requests seen for endpoint {endpoint_key!r}"
                    " (keys are '<platform>|<contract_id>' or '<platform>|_unknown')",
                )  # fmt: skip
            return reply(self, request, gov, self.ROUTE, endpoint_view(state, feed.active))
