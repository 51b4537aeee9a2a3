"""The traffic policy in force on this worker, read from the traffic-policies topic.

Every worker reads the whole (single-partition, compacted) topic from its start and judges
each record in offset order with :func:`agents.traffic.rules.policy.judge_record`, so all
workers that have read to the same offset hold the same policy. The traffic agents wait for
:attr:`PolicyFeed.caught_up` (the end of the topic as it was at start) before their first
record: a restarted worker never decides under an older policy than the one it left.

Policies never go back. ``traffic-policies`` is compacted and keyed by hash, so a tombstone
under the newest policy's hash and a compaction would leave only older versions to replay.
So every policy a worker applies is first written to ``traffic-policies-applied`` (Governor's
alone, keyed by hash, acknowledged before the policy governs), and a starting worker takes
the newest verified policy there as its floor before it reads ``traffic-policies``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.traffic.metrics import TrafficMetrics
from agents.traffic.rules.policy import (
    ActivePolicy,
    Judgement,
    Verdict,
    judge_record,
    newest_verified,
    trusted_keys,
)
from app.runtime.connection import aiokafka_options
from app.runtime.retry import ride_out
from app.settings import Settings

log = logging.getLogger(__name__)

KEPT_JUDGEMENTS = 1_000


class PolicyFeed:
    """Holds :attr:`active` and the judgements of the records read so far."""

    def __init__(self, settings: Settings, metrics: TrafficMetrics) -> None:
        self.topic = settings.kafka.topic_prefix + "traffic-policies"
        self.applied_topic = settings.kafka.topic_prefix + "traffic-policies-applied"
        self._recorded: set[str] = set()
        self._producer: AIOKafkaProducer | None = None
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
        """Judge one record and put an applied policy in force (a tombstone is skipped: a
        compacted-away key is no policy). :meth:`run` records it durably first."""
        candidate, judgement = self.judge(offset, value)
        if candidate is not None:
            self.activate(candidate)
        return judgement

    def judge(
        self, offset: int, value: bytes | None
    ) -> tuple[ActivePolicy | None, Judgement | None]:
        """The policy ``value`` would put in force (None if it would not) and its judgement."""
        self.next_offset = offset + 1
        if value is None:
            return None, None
        candidate, judgement = judge_record(self.active, offset, value, self.trusted)
        self.judgements.append(judgement)
        if judgement.rejected:
            self._metrics.policy_rejections.labels(reason=judgement.verdict.value).inc()
            log.warning("traffic policy record at offset %d refused: %s", offset, judgement.message)
        return (candidate if judgement.verdict is Verdict.APPLIED else None), judgement

    def activate(self, policy: ActivePolicy) -> None:
        """Put ``policy`` in force on this worker."""
        self.active = policy
        log.info("traffic policy %s (%s) in force", policy.policy.version, policy.hash)
        self._publish_active()

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
        floor = await ride_out(self._read_floor, f"{self.applied_topic}: reading", self._deadline_s)
        if floor is not None and floor.policy.version_tuple() > self.active.policy.version_tuple():
            self.activate(floor)
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
                    candidate, _ = self.judge(message.offset, message.value)
                    if candidate is not None:
                        await self._record(candidate.hash, message.value)
                        self.activate(candidate)
                if not batch:
                    self.next_offset = max(self.next_offset, await consumer.position(tp))
                await self._notify()
                if self.next_offset >= end_at_start:
                    self.caught_up.set()
        finally:
            await consumer.stop()
            if self._producer is not None:
                await self._producer.stop()

    async def _read_floor(self) -> ActivePolicy | None:
        """The newest verified policy any worker applied (None if there is none)."""
        tp = TopicPartition(self.applied_topic, 0)
        consumer, start, end = await self._open(tp)
        values: list[tuple[int, bytes]] = []
        try:
            consumer.seek(tp, start)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                values += [(m.offset, m.value) for m in batch.get(tp, []) if m.value is not None]
        finally:
            await consumer.stop()
        floor, hashes = newest_verified(values, self.trusted)
        self._recorded.update(hashes)
        if floor is not None:
            log.info("traffic policy floor: %s (%s)", floor.policy.version, floor.hash)
        return floor

    async def _record(self, digest: str, value: bytes) -> None:
        """Write an applied policy to the Governor-only topic, acknowledged, once per hash."""
        if digest in self._recorded:
            return
        if self._producer is None:
            self._producer = AIOKafkaProducer(**self._options, acks="all")
            await ride_out(self._producer.start, "policy recorder: starting", self._deadline_s)
        send = partial(self._producer.send_and_wait, self.applied_topic, value, digest.encode())
        await ride_out(send, f"{self.applied_topic}: recording", self._deadline_s)
        self._recorded.add(digest)

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
        self._metrics.policy_info.clear()
        self._metrics.policy_info.labels(
            version=self.active.policy.version, policy_hash=self.active.hash
        ).set(1)
        budgets = self._metrics.slo_error_budget
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
