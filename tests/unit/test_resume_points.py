"""Where a worker starts handling a partition: the resume points read at assignment
(app/runtime/resume_points.py) and the choice between them and the recovered state
(app.runtime.lanes.first_unhandled), and when a delivered record shows records passed over
(app.runtime.lanes.passed_over)."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from app.runtime.lanes import first_unhandled, passed_over
from app.runtime.resume_points import ResumePoints


class TP(NamedTuple):
    topic: str
    partition: int


def test_lost_outputs_after_the_resume_point_are_handled_again() -> None:
    # State shows 0..233 processed, the group resumes at 200: 200..233 may have lost
    # their outputs with the killed worker's producer buffer.
    assert first_unhandled(last_processed=233, resume=200) == 200


def test_records_committed_but_never_processed_are_handled() -> None:
    # Faust committed past records it never delivered: state ends at 233, group at 2567.
    assert first_unhandled(last_processed=233, resume=2567) == 234


def test_one_source_alone_or_none() -> None:
    assert first_unhandled(last_processed=None, resume=40) == 40
    assert first_unhandled(last_processed=9, resume=None) == 10
    assert first_unhandled(last_processed=None, resume=None) is None


def test_a_jump_past_the_next_unprocessed_offset_is_read_back() -> None:
    assert passed_over(2567, 234, first_of_partition=True, compacted=False)
    assert passed_over(90, 80, first_of_partition=False, compacted=False)
    assert not passed_over(234, 234, first_of_partition=True, compacted=False)
    assert not passed_over(200, 234, first_of_partition=True, compacted=False)  # re-delivery
    assert not passed_over(5, None, first_of_partition=True, compacted=False)  # nothing known


def test_a_compacted_source_is_checked_at_the_first_record_of_an_assignment_only() -> None:
    # Compaction leaves holes: later jumps are records it removed, not records passed over.
    assert passed_over(57, 0, first_of_partition=True, compacted=True)
    assert not passed_over(90, 80, first_of_partition=False, compacted=True)


def test_points_of_watched_topics_are_read_once_per_assignment() -> None:
    asked: list[list[tuple[str, int]]] = []

    async def fetch(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        asked.append(partitions)
        return {tp: 10 * tp[1] for tp in partitions}

    points = ResumePoints(fetch)
    points.watch("routed")
    assigned = {TP("routed", 1), TP("routed", 0), TP("other", 0)}
    asyncio.run(points.on_partitions_assigned(None, assigned))
    assert asked == [[("routed", 0), ("routed", 1)]]
    assert points.get("routed", 1) == 10
    assert points.get("other", 0) is None

    asyncio.run(points.on_partitions_revoked(None, {TP("routed", 1)}))
    assert points.get("routed", 1) is None
    assert points.get("routed", 0) == 0


def test_a_broker_that_does_not_answer_leaves_the_points_unknown() -> None:
    async def fetch(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        await asyncio.sleep(1.0)
        return {}

    points = ResumePoints(fetch, timeout_s=0.01)
    points.watch("routed")
    asyncio.run(points.on_partitions_assigned(None, {TP("routed", 0)}))
    assert points.get("routed", 0) is None

    async def failing(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        raise ConnectionError("broker down")

    points = ResumePoints(failing)
    points.watch("routed")
    asyncio.run(points.on_partitions_assigned(None, {TP("routed", 0)}))
    assert points.get("routed", 0) is None
