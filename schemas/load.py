"""load-metrics, balancing-commands and load-decisions: zone loads, operators' commands and
the load-balancing decisions taken on them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.common import Contract, EntityId, EventId, UtcDatetime


class LoadMetric(Contract):
    """A zone's load and capacity at ``timestamp`` (what POST /api/v1/load/metrics publishes).

    Kafka key: ``facility_id``. Load is reported, not derived from meter readings: a meter's
    consumption over its interval says nothing about the capacity it runs against.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    facility_id: EntityId
    zone_id: EntityId
    current_load_kw: float = Field(ge=0, allow_inf_nan=False)
    capacity_kw: float = Field(gt=0, allow_inf_nan=False)
    timestamp: UtcDatetime


class BalancingAction(StrEnum):
    SCALE_UP = "scale_up"
    """Add ``amount_kw`` of capacity to the zone."""
    SCALE_DOWN = "scale_down"
    """Release ``amount_kw`` of the zone's capacity."""
    SHIFT = "shift"
    """Move ``amount_kw`` of load from the zone to ``target_zone_id``."""


class DecisionOrigin(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class DecisionStatus(StrEnum):
    PENDING = "pending"
    EXECUTED = "executed"


class ManualDecision(Contract):
    """The body of POST /api/v1/balancing/decisions."""

    facility_id: EntityId
    action: BalancingAction
    zone_id: EntityId
    target_zone_id: EntityId | None = None
    amount_kw: float = Field(gt=0, allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _target(self) -> ManualDecision:
        if self.action is BalancingAction.SHIFT:
            if self.target_zone_id is None or self.target_zone_id == self.zone_id:
                raise ValueError("a shift needs a target_zone_id other than zone_id")
        elif self.target_zone_id is not None:
            raise ValueError("only a shift has a target_zone_id")
        return self


class CommandKind(StrEnum):
    CREATE = "create"
    EXECUTE = "execute"
    AUTO = "auto"


class BalancingCommand(Contract):
    """An operator's command, in stream order with the facility's load metrics.

    Key ``facility_id``. The HTTP API publishes these and waits for their result, so that
    two executes of one decision, from any workers, are decided in one order: once.
    """

    schema_version: Literal[1] = 1
    command_id: EventId
    facility_id: EntityId
    kind: CommandKind
    decision: ManualDecision | None = None
    decision_id: str | None = None
    timestamp: UtcDatetime

    @model_validator(mode="after")
    def _fields(self) -> BalancingCommand:
        if (self.kind is CommandKind.CREATE) != (self.decision is not None):
            raise ValueError("decision is required with kind create, and only then")
        if (self.kind is CommandKind.EXECUTE) != (self.decision_id is not None):
            raise ValueError("decision_id is required with kind execute, and only then")
        return self


class LoadDecision(Contract):
    """A load-balancing decision, published when taken (pending) and when executed.

    Key ``facility_id``. ``decision_id`` is ``<facility_id>.d<sequence>``.
    ``expected_utilization_pct`` is each affected zone's utilization once it is carried out.
    """

    schema_version: Literal[1] = 1
    record_id: str
    """``<decision_id>:<status>``: one ledger entry per decision and status."""
    decision_id: str
    facility_id: EntityId
    action: BalancingAction
    zone_id: EntityId
    target_zone_id: EntityId | None = None
    amount_kw: float
    reason: str
    origin: DecisionOrigin
    status: DecisionStatus
    utilization_pct: dict[str, float]
    expected_utilization_pct: dict[str, float]
    decided_at: datetime
    executed_at: datetime | None = None
    command_id: str | None = None


class CommandResult(Contract):
    """What a command did; the HTTP API returns it."""

    command_id: str
    accepted: bool
    executed: bool = False
    already_executed: bool = False
    message: str
    decisions: tuple[LoadDecision, ...] = ()


def decision_facility(decision_id: str) -> str | None:
    """The facility of a decision id (``<facility_id>.d<n>``), or ``None`` if malformed."""
    facility, sep, suffix = decision_id.rpartition(".d")
    if not sep or not facility or not suffix.isdigit():
        return None
    return facility
