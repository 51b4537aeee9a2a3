"""What every pipeline's agent does around its rules: tables co-partitioned with its source,
the fail-stop consume loop, dead letters, and the dedup index across rebalances.

A pipeline subclasses :class:`Pipeline`, creates its tables with :meth:`Pipeline.table` and
its outputs with :meth:`Pipeline.output`, and implements :meth:`Pipeline.handle` for one
source record. The decisions stay in each pipeline's ``rules``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import orjson
from faust.types import TP

from app.core.dedup import Position
from app.core.origin import REPARTITION_SUFFIX
from app.runtime.batches import batches_of, runs_by_partition
from app.runtime.connection import aiokafka_options
from app.runtime.dead_letters import DeadLetterSink, source_coordinates
from app.runtime.entity_bound import EntityBound
from app.runtime.failstop import fail_stop
from app.runtime.faust_app import Governor
from app.runtime.lanes import (
    REPARTITIONED,
    Lane,
    as_current,
    first_unhandled,
    handled_as_current,
    lane_of,
    passed_over,
)
from app.runtime.pipeline_state import PipelineState
from app.runtime.placement import Placement, TooLargeToForward
from app.runtime.producer import await_metadata
from app.runtime.retry import ride_out
from app.runtime.topic_admin import max_message_bytes
from app.runtime.topic_reader import partition_ends, read_range
from schemas.dead_letter import DeadLetterReason

log = logging.getLogger(__name__)
T = TypeVar("T")

STUCK_CHECKS = 6
"""Idle checks in a row at the same offset after which a partition is read back even though
Faust's consumer has not moved past it: behind for that long is stuck, not busy."""


