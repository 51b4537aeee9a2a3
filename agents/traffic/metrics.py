"""The traffic pipeline's metrics, on the process's registry; platform and contract labels
are bounded (``traffic.max_endpoint_labels`` each)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.metrics import BoundedLabels, Metrics


class TrafficMetrics:
    """Requests, decisions, risk, latency, circuit breakers, SLO burn and the policy."""

    def __init__(self, metrics: Metrics, max_endpoint_labels: int) -> None:
        self.platform_label = BoundedLabels(max_endpoint_labels)
        self.contract_label = BoundedLabels(max_endpoint_labels)
        self.requests = Counter(
            "governor_traffic_requests_total",
            "Request events decided, by platform, contract (_unknown: no contract) and result"
            " (error: 5xx or an error count; what the error budget is spent on).",
            ["platform", "contract", "result"],
            registry=metrics.registry,
        )
        self.decisions = Counter(
            "governor_traffic_decisions_total",
            "Traffic decisions by platform, tier and decision.",
            ["platform", "tier", "decision"],
            registry=metrics.registry,
        )
        self.risk = Histogram(
            "governor_traffic_risk_score",
            "Risk score of each decided request (0..1).",
            ["platform"],
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=metrics.registry,
        )
        self.latency = Histogram(
            "governor_traffic_request_latency_seconds",
            "Latency the request events report, by platform and contract.",
            ["platform", "contract"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=metrics.registry,
        )
        self.circuit_state = Gauge(
            "governor_traffic_circuit_state",
            "Circuit breaker state per endpoint: 0 closed, 1 half-open, 2 open.",
            ["platform", "contract"],
            registry=metrics.registry,
        )
        self.circuit_transitions = Counter(
            "governor_traffic_circuit_transitions_total",
            "Circuit breaker transitions by the state entered.",
            ["platform", "contract", "to_state"],
            registry=metrics.registry,
        )
        self.error_budget = Gauge(
            "governor_traffic_error_budget_remaining_ratio",
            "Share of the SLO window's error budget left (below 0: overspent).",
            ["platform", "contract"],
            registry=metrics.registry,
        )
        self.burn_alerts = Counter(
            "governor_traffic_burn_rate_alerts_total",
            "Burn-rate alert changes by rule, severity and state (firing, resolved).",
            ["rule", "severity", "state"],
            registry=metrics.registry,
        )
        self.policy_info = Gauge(
            "governor_traffic_policy_info",
            "The traffic policy in force (value 1), by version and hash.",
            ["version", "policy_hash"],
            registry=metrics.registry,
        )
        self.slo_error_budget = Gauge(
            "governor_traffic_slo_error_budget_ratio",
            "Each contract's allowed error ratio under the policy in force (0.001 = 99.9 %).",
            ["contract"],
            registry=metrics.registry,
        )
        self.policy_rejections = Counter(
            "governor_traffic_policy_rejections_total",
            "Records of traffic-policies that were not applied, by reason.",
            ["reason"],
            registry=metrics.registry,
        )
