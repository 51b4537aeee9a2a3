"""At most so many entities per table partition: state that producers' ids cannot grow
without bound.

A producer names the entities Governor keeps state for (a facility, a site, a tenant, a
platform's endpoint), so random ids would grow a worker's tables until it runs out of memory
and slow every recovery on the way. Event-time expiry cannot bound that: a flood of new ids
within one hour of event time outlives any sensible time to live. So each entity table has a
limit per partition. A record for an entity the partition already holds always passes; a
record that would add one beyond the limit is dead-lettered (reason ``entity_limit``) before
it touches any state, so the entities already there keep working through a flood of new
ids, and nothing is dropped silently (``governor dlq republish`` once the limit is raised).

Per partition, not per worker: a partition's entities are the same whichever worker holds
it, so whether a record passes does not depend on the assignment. The count comes from the
table itself (each key lives in its murmur2 partition, see :mod:`app.runtime.placement`),
indexed once per partition after recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from aiokafka.partitioner import murmur2

from app.runtime.lanes import REPARTITIONED
from app.runtime.state import JOURNAL_PREFIX

log = logging.getLogger(__name__)


def home_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as Faust and the Java client)
    gives ``key``: where its table entries live."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def is_entity_key(key: str) -> bool:
    """Table keys that name an entity (not an outbox or dedup journal entry)."""
    return not key.startswith(JOURNAL_PREFIX)


class EntityBound:
    """The entity keys of one table, per partition, held to ``limit`` per partition."""

    def __init__(
        self,
        name: str,
        keys: Callable[[], Iterable[str]],
        partitions: int,
        limit: int,
        entity_of: Callable[[str], str | None] = lambda k: k if is_entity_key(k) else None,
    ) -> None:
        self.name = name
        self.limit = limit
        self._table_keys = keys
        self._partitions = partitions
        self._entity_of = entity_of
        self._held: dict[int, set[str]] = {}

    def admit(self, partition: int, entity: str) -> bool:
        """Whether a record of ``entity`` may be handled in ``partition`` (a position's
        partition; a forwarded record's counts as its table partition). Admitting a new
        entity counts it at once: a record that then writes nothing leaves it counted until
        the partition is indexed again."""
        held = self._index(partition % REPARTITIONED)
        if entity in held:
            return True
        if len(held) >= self.limit:
            return False
        held.add(entity)
        return True

    def has_room_for(self, entity: str) -> bool:
        """Whether a record of ``entity`` would be admitted now, counting nothing (for a
        synchronous HTTP path, which refuses up front rather than publish a record that
        would be dead-lettered)."""
        held = self._index(home_partition(entity, self._partitions))
        return entity in held or len(held) < self.limit

    def held(self, partition: int) -> int:
        """Entities counted in ``partition``."""
        return len(self._index(partition % REPARTITIONED))

    def fill(self) -> float:
        """Entities in the fullest indexed partition over the limit (the metric)."""
        return max(map(len, self._held.values()), default=0) / self.limit

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition: it is indexed again if it comes back."""
        self._held.pop(partition % REPARTITIONED, None)

    def _index(self, partition: int) -> set[str]:
        held = self._held.get(partition)
        if held is None:
            held = self._held[partition] = set()
            for key in list(self._table_keys()):
                entity = self._entity_of(key)
                if entity is not None and home_partition(entity, self._partitions) == partition:
                    held.add(entity)
            log.info("entities %s[%d]: %d of at most %d", self.name, partition, len(held),
                     self.limit)  # fmt: skip
        return held
