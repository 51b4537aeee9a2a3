"""The Faust app factory: one app per settings, its topics built from the catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import faust
from aiokafka.structs import RecordMetadata
from faust.sensors import Monitor

from app.metrics import Metrics
from app.runtime.caller_producer import CallerProducer
from app.runtime.changelog import ChangelogSender
from app.runtime.codecs import ModelCodec, Utf8KeyCodec
from app.runtime.connection import aiokafka_options, faust_broker
from app.runtime.entity_bound import EntityBound
from app.runtime.fetch_wait import transport_with_fetch_wait
from app.runtime.gc_freeze import freeze_after_rebalances
from app.runtime.monitor import LeanMonitor
from app.runtime.resume_points import ResumePoints
from app.runtime.state import FlushBeforeCommit, WriteBehindTable, flush_revoked
from app.settings import Settings
from app.topics import Catalogue

KEY_CODEC = Utf8KeyCodec()


@dataclass
class Governor:
    """What every pipeline and view is wired from: settings, the Faust app, topics, metrics."""

    settings: Settings
    catalogue: Catalogue
    faust: faust.App
    """The Faust app (named apart from the package ``app``)."""
    metrics: Metrics
    _topics: dict[str, Any] = field(default_factory=dict)
    _resume_points: ResumePoints | None = None
    tables: list[WriteBehindTable] = field(default_factory=list)
    """Every table, flushed before each offset commit (:mod:`app.runtime.state`)."""
    entity_bounds: dict[str, EntityBound] = field(default_factory=dict)
    changelog: ChangelogSender = field(init=False)
    """Sends every table's changelog records (:mod:`app.runtime.changelog`)."""
    callers: CallerProducer = field(init=False)
    """Publishes what HTTP callers send (:mod:`app.runtime.caller_producer`)."""

    def __post_init__(self) -> None:
        self.changelog = ChangelogSender(self.faust)
        self.callers = CallerProducer(self.settings.kafka)
        self.faust.on_before_shutdown.connect(cast(Any, self.callers.stop))
        self.faust.sensors.add(FlushBeforeCommit(self.tables))
        self.faust.on_partitions_revoked.connect(cast(Any, self._flush_revoked))

    async def _flush_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        """Before this worker rejoins, the changelog holds every write to revoked partitions
        (Faust's revocation commit flushed them already, unless it had nothing to commit)."""
        if flush_revoked(self.tables, {tp.partition for tp in revoked}):
            await self.faust.producer.flush()

    def entity_bound(self, table: Any, limit: int) -> EntityBound:
        """The one entity bound of ``table`` (pipelines that write it share it)."""
        bound = self.entity_bounds.get(table.name)
        if bound is None:
            bound = EntityBound(table.name, table.keys, table.partitions, limit)
            self.entity_bounds[table.name] = bound
            self.metrics.entity_fill.labels(table=table.name).set_function(bound.fill)
        return bound

    def topic(self, name: str) -> Any:
        """The Faust topic for a catalogue name; values and keys stay raw bytes.

        Agents decode values themselves so that undecodable records can be dead-lettered with
        their original bytes instead of crashing the stream.
        """
        if name not in self._topics:
            spec = self.catalogue[name]
            self._topics[name] = self.faust.topic(
                self.topic_name(name),
                key_serializer="raw",
                value_serializer="raw",
                partitions=spec.partitions,
                replicas=spec.replication_factor,
                internal=False,
            )
        return self._topics[name]

    async def publish(
        self, name: str, key: bytes, value: bytes, timestamp_ms: int | None = None
    ) -> RecordMetadata:
        """Publish a caller's record to the catalogue topic ``name``, keyed by ``key``: where
        it landed, once the broker has acknowledged it."""
        return await self.callers.send(self.topic_name(name), key, value, timestamp_ms)

    def topic_name(self, name: str) -> str:
        """The Kafka topic of the catalogue name ``name`` (the prefix applied)."""
        return self.settings.kafka.topic_prefix + self.catalogue[name].name

    def resume_points(self) -> ResumePoints:
        """Where the group resumed each assigned partition (see :mod:`app.runtime.resume_points`);
        one broker read per assignment, shared by every pipeline."""
        if self._resume_points is None:
            points = ResumePoints.for_group(
                lambda: aiokafka_options(self.settings.kafka), self.faust.conf.id
            )
            self.faust.on_partitions_assigned.connect(cast(Any, points.on_partitions_assigned))
            self.faust.on_partitions_revoked.connect(cast(Any, points.on_partitions_revoked))
            self._resume_points = points
        return self._resume_points

    def table(self, name: str, model: type[Any], help: str, source: str) -> Any:
        """A write-behind memory table with changelog, UTF-8 keys and one pydantic value
        model.

        It is co-partitioned with the ``source`` topic whose keys it is written under, so a
        partition's state lives with the worker that consumes that partition.

        Faust derives a table's codecs from ``key_type``/``value_type`` (JSON by default) and
        builds its changelog topic with them at construction; writes use the table's codecs and
        recovery decodes with the topic's. Both are replaced here, before the worker starts,
        so that what is written is what recovery reads.
        """
        table: Any = self.faust.Table(
            name,
            default=None,
            partitions=self.catalogue[source].partitions,
            help=help,
            extra_topic_configs={
                "max.message.bytes": str(self.settings.worker.state_max_record_bytes)
            },
        )
        table.key_serializer = KEY_CODEC
        table.value_serializer = ModelCodec(model)
        table.changelog_topic = table._new_changelog_topic()
        table.max_dirty = self.settings.worker.state_max_dirty_keys
        table.cache_keys = self.settings.worker.state_cache_keys
        table.rocksdb_memory_bytes = self.settings.worker.state_rocksdb_memory_mib * 1_048_576
        table.sent_counter = self.metrics.changelog_records.labels(table=name)
        table.restored_counter = self.metrics.restored_records.labels(table=name)
        table.changelog_sender = self.changelog
        self.metrics.table_keys.labels(table=name).set_function(lambda: float(len(table)))
        self.tables.append(table)
        return table


