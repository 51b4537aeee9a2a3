"""Which way a request runs: its overlay, downgraded, or baseline only, from the feature
flags and the overlay stage's routing (tripwire downgrades, breaker state) of its scope
and its tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agents.fusion.rules import flags
from agents.fusion.settings import FusionSettings
from schemas.energy import RoutingMode
from schemas.fusion_result import FusionRequest
from schemas.overlay import OverlayRouting


def scope_of(scenario_type: str, overlay: str) -> str:
    return f"{scenario_type}|{overlay}"


def tenant_scope(tenant: str) -> str:
    return f"tenant:{tenant}"


@dataclass(frozen=True, slots=True)
class Routing:
    mode: RoutingMode
    tripwire_active: bool


def routing_for(
    request: FusionRequest, routing: Mapping[str, OverlayRouting], config: FusionSettings
) -> Routing:
    """Flags first (is the overlay on for this routing key?), then the overlay's state."""
    key = request.routing_key or request.event_id
    scope = routing.get(scope_of(request.scenario_type, request.overlay))
    tenant = routing.get(tenant_scope(request.tenant))
    downgrade = bool((scope and scope.downgrade_active) or (tenant and tenant.downgrade_active))
    if not flags.overlay_enabled(config, request.scenario_type, request.overlay, key):
        return Routing(RoutingMode.BASELINE_ONLY, downgrade)
    if scope is not None and scope.mode is RoutingMode.BASELINE_ONLY:
        return Routing(RoutingMode.BASELINE_ONLY, downgrade)
    return Routing(RoutingMode.DOWNGRADED if downgrade else RoutingMode.OVERLAY, downgrade)
