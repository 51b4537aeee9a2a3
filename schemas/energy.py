"""energy-budgets and energy-decisions: tenants' budgets and every admission and settlement."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime


class BudgetPeriod(StrEnum):
    """A budget's period, in UTC calendar boundaries (weeks are ISO weeks)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class EnergyBudget(Contract):
    """A tenant's budget. Compacted topic, key ``tenant``: the newest record governs."""

    schema_version: Literal[1] = 1
    tenant: EntityId
    limit_units: float = Field(gt=0, allow_inf_nan=False)
    period: BudgetPeriod = BudgetPeriod.MONTH
    updated_at: UtcDatetime


class DecisionKind(StrEnum):
    ADMISSION = "admission"
    SETTLEMENT = "settlement"
    EXPIRY = "expiry"
    """A reservation released because its result never came."""


class Outcome(StrEnum):
    APPROVED = "approved"
    DOWNGRADED = "downgraded"
    """Approved at the tripwire's reduced cost."""
    REJECTED = "rejected"
    CACHE_HIT = "cache_hit"
    """The same inputs ran within the cache TTL: reuse, no spend."""
    SETTLED = "settled"
    EXPIRED = "expired"
    """A reservation whose result never came, released after the reservation TTL."""


class Reason(StrEnum):
    WITHIN_BUDGET = "within_budget"
    AUTO_REVIEW = "auto_review"
    EXCEEDS_APPROVAL_THRESHOLD = "exceeds_approval_threshold"
    MANUAL_APPROVAL = "manual_approval"
    HARD_LIMIT = "hard_limit"
    EMERGENCY_STATE = "emergency_state"
    BUDGET_TRIPWIRE_ACTIVE = "budget_tripwire_active"
    BASELINE_ONLY = "baseline_only"
    NO_BUDGET = "no_budget"
    CACHE_HIT = "cache_hit"
    TOKEN_REPLAYED = "token_replayed"
    RESERVATION_SETTLED = "reservation_settled"
    SETTLED_WITHOUT_RESERVATION = "settled_without_reservation"
    RESERVATION_EXPIRED = "reservation_expired"
    EARLY_TERMINATION_ADVISED = "early_termination_advised"
    COLLAPSE_ATTEMPTS_EXHAUSTED = "collapse_attempts_exhausted"
    ADAPTIVE_BACKOFF = "adaptive_backoff"
    TOO_MANY_OPEN_RESERVATIONS = "too_many_open_reservations"


class BudgetState(StrEnum):
    """Where a tenant stands: below review, reviewing (85 %), at the hard limit (95 %),
    emergency (99 %), or no budget defined."""

    OK = "ok"
    REVIEW = "review"
    HARD_LIMIT = "hard_limit"
    EMERGENCY = "emergency"
    NO_BUDGET = "no_budget"


class RoutingMode(StrEnum):
    OVERLAY = "overlay"
    DOWNGRADED = "downgraded"
    BASELINE_ONLY = "baseline_only"


class Multiplier(Contract):
    name: str
    factor: float


class BudgetSnapshot(Contract):
    """The tenant's budget after this decision."""

    limit_units: float | None
    period_start: date | None
    spent_units: float
    reserved_units: float
    used_ratio: float | None
    state: BudgetState


class EnergyDecision(Contract):
    """One admission or settlement. Kafka key: ``tenant``."""

    schema_version: Literal[1] = 1
    decision_id: str
    """``<event_id>|<kind>``: at most one of each kind per run."""
    event_id: EventId
    tenant: EntityId
    kind: DecisionKind
    outcome: Outcome
    reasons: tuple[Reason, ...]
    scenario_type: EntityId
    overlay: EntityId
    overlay_version: str
    routing: RoutingMode
    base_units: float
    multipliers: tuple[Multiplier, ...]
    cost_units: float
    """base x every multiplier."""
    final_units: float
    """What is reserved or charged (cost, halved when downgraded; 0 when rejected or reused)."""
    requires_manual_approval: bool = False
    auto_review: bool = False
    tripwire_active: bool = False
    actual_units: float | None = None
    released_units: float | None = None
    early_termination_advised: bool | None = None
    energy_saved_units: float | None = None
    reuse_count: int | None = None
    """A cache hit: how many times the cached insight has now been reused (1 = first)."""
    backoff_ms: float | None = None
    """Adaptive backoff: wait this long before the next run (the tenant's runs are slow)."""
    signal_attempt: int | None = None
    """An admission of a run with a ``signal_id``: which attempt at that signal it is."""
    budget: BudgetSnapshot
    event_time: UtcDatetime