class Stage(PipelineState, ABC):
    """One source topic, consumed by one Faust agent (one per lane): every offset handled
    once and in order, bad input dead-lettered, any other failure a fail-stop."""

    keyed_state = True
    """Whether records must be handled in their key's partition (:mod:`app.runtime.placement`);
    a stage that keeps no per-key state (the traffic router) takes them where they are."""

    def __init__(self, gov: Governor, name: str, source: str) -> None:
        super().__init__(gov, source)
        self.name = name
        self.metrics = gov.metrics
        self.source = gov.topic(source)
        self.dead_letters = DeadLetterSink(
            gov.topic("dead-letters"), name, gov.metrics, gov.settings.kafka.topic_prefix,
            gov.settings.worker.dead_letter_max_bytes,
        )  # fmt: skip
        self._outputs: list[Any] = []
        # Records removed by compaction leave holes in the offsets (see passed_over).
        compacted = "compact" in gov.catalogue[source].cleanup_policy.value
        self.lanes = [Lane(self.source, 0, compacted)]
        self._handling = asyncio.Lock()
        self._taking = False
        self._revocations = 0
        self._last_event_at = time.monotonic()
        self.placement: Placement | None = None
        repartition = source + REPARTITION_SUFFIX
        if self.keyed_state and repartition in gov.catalogue:
            forwards = Lane(gov.topic(repartition), REPARTITIONED, compacted=False)
            self.lanes.append(forwards)
            limit = partial(max_message_bytes, aiokafka_options(gov.settings.kafka), forwards.name)
            counter = gov.metrics.repartitioned.labels(topic=source)
            self.placement = Placement(gov.faust, forwards.name, counter, limit)

    async def admitted(
        self, bound: EntityBound, entity: str, position: Position, coordinates: dict[str, Any]
    ) -> bool:
        """Whether ``bound`` lets a record of ``entity`` in; dead-letters it if not."""
        if bound.admit(position.partition, entity):
            return True
        await self.dead_letter(
            coordinates, DeadLetterReason.ENTITY_LIMIT,
            f"{bound.name}: partition {position.partition % REPARTITIONED} holds its limit of"
            f" {bound.limit} entities; {entity!r} is not one of them",
        )  # fmt: skip
        return False

    def output(self, name: str) -> Any:
        """An output topic of this pipeline (its metadata is fetched before the first record)."""
        topic = self.gov.topic(name)
        self._outputs.append(topic)
        return topic

    def start_agent(self, agent_name: str) -> None:
        """Register the agent (one per lane); call once the tables and outputs exist."""
        self.gov.faust.agent(self.source, name=agent_name)(self._consume_source)
        if len(self.lanes) > 1:
            forwarded = self.lanes[1].topic
            self.gov.faust.agent(forwarded, name=f"{agent_name}-repartitioned")(
                self._consume_forwarded
            )
        for lane in self.lanes:
            self.gov.resume_points().watch(lane.name)
        self.gov.faust.on_partitions_revoked.connect(cast(Any, self._on_partitions_revoked))
        self.gov.faust.task(self._catch_up_when_idle)

    def position_of(self, message: Any) -> Position:
        """Where ``message`` sits, as state, outboxes and dedup segments record it."""
        return self.lanes[-1 if lane_of(message.topic) else 0].position_of(message)

    async def ready(self) -> None:
        """Wait for whatever the first record needs besides tables and outputs."""

    @abstractmethod
    async def handle(self, message: Any) -> None:
        """Process one source record; dead-letter bad input, never raise for it."""

    async def _consume_source(self, stream: Any) -> None:
        await self._consume(self.lanes[0], stream)

    async def _consume_forwarded(self, stream: Any) -> None:
        await self._consume(self.lanes[1], stream)

    async def _consume(self, lane: Lane, stream: Any) -> None:
        """Fail-stop: bad input is dead-lettered inside ``handle``; anything else that raises
        (a producer that cannot send, a bug in persisting) ends the process at once, before
        Faust can acknowledge the record (see :func:`app.runtime.failstop.fail_stop`).

        Records come as batches of what Faust delivered (:func:`batches_of`: while records
        keep coming, up to ``worker.batch_max_records`` and ``worker.batch_max_wait_ms``),
        acknowledged only after the whole batch is handled; each partition's run of a batch
        goes to :meth:`handle_batch` in offset order.
        """
        await await_metadata(
            self.gov.faust,
            [lane.name for lane in self.lanes]
            + [t.changelog_topic.get_topic_name() for t in self._tables]
            + [o.get_topic_name() for o in self._outputs],
        )
        await self.ready()
        log.info("%s pipeline takes records from %s", self.name, lane.name)
        self._taking = True
        worker = self.gov.settings.worker
        batches = batches_of(
            stream, worker.batch_max_records, worker.batch_max_wait_ms, worker.batch_idle_ms
        )
        async for events in batches:
            async with self._handling:
                try:
                    for run in runs_by_partition(events):
                        await self._take_run(lane, run)
                except Exception as exc:
                    fail_stop(self.name, exc)
                self._last_event_at = time.monotonic()

    async def _take_run(self, lane: Lane, events: Sequence[Any]) -> None:
        """Handle one partition's records of a batch in offset order: records passed over
        before one of them are read back and handled first, misplaced ones forwarded."""
        pending: list[Any] = []
        for event in events:
            message = event.message
            gap = self._gap_before(lane, message)
            if gap is not None:
                await self._handle_run(pending)
                pending = []
                await self._read_back(lane, message.partition, gap, message.offset)
            lane.expected[message.partition] = max(
                message.offset + 1, lane.expected.get(message.partition, 0)
            )
            if await self._forwarded(lane, message):
                continue
            pending.append(event)
        await self._handle_run(pending)

    async def _handle_run(self, events: Sequence[Any]) -> None:
        """:meth:`handle_batch` with the run's first event as Faust's current event (a
        table write takes its changelog partition from it; all the run's share it)."""
        if events:
            with as_current(events[0]):
                await self.handle_batch([event.message for event in events])

    async def handle_batch(self, messages: Sequence[Any]) -> None:
        """Process records of one partition, in offset order; by default one at a time."""
        for message in messages:
            await self.handle(message)

    async def _take(self, lane: Lane, message: Any) -> None:
        """Handle a record here, or forward a source record to its key's partition."""
        if not await self._forwarded(lane, message):
            await self.handle(message)

    async def _forwarded(self, lane: Lane, message: Any) -> bool:
        """Whether a source record was sent on to its key's partition (or dead-lettered as
        too large to forward) instead of being handled here."""
        placement = self.placement if lane.base == 0 else None
        try:
            return placement is not None and await placement.forward_if_misplaced(message)
        except TooLargeToForward as exc:
            reason = DeadLetterReason.RECORD_TOO_LARGE
            await self.dead_letter(source_coordinates(message), reason, f"cannot forward: {exc}")
            return True

    def _last_processed(self, lane: Lane, partition: int) -> int | None:
        """The newest offset of the lane's partition that durable state shows as processed."""
        known = [o.last_offset(partition + lane.base) for o in self._outboxes]
        if self.dedup is not None:
            known.append(self.dedup.last_offset(partition + lane.base))
        offsets = [k for k in known if k is not None]
        return max(offsets) if offsets else None

    def _gap_before(self, lane: Lane, message: Any) -> int | None:
        """The first of the source records passed over before ``message`` (to be read back
        and handled before it, so that no offset is skipped), or ``None``.

        After a SIGKILL and restart, faust-streaming 0.15 was seen (tests/integration,
        traffic pipeline, with other tests' load on the broker) to resume a partition at
        its end as of the kill, thousands of offsets after the last record the state
        holds: the records between were never given to the agent, yet their offsets had
        been committed. Seeking Faust's consumer back did not reliably re-deliver them
        (paused partitions), so the records are read directly, from
        :meth:`_next_unprocessed`, and handled in order before ``message``. Re-handling is
        idempotent, so reading back too far costs only time.
        """
        partition, offset = message.partition, message.offset
        expected = self._next_unprocessed(lane, partition)
        first = partition not in lane.expected
        if expected is None or not passed_over(offset, expected, first, lane.compacted):
            return None
        log.warning(
            "%s: %s[%d] delivered offset %d before offsets %d..%d: reading them back",
            self.name, message.topic, partition, offset, expected, offset - 1,
        )  # fmt: skip
        return expected

    async def _read_back(
        self,
        lane: Lane,
        partition: int,
        start: int,
        stop: int,
        owned: Callable[[], bool] = lambda: True,
    ) -> None:
        """Read the source records ``start <= offset < stop`` of ``partition`` directly and
        handle them in order, while ``owned()``; counted in governor_source_resyncs_total
        when there were any (a compacted range may hold none)."""
        options = aiokafka_options(self.gov.settings.kafka)
        records = await ride_out(
            partial(read_range, options, lane.name, partition, start, stop),
            f"{self.name}: reading back {lane.name}[{partition}]",
            self.gov.settings.worker.broker_outage_deadline_s,
        )
        if records:
            self.metrics.order_resyncs.labels(pipeline=self.name).inc()
        for record in records:
            if not owned():
                return
            with handled_as_current(record):
                await self._take(lane, record)
            lane.expected[partition] = record.offset + 1

    def _next_unprocessed(self, lane: Lane, partition: int) -> int | None:
        """The first offset of ``partition`` this worker still has to handle: after the
        last record it handled, or before any, :func:`first_unhandled`; ``None`` when
        nothing is known of the partition."""
        delivered = lane.expected.get(partition)
        if delivered is not None:
            return delivered
        resume = self.gov.resume_points().get(lane.name, partition)
        return first_unhandled(self._last_processed(lane, partition), resume)

    async def _catch_up_when_idle(self) -> None:
        """Every ``worker.idle_catch_up_s``, while no record has arrived for that long,
        handle the records of assigned partitions that Faust passed over (a partition
        counts as passed over when two checks in a row find the same first unprocessed
        offset with records after it).

        :meth:`_gap_before` finds a passed-over range when the partition's next record
        arrives; a partition that gets no more records would keep it unprocessed. Seen in
        tests/integration/test_fail_stop.py: the records already in the topic never
        reached a replacement worker's agent.
        """
        interval = self.gov.settings.worker.idle_catch_up_s
        while True:
            await asyncio.sleep(interval)
            idle = time.monotonic() - self._last_event_at >= interval
            if not (self._taking and idle) or self.gov.faust.rebalancing:
                continue
            for lane in self.lanes:
                try:
                    await self._catch_up(lane)
                except Exception as exc:  # the broker unreachable: try again next time
                    log.warning("%s: idle catch-up check failed: %r", self.name, exc)

    def _still_owns(self, lane: Lane, partition: int) -> Callable[[], bool]:
        """Whether the partition is still this worker's and no rebalance is under way, as a
        check that stays cheap per record read back: asked of Faust's assignment once, then
        true while nothing is revoked (asking per record cost 6 % of a busy worker)."""
        app = self.gov.faust
        if app.rebalancing or TP(lane.name, partition) not in app.consumer.assignment():
            return lambda: False
        revocations = self._revocations
        return lambda: not app.rebalancing and self._revocations == revocations

    async def _passed_over(self, lane: Lane, partition: int, first: int) -> bool:
        """Whether Faust's consumer has moved past ``first`` (it returned, or skipped, the
        records there) although the pipeline never handled them. A consumer still at or
        before ``first`` is only behind (a busy worker can leave a source without a record
        for longer than the idle interval): it will deliver them, and reading them back
        as well would do the work twice, unless it stays there for ``STUCK_CHECKS``
        checks."""
        position = await self.gov.faust.consumer.position(TP(lane.name, partition))
        return position is not None and position > first

    async def _catch_up(self, lane: Lane) -> None:
        """Handle, in order, the records of each assigned partition that made no progress
        since the previous check although records wait past its first unprocessed offset;
        stop at a rebalance (the new owner's check takes over)."""
        topic = lane.name
        options = aiokafka_options(self.gov.settings.kafka)
        known: dict[int, int] = {}
        for tp in self.gov.faust.consumer.assignment():
            if (
                tp.topic == topic
                and (first := self._next_unprocessed(lane, tp.partition)) is not None
            ):
                known[tp.partition] = first
        if not known:
            lane.waiting.clear()
            return
        ends = await partition_ends(options, topic, sorted(known))
        behind = {p: first for p, first in known.items() if ends[p] > first}
        stalled = {p: first for p, first in behind.items() if lane.waiting.get(p) == first}
        lane.stalled_checks = {p: lane.stalled_checks.get(p, 0) + 1 for p in stalled}
        lane.waiting = behind
        for partition, first in sorted(stalled.items()):
            stuck = lane.stalled_checks[partition] >= STUCK_CHECKS
            if not stuck and not await self._passed_over(lane, partition, first):
                continue
            async with self._handling:
                owned = self._still_owns(lane, partition)
                if self._next_unprocessed(lane, partition) != first or not owned():
                    continue
                end = ends[partition]
                log.warning(
                    "%s: %s[%d] offsets %d..%d were never delivered: reading them",
                    self.name, topic, partition, first, end - 1,
                )  # fmt: skip
                try:
                    await self._read_back(lane, partition, first, end, owned)
                except Exception as exc:
                    fail_stop(self.name, exc)
                if not owned():
                    return
                lane.expected[partition] = max(end, lane.expected.get(partition, end))

    async def _on_partitions_revoked(self, sender: Any, revoked: Iterable[Any], **_: Any) -> None:
        """A revoked partition's segments (and outbox) may change elsewhere: rebuild if it
        comes back."""
        self._revocations += 1
        if self.placement is not None:
            self.placement.forget()
        lanes = {lane.name: lane for lane in self.lanes}
        for tp in revoked:
            if (lane := lanes.get(tp.topic)) is not None:
                lane.expected.pop(tp.partition, None)
                lane.waiting.pop(tp.partition, None)
                self.drop_indexes(tp.partition + lane.base)

    async def decode(self, message: Any, parse: Callable[[bytes], T]) -> T | None:
        """The record's value parsed by ``parse``; ``None`` when it is not JSON or not the
        contract, after dead-lettering it with its original bytes and the reason."""
        try:
            return parse(message.value)
        except orjson.JSONDecodeError as exc:
            reason, error = DeadLetterReason.UNDECODABLE, str(exc)
        except ValueError as exc:  # pydantic's ValidationError included
            reason, error = DeadLetterReason.INVALID_SCHEMA, str(exc)
        await self.dead_letter(source_coordinates(message), reason, error)
        return None

    async def dead_letter(
        self, coordinates: dict[str, Any], reason: DeadLetterReason, error: str
    ) -> None:
        """Send a record to the dead-letter topic and count it."""
        self.metrics.records.labels(pipeline=self.name, outcome="dead_lettered").inc()
        await self.dead_letters.send(reason=reason, error=error, **coordinates)
