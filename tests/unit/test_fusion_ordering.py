"""The overlay stage's event-time order (agents.fusion.rules.ordering): whatever the arrival
order across fusion-results partitions, runs are released as replay applies them."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.fusion.rules import ordering
from agents.fusion.rules.ordering import ObservationBuffer
from agents.fusion.rules.settlement import observations_of
from agents.fusion.settings import FusionSettings
from app.core.dedup import Position
from schemas.overlay import ObservationKind, OverlayObservation
from tests.factories import BASE_TIME, fusion_result

SOURCES = 3


def run(n: int, seconds: float) -> OverlayObservation:
    result = fusion_result(n, timestamp=BASE_TIME + timedelta(seconds=seconds))
    [obs] = observations_of(result, FusionSettings())
    return obs


def marker(source: int, seconds: float | None) -> OverlayObservation:
    at = None if seconds is None else BASE_TIME + timedelta(seconds=seconds)
    kind = ObservationKind.IDLE if at is None else ObservationKind.PROGRESS
    return OverlayObservation(
        kind=kind, event_id=f"{kind.value}-{source}", scope=f"~{kind.value}",
        scenario_type="-", overlay="-", source_partition=source, watermark=at,
        timestamp=at or BASE_TIME,
    )  # fmt: skip


class Stage:
    """Feeds records to the rules as the overlay agent does, one offset each."""

    def __init__(self, max_pending: int = 2_000) -> None:
        self.max_pending = max_pending
        self.buffer = ObservationBuffer(buffer_partition=0)
        self.offset = 0
        self.released: list[OverlayObservation] = []
        self.late: list[OverlayObservation] = []
        self.early: list[OverlayObservation] = []

    def take(self, obs: OverlayObservation) -> None:
        position = Position(partition=0, offset=self.offset)
        self.offset += 1
        if obs.is_marker:
            step = ordering.progress(self.buffer, obs, position, SOURCES)
        else:
            step = ordering.arrive(self.buffer, obs, position, self.max_pending)
        assert step.buffer is not None
        assert step.buffer.has_applied(position)
        self.buffer = step.buffer
        self.released.extend(step.release)
        if step.late:
            self.late.extend(step.release)
        if step.early:
            self.early.extend(step.release)


def test_nothing_is_released_until_every_source_has_reported() -> None:
    stage = Stage()
    for obs in (run(1, 10), marker(0, 100), marker(1, 100)):
        stage.take(obs)
    assert stage.released == [] and len(stage.buffer.pending) == 1
    stage.take(marker(2, 5))  # the slowest source is at 5
    assert stage.released == []
    stage.take(marker(2, 50))
    assert [o.event_id for o in stage.released] == ["run-000001"]
    assert stage.buffer.released_to_s == (BASE_TIME + timedelta(seconds=50)).timestamp()


def test_equal_times_release_by_event_id_and_a_handled_record_changes_nothing() -> None:
    stage = Stage()
    for obs in (run(7, 10), run(3, 10), run(5, 9)):
        stage.take(obs)
    for source in range(SOURCES):
        stage.take(marker(source, 11))
    assert [o.event_id for o in stage.released] == ["run-000005", "run-000003", "run-000007"]
    again = ordering.progress(stage.buffer, marker(0, 20), Position(partition=0, offset=3), 3)
    assert again.buffer is None and again.release == ()


def test_the_release_point_never_moves_back_and_older_runs_are_late() -> None:
    stage = Stage()
    for source in range(SOURCES):
        stage.take(marker(source, 30))
    stage.take(marker(1, None))  # source 1 quiet...
    stage.take(marker(1, 10))  # ...then back, behind the others
    assert stage.buffer.released_to_s == (BASE_TIME + timedelta(seconds=30)).timestamp()
    stage.take(run(1, 20))
    assert [o.event_id for o in stage.late] == ["run-000001"]
    stage.take(run(2, 35))
    assert stage.buffer.pending == (run(2, 35),)


def test_when_every_source_is_quiet_everything_waiting_is_released() -> None:
    stage = Stage()
    for obs in (run(1, 10), run(2, 40), marker(0, 5), marker(1, 5), marker(2, 5)):
        stage.take(obs)
    assert stage.released == []
    for source in range(SOURCES):
        stage.take(marker(source, None))
    assert [o.event_id for o in stage.released] == ["run-000001", "run-000002"]
    assert stage.buffer.pending == ()


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(
        st.lists(st.integers(0, 500), min_size=0, max_size=12),
        min_size=SOURCES,
        max_size=SOURCES,
    ),
    lateness=st.integers(0, 30),
    interleaving=st.randoms(use_true_random=False),
)
def test_any_interleaving_of_in_order_sources_releases_the_replay_order(
    times: list[list[int]], lateness: int, interleaving: object
) -> None:
    """Each source sends its runs (each no older than its newest so far minus the lateness)
    with progress after each, as agents/fusion/progress.py does; the sources' streams
    interleave at random; then every source goes quiet. Released: replay's order, none
    late."""
    streams: list[list[OverlayObservation]] = []
    everything: list[OverlayObservation] = []
    n = 0
    for source, seconds in enumerate(times):
        stream: list[OverlayObservation] = []
        newest: float | None = None
        for t in seconds:
            at = t if newest is None else max(t, newest - lateness)  # within the lateness
            newest = at if newest is None else max(newest, at)
            obs = run(n, at)
            n += 1
            everything.append(obs)
            stream += [obs, marker(source, newest - lateness)]
        streams.append([*stream, marker(source, None)])
    stage = Stage()
    rng = interleaving
    while any(streams):
        stream = rng.choice([s for s in streams if s])  # type: ignore[attr-defined]
        stage.take(stream.pop(0))
    assert stage.late == []
    assert stage.released == ordering.replay_order(everything)


def test_a_full_buffer_releases_its_oldest_runs_early_and_later_older_runs_are_late() -> None:
    stage = Stage(max_pending=3)
    for n in range(5):
        stage.take(run(n, 10 + n))  # no source has reported: all held, up to 3
    assert [o.event_id for o in stage.early] == ["run-000000", "run-000001"]
    assert [o.event_id for o in stage.buffer.pending] == ["run-000002", "run-000003", "run-000004"]
    assert 11 < stage.buffer.released_to_s - BASE_TIME.timestamp() < 11.001
    stage.take(run(9, 11))  # at the time of one released early: late
    assert [o.event_id for o in stage.late] == ["run-000009"]
    for source in range(SOURCES):
        stage.take(marker(source, 100))
    assert [o.event_id for o in stage.released] == [
        "run-000000",
        "run-000001",
        "run-000009",
        "run-000002",
        "run-000003",
        "run-000004",
    ]


def test_runs_of_one_time_are_released_together_when_the_buffer_is_full() -> None:
    stage = Stage(max_pending=2)
    for obs in (run(3, 11), run(0, 10), run(1, 10)):  # one too many: both runs of 10 go
        stage.take(obs)
    assert [o.event_id for o in stage.early] == ["run-000000", "run-000001"]
    assert [o.event_id for o in stage.buffer.pending] == ["run-000003"]
