"""Cost = base x the multipliers whose conditions hold (the energy governance reference)."""

from __future__ import annotations

from agents.fusion.settings import MultiplierSettings
from schemas.energy import Multiplier
from schemas.fusion_result import ComplexityLevel, FusionRequest


def multipliers(request: FusionRequest, config: MultiplierSettings) -> tuple[Multiplier, ...]:
    """The multipliers that apply, in the reference's order (the breakdown on every
    decision)."""
    applied: list[Multiplier] = []
    if request.complexity_level is ComplexityLevel.HIGH:
        applied.append(Multiplier(name="complexity", factor=config.high_complexity))
    if request.trust_score < config.low_trust_below:
        applied.append(Multiplier(name="trust", factor=config.low_trust))
    if request.entropy_score > config.high_entropy_above:
        applied.append(Multiplier(name="entropy", factor=config.high_entropy))
    if request.emergency_mode:
        applied.append(Multiplier(name="emergency_discount", factor=config.emergency_discount))
    return tuple(applied)


def apply(base_units: float, applied: tuple[Multiplier, ...]) -> float:
    """``base x m1 x m2 ...``, multiplied in order, as the reference computes it."""
    multiplier = 1.0
    for m in applied:
        multiplier *= m.factor
    return base_units * multiplier
