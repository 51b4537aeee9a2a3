"""The budget-audit pipeline's metrics, on the process's registry (site labels are bounded
like facility labels, ``metrics.max_facility_labels``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from app.metrics import BoundedLabels, Metrics


class AuditMetrics:
    """Ticks by outcome, energy cost and ceiling utilization per site, compliance alerts."""

    def __init__(self, metrics: Metrics) -> None:
        self.site_label = BoundedLabels(metrics.max_entity_labels)
        self.ticks = Counter(
            "governor_audit_ticks_total",
            "Control ticks by outcome: applied to the rollups, duplicate event id, or replayed"
            " (re-delivered record already counted).",
            ["outcome"],
            registry=metrics.registry,
        )
        self.energy = Counter(
            "governor_audit_energy_cost_joules_total",
            "Energy given up by controller interventions, from applied control ticks.",
            ["site"],
            registry=metrics.registry,
        )
        self.utilization = Gauge(
            "governor_audit_ceiling_utilization_ratio",
            "Projected annual energy cost of the current compliance period over the site's"
            " annual ceiling (1 = at the ceiling), as of the newest tick this worker applied.",
            ["site"],
            registry=metrics.registry,
        )
        self.alerts = Counter(
            "governor_audit_compliance_alerts_total",
            "Compliance crossings, by the state crossed into.",
            ["state"],
            registry=metrics.registry,
        )
