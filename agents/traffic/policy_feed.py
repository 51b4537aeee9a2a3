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
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from agents.traffic.metrics import TrafficMetrics
from agents.traffic.rules.policy import (
    ActivePolicy,
    Judgement,
    Verdict,
    judge_record,
    newest_verified,
    trusted_keys,
)
from app.runtime.feeds import TopicFollower
from app.runtime.retry import ride_out
from app.runtime.topic_reader import read_partition
from app.settings import Settings

log = logging.getLogger(__name__)

KEPT_JUDGEMENTS = 1_000
APPLIED_TOPIC = "traffic-policies-applied"

Publish = Callable[[str, bytes, bytes], Awaitable[Any]]
"""Publish a record (catalogue topic name, key, value) and wait for the broker's
acknowledgement (:meth:`app.runtime.faust_app.Governor.publish`)."""


class PolicyFeed(TopicFollower):
    """Holds :attr:`active` and the judgements of the records read so far."""

    def __init__(self, settings: Settings, metrics: TrafficMetrics, publish: Publish) -> None:
        super().__init__(settings, "traffic-policies")
        self.applied_topic = settings.kafka.topic_prefix + APPLIED_TOPIC
        self._recorded: set[str] = set()
        self._publish = publish
        self._metrics = metrics
        self.trusted = trusted_keys(settings.traffic.public_keys())
        self.active = ActivePolicy.of(settings.traffic.policy, "settings")
        self.judgements: deque[Judgement] = deque(maxlen=KEPT_JUDGEMENTS)
        self.next_offset = 0
        self._advanced = asyncio.Condition()
        self._publish_active()

    def apply(self, offset: int, value: bytes | None) -> Judgement | None:
        """Judge one record and put an applied policy in force (a tombstone is skipped: a
        compacted-away key is no policy). :meth:`take` records it durably first."""
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

    async def prepare(self) -> None:
        """Start from the newest verified policy any worker applied, if newer than the
        settings' (a compacted ``traffic-policies`` may no longer hold it)."""
        floor = await ride_out(self._read_floor, f"{self.applied_topic}: reading", self._deadline_s)
        if floor is not None and floor.policy.version_tuple() > self.active.policy.version_tuple():
            self.activate(floor)

    async def take(self, offset: int, value: bytes | None) -> None:
        """Judge one record; a policy to apply is recorded durably before it governs."""
        candidate, _ = self.judge(offset, value)
        if candidate is not None and value is not None:
            await self._record(candidate.hash, value)
            self.activate(candidate)

    async def polled(self, positions: dict[int, int]) -> None:
        """Every record before the partition's position has been judged: wake the waiters."""
        self.next_offset = max(self.next_offset, positions.get(0, 0))
        await self._notify()

    async def _read_floor(self) -> ActivePolicy | None:
        """The newest verified policy any worker applied (None if there is none)."""
        found, _ = await read_partition(self._options, self.applied_topic, 0)
        values = [(offset, value) for offset, value in found if value is not None]
        floor, hashes = newest_verified(values, self.trusted)
        self._recorded.update(hashes)
        if floor is not None:
            log.info("traffic policy floor: %s (%s)", floor.policy.version, floor.hash)
        return floor

    async def _record(self, digest: str, value: bytes) -> None:
        """Write an applied policy to the Governor-only topic, acknowledged, once per hash."""
        if digest in self._recorded:
            return
        send = partial(self._publish, APPLIED_TOPIC, digest.encode(), value)
        await ride_out(send, f"{self.applied_topic}: recording", self._deadline_s)
        self._recorded.add(digest)

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
