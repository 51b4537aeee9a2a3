"""Wiring: which pipelines and views make up a Governor worker (the processors live in agents/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from agents import registry as registry_of
from agents.audit.agent import AuditPipeline
from agents.carbon.agent import CarbonPipeline
from agents.facility.context import FacilityContext
from agents.fusion.overlays import OverlayPipeline
from agents.fusion.tenants import FusionContext
from agents.ledger.agent import LedgerAppender
from agents.registry import AUDIT, CARBON, FACILITY, FUSION, LEDGER, TRAFFIC
from agents.spec import Installable, Installed
from agents.traffic.agent import TrafficPipeline
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
    carbon: CarbonPipeline
    audit: AuditPipeline
    traffic: TrafficPipeline
    policy_feed: PolicyFeed
    fusion_context: FusionContext
    fusion_overlays: OverlayPipeline
    facilities: FacilityContext
    ledger: LedgerAppender
    registry: CollectorRegistry
    added: dict[str, object] = field(default_factory=dict)
    """Every installed pipeline's handle, by name (the built-in ones too)."""


def build(
    settings: Settings, catalogue: Catalogue | None = None, extra: Sequence[Installable] = ()
) -> Topology:
    """Build the app for ``settings`` (its cluster must be resolved already): the pipelines of
    :mod:`agents.registry`, then ``extra``."""
    specs = registry_of.pipelines(settings, extra)
    catalogue = registry_of.catalogue_of(specs, catalogue)
    registry = CollectorRegistry()
    metrics = Metrics(settings.metrics.max_facility_labels, registry)
    gov = create_app(settings, catalogue, metrics)
    if settings.worker.faust_prometheus_sensor:
        setup_prometheus_sensors(
            gov.faust, pattern="/metrics", registry=registry, name_prefix="faust"
        )
        if not settings.worker.faust_event_metrics:
            lean_prometheus_monitor(gov.faust)
    health_of = health.register(
        gov, registry, serve_metrics=not settings.worker.faust_prometheus_sensor
    )
    installed = Installed(health_of)
    for spec in specs:
        spec.install(gov, installed)
    traffic = installed.handle(TRAFFIC)
    fusion = installed.handle(FUSION)
    return Topology(
        gov=gov,
        carbon=installed.handle(CARBON),
        audit=installed.handle(AUDIT),
        traffic=traffic.pipeline,
        policy_feed=traffic.feed,
        fusion_context=fusion.context,
        fusion_overlays=fusion.overlays,
        facilities=installed.handle(FACILITY),
        ledger=installed.handle(LEDGER),
        registry=registry,
        added=installed.by_name(),
    )
