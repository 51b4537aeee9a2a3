"""A mergeable relative-error quantile sketch (the DDSketch mapping), kept in table state.

Values map to bucket ``ceil(log_gamma(x))`` with ``gamma = (1 + a) / (1 - a)``; any quantile
is then within relative error ``a`` of the true one, whatever the distribution, and two
sketches merge by adding bucket counts. A list of samples would grow with traffic; this
grows with the log of the value range (about 130 buckets for 10 ms .. 2 s at a = 2 %).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

MIN_VALUE = 1e-3
"""Values at or below this (ms) share the zero bucket."""


class Sketch(BaseModel):
    """Bucket counts of one sketch. ``gamma`` travels with the bins so merges can check it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gamma: float
    zero: int = 0
    bins: dict[int, int] = {}

    @classmethod
    def empty(cls, relative_accuracy: float) -> Sketch:
        return cls(gamma=(1 + relative_accuracy) / (1 - relative_accuracy))

    @property
    def count(self) -> int:
        return self.zero + sum(self.bins.values())

    def key(self, value: float) -> int | None:
        if value <= MIN_VALUE:
            return None
        return math.ceil(math.log(value) / math.log(self.gamma))

    def add(self, value: float) -> Sketch:
        """This sketch with one more value."""
        key = self.key(value)
        if key is None:
            return self.model_copy(update={"zero": self.zero + 1})
        bins = dict(self.bins)
        bins[key] = bins.get(key, 0) + 1
        return self.model_copy(update={"bins": bins})

    def merge(self, other: Sketch) -> Sketch:
        """Both sketches' values in one (same accuracy required)."""
        if other.gamma != self.gamma:
            raise ValueError("cannot merge sketches of different accuracy")
        bins = dict(self.bins)
        for key, count in other.bins.items():
            bins[key] = bins.get(key, 0) + count
        return self.model_copy(update={"zero": self.zero + other.zero, "bins": bins})

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1), ``None`` when empty."""
        total = self.count
        if total == 0:
            return None
        rank = q * (total - 1)
        seen = self.zero
        if rank < seen:
            return 0.0
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen > rank:
                return 2 * self.gamma**key / (self.gamma + 1)
        return 2 * self.gamma ** max(self.bins) / (self.gamma + 1)


class RollingSketch(BaseModel):
    """Two generations of a sketch, rotated in event time: quantiles cover the last one to
    two generations, so old behaviour ages out without keeping samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generation_s: int
    generation: int
    current: Sketch
    previous: Sketch

    @classmethod
    def start(cls, generation_s: int, at_s: float, relative_accuracy: float) -> RollingSketch:
        empty = Sketch.empty(relative_accuracy)
        return cls(
            generation_s=generation_s,
            generation=int(at_s // generation_s),
            current=empty,
            previous=empty,
        )

    def add(self, at_s: float, value: float) -> RollingSketch:
        """Add a value observed at event time ``at_s`` (``at_s`` never goes back: the caller
        passes the endpoint's event-time watermark)."""
        generation = int(at_s // self.generation_s)
        rolled = self
        if generation == self.generation + 1:
            empty = Sketch(gamma=self.current.gamma)
            rolled = self.model_copy(
                update={"generation": generation, "previous": self.current, "current": empty}
            )
        elif generation > self.generation + 1:
            empty = Sketch(gamma=self.current.gamma)
            rolled = self.model_copy(
                update={"generation": generation, "previous": empty, "current": empty}
            )
        return rolled.model_copy(update={"current": rolled.current.add(value)})

    def merged(self) -> Sketch:
        return self.current.merge(self.previous)
