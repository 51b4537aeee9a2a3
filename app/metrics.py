"""Governor's Prometheus metrics.

Conventions: base units in names (joules, grams, seconds), counters end in ``_total``, and
every label has a bounded set of values: facility labels are capped (beyond the cap a
facility is counted as ``_other``), reasons and sources are enums, topics come from the
catalogue.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

OTHER = "_other"
JOULES_PER_KWH = 3_600_000.0
GRAMS_PER_KG = 1_000.0


class BoundedLabels:
    """Keeps an entity label set bounded: the first ``limit`` ids seen keep their id."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def __call__(self, entity_id: str) -> str:
        if entity_id in self._known:
            return entity_id
        if len(self._known) < self._limit:
            self._known.add(entity_id)
            return entity_id
        return OTHER


class LabelGuard:
    """Caps distinct label sets per metric and overall (the fusion reference: 1,000 and
    10,000). A set past either cap is reported as ``_other`` and counted as overflow."""

    def __init__(self, per_metric: int, total: int, overflow: Counter) -> None:
        self._per_metric = per_metric
        self._total = total
        self._overflow = overflow
        self._seen: dict[str, set[tuple[str, ...]]] = {}
        self._count = 0

    def __call__(self, metric: str, *values: str) -> tuple[str, ...]:
        seen = self._seen.setdefault(metric, set())
        if values in seen:
            return values
        if len(seen) < self._per_metric and self._count < self._total:
            seen.add(values)
            self._count += 1
            return values
        self._overflow.labels(metric=metric).inc()
        return tuple(OTHER for _ in values)


class Metrics:
    """The metrics every pipeline shares, registered once on ``registry``; each pipeline's
    own are in its ``agents/<pipeline>/metrics.py``, on the same registry."""

    def __init__(self, max_facility_labels: int, registry: CollectorRegistry = REGISTRY) -> None:
        self.max_entity_labels = max_facility_labels
        """How many facilities (sites, zones) a pipeline's metrics name before ``_other``."""
        self.facility_label = BoundedLabels(max_facility_labels)
        """Shared by the carbon and facility pipelines: one facility, one label in both."""
        self.records = Counter(
            "governor_records_total",
            "Source records handled, by pipeline and outcome.",
            ["pipeline", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "governor_dead_letters_total",
            "Records sent to the dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        )
        self.processing = Histogram(
            "governor_record_processing_seconds",
            "Time to decide one source record (a reading or a batch), by pipeline.",
            ["pipeline"],
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
            registry=registry,
        )
        self.dedup_events = Gauge(
            "governor_dedup_index_events",
            "Event ids held in this worker's dedup window.",
            ["pipeline"],
            registry=registry,
        )
        self.broker_reachable = Gauge(
            "governor_broker_reachable",
            "1 while the worker's last metadata request to the cluster was answered, else 0.",
            registry=registry,
        )
        self.broker_unreachable = Counter(
            "governor_broker_unreachable_checks_total",
            "Checks of the cluster (worker.broker_check_interval_s apart) that got no answer.",
            registry=registry,
        )
        self.repartitioned = Counter(
            "governor_repartitioned_records_total",
            "Records that arrived on a partition other than their key's (a producer with"
            " another partitioner) and were forwarded to the key's partition, by topic.",
            ["topic"],
            registry=registry,
        )
        self.out_of_order_writes = Counter(
            "governor_state_out_of_order_writes_total",
            "Dedup segments or outbox entries a table refused because a later record of the"
            " same source partition was recorded first: that record's event ids (or outputs)"
            " are not kept, so a later duplicate of it would be applied again. Stays 0 unless"
            " records are handled out of offset order.",
            ["table"],
            registry=registry,
        )
        self.order_resyncs = Counter(
            "governor_source_resyncs_total",
            "Times a pipeline found source offsets passed over unprocessed and read them back.",
            ["pipeline"],
            registry=registry,
        )
        self.outbox_misses = Counter(
            "governor_outbox_misses_total",
            "Re-delivered records whose outputs were no longer in the outbox (not re-sent).",
            ["pipeline"],
            registry=registry,
        )
        self.table_keys = Gauge(
            "governor_table_keys",
            "Keys this worker holds per table (its active and standby partitions): the size"
            " of state that producers' ids can grow; each table is bounded (see README).",
            ["table"],
            registry=registry,
        )
        self.entity_fill = Gauge(
            "governor_entity_fill_ratio",
            "Entities held in the fullest partition of a table this worker holds, over that"
            " table's per-partition limit; at 1, records of new entities are dead-lettered"
            " (reason entity_limit).",
            ["table"],
            registry=registry,
        )
        self.restored_records = Counter(
            "governor_state_restored_records_total",
            "Changelog records a worker applied to its local store (recovery of assigned"
            " partitions, standbys): after a clean restart with RocksDB only the changelog's"
            " tail, with the memory store or after a crash every record.",
            ["table"],
            registry=registry,
        )
        self.changelog_records = Counter(
            "governor_changelog_records_total",
            "Changelog records sent per table: one per key written since the last commit"
            " (writes to a key in between coalesce), compared with records consumed it shows"
            " what state costs per record.",
            ["table"],
            registry=registry,
        )
        self.registry = registry
        self.http_requests = Counter(
            "governor_http_requests_total",
            "HTTP API requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
