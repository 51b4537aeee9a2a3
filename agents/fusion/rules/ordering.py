"""The overlay stage's order: a scope's runs in event-time order, whichever tenant partition
they came from, so live and ``governor replay`` make the same tripwire, gate, breaker and
routing records.

Runs reach fusion-observations from every fusion-results partition at once, so their
arrival order is timing. Each fusion-results partition's owner therefore also sends
progress records to every fusion-observations partition: "every run I send from now on has
an event time at or after w" (w: the partition's newest event time so far minus
``fusion.ordering.allowed_lateness_s``), and an idle record when the partition has had
nothing for ``idle_partition_s``. Per fusion-observations partition, an
:class:`ObservationBuffer` holds runs until every fusion-results partition has reported and
the slowest active one has passed them, then releases them in (event time, event id, scope)
order. A run that arrives after its time was
released is late: applied at once and counted (live and replay then may differ).

The release point only moves forward; with every known source idle, everything waiting is
released (that is how the last runs before a quiet spell are applied). A buffer holds at
most ``max_pending_runs_per_partition`` runs: past that the oldest are released early.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from app.core.dedup import Position
from app.core.watermark import Watermarked
from schemas.overlay import ObservationKind, OverlayObservation


class SourceClock(BaseModel):
    """What one fusion-results partition has said of its progress."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    watermark_s: float | None = None
    idle: bool = False


class ObservationBuffer(Watermarked):
    """One fusion-observations partition's ordering state."""

    buffer_partition: int
    sources: dict[int, SourceClock] = {}
    released_to_s: float | None = None
    """Runs before this event time have been applied; it never moves back."""
    pending: tuple[OverlayObservation, ...] = ()
    """Runs waiting, in release order."""


def release_order(obs: OverlayObservation) -> tuple[float, str, str]:
    """The canonical order of runs: event time, then event id, then scope."""
    return (obs.timestamp.timestamp(), obs.event_id, obs.scope)


@dataclass(frozen=True, slots=True)
class Step:
    """A record's effect on the buffer: the buffer to write (``None``: already applied) and
    the runs to apply now, in order."""

    buffer: ObservationBuffer | None
    release: tuple[OverlayObservation, ...] = ()
    late: bool = False
    early: bool = False
    """Released before every source passed them: the buffer was full."""


def arrive(
    buffer: ObservationBuffer, obs: OverlayObservation, position: Position, max_pending: int
) -> Step:
    """A run: held until every active source has passed it, or applied now if late.

    A buffer is one changelog record, so it holds at most ``max_pending`` runs: past that,
    the oldest are released before their time (``early``, with every run of the same event
    time; the release point moves past them, so a run that arrives behind it is late). A
    source that holds its progress back (a partition with a run every few seconds, below
    ``idle_partition_s``) would otherwise grow the buffer with every other source's runs
    until it outgrew Kafka's record limit, and its changelog send stopped the worker."""
    if buffer.has_applied(position):
        return Step(buffer=None)
    released_to = buffer.released_to_s
    if released_to is not None and obs.timestamp.timestamp() < released_to:
        return Step(buffer=buffer.stamped(position), release=(obs,), late=True)
    pending = list(buffer.pending)
    bisect.insort(pending, obs, key=release_order)
    release: list[OverlayObservation] = []
    if len(pending) > max_pending:  # release the oldest, and any run of the same time
        newest_released = _event_time_s(pending[len(pending) - max_pending - 1])
        cut = bisect.bisect_right(pending, newest_released, key=_event_time_s)
        release, pending = pending[:cut], pending[cut:]
        released_to = _later(released_to, math.nextafter(newest_released, math.inf))
    update = {"pending": tuple(pending), "released_to_s": released_to}
    return Step(
        buffer=buffer.model_copy(update=update).stamped(position),
        release=tuple(release),
        early=bool(release),
    )


def progress(
    buffer: ObservationBuffer, marker: OverlayObservation, position: Position, sources: int
) -> Step:
    """A source's progress or idle record: release what every active source has passed.
    ``sources``: fusion-results' partition count; one that has not reported yet holds
    everything back (its first runs may be the oldest)."""
    if buffer.has_applied(position):
        return Step(buffer=None)
    assert marker.source_partition is not None
    previous = buffer.sources.get(marker.source_partition, SourceClock())
    if marker.kind is ObservationKind.IDLE:
        clock = previous.model_copy(update={"idle": True})
    else:
        assert marker.watermark is not None
        at_s = marker.watermark.timestamp()
        newest = at_s if previous.watermark_s is None else max(previous.watermark_s, at_s)
        clock = SourceClock(watermark_s=newest, idle=False)
    clocks = {**buffer.sources, marker.source_partition: clock}
    expected = set(range(sources)) | set(clocks)
    active = [c.watermark_s for c in clocks.values() if not c.idle and c.watermark_s is not None]
    released_to = buffer.released_to_s
    release: tuple[OverlayObservation, ...]
    pending: tuple[OverlayObservation, ...]
    if not expected <= set(clocks):  # a source not heard from yet
        release, pending = (), buffer.pending
    elif not active:  # every source idle: nothing more is on its way
        release, pending = buffer.pending, ()
        if release:
            released_to = _later(released_to, release[-1].timestamp.timestamp())
    else:
        released_to = _later(released_to, min(active))
        cut = bisect.bisect_left(buffer.pending, released_to, key=_event_time_s)
        release, pending = buffer.pending[:cut], buffer.pending[cut:]
    updated = buffer.model_copy(
        update={"sources": clocks, "pending": pending, "released_to_s": released_to}
    )
    return Step(buffer=updated.stamped(position), release=release)


def _later(current: float | None, candidate: float) -> float:
    return candidate if current is None else max(current, candidate)


def _event_time_s(obs: OverlayObservation) -> float:
    return obs.timestamp.timestamp()


def replay_order(observations: list[OverlayObservation]) -> list[OverlayObservation]:
    """What live releases come to when no run is late: every run in release order."""
    return sorted(observations, key=release_order)