def create_app(settings: Settings, catalogue: Catalogue, metrics: Metrics) -> Governor:
    """Build the Faust app for a resolved cluster (``settings.kafka.bootstrap_servers`` set)."""
    worker = settings.worker
    urls, credentials = faust_broker(settings.kafka)
    partitions = catalogue["meter-readings"].partitions
    app = faust.App(
        worker.app_id,
        broker=urls,
        broker_credentials=credentials,
        store=f"{worker.state_store}://",
        autodiscover=False,
        datadir=str(worker.data_dir),
        web_enabled=True,
        # Faust's own pages (/router, /table, /graph, stats) answer without authentication
        # and list every table's contents: Governor serves what it means to serve itself.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_host=worker.web_host,
        web_bind=worker.web_host,
        web_port=worker.web_port,
        canonical_url=f"http://{worker.advertised_host or worker.web_host}:{worker.web_port}",
        topic_partitions=partitions,
        topic_replication_factor=catalogue["meter-readings"].replication_factor,
        table_standby_replicas=worker.table_standby_replicas,
        processing_guarantee=worker.processing_guarantee,
        producer_acks=-1,
        # Without a linger every output and changelog record is its own produce request.
        producer_linger=0.005,
        producer_max_batch_size=1_048_576,
        # A state value up to its changelog topic's limit (a batch's own bytes beside it).
        producer_max_request_size=worker.state_max_record_bytes + 65_536,
        # Batch envelopes are large records: fetch enough of them per round trip.
        consumer_max_fetch_size=16 * 1_048_576,
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=worker.group_instance_id,
        stream_recovery_delay=0.5,
        broker_commit_interval=1.0,
        Table=WriteBehindTable,
        Monitor=Monitor if worker.faust_event_metrics else LeanMonitor,
    )
    app.transport = transport_with_fetch_wait(
        app, worker.consumer_fetch_max_wait_ms, worker.deliver_in_place
    )
    if worker.gc_freeze:
        freeze_after_rebalances(app, worker.gc_thaw_interval_s)
    return Governor(settings=settings, catalogue=catalogue, faust=app, metrics=metrics)
