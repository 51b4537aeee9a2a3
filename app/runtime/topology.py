"""Wiring: which pipelines and views make up a Governor worker (the processors live in agents/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from agents import registry as registry_of
from agents.audit import agent as audit
from agents.audit import api as audit_views
from agents.carbon import agent as carbon
from agents.carbon import api as carbon_views
from agents.facility import agent as facility
from agents.facility import api as facility_views
from agents.fusion import agent as fusion
from agents.fusion import api as fusion_views
from agents.fusion.overlays import OverlayPipeline
from agents.ledger import agent as ledger
from agents.ledger import api as ledger_views
from agents.spec import Installable
from agents.traffic import agent as traffic
from agents.traffic import api as traffic_views
from agents.traffic.policy_feed import PolicyFeed
from app.metrics import Metrics
from app.runtime.faust_app import Governor, create_app
from app.runtime.monitor import lean_prometheus_monitor
from app.settings import Settings
from app.topics import Catalogue
from app.web import health


@dataclass
class Topology:
    """A built worker: the Faust app plus handles on its pipelines, for views and tests."""

    gov: Governor
    carbon: carbon.CarbonPipeline
    audit: audit.AuditPipeline
    traffic: traffic.TrafficPipeline
    policy_feed: PolicyFeed
    fusion_context: fusion.FusionContext
    fusion_overlays: OverlayPipeline
    facilities: facility.FacilityContext
    ledger: ledger.LedgerAppender
    registry: CollectorRegistry
    added: dict[str, object] = field(default_factory=dict)
    """The pipelines installed through :mod:`agents.registry`, by name: their handles."""


def build(
    settings: Settings, catalogue: Catalogue | None = None, extra: Sequence[Installable] = ()
) -> Topology:
    """Build the app for ``settings`` (its cluster must be resolved already): the built-in
    pipelines, then those of :mod:`agents.registry` and ``extra``."""
    added_pipelines = registry_of.pipelines(settings, extra)
    catalogue = registry_of.catalogue_for(settings, catalogue, extra)
    registry = CollectorRegistry()
    metrics = Metrics(
        settings.metrics.max_facility_labels,
        registry,
        settings.traffic.max_endpoint_labels,
        settings.fusion.max_label_sets_per_metric,
        settings.fusion.max_label_sets_total,
    )
    gov = create_app(settings, catalogue, metrics)
    carbon_pipeline = carbon.register(gov)
    audit_pipeline = audit.register(gov)
    feed, _, traffic_pipeline = traffic.register(gov)
    fusion_ctx, fusion_requests, fusion_overlays = fusion.register(gov)
    facilities = facility.register(gov, carbon_pipeline)
    appender = ledger.register(gov)
    if settings.worker.faust_prometheus_sensor:
        setup_prometheus_sensors(
            gov.app, pattern="/metrics", registry=registry, name_prefix="faust"
        )
        if not settings.worker.faust_event_metrics:
            lean_prometheus_monitor(gov.app)
    health_of = health.register(
        gov, registry, serve_metrics=not settings.worker.faust_prometheus_sensor
    )
    carbon_views.register(gov, carbon_pipeline)
    audit_views.register(gov, audit_pipeline)
    traffic_views.register(gov, feed, traffic_pipeline)
    fusion_views.register(gov, fusion_ctx, fusion_requests, fusion_overlays, health_of)
    facility_views.register(gov, facilities)
    ledger_views.register(gov, appender)
    added = {spec.name: spec.install(gov) for spec in added_pipelines}
    return Topology(
        gov=gov,
        carbon=carbon_pipeline,
        audit=audit_pipeline,
        traffic=traffic_pipeline,
        policy_feed=feed,
        fusion_context=fusion_ctx,
        fusion_overlays=fusion_overlays,
        facilities=facilities,
        ledger=appender,
        registry=registry,
        added=added,
    )
