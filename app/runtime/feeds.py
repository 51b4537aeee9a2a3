"""Compacted topics every worker reads whole: small reference data that each record may need
whatever its partition (overlay routing, grid intensity, facilities' instruments).

A feed reads its topic from the start, applies every record in offset order and then keeps
following it; :attr:`CompactedFeed.caught_up` is set once it has reached the end the topic
had when the feed started, and pipelines wait for it before their first record. What a
record decided with is stated in its output (the routing, the intensity and since when),
since a feed is only eventually consistent with the stream it serves.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from app.core.grid import GridIntensityHistory
from app.runtime.connection import aiokafka_options
from app.runtime.retry import ride_out
from app.runtime.topic_reader import partitions_of
from app.settings import Settings
from schemas.carbon_budget import CarbonBudget, ContractualInstrument, GridIntensity

log = logging.getLogger(__name__)


class CompactedFeed(ABC):
    """Follows one compacted topic from its beginning."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = settings.kafka.topic_prefix + topic
        self._options = aiokafka_options(settings.kafka)
        self._deadline_s = settings.worker.broker_outage_deadline_s
        self.caught_up = asyncio.Event()

    @abstractmethod
    def apply(self, value: bytes | None) -> None:
        """Apply one record's value (``None`` for a tombstone)."""

    def _apply_logged(self, value: bytes | None) -> None:
        try:
            self.apply(value)
        except (ValueError, ValidationError) as exc:
            log.warning("%s record ignored: %s", self.topic, exc)

    async def _open(self) -> tuple[AIOKafkaConsumer, list[TopicPartition], dict[Any, int]]:
        """A consumer at the beginning of every partition, and the ends to catch up to."""
        consumer = AIOKafkaConsumer(**self._options, enable_auto_commit=False, group_id=None)
        try:
            await consumer.start()
            tps = [
                TopicPartition(self.topic, p)
                for p in await partitions_of(self._options, self.topic)
            ]
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
        except BaseException:
            await consumer.stop()
            raise
        for tp, first in starts.items():
            consumer.seek(tp, first)
        return consumer, tps, ends

    async def run(self) -> None:
        """Read the topic for the life of the worker; a broker outage while starting is
        ridden out (a feed task that raised would crash the whole app)."""
        consumer, tps, ends = await ride_out(
            self._open, f"{self.topic} feed: starting", self._deadline_s
        )
        try:
            while True:
                batch = await consumer.getmany(*tps, timeout_ms=500)
                for messages in batch.values():
                    for message in messages:
                        self._apply_logged(message.value)
                if not self.caught_up.is_set():
                    positions = [await consumer.position(tp) for tp in tps]
                    if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                        log.info("%s feed caught up at offsets %s", self.topic, positions)
                        self.caught_up.set()
        finally:
            await consumer.stop()


class GridIntensityFeed(CompactedFeed):
    """grid-intensity: every zone's intensity history."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "grid-intensity")
        self.history = GridIntensityHistory()

    def apply(self, value: bytes | None) -> None:
        if value is not None:
            self.history.add(GridIntensity.from_json_bytes(value))


class InstrumentsFeed(CompactedFeed):
    """carbon-budgets: each facility's contractual instruments (newest budget governs)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "carbon-budgets")
        self.instruments: dict[str, tuple[ContractualInstrument, ...]] = {}

    def apply(self, value: bytes | None) -> None:
        if value is not None:
            budget = CarbonBudget.from_json_bytes(value)
            self.instruments[budget.facility_id] = budget.instruments
