"""Request and error counts in event-time buckets of several widths.

Burn-rate rules ask for windows from 5 minutes to 3 days, and error budget remaining for
the SLO period: each window is answered from the finest tier that covers it, so the state
stays a few dozen buckets however much traffic there is. A window's sum includes the
current partial bucket and reaches back ``ceil(window / width)`` whole buckets, so it
covers between ``window`` and ``window + width`` of event time.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

TIER_WIDTHS_S = (60, 300, 1800, 21_600)
TIER_SLOTS = (16, 13, 13, 13)
"""Minutes for 15 min, 5-minute buckets for 1 h, half hours for 6 h, quarter days for 3 d."""
DAY_S = 86_400


class Bucket(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    total: int = 0
    errors: int = 0


class Tier(BaseModel):
    """Buckets of one width, oldest first, at most ``slots`` of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    width_s: int
    slots: int
    buckets: tuple[Bucket, ...] = ()

    def covers(self, window_s: float) -> bool:
        return self.width_s * (self.slots - 1) >= window_s

    def add(self, at_s: float, error: bool, watermark_s: float) -> Tier:
        """Count one request at event time ``at_s``; ``watermark_s`` (newest event time
        seen) decides which buckets are too old to keep."""
        index = int(at_s // self.width_s)
        newest = max(int(watermark_s // self.width_s), index)
        oldest_kept = newest - self.slots + 1
        if index < oldest_kept:
            return self
        kept = [b for b in self.buckets if b.index >= oldest_kept]
        for i, bucket in enumerate(kept):
            if bucket.index == index:
                kept[i] = Bucket(
                    index=index, total=bucket.total + 1, errors=bucket.errors + int(error)
                )
                break
        else:
            kept.append(Bucket(index=index, total=1, errors=int(error)))
            kept.sort(key=lambda b: b.index)
        return self.model_copy(update={"buckets": tuple(kept)})

    def window(self, now_s: float, window_s: float) -> tuple[int, int]:
        """(requests, errors) in the window ending at ``now_s``."""
        newest = int(now_s // self.width_s)
        first = newest - math.ceil(window_s / self.width_s)
        total = errors = 0
        for bucket in self.buckets:
            if first <= bucket.index <= newest:
                total += bucket.total
                errors += bucket.errors
        return total, errors

    def count_in(self, index: int) -> int:
        for bucket in self.buckets:
            if bucket.index == index:
                return bucket.total
        return 0


class Windows(BaseModel):
    """All tiers of one endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tiers: tuple[Tier, ...]

    @classmethod
    def empty(cls, slo_window_days: int) -> Windows:
        tiers = [Tier(width_s=w, slots=s) for w, s in zip(TIER_WIDTHS_S, TIER_SLOTS, strict=True)]
        tiers.append(Tier(width_s=DAY_S, slots=slo_window_days + 1))
        return cls(tiers=tuple(tiers))

    def add(self, at_s: float, error: bool, watermark_s: float) -> Windows:
        return self.model_copy(
            update={"tiers": tuple(t.add(at_s, error, watermark_s) for t in self.tiers)}
        )

    def window(self, now_s: float, window_s: float) -> tuple[int, int]:
        """(requests, errors) over ``window_s`` from the finest tier covering it."""
        for tier in self.tiers:
            if tier.covers(window_s):
                return tier.window(now_s, window_s)
        return self.tiers[-1].window(now_s, window_s)

    def requests_per_minute(self, now_s: float) -> float:
        """Sliding one-minute rate: this minute plus the previous one weighted by how much
        of it is still inside the minute ending now."""
        minutes = self.tiers[0]
        index = int(now_s // 60)
        elapsed = (now_s % 60) / 60
        return minutes.count_in(index) + minutes.count_in(index - 1) * (1 - elapsed)
