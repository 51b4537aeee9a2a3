"""An endpoint's service level against its contract: error-budget burn rates, the
multi-window burn-rate alerts of the policy, and the baseline statistics the HTTP API and
every decision report. Pure, in event time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agents.traffic.rules.contracts import UNKNOWN
from schemas.traffic import AlertState, Baseline, BurnRateAlert, RoutedRequest
from schemas.traffic_policy import RiskTuning, ServiceContract, TrafficPolicy

if TYPE_CHECKING:  # the state module's decisions use these rules
    from agents.traffic.rules.engine import EndpointState


ERROR_RATE_WINDOW_S = 300


HOUR_S = 3600


def burn_rate(
    state: EndpointState, now_s: float, window_s: int, contract: ServiceContract | None
) -> float | None:
    """Error-budget burn rate over a window: error ratio / allowed error ratio."""
    if contract is None:
        return None
    total, errors = state.windows.window(now_s, window_s)
    if not total:
        return 0.0
    return (errors / total) / contract.error_budget


def baseline_rpm(state: EndpointState, now_s: float, min_requests: int) -> float | None:
    """Average requests per minute over the last hour (or since first seen, if later)."""
    if state.first_seen_s is None:
        return None
    total, _ = state.windows.window(now_s, HOUR_S)
    minutes = min(60.0, (now_s - state.first_seen_s) / 60)
    if total < min_requests or minutes < 10:
        return None
    return total / minutes


def baseline_of(
    state: EndpointState, contract: ServiceContract | None, tuning: RiskTuning
) -> Baseline:
    """An endpoint's statistics as of its newest event (for the HTTP API)."""
    now_s = state.watermark_s or 0.0
    total, errors = state.windows.window(now_s, ERROR_RATE_WINDOW_S)
    return endpoint_baseline(state, now_s, errors / total if total else 0.0, contract, tuning)


def endpoint_baseline(
    state: EndpointState,
    now_s: float,
    error_rate: float,
    contract: ServiceContract | None,
    tuning: RiskTuning,
) -> Baseline:
    """The endpoint's statistics; error budget remaining over the SLO window (may go
    below 0 once the budget is overspent)."""
    sketch = state.recent.merged() if state.recent else None
    remaining: float | None = None
    if contract is not None:
        total, errors = state.windows.window(now_s, tuning.slo_window_days * 86_400)
        remaining = round(1 - errors / (total * contract.error_budget), 6) if total else 1.0
    return Baseline(
        request_count=state.requests,
        error_rate=round(error_rate, 6),
        latency_p50_ms=round_ms(sketch.quantile(0.5)) if sketch else None,
        latency_p95_ms=round_ms(sketch.quantile(0.95)) if sketch else None,
        requests_per_minute=round(state.windows.requests_per_minute(now_s), 3),
        error_budget_remaining=remaining,
    )


def round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def burn_alerts(
    state: EndpointState,
    routed: RoutedRequest,
    contract: ServiceContract | None,
    now_s: float,
    event_id: str,
    at_s: float,
    policy: TrafficPolicy,
) -> tuple[EndpointState, tuple[BurnRateAlert, ...]]:
    """Multi-window burn-rate rules: an alert when a rule starts or stops firing."""
    if contract is None or routed.endpoint_key.endswith("|" + UNKNOWN):
        return state, ()
    firing = dict(state.burn_firing)
    changes = dict(state.burn_changes)
    alerts: list[BurnRateAlert] = []
    for rule in policy.burn_rules:
        long_rate = burn_rate(state, now_s, rule.long_window_s, contract) or 0.0
        short_rate = burn_rate(state, now_s, rule.short_window_s, contract) or 0.0
        now_firing = long_rate >= rule.burn_rate and short_rate >= rule.burn_rate
        if now_firing == firing.get(rule.name, False):
            continue
        firing[rule.name] = now_firing
        changes[rule.name] = changes.get(rule.name, 0) + 1
        alerts.append(
            BurnRateAlert(
                alert_id=f"{routed.endpoint_key}|{rule.name}|{changes[rule.name]}",
                endpoint_key=routed.endpoint_key,
                contract_id=contract.contract_id,
                rule=rule.name,
                severity=rule.severity,
                state=AlertState.FIRING if now_firing else AlertState.RESOLVED,
                long_window_s=rule.long_window_s,
                short_window_s=rule.short_window_s,
                threshold=rule.burn_rate,
                long_burn_rate=round(long_rate, 6),
                short_burn_rate=round(short_rate, 6),
                slo_error_budget=contract.error_budget,
                event_id=event_id,
                event_time=datetime.fromtimestamp(at_s, UTC),
            )
        )
    updated = state.model_copy(update={"burn_firing": firing, "burn_changes": changes})
    return updated, tuple(alerts)
