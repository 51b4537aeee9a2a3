"""Overlay routing on this worker: every worker reads the compacted overlay-routing topic
from its start and keeps the newest version per scope, for admission decisions.

Admission therefore sees a scope's routing a moment after the overlay stage decided it (a
topic hop); each decision records the routing it used. The fusion agents wait for
:attr:`RoutingFeed.caught_up` (the end of the topic at start) before their first record.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from app.connection import aiokafka_options
from app.settings import Settings
from app.topic_reader import partitions_of
from schemas.overlay import OverlayRouting

log = logging.getLogger(__name__)


class RoutingFeed:
    def __init__(self, settings: Settings) -> None:
        self.topic = settings.kafka.topic_prefix + "overlay-routing"
        self._options = aiokafka_options(settings.kafka)
        self.routing: dict[str, OverlayRouting] = {}
        self.caught_up = asyncio.Event()

    def apply(self, value: bytes | None) -> None:
        """Keep the newest version of the record's scope (older or equal versions, which a
        re-sent record carries, change nothing)."""
        if value is None:
            return
        try:
            routing = OverlayRouting.from_json_bytes(value)
        except (ValueError, ValidationError) as exc:
            log.warning("overlay-routing record ignored: %s", exc)
            return
        current = self.routing.get(routing.scope)
        if current is None or routing.version > current.version:
            self.routing[routing.scope] = routing

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(**self._options, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            tps = [
                TopicPartition(self.topic, p)
                for p in await partitions_of(self._options, self.topic)
            ]
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            for tp, first in starts.items():
                consumer.seek(tp, first)
            while True:
                batch = await consumer.getmany(*tps, timeout_ms=500)
                for messages in batch.values():
                    for message in messages:
                        self.apply(message.value)
                if not self.caught_up.is_set():
                    positions = [await consumer.position(tp) for tp in tps]
                    if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                        self.caught_up.set()
        finally:
            await consumer.stop()
