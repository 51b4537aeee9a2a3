"""Feature flags: overlay routing per scenario, rolled out by deterministic hashing.

A routing key (a user or session id) falls in bucket ``sha256(feature|key) mod 10000``;
the overlay is on for it when the bucket is below ``rollout_pct`` x 100, so the same key
always gets the same answer and raising the percentage only adds keys.
"""

from __future__ import annotations

import hashlib

from agents.fusion.settings import FeatureFlag, FusionSettings


def bucket(feature: str, routing_key: str) -> int:
    digest = hashlib.sha256(f"{feature}|{routing_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def flag_for(settings: FusionSettings, scenario_type: str, overlay: str) -> FeatureFlag | None:
    for flag in settings.flags:
        if flag.scenario_type == scenario_type and flag.overlay == overlay:
            return flag
    return None


def overlay_enabled(
    settings: FusionSettings, scenario_type: str, overlay: str, routing_key: str
) -> bool:
    """Whether this run may use the overlay; without a flag for it, it may."""
    flag = flag_for(settings, scenario_type, overlay)
    if flag is None:
        return True
    if not settings.flag_on(flag):
        return False
    return bucket(flag.feature, routing_key) < flag.rollout_pct * 100


def validate(settings: FusionSettings) -> list[str]:
    """Problems a person should look at in the flag configuration (beyond what settings
    validation already refuses)."""
    problems = []
    for flag in settings.flags:
        on = settings.flag_on(flag)
        if on and flag.rollout_pct == 0:
            problems.append(f"{flag.feature}: enabled with rollout 0 % (routes nothing)")
        if not on and flag.rollout_pct > 0 and settings.enabled_features is None:
            problems.append(f"{flag.feature}: disabled but rollout {flag.rollout_pct} % is set")
    return problems
