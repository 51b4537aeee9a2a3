"""Settings: one YAML file plus ``GOVERNOR_*`` environment overrides, validated at start.

Precedence, highest first: environment (``GOVERNOR_SECTION__KEY=value``, nested with ``__``),
the YAML file (``GOVERNOR_CONFIG`` or ``config/governor.yaml``), then the defaults below, which
are the reference designs' values. Every threshold a rule uses lives here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agents.audit.settings import AuditSettings
from agents.carbon.settings import CarbonSettings, builtin_factor_sets
from agents.facility.settings import CarbonBudgetSettings, LoadSettings, OptimizationSettings
from agents.fusion.settings import FusionSettings
from agents.traffic.settings import TrafficSettings
from app.settings_base import Section

DEFAULT_CONFIG_PATH = Path("config/governor.yaml")
log = logging.getLogger(__name__)


class KafkaSettings(Section):
    """Which cluster to use. No bootstrap servers means: provision a local broker."""

    bootstrap_servers: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._\-]*$")
    local_version: str = Field(default="3.9.1", pattern=r"^\d+\.\d+\.\d+$")
    local_cache_dir: Path = Path.home() / ".cache" / "governor" / "kafka"

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError("SASL needs sasl_mechanism, sasl_username and sasl_password")
        return self


class WorkerSettings(Section):
    """The Faust worker: consumer group id (= app id), web server, table storage."""

    app_id: str = Field(default="governor", pattern=r"^[A-Za-z0-9._\-]+$")
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8088, ge=1, le=65535)
    advertised_host: str | None = None
    """Host other workers use to reach this one (HTTP routing); defaults to ``web_host``."""
    data_dir: Path = Path("var/governor")
    group_instance_id: str | None = None
    """Kafka static membership: a stable name per worker (e.g. the pod name). A restarted
    worker then takes its partitions back at once instead of waiting for the session of its
    previous incarnation to time out; a stopped one keeps them until that timeout."""
    table_standby_replicas: int = Field(default=0, ge=0)
    idle_catch_up_s: float = Field(default=10.0, gt=0)
    """How long a pipeline's source may be quiet before it checks for records Faust passed
    over without delivering (see ``app/runtime/stage.py``)."""
    batch_max_records: int = Field(default=500, ge=1, le=10_000)
    """The most source records a pipeline's agent takes as one batch, so that the rules run
    over many records and each key touched is written and sent once
    (``app/runtime/batches.py``). 1 = one record at a time."""
    batch_max_wait_ms: float = Field(default=25.0, gt=0, le=1_000)
    """How long a batch keeps taking records after its first while they keep coming: the
    most batching adds to a record's latency (an idle agent waits for nothing). A backlog
    fills a batch at once (``batch_max_records``) whatever this is."""
    gc_freeze: bool = True
    """Freeze the heap out of Python's full garbage collections after each rebalance and
    after each full collection (see ``app/runtime/gc_freeze.py``): they paused the event
    loop for 115-210 ms otherwise."""
    gc_thaw_interval_s: float = Field(default=600.0, gt=0)
    """How often the frozen heap is thawed, so that one full collection walks all of it and
    frees reference cycles among objects frozen while alive (one longer pause per interval)."""
    deliver_in_place: bool = False
    """Hand each fetched record to the agents without the four tasks Faust's consumer makes
    per record (see ``app/runtime/delivery_in_place.py``). Off by default: it drained single
    readings 8-16 % faster but halved HTTP ingest beside them (benchmarks/README.md)."""
    consumer_fetch_max_wait_ms: int = Field(default=25, ge=1, le=1_500)
    """The longest the broker holds a fetch of the worker's consumer waiting for records
    (faust-streaming fixes it at 1,500; see ``app/runtime/fetch_wait.py``): with many
    partitions assigned it bounds how long live records wait to be fetched."""
    batch_idle_ms: float = Field(default=0.5, gt=0, le=1_000)
    """A batch closes when no record arrived for this long: a trickle of live records is
    handled at once, a backlog comes in batches of up to ``batch_max_records``. The event
    loop waits whole milliseconds (epoll), so anything under 1 means "one more look, within
    a millisecond". At 2 ms a paced stream of 2,500 records/s never went quiet that long,
    so every batch ran to ``batch_max_wait_ms``: p99 produce to decision 104-125 ms at half
    load, against 69-83 ms at 0.5 (with a 25 ms wait; benchmarks/README.md)."""
    broker_check_interval_s: float = Field(default=2.0, gt=0)
    broker_check_timeout_s: float = Field(default=5.0, gt=0)
    broker_outage_deadline_s: float = Field(default=600.0, gt=0)
    """How long the cluster may be unreachable before the worker ends (exit 70); until then
    /health says not ready and the clients retry."""
    dead_letter_max_bytes: int = Field(default=262_144, ge=1_024, le=700_000)
    """The most bytes of a record's key and of its value a dead letter carries (base64 in
    JSON, so a letter stays under the producer's 1,000,000-byte request limit). A longer
    key or value is cut there; the letter keeps its size and SHA-256, and
    ``governor dlq republish`` re-reads the whole record from its source."""
    processing_guarantee: Literal["at_least_once"] = "at_least_once"
    state_store: Literal["rocksdb", "memory"] = "rocksdb"
    """Where tables live on a worker: RocksDB under ``data_dir`` behind a record cache, so a
    restart replays only the changelog's tail (after a clean stop; see
    :mod:`app.runtime.local_store`), or memory, which replays every changelog on start."""
    state_cache_keys: int = Field(default=20_000, ge=1)
    """Per table, with RocksDB: decoded values kept in memory, least recently used evicted."""
    state_rocksdb_memory_mib: int = Field(default=64, ge=8)
    """With RocksDB: one block cache for every table, in which the memtables are charged."""
    state_max_record_bytes: int = Field(default=8_388_608, ge=1_048_576, le=67_108_864)
    """The largest state value (one changelog record) a table may write: its changelog topic
    is created with this ``max.message.bytes`` and Faust's producer takes records this large.
    Kafka's default (1 MB) was within reach of one tenant's bounded state with the longest
    ids, and a value the broker refuses stops the worker at the same record on every restart.
    """
    state_max_dirty_keys: int = Field(default=10_000, ge=1)
    """Per table: keys written since the last commit whose changelog records wait for it
    (coalesced, one record per key, see :mod:`app.runtime.state`); reaching this many sends
    them early. 1 sends every write at once, as Faust does."""
    pipelines: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")], ...] = ()
    """Pipelines to install besides the built-in ones, as ``package.module:SPEC`` import
    paths of :class:`agents.spec.PipelineSpec` objects (see :mod:`agents.registry`)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    faust_prometheus_sensor: bool = True
    faust_event_metrics: bool = False
    """Faust's own per-record metrics (messages and events in and out, table operations,
    sends); off, its sensor keeps only per-commit, per-partition and per-rebalance ones
    (see :mod:`app.runtime.monitor`)."""


