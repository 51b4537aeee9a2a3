"""The one template of a pipeline's ``handle``: the steps every record its rules decide takes,
with typed hooks (Generic over the parsed event and the rules' outcome)."""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.core.checks import Rejection
from app.core.dedup import Position
from app.runtime.dead_letters import source_coordinates
from app.runtime.entity_bound import EntityBound
from app.runtime.stage import Stage
from schemas.dead_letter import DeadLetterReason

log = logging.getLogger(__name__)

EventT = TypeVar("EventT")
"""What a pipeline's source record holds once parsed (its contract)."""
OutcomeT = TypeVar("OutcomeT")
"""What the pipeline's rules decided for one record."""

ApplyBatch = Callable[[], Awaitable[None]]
"""What a batch decided at once still has to do: persist, send and count it."""


@dataclass(frozen=True, slots=True)
class Admitted(Generic[EventT]):
    """A source record past decoding, its checks and its entity bound: ready for the rules."""

    message: Any
    event: EventT
    position: Position
    coordinates: dict[str, Any]
    started: float
    """``time.perf_counter()`` when its handling began."""


class Pipeline(Stage, Generic[EventT, OutcomeT]):
    """A stage whose records the pipeline's pure rules decide: the one template of
    :meth:`handle`.

    Every record takes the same steps (docs/architecture.md): decode (:meth:`parse`), check
    (:meth:`check`), admit (:meth:`entity`), decide inside a guard (:meth:`decide`: a rules
    bug dead-letters the record), then :meth:`apply` (persist, send, count) outside it: a
    failure to persist or send is the infrastructure's, and fail-stops the worker before the
    offset can be committed. Records come in batches of one partition
    (:meth:`handle_batch`); a pipeline may decide a batch at once (:meth:`decide_together`).
    """

    async def handle(self, message: Any) -> None:
        """Process one source record; dead-letter bad input, never raise for it."""
        admitted = await self.admit(message)
        if admitted is not None:
            await self.decide_and_apply(admitted)

    async def handle_batch(self, messages: Sequence[Any]) -> None:
        """Process records of one partition in offset order: each is decoded, checked and
        admitted, then :meth:`decide_batch` decides and applies the admitted ones."""
        admitted: list[Admitted[EventT]] = []
        for message in messages:
            item = await self.admit(message)
            if item is not None:
                admitted.append(item)
        if admitted:
            await self.decide_batch(admitted)

    async def decide_batch(self, batch: Sequence[Admitted[EventT]]) -> None:
        """Decide and apply admitted records of one partition, in offset order: together
        when the pipeline can (:meth:`decide_together`), else one at a time.

        One at a time, too: a batch of one; a batch with records forwarded from another
        partition (they carry their origin's watermark, which one batch's stamp cannot
        hold); and a batch the rules fail on, so that only the record they fail on is
        dead-lettered (deciding together writes nothing, so the batch starts again clean).
        """
        if len(batch) > 1 and all(item.position.forwarded_from is None for item in batch):
            try:
                apply = self.decide_together(batch)
            except Exception:  # a rules bug: find the record, keep the rest
                log.exception("%s rules failed on a batch: deciding its records alone", self.name)
                apply = None
            if apply is not None:
                await apply()
                processing = self.metrics.processing.labels(pipeline=self.name)
                done = time.perf_counter()
                for item in batch:
                    processing.observe(done - item.started)
                return
        for item in batch:
            await self.decide_and_apply(item)

    def decide_together(self, batch: Sequence[Admitted[EventT]]) -> ApplyBatch | None:
        """Decide several admitted records of one partition at once, in offset order, each
        against the state the records before it left (nothing is written yet), and return
        what persists, sends and counts them; ``None`` when the pipeline decides one record
        at a time. A pipeline whose rules gain from seeing many records of a key at once
        overrides it; the decisions must be those of one at a time."""
        return None

    async def admit(self, message: Any) -> Admitted[EventT] | None:
        """The record decoded, checked and past its entity bound; ``None`` once it has been
        dead-lettered."""
        started = time.perf_counter()
        coordinates = source_coordinates(message)
        stamp_ms = coordinates["timestamp_ms"]
        event = await self.decode(message, lambda value: self.parse(value, message.key, stamp_ms))
        if event is None:
            return None
        rejection = self.check(message.key, event, coordinates["timestamp_ms"])
        if rejection is not None:
            await self.dead_letter(coordinates, rejection.reason, rejection.message)
            return None
        position = self.position_of(message)
        admission = self.entity(event)
        if admission is not None:
            bound, entity = admission
            if not await self.admitted(bound, entity, position, coordinates):
                return None
        return Admitted(message, event, position, coordinates, started)

    async def decide_and_apply(self, item: Admitted[EventT]) -> None:
        """Decide one admitted record inside a guard (a rules bug dead-letters it), then
        apply the outcome outside it."""
        message = item.message
        try:
            outcome = self.decide(item.event, item.position)
        except Exception as exc:  # a rules bug must not stop the stream; the record is kept
            log.exception(
                "%s rules failed on %s[%d]@%d",
                self.name, message.topic, message.partition, message.offset,
            )  # fmt: skip
            await self.dead_letter(item.coordinates, DeadLetterReason.PROCESSING_ERROR, repr(exc))
            return
        await self.apply(item.event, outcome, item.position)
        for failure in self.failures(outcome):  # parts the rules failed on; the rest applied
            await self.dead_letter(item.coordinates, DeadLetterReason.PROCESSING_ERROR, failure)
        self.metrics.processing.labels(pipeline=self.name).observe(
            time.perf_counter() - item.started
        )

    @abstractmethod
    def parse(self, value: bytes, key: bytes | None, timestamp_ms: int | None) -> EventT:
        """The record's value as the pipeline's contract (some forms take their entity from
        the key, or their time from the record); raises ``orjson.JSONDecodeError`` or
        ``ValueError`` (pydantic's included) for a value that is not."""

    def check(self, key: bytes | None, event: EventT, timestamp_ms: int | None) -> Rejection | None:
        """What the rules need of the record itself (its key names its entity, its event
        time is not ahead of its record's): a rejection dead-letters it."""
        return None

    def entity(self, event: EventT) -> tuple[EntityBound, str] | None:
        """The entity bound the record must pass and its entity, if it adds state per
        entity."""
        return None

    @abstractmethod
    def decide(self, event: EventT, position: Position) -> OutcomeT:
        """The rules' decision for the record at ``position`` (pure rules, current state)."""

    @abstractmethod
    async def apply(self, event: EventT, outcome: OutcomeT, position: Position) -> None:
        """Persist the outcome (outbox entries before the state they come from), send its
        outputs and count the record."""

    def failures(self, outcome: OutcomeT) -> Sequence[str]:
        """Parts of the record the rules failed on while the rest was decided and applied
        (one record may release many runs): each is dead-lettered with the record."""
        return ()
