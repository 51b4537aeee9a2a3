"""The pipelines a worker installs besides the built-in ones.

The built-in pipelines (carbon, audit, traffic, fusion, facility, ledger) share handles
with one another (the facility pipelines count the carbon agent's emissions, the fusion
views read the health checks), so :mod:`app.runtime.topology` wires them by name. A new
pipeline plugs in with one line: its folder's spec in :data:`PIPELINES`, or, without
changing Governor, its import path in the setting ``worker.pipelines``
(``GOVERNOR_WORKER__PIPELINES='["package.module:SPEC"]'``). Its topics come with its spec.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.spec import Installable, load_spec
from app.settings import Settings
from app.topics import Catalogue

PIPELINES: tuple[Installable, ...] = ()
"""Pipelines every worker installs after the built-in ones: one line per pipeline."""


def pipelines(settings: Settings, extra: Iterable[Installable] = ()) -> tuple[Installable, ...]:
    """:data:`PIPELINES`, then those ``worker.pipelines`` names, then ``extra`` (tests)."""
    configured = tuple(load_spec(path) for path in settings.worker.pipelines)
    return (*PIPELINES, *configured, *extra)


def catalogue_for(
    settings: Settings, base: Catalogue | None = None, extra: Iterable[Installable] = ()
) -> Catalogue:
    """topics.yaml (or ``base``) with the topics of every installed pipeline added."""
    catalogue = base or Catalogue.load()
    return catalogue.with_topics(t for spec in pipelines(settings, extra) for t in spec.topics)
