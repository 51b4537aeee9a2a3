"""When a fusion-results partition counts as idle (agents.fusion.progress): quiet time runs
only while the broker answers the idle checks; an outage, or a gap between answers, starts
it again, so a broker restart is not mistaken for a quiet partition whose producer then
sends older runs (they would be late)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Counter

import agents.fusion.progress as progress_module
from agents.fusion.progress import ProgressMarkers
from agents.fusion.settings import OrderingSettings

IDLE_S = 30.0
CHECK_S = 7.5
MAX_GAP_S = CHECK_S * 2 + 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    return clock


def markers() -> ProgressMarkers:
    topics = SimpleNamespace(get_topic_name=lambda: "fusion-observations")
    gov = SimpleNamespace(
        topic=lambda name: topics,
        catalogue={"fusion-observations": SimpleNamespace(partitions=2)},
    )
    sent = Counter("sent", "test", ["kind"], registry=CollectorRegistry())
    return ProgressMarkers(gov, "fusion-results", OrderingSettings(idle_partition_s=IDLE_S), sent)  # type: ignore[arg-type]


def checks(progress: ProgressMarkers, clock: Clock, seconds: float) -> list[int]:
    """Idle checks every CHECK_S for ``seconds``, each answered; the last one's quiet list."""
    quiet: list[int] = []
    for _ in range(int(seconds / CHECK_S)):
        clock.now += CHECK_S
        quiet = progress.quiet({0, 1})
        assert progress.answered(MAX_GAP_S)
    return quiet


def test_a_partition_quiet_across_answered_checks_is_idle(clock: Clock) -> None:
    progress = markers()
    progress.quiet({0, 1})
    progress.answered(MAX_GAP_S)
    assert checks(progress, clock, IDLE_S - CHECK_S) == []
    assert checks(progress, clock, CHECK_S) == [0, 1]


def test_a_gap_between_answers_starts_quiet_time_again(clock: Clock) -> None:
    """The broker was down between two checks (the worker's own check never raised, as
    when it asks only now and then): that time is not quiet."""
    progress = markers()
    progress.quiet({0, 1})
    progress.answered(MAX_GAP_S)
    clock.now += 25.0  # no answer for 25 s: a broker restart
    assert progress.quiet({0, 1}) == []
    assert progress.answered(MAX_GAP_S) is False  # quiet time starts again now
    assert checks(progress, clock, 3 * CHECK_S) == []  # 47.5 s since the last record
    assert checks(progress, clock, CHECK_S) == [0, 1]  # 30 s since the broker answered


def test_an_unanswered_check_starts_quiet_time_again(clock: Clock) -> None:
    progress = markers()
    progress.quiet({0, 1})
    progress.answered(MAX_GAP_S)
    checks(progress, clock, IDLE_S - CHECK_S)
    progress.unreachable()
    assert checks(progress, clock, CHECK_S) == []
    assert checks(progress, clock, IDLE_S - CHECK_S) == [0, 1]
