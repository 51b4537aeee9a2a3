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

from murmurhash2 import murmurhash2

from app.runtime.lanes import REPARTITIONED
from app.runtime.state import BOOKKEEPING_PREFIX, JOURNAL_PREFIX

log = logging.getLogger(__name__)


KAFKA_MURMUR2_SEED = 0x9747B28C
"""The seed of Kafka's murmur2 partitioner (Java's ``Utils.murmur2``, aiokafka's
``murmur2``)."""


def home_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as Faust and the Java client)
    gives ``key``: where its table entries live. The C murmur2 of ``murmurhash2``, about ten
    times aiokafka's pure-Python one: indexing a large table hashes every key."""
    return (murmurhash2(key.encode(), KAFKA_MURMUR2_SEED) & 0x7FFFFFFF) % partitions


def is_entity_key(key: str) -> bool:
    """Table keys that name an entity (not an outbox or dedup journal entry, nor a
    partition's bookkeeping)."""
    return not key.startswith((JOURNAL_PREFIX, BOOKKEEPING_PREFIX))


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
        self._scanned: dict[int, set[str]] | None = None
        """Every partition's entities from one scan of the table, taken at the first index
        after a restart or rebalance: indexing partition by partition hashed and filtered
        every key once per partition, which blocked the event loop for seconds on large
        tables. A partition's keys do not change between that scan and its first use (its
        records are all admitted here first); a revocation discards the scan."""

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
        would be dead-lettered). A partition this worker has not handled since its last
        rebalance is not indexed from here: that would fix an index of a partition whose
        changelog may still be recovering."""
        partition = home_partition(entity, self._partitions)
        held = self._held.get(partition)
        if held is None and self._scanned is not None:
            held = self._scanned.get(partition)
        if held is None:  # no record of that partition handled here: its owner decides
            return True
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
        self._scanned = None

    def _index(self, partition: int) -> set[str]:
        held = self._held.get(partition)
        if held is None:
            if self._scanned is None:
                self._scanned = self._scan()
            held = self._held[partition] = self._scanned.pop(partition, set())
            log.info("entities %s[%d]: %d of at most %d", self.name, partition, len(held),
                     self.limit)  # fmt: skip
        return held

    def _scan(self) -> dict[int, set[str]]:
        """The table's entities grouped by home partition, each key hashed once."""
        found: dict[int, set[str]] = {}
        for key in list(self._table_keys()):
            entity = self._entity_of(key)
            if entity is not None:
                found.setdefault(home_partition(entity, self._partitions), set()).add(entity)
        return found
