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


class TopicFollower(ABC):
    """Follows one topic from its beginning, record by record in offset order."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = settings.kafka.topic_prefix + topic
        self._options = aiokafka_options(settings.kafka)
        self._deadline_s = settings.worker.broker_outage_deadline_s
        self.caught_up = asyncio.Event()

    async def prepare(self) -> None:
        """Before the topic is read (a feed that starts from a floor of its own reads it)."""
        return None

    @abstractmethod
    async def take(self, offset: int, value: bytes | None) -> None:
        """One record of the topic (``None`` for a tombstone), in offset order."""

    async def polled(self, positions: dict[int, int]) -> None:
        """After each poll, with the next offset of each partition (everything before it
        has been taken, compaction's gaps included)."""
        return None

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
        await self.prepare()
        consumer, tps, ends = await ride_out(
            self._open, f"{self.topic} feed: starting", self._deadline_s
        )
        try:
            while True:  # caught up is checked before the first poll: a topic may be empty
                positions = {tp.partition: await consumer.position(tp) for tp in tps}
                await self.polled(positions)
                if not self.caught_up.is_set() and all(
                    positions[tp.partition] >= ends[tp] for tp in tps
                ):
                    log.info("%s feed caught up at offsets %s", self.topic, positions)
                    self.caught_up.set()
                batch = await consumer.getmany(*tps, timeout_ms=500)
                for messages in batch.values():
                    for message in messages:
                        await self.take(message.offset, message.value)
        finally:
            await consumer.stop()


class CompactedFeed(TopicFollower):
    """Reference data: each record's value applied; a value it refuses is logged and
    skipped (reference data never stops a worker)."""

    @abstractmethod
    def apply(self, value: bytes | None) -> None:
        """Apply one record's value (``None`` for a tombstone)."""

    async def take(self, offset: int, value: bytes | None) -> None:
        try:
            self.apply(value)
        except (ValueError, ValidationError) as exc:
            log.warning("%s record ignored: %s", self.topic, exc)


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
