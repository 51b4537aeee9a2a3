"""Overlay routing on this worker: every worker reads the compacted overlay-routing topic
from its start and keeps the newest version per scope, for admission decisions.

Admission therefore sees a scope's routing a moment after the overlay stage decided it (a
topic hop); each decision records the routing it used. The fusion agents wait for
:attr:`RoutingFeed.caught_up` (the end of the topic at start) before their first record.
"""

from __future__ import annotations

from app.runtime.feeds import CompactedFeed
from app.settings import Settings
from schemas.overlay import OverlayRouting


class RoutingFeed(CompactedFeed):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "overlay-routing")
        self.routing: dict[str, OverlayRouting] = {}

    def apply(self, value: bytes | None) -> None:
        """Keep the newest version of the record's scope (older or equal versions, which a
        re-sent record carries, change nothing)."""
        if value is None:
            return
        routing = OverlayRouting.from_json_bytes(value)
        current = self.routing.get(routing.scope)
        if current is None or routing.version > current.version:
            self.routing[routing.scope] = routing
