"""Metric label caps: bounded label sets per metric and overall, overflow counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from agents.fusion.metrics import FusionMetrics
from app.metrics import OTHER, Metrics


def test_label_sets_are_capped_per_metric_and_overall() -> None:
    registry = CollectorRegistry()
    guard = FusionMetrics(Metrics(10, registry), per_metric=3, total=5).labels
    assert [guard("a", f"s{i}", "o") for i in range(4)] == [
        ("s0", "o"), ("s1", "o"), ("s2", "o"), (OTHER, OTHER),
    ]  # fmt: skip
    assert guard("a", "s1", "o") == ("s1", "o")  # a known set keeps its labels
    assert [guard("b", f"s{i}", "o") for i in range(3)] == [
        ("s0", "o"),
        ("s1", "o"),
        (OTHER, OTHER),
    ]
    overflow = registry.get_sample_value("governor_metric_label_overflow_total", {"metric": "a"})
    assert overflow == 1.0
    assert registry.get_sample_value("governor_metric_label_overflow_total", {"metric": "b"}) == 1.0