class LedgerSettings(Section):
    """The decision ledger: chain origin, checkpoint cadence, signing key.

    Without a signing key the chains are still written and verifiable; only the signed
    checkpoints (and so proofs and truncation detection) are missing, and a warning says so.
    """

    mode: Literal["process", "thread", "off"] = "process"
    """Where a worker runs the appender: a child process it supervises (the pipelines then
    keep their latency), a thread of its own, or nowhere (run ``governor ledger run``
    yourself)."""
    metrics_port: int = Field(default=8089, ge=1, le=65535)
    """/metrics of the appender's process (mode ``process`` or ``governor ledger run``)."""
    origin: str = Field(default="governor.local/ledger", pattern=r"^[A-Za-z0-9._\-/]+$")
    key_name: str = Field(default="governor-ledger", pattern=r"^[A-Za-z0-9._\-]+$")
    signing_key: SecretStr | None = None
    """Base64 of a 32-byte Ed25519 seed (``governor ledger keygen`` makes one)."""
    signing_key_file: Path | None = None
    verifier_keys: list[str] = Field(default_factory=list)
    """The keys checkpoints may be signed with, each ``<vkey>[,<from>[,<until>]]`` (ISO 8601
    times; empty: open), so that a rotated key's checkpoints still verify. Empty: the
    signing key's own, at any time."""
    index_dir: Path = Path("var/ledger-index")
    """Where ``governor ledger prove`` keeps its index (decision id → chain and leaf, and
    each chain's leaf hashes), brought up to date from the ledger's tail on every call."""
    verify_cache_s: float = Field(default=30.0, ge=0)
    """GET /api/v1/ledger/verify reads both ledger topics whole: it runs one at a time, and
    its result is served to every caller for this long."""
    checkpoint_every_records: int = Field(default=1000, ge=1)
    checkpoint_every_s: float = Field(default=10.0, gt=0)
    recent_ids_per_chain: int = Field(default=100_000, ge=1)
    max_batch_records: int = Field(default=5_000, ge=1)

    def resolved_seed(self) -> bytes | None:
        """The signing seed from ``signing_key`` or ``signing_key_file``; ``None`` if neither."""
        import base64

        text: str | None = None
        if self.signing_key is not None:
            text = self.signing_key.get_secret_value()
        elif self.signing_key_file is not None and self.signing_key_file.exists():
            text = self.signing_key_file.read_text(encoding="utf-8").strip()
        if not text:
            return None
        seed = base64.b64decode(text)
        if len(seed) != 32:
            raise ValueError("ledger signing key must be base64 of 32 bytes")
        return seed


