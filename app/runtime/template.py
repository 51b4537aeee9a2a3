"""The one template of a pipeline's ``handle``: the steps every record its rules decide takes,
with typed hooks (Generic over the parsed event and the rules' outcome)."""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Sequence
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


class Pipeline(Stage, Generic[EventT, OutcomeT]):
    """A stage whose records the pipeline's pure rules decide: the one template of
    :meth:`handle`.

    Every record takes the same steps (docs/architecture.md): decode (:meth:`parse`), check
    (:meth:`check`), admit (:meth:`entity`), decide inside a guard (:meth:`decide`: a rules
    bug dead-letters the record), then :meth:`apply` (persist, send, count) outside it: a
    failure to persist or send is the infrastructure's, and fail-stops the worker before the
    offset can be committed.
    """

    async def handle(self, message: Any) -> None:
        """Process one source record; dead-letter bad input, never raise for it."""
        started = time.perf_counter()
        coordinates = source_coordinates(message)
        stamp_ms = coordinates["timestamp_ms"]
        event = await self.decode(message, lambda value: self.parse(value, message.key, stamp_ms))
        if event is None:
            return
        rejection = self.check(message.key, event, coordinates["timestamp_ms"])
        if rejection is not None:
            await self.dead_letter(coordinates, rejection.reason, rejection.message)
            return
        position = self.position_of(message)
        admission = self.entity(event)
        if admission is not None:
            bound, entity = admission
            if not await self.admitted(bound, entity, position, coordinates):
                return
        try:
            outcome = self.decide(event, position)
        except Exception as exc:  # a rules bug must not stop the stream; the record is kept
            log.exception(
                "%s rules failed on %s[%d]@%d",
                self.name, message.topic, message.partition, message.offset,
            )  # fmt: skip
            await self.dead_letter(coordinates, DeadLetterReason.PROCESSING_ERROR, repr(exc))
            return
        await self.apply(event, outcome, position)
        for failure in self.failures(outcome):  # parts the rules failed on; the rest applied
            await self.dead_letter(coordinates, DeadLetterReason.PROCESSING_ERROR, failure)
        self.metrics.processing.labels(pipeline=self.name).observe(time.perf_counter() - started)

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
