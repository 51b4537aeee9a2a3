"""Fusion budget gates per scenario and overlay: token delta and p95 latency.

Token delta: warn at 12 %, block at 25 % (the mean over the window). p95 latency: warn at
2 s, block at 5 s, from a DDSketch (never a list of samples). The window is one to two
generations of event time, rotated like the traffic pipeline's sketches; quality is
tracked beside. A gate changes state only once ``min_runs`` runs are in the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from agents.fusion.settings import GateSettings
from app.core.sketch import RollingSketch
from schemas.overlay import GateName, GateState


class Sums(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    runs: int = 0
    token_delta: float = 0.0
    quality: float = 0.0

    def plus(self, token_delta: float, quality: float) -> Sums:
        return Sums(
            runs=self.runs + 1,
            token_delta=self.token_delta + token_delta,
            quality=self.quality + quality,
        )


class GateWindow(BaseModel):
    """Two generations of run sums and a latency sketch, plus each gate's state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generation: int
    current: Sums = Sums()
    previous: Sums = Sums()
    latency: RollingSketch
    states: dict[GateName, GateState] = {}
    changes: dict[GateName, int] = {}

    @classmethod
    def start(cls, at_s: float, config: GateSettings) -> GateWindow:
        return cls(
            generation=int(at_s // config.window_s),
            latency=RollingSketch.start(config.window_s, at_s, config.sketch_relative_accuracy),
        )

    def runs(self) -> int:
        return self.current.runs + self.previous.runs

    def token_delta_mean(self) -> float | None:
        runs = self.runs()
        return (self.current.token_delta + self.previous.token_delta) / runs if runs else None

    def quality_mean(self) -> float | None:
        runs = self.runs()
        return (self.current.quality + self.previous.quality) / runs if runs else None

    def state(self) -> GateState:
        """The worst gate."""
        return max(self.states.values(), key=lambda s: s.severity, default=GateState.PASS)


@dataclass(frozen=True, slots=True)
class GateChange:
    gate: GateName
    from_state: GateState
    to_state: GateState
    value: float
    warn_at: float
    block_at: float
    number: int


def _judge(value: float, warn: float, block: float) -> GateState:
    if value >= block:
        return GateState.BLOCK
    if value >= warn:
        return GateState.WARN
    return GateState.PASS


def observe(
    window: GateWindow,
    now_s: float,
    token_delta_pct: float,
    latency_ms: float,
    quality: float,
    config: GateSettings,
) -> tuple[GateWindow, list[GateChange]]:
    """Add one run (``now_s`` is the scope's event-time watermark) and re-judge the gates."""
    generation = int(now_s // config.window_s)
    current, previous = window.current, window.previous
    if generation == window.generation + 1:
        current, previous = Sums(), current
    elif generation > window.generation + 1:
        current, previous = Sums(), Sums()
    current = current.plus(token_delta_pct, quality)
    updated = window.model_copy(
        update={
            "generation": max(generation, window.generation),
            "current": current,
            "previous": previous,
            "latency": window.latency.add(now_s, latency_ms),
        }
    )
    if updated.runs() < config.min_runs:
        return updated, []
    token = updated.token_delta_mean() or 0.0
    p95 = updated.latency.merged().quantile(0.95) or 0.0
    judged = {
        GateName.TOKEN_DELTA: (token, config.token_delta_warn_pct, config.token_delta_block_pct),
        GateName.P95_LATENCY: (p95, config.p95_latency_warn_ms, config.p95_latency_block_ms),
    }
    states = dict(updated.states)
    changes_count = dict(updated.changes)
    changes: list[GateChange] = []
    for gate, (value, warn, block) in judged.items():
        before = states.get(gate, GateState.PASS)
        after = _judge(value, warn, block)
        if after is not before:
            states[gate] = after
            changes_count[gate] = changes_count.get(gate, 0) + 1
            changes.append(GateChange(gate, before, after, value, warn, block, changes_count[gate]))
    return updated.model_copy(update={"states": states, "changes": changes_count}), changes
