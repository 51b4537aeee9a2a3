"""The pipelines a worker installs, in order: one line per pipeline.

Built-in and added pipelines go through the same :class:`agents.spec.PipelineSpec`. A
pipeline that uses another's handle (the facility pipelines count the carbon agent's
emissions) comes after it and asks :class:`agents.spec.Installed` for it by spec. A new
pipeline plugs in with one line in :data:`PIPELINES` or, without changing Governor, its
import path in the setting ``worker.pipelines``
(``GOVERNOR_WORKER__PIPELINES='["package.module:SPEC"]'``). Its topics come with its spec.

The specs are here rather than in each folder's ``__init__``: the settings import every
folder's ``settings`` module, so a folder's ``__init__`` that imported its agent would
import the runtime, which imports the settings, from inside the settings.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.audit import agent as audit
from agents.audit import api as audit_api
from agents.carbon import agent as carbon
from agents.carbon import api as carbon_api
from agents.facility import agent as facility
from agents.facility import api as facility_api
from agents.fusion import agent as fusion
from agents.fusion import api as fusion_api
from agents.ledger import agent as ledger
from agents.ledger import api as ledger_api
from agents.spec import Installable, PipelineSpec, load_spec
from agents.traffic import agent as traffic
from agents.traffic import api as traffic_api
from app.settings import Settings
from app.topics import Catalogue

CARBON = PipelineSpec("carbon", lambda gov, _: carbon.register(gov), carbon_api.register)
AUDIT = PipelineSpec("audit", lambda gov, _: audit.register(gov), audit_api.register)
TRAFFIC = PipelineSpec(
    "traffic", lambda gov, _: traffic.register(gov),
    lambda gov, h: traffic_api.register(gov, h.feed, h.pipeline),
)  # fmt: skip
FUSION = PipelineSpec(
    "fusion", lambda gov, installed: fusion.register(gov, installed.health),
    lambda gov, h: fusion_api.register(gov, h.context, h.requests, h.overlays, h.health),
)  # fmt: skip
FACILITY = PipelineSpec(
    "facility", lambda gov, installed: facility.register(gov, installed.handle(CARBON)),
    facility_api.register,
)  # fmt: skip
LEDGER = PipelineSpec("ledger", lambda gov, _: ledger.register(gov), ledger_api.register)

PIPELINES: tuple[Installable, ...] = (CARBON, AUDIT, TRAFFIC, FUSION, FACILITY, LEDGER)
"""Every worker's pipelines, in the order they are installed."""


def pipelines(settings: Settings, extra: Iterable[Installable] = ()) -> tuple[Installable, ...]:
    """:data:`PIPELINES`, then those ``worker.pipelines`` names, then ``extra`` (tests)."""
    configured = tuple(load_spec(path) for path in settings.worker.pipelines)
    return (*PIPELINES, *configured, *extra)


def catalogue_for(
    settings: Settings, base: Catalogue | None = None, extra: Iterable[Installable] = ()
) -> Catalogue:
    """topics.yaml (or ``base``) with the topics of every installed pipeline added."""
    return catalogue_of(pipelines(settings, extra), base)


def catalogue_of(specs: Iterable[Installable], base: Catalogue | None = None) -> Catalogue:
    """topics.yaml (or ``base``) with the topics of ``specs`` added."""
    catalogue = base or Catalogue.load()
    return catalogue.with_topics(t for spec in specs for t in spec.topics)
