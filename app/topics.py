"""The topic catalogue (topics.yaml), and what a cluster's topics are checked against.

The admin calls that create topics and read what a cluster has are in
:mod:`app.runtime.topic_admin`."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.origin import REPARTITION_SUFFIX
from schemas.common import Contract

DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "topics.yaml"


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"
    COMPACT_DELETE = "compact,delete"


class TopicRole(StrEnum):
    INPUT = "input"
    OUTPUT = "output"
    STATE = "state"


class TimestampType(StrEnum):
    """Who sets a record's timestamp: its producer, or the broker when it appends it."""

    CREATE_TIME = "CreateTime"
    LOG_APPEND_TIME = "LogAppendTime"


def import_model(path: str) -> type[Contract]:
    """Resolve ``package.module:Class`` to a contract model."""
    module_name, _, attr = path.partition(":")
    model = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(model, type) and issubclass(model, Contract)):
        raise TypeError(f"{path} is not a schemas Contract")
    return model


class TopicSpec(BaseModel):
    """One topic as the catalogue declares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._\-]+$")
    role: TopicRole
    key: str
    value_schema: str
    alternative_value_schemas: tuple[str, ...] = ()
    partitions: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    cleanup_policy: CleanupPolicy
    retention_ms: int = Field(ge=-1)
    description: str = ""
    timestamp_type: TimestampType | None = None
    """Defaults to LogAppendTime for inputs (see :meth:`record_clock`), CreateTime otherwise."""
    max_message_bytes: int | None = Field(default=None, ge=1_024)
    """The topic's ``max.message.bytes`` (a record batch's largest size); ``None``: the
    broker's default (1,048,588 bytes)."""
    ledger_id: str | None = None
    """For decision topics: the value field that identifies a decision; each record of the
    topic is appended to the ledger."""

    @model_validator(mode="after")
    def _inputs_take_the_brokers_clock(self) -> TopicSpec:
        """An input's record timestamp is the clock every event-time check measures skew
        against, so a producer must not set it: CreateTime on an input is refused."""
        if self.role is TopicRole.INPUT and self.timestamp_type is TimestampType.CREATE_TIME:
            raise ValueError(
                f"{self.name}: an input topic needs LogAppendTime (a producer's CreateTime"
                " would let it date records past the clock checks)"
            )
        return self

    def record_clock(self) -> TimestampType:
        """The timestamp type the topic is created with and verified to have."""
        if self.timestamp_type is not None:
            return self.timestamp_type
        if self.role is TopicRole.INPUT:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    def configs(self) -> dict[str, str]:
        """Topic-level Kafka configs the catalogue pins (and verifies)."""
        pinned = {
            "cleanup.policy": self.cleanup_policy.value,
            "retention.ms": str(self.retention_ms),
            "message.timestamp.type": self.record_clock().value,
        }
        if self.max_message_bytes is not None:
            pinned["max.message.bytes"] = str(self.max_message_bytes)
        return pinned

    def value_models(self) -> list[type[Contract]]:
        """The value model and any alternatives (e.g. a batch envelope)."""
        return [import_model(p) for p in (self.value_schema, *self.alternative_value_schemas)]


@dataclass(frozen=True)
class Catalogue:
    """All topics, looked up by their unprefixed name."""

    topics: tuple[TopicSpec, ...]

    def decision_topics(self) -> list[TopicSpec]:
        """The topics whose records are decisions the ledger records."""
        return [spec for spec in self.topics if spec.ledger_id is not None]

    def __getitem__(self, name: str) -> TopicSpec:
        for spec in self.topics:
            if spec.name == name:
                return spec
        raise KeyError(f"topic {name!r} is not in the catalogue")

    def __contains__(self, name: object) -> bool:
        return any(spec.name == name for spec in self.topics)

    def with_topics(self, extra: Iterable[TopicSpec]) -> Catalogue:
        """This catalogue plus ``extra`` (a pipeline's own topics); a name twice is refused."""
        added = tuple(extra)
        if not added:
            return self
        names = [s.name for s in (*self.topics, *added)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"topics declared twice: {', '.join(twice)}")
        return Catalogue((*self.topics, *added))

    @classmethod
    def load(cls, path: Path = DEFAULT_CATALOGUE) -> Catalogue:
        """Read topics.yaml, applying its defaults to each topic."""
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        defaults: dict[str, Any] = raw.get("defaults", {})
        specs = tuple(TopicSpec(**{**defaults, **entry}) for entry in raw["topics"])
        names = [s.name for s in specs]
        if len(names) != len(set(names)):
            raise ValueError(f"{path}: duplicate topic names")
        by_name = {s.name: s for s in specs}
        for spec in specs:
            source = by_name.get(spec.name.removesuffix(REPARTITION_SUFFIX))
            if source not in (spec, None) and source.partitions != spec.partitions:
                raise ValueError(
                    f"{path}: {spec.name} needs the {source.partitions} partitions of"
                    f" {source.name} (a forwarded record keeps its partition number)"
                )
        return cls(specs)


class TopicStatus(StrEnum):
    CREATED = "created"
    OK = "ok"
    DRIFT = "drift"
    MISSING = "missing"


@dataclass
class TopicReport:
    """What ``apply`` found for one topic; ``drift`` lists each difference."""

    name: str
    status: TopicStatus
    drift: list[str] = field(default_factory=list)


def topic_drift(spec: TopicSpec, actual: dict[str, Any]) -> list[str]:
    """What differs between a topic as the catalogue wants it and as the cluster has it."""
    problems = []
    if actual["partitions"] != spec.partitions:
        problems.append(f"partitions {actual['partitions']} != {spec.partitions}")
    if actual["replication_factor"] != spec.replication_factor:
        problems.append(
            f"replication_factor {actual['replication_factor']} != {spec.replication_factor}"
        )
    for key, want in spec.configs().items():
        have = actual["configs"].get(key)
        if have != want:
            problems.append(f"{key} {have} != {want}")
    return problems
