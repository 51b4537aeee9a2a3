"""The traffic policy in force on this worker, read from the traffic-policies topic.

Every worker reads the whole (single-partition, compacted) topic from its start and judges
each record in offset order with :func:`app.rules.traffic.policy.judge_record`, so all
workers that have read to the same offset hold the same policy. The traffic agents wait for
:attr:`PolicyFeed.caught_up` (the end of the topic as it was at start) before their first
record: a restarted worker never decides under an older policy than the one it left.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.connection import aiokafka_options
from app.metrics import Metrics
from app.rules.traffic.policy import ActivePolicy, Judgement, judge_record, trusted_keys
from app.runtime.retry import ride_out
from app.settings import Settings

log = logging.getLogger(__name__)

KEPT_JUDGEMENTS = 1_000


class PolicyFeed:
    """Holds :attr:`active` and the judgements of the records read so far."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.topic = settings.kafka.topic_prefix + "traffic-policies"
        self._options = aiokafka_options(settings.kafka)
        self._deadline_s = settings.worker.broker_outage_deadline_s
        self._metrics = metrics
        self.trusted = trusted_keys(settings.traffic.public_keys())
        self.active = ActivePolicy.of(settings.traffic.policy, "settings")
        self.judgements: deque[Judgement] = deque(maxlen=KEPT_JUDGEMENTS)
        self.next_offset = 0
        self.caught_up = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._publish_active()

    def apply(self, offset: int, value: bytes | None) -> Judgement | None:
        """Judge one record (a tombstone is skipped: a compacted-away key is no policy)."""
        self.next_offset = offset + 1
        if value is None:
            return None
        self.active, judgement = judge_record(self.active, offset, value, self.trusted)
        self.judgements.append(judgement)
        if judgement.rejected:
            self._metrics.traffic_policy_rejections.labels(reason=judgement.verdict.value).inc()
            log.warning("traffic policy record at offset %d refused: %s", offset, judgement.message)
        elif judgement.verdict.value == "applied":
            log.info("traffic policy %s (%s) in force", judgement.version, judgement.policy_hash)
            self._publish_active()
        return judgement

    def judgement_at(self, offset: int) -> Judgement | None:
        for judgement in self.judgements:
            if judgement.offset == offset:
                return judgement
        return None

    async def wait_past(self, offset: int) -> None:
        """Until the record at ``offset`` has been judged."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self.next_offset > offset)

    async def run(self) -> None:
        """Read the topic for the life of the worker."""
        tp = TopicPartition(self.topic, 0)
        consumer, start, end_at_start = await ride_out(
            partial(self._open, tp), f"{self.topic} feed: starting", self._deadline_s
        )
        try:
            consumer.seek(tp, start)
            self.next_offset = start
            if start >= end_at_start:
                self.caught_up.set()
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for message in batch.get(tp, []):
                    self.apply(message.offset, message.value)
                if not batch:
                    self.next_offset = max(self.next_offset, await consumer.position(tp))
                await self._notify()
                if self.next_offset >= end_at_start:
                    self.caught_up.set()
        finally:
            await consumer.stop()

    async def _open(self, tp: TopicPartition) -> tuple[AIOKafkaConsumer, int, int]:
        """A consumer assigned ``tp``, with its beginning and end offsets now."""
        consumer = AIOKafkaConsumer(**self._options, enable_auto_commit=False, group_id=None)
        try:
            await consumer.start()
            consumer.assign([tp])
            start = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
        except BaseException:
            await consumer.stop()
            raise
        return consumer, start, end

    async def _notify(self) -> None:
        async with self._advanced:
            self._advanced.notify_all()

    def _publish_active(self) -> None:
        self._metrics.traffic_policy_info.clear()
        self._metrics.traffic_policy_info.labels(
            version=self.active.policy.version, policy_hash=self.active.hash
        ).set(1)
        budgets = self._metrics.traffic_slo_error_budget
        budgets.clear()
        for contract in self.active.policy.contracts:
            label = self._metrics.contract_label(contract.contract_id)
            budgets.labels(contract=label).set(contract.error_budget)

    def status(self) -> dict[str, Any]:
        """The policy in force and the newest judgements, for the HTTP API."""
        return {
            "version": self.active.policy.version,
            "policy_hash": self.active.hash,
            "source": self.active.source,
            "contracts": len(self.active.policy.contracts),
            "read_up_to_offset": self.next_offset,
            "caught_up": self.caught_up.is_set(),
            "recent_judgements": [
                {
                    "offset": j.offset,
                    "verdict": j.verdict.value,
                    "message": j.message,
                    "version": j.version,
                    "policy_hash": j.policy_hash,
                }
                for j in list(self.judgements)[-20:]
            ],
        }
