"""The facility pipelines' metrics, on the process's registry (facility labels pass the
bound the carbon pipeline shares, :attr:`app.metrics.Metrics.facility_label`; zone labels
are bounded alike)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from app.metrics import BoundedLabels, Metrics


class FacilityMetrics:
    """Carbon budget usage, state and alerts per facility; zone utilization; load decisions."""

    def __init__(self, metrics: Metrics) -> None:
        self.zone_label = BoundedLabels(metrics.max_entity_labels)
        self.budget_usage = Gauge(
            "governor_carbon_budget_usage_ratio",
            "A facility's carbon budget usage in the current period (1 = the limit).",
            ["facility"],
            registry=metrics.registry,
        )
        self.budget_state = Gauge(
            "governor_carbon_budget_state",
            "A facility's carbon budget state: 0 ok, 1 warning, 2 critical, 3 exceeded.",
            ["facility"],
            registry=metrics.registry,
        )
        self.budget_alerts = Counter(
            "governor_carbon_budget_alerts_total",
            "Carbon budget state changes, by new state.",
            ["state"],
            registry=metrics.registry,
        )
        self.zone_utilization = Gauge(
            "governor_zone_utilization_ratio",
            "A zone's load over its capacity at its newest load metric.",
            ["facility", "zone"],
            registry=metrics.registry,
        )
        self.load_decisions = Counter(
            "governor_load_balancing_decisions_total",
            "Load-balancing decisions by action, origin and status (pending when taken,"
            " executed when carried out).",
            ["action", "origin", "status"],
            registry=metrics.registry,
        )