class ApiSettings(Section):
    """HTTP API. Mutating endpoints need ``Authorization: Bearer <token>``; no token, no writes."""

    token: SecretStr | None = None
    token_file: Path | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    def resolved_token(self) -> SecretStr | None:
        """The token from ``token`` or, failing that, the first line of ``token_file``; an
        empty one (e.g. an unset variable in docker-compose.yml) is no token."""
        if self.token is not None:
            return self.token if self.token.get_secret_value() else None
        if self.token_file is not None and self.token_file.exists():
            text = self.token_file.read_text(encoding="utf-8").strip()
            return SecretStr(text) if text else None
        return None


class MetricsSettings(Section):
    """Prometheus: per-facility labels are capped so cardinality stays bounded."""

    max_facility_labels: int = Field(default=500, ge=1)


class Settings(BaseSettings):
    """All of Governor's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="GOVERNOR_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = KafkaSettings()
    worker: WorkerSettings = WorkerSettings()
    carbon: CarbonSettings = CarbonSettings()
    audit: AuditSettings = AuditSettings()
    ledger: LedgerSettings = LedgerSettings()
    traffic: TrafficSettings = TrafficSettings()
    fusion: FusionSettings = FusionSettings()
    carbon_budgets: CarbonBudgetSettings = CarbonBudgetSettings()
    load: LoadSettings = LoadSettings()
    optimization: OptimizationSettings = OptimizationSettings()
    api: ApiSettings = ApiSettings()
    metrics: MetricsSettings = MetricsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats the YAML file (passed as init kwargs), which beats defaults."""
        return (env_settings, init_settings)


class SettingsError(Exception):
    """Configuration is invalid; the message lists every problem with its path."""


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
    return loaded


def _merge_factor_sets(data: dict[str, Any]) -> dict[str, Any]:
    """Factor sets named in YAML are added to the built-ins instead of replacing them."""
    carbon = data.get("carbon")
    if isinstance(carbon, dict) and isinstance(carbon.get("factor_sets"), dict):
        merged: dict[str, Any] = {
            name: fs.model_dump() for name, fs in builtin_factor_sets().items()
        }
        merged.update(carbon["factor_sets"])
        data = {**data, "carbon": {**carbon, "factor_sets": merged}}
    return data


def load_settings(path: Path | None = None) -> Settings:
    """Load and validate settings; raise :class:`SettingsError` with readable messages."""
    if path is None:
        env_path = os.environ.get("GOVERNOR_CONFIG")
        path = Path(env_path) if env_path else DEFAULT_CONFIG_PATH
        if env_path is None and not path.exists():
            path = None
    data: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            raise SettingsError(f"config file {path} does not exist")
        data = _merge_factor_sets(_read_yaml(path))
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        source = str(path) if path else "defaults"
        raise SettingsError(f"invalid configuration ({source} + environment):\n{problems}") from exc
    if path is None:
        log.warning(
            "settings: no %s in %s and no GOVERNOR_CONFIG or --config: built-in defaults"
            " and the environment apply", DEFAULT_CONFIG_PATH, Path.cwd(),
        )  # fmt: skip
    else:
        log.info("settings: %s and the environment", path.resolve())
    return settings
