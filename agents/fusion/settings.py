"""Settings of AI energy and cost governance (``fusion:``): every threshold of the energy
governance and fusion optimizer references, with their values as defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from app.settings_base import Section, WithOutbox


class MultiplierSettings(Section):
    """final cost = base x each multiplier whose condition holds (the reference's table)."""

    high_complexity: float = Field(default=1.5, gt=0)
    low_trust: float = Field(default=1.3, gt=0)
    low_trust_below: float = Field(default=0.6, ge=0, le=1)
    high_entropy: float = Field(default=1.4, gt=0)
    high_entropy_above: float = Field(default=0.7, ge=0, le=1)
    emergency_discount: float = Field(default=0.6, gt=0)


class BudgetLimits(Section):
    """Approval threshold (units) and the budget percentages of the reference."""

    approval_threshold_units: float = Field(default=10_000.0, gt=0)
    auto_review_pct: float = Field(default=85.0, gt=0, le=100)
    hard_limit_pct: float = Field(default=95.0, gt=0, le=100)
    emergency_pct: float = Field(default=99.0, gt=0, le=100)
    reservation_ttl_s: float = Field(default=3_600.0, gt=0)
    """A reservation whose result has not arrived after this much event time is released."""
    max_collapse_attempts: int = Field(default=3, ge=1)
    """The reference's hard limit per signal: runs admitted per ``signal_id`` (rejected
    ``collapse_attempts_exhausted`` beyond it), counted over ``signal_window_s``."""
    signal_window_s: float = Field(default=86_400.0, gt=0)
    max_signals_per_tenant: int = Field(default=1_000, ge=1)
    """Signals remembered per tenant; past it the oldest is forgotten."""
    max_open_reservations_per_tenant: int = Field(default=2_000, ge=1)
    """Runs admitted and not yet settled (nor expired) per tenant; an admission past it is
    rejected (``too_many_open_reservations``): a tenant's state is one changelog record, and
    a tenant whose results never come must not grow it past Kafka's 1 MB record limit
    (2,000 reservations are about 250 kB with UUIDs for ids)."""
    max_settled_per_tenant: int = Field(default=4_000, ge=1)
    """Runs settled before any reservation of theirs, remembered per tenant within the
    reservation TTL so that their late admission changes nothing; past it the oldest is
    forgotten. A late admission of a forgotten run reserves its cost until the TTL: the safe
    side, holding budget, never freeing it. The bound keeps a tenant's state (one changelog
    record) below Kafka's 1 MB record limit: 4,000 runs are 210 kB with UUIDs for ids,
    600 kB with the longest ids allowed (128 characters)."""

    @model_validator(mode="after")
    def _ordered(self) -> BudgetLimits:
        if not self.auto_review_pct < self.hard_limit_pct <= self.emergency_pct:
            raise ValueError("budget limits must rise: auto_review < hard_limit <= emergency")
        return self


class TripwireSettings(Section):
    """Consecutive token-delta breaches → downgrade (reference: 12 %, 3, no auto-recovery)."""

    enabled: bool = True
    breach_threshold_pct: float = Field(default=12.0, gt=0)
    consecutive_limit: int = Field(default=3, ge=1)
    scope: Literal["scenario_overlay", "tenant"] = "scenario_overlay"
    auto_recovery: bool = False
    auto_recovery_clean_runs: int = Field(default=10, ge=1)
    """With auto-recovery: this many consecutive non-breaches end the downgrade."""
    downgrade_cost_factor: float = Field(default=0.5, gt=0, le=1)
    downgraded_parameters: dict[str, float] = Field(
        default_factory=lambda: {"cost_factor": 0.5, "max_tokens_factor": 0.5}
    )


class GateSettings(Section):
    """Fusion budget gates per scenario and overlay (reference: 12/25 %, 2 s/5 s)."""

    token_delta_warn_pct: float = Field(default=12.0, gt=0)
    token_delta_block_pct: float = Field(default=25.0, gt=0)
    p95_latency_warn_ms: float = Field(default=2_000.0, gt=0)
    p95_latency_block_ms: float = Field(default=5_000.0, gt=0)
    window_s: int = Field(default=300, gt=0)
    """Generation length: gates look at the last one to two generations of event time."""
    min_runs: int = Field(default=5, ge=1)
    sketch_relative_accuracy: float = Field(default=0.02, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _ordered(self) -> GateSettings:
        if self.token_delta_warn_pct >= self.token_delta_block_pct:
            raise ValueError("token delta warn must be below block")
        if self.p95_latency_warn_ms >= self.p95_latency_block_ms:
            raise ValueError("p95 latency warn must be below block")
        return self


class OverlayBreakerSettings(Section):
    """Reference: 5 consecutive failures, 300 s recovery, baseline-only while open."""

    failure_threshold: int = Field(default=5, ge=1)
    recovery_timeout_s: float = Field(default=300.0, gt=0)
    max_wait_half_open_s: float = Field(default=300.0, gt=0)
    emergency_brake_enabled: bool = True
    """The reference's ``emergency_brake_enabled``: whether failures open the breaker. Off,
    runs keep their routing whatever fails (an open breaker still recovers as usual)."""


class AdaptiveBackoff(Section):
    """The reference's adaptive backoff: a tenant whose runs take longer than
    ``threshold_ms`` is advised to wait (``backoff_ms`` on its admissions), doubling with
    each slow run in a row up to ``max_ms``; a run under the threshold ends it."""

    enabled: bool = True
    threshold_ms: float = Field(default=200.0, gt=0)
    max_ms: float = Field(default=30_000.0, gt=0)


class CacheSettings(Section):
    enabled: bool = True
    ttl_s: float = Field(default=86_400.0, gt=0)
    max_entries_per_tenant: int = Field(default=1_000, ge=1)


class EarlyTermination(Section):
    quality_threshold: float = Field(default=0.85, ge=0, le=1)
    budget_fraction: float = Field(default=0.70, gt=0, le=1)


class FeatureFlag(Section):
    """Overlay routing for one scenario: ``rollout_pct`` of routing keys get the overlay."""

    feature: str = Field(pattern=r"^[a-z0-9_]+$")
    scenario_type: str = Field(min_length=1)
    overlay: str = Field(min_length=1)
    rollout_pct: float = Field(default=100.0, ge=0, le=100)
    enabled: bool = True


class ApprovalSettings(Section):
    """HMAC-SHA256 tokens for manual approvals and overrides (reference: 300 s)."""

    hmac_secret: SecretStr | None = None
    hmac_secret_file: Path | None = None
    max_age_s: float = Field(default=300.0, gt=0)

    def secret(self) -> bytes | None:
        if self.hmac_secret is not None:
            return self.hmac_secret.get_secret_value().encode() or None
        if self.hmac_secret_file is not None and self.hmac_secret_file.exists():
            return self.hmac_secret_file.read_text(encoding="utf-8").strip().encode() or None
        return None


class OrderingSettings(Section):
    """How the overlay stage puts a scope's runs in event-time order, whatever partition
    they come from (:mod:`agents.fusion.rules.ordering`)."""

    allowed_lateness_s: float = Field(default=5.0, ge=0)
    """How far back of its newest run a fusion-results partition may still send one in
    order; an older run is applied late (counted) and may differ from replay."""
    marker_step_s: float = Field(default=1.0, gt=0)
    """A partition's progress is sent when it has moved this much event time."""
    max_pending_runs_per_partition: int = Field(default=2_000, ge=1)
    """Runs a fusion-observations partition holds for ordering (its buffer is one changelog
    record, about 350 bytes a run: 2,000 keep it under Kafka's 1 MB record limit); past it
    the oldest are applied before their time, counted as ``early``. Held runs are about
    (``allowed_lateness_s`` + ``marker_step_s``) x runs/s / partitions: above about 2,000
    runs/s over 6 partitions, give fusion-observations more partitions."""
    idle_partition_s: float = Field(default=30.0, gt=0)
    """A partition with no run for this long (wall clock, the broker reachable) is not
    waited for until its next run; also how long the last runs before a quiet spell, and
    the first runs after a start with empty partitions, wait to be applied. Keep it above
    the pauses a partition's producers ride out (a broker restart): a partition thought
    idle that then sends older runs makes them late."""


class FusionSettings(WithOutbox):
    multipliers: MultiplierSettings = MultiplierSettings()
    limits: BudgetLimits = BudgetLimits()
    tripwire: TripwireSettings = TripwireSettings()
    gates: GateSettings = GateSettings()
    breaker: OverlayBreakerSettings = OverlayBreakerSettings()
    cache: CacheSettings = CacheSettings()
    adaptive_backoff: AdaptiveBackoff = AdaptiveBackoff()
    early_termination: EarlyTermination = EarlyTermination()
    ordering: OrderingSettings = OrderingSettings()
    flags: tuple[FeatureFlag, ...] = ()
    enabled_features: tuple[str, ...] | None = None
    """Environment override (``GOVERNOR_FUSION__ENABLED_FEATURES=a,b``): only these flags
    are on, whatever their ``enabled``; empty: none (baseline only)."""
    approvals: ApprovalSettings = ApprovalSettings()
    max_future_skew_s: float = Field(default=300.0, ge=0)
    dedup_window_s: float = Field(default=86_400.0, gt=0)
    dedup_max_events_per_partition: int = Field(default=1_000_000, ge=1_000)
    max_tenants_per_partition: int = Field(default=10_000, ge=1)
    """Tenants with state per partition; a budget, request or result of one more is
    dead-lettered (``entity_limit``)."""
    max_scopes_per_partition: int = Field(default=10_000, ge=1)
    """Scopes (scenario and overlay, or tenant) with a tripwire, gates and breaker per
    partition; an observation of one more is dead-lettered."""
    max_label_sets_per_metric: int = Field(default=1_000, ge=1)
    max_label_sets_total: int = Field(default=10_000, ge=1)

    @field_validator("enabled_features", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @model_validator(mode="after")
    def _flags_consistent(self) -> FusionSettings:
        names = [f.feature for f in self.flags]
        if len(names) != len(set(names)):
            raise ValueError("feature flag names must be unique")
        routes = [(f.scenario_type, f.overlay) for f in self.flags]
        if len(routes) != len(set(routes)):
            raise ValueError("one flag per scenario and overlay")
        unknown = set(self.enabled_features or ()) - set(names)
        if unknown:
            raise ValueError(f"enabled_features names unknown flags: {', '.join(sorted(unknown))}")
        return self

    def flag_on(self, flag: FeatureFlag) -> bool:
        if self.enabled_features is not None:
            return flag.feature in self.enabled_features
        return flag.enabled
