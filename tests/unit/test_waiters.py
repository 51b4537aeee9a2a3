"""Synchronous HTTP answers from the stream (app/runtime/waiters.py)."""

from __future__ import annotations

import asyncio

from app.runtime.waiters import Waiters


def test_an_answer_given_while_publishing_is_not_missed() -> None:
    waiters: Waiters[str] = Waiters()

    async def publish() -> None:
        waiters.resolve(("t", "id-1"), "approved")  # the agent answers before publish returns

    assert asyncio.run(waiters.publish_and_wait(("t", "id-1"), publish, 1.0)) == "approved"


def test_no_answer_in_time_gives_none_and_forgets_the_request() -> None:
    waiters: Waiters[str] = Waiters()
    published: list[str] = []

    async def publish() -> None:
        published.append("id-2")

    assert asyncio.run(waiters.publish_and_wait(("t", "id-2"), publish, 0.01)) is None
    assert published == ["id-2"]
    waiters.resolve(("t", "id-2"), "late")  # a late answer finds nobody waiting: no error
    assert waiters._pending == {}


def test_answers_go_to_their_own_request_only() -> None:
    waiters: Waiters[str] = Waiters()

    async def both() -> tuple[str | None, str | None]:
        async def answer_b_then_a() -> None:
            await asyncio.sleep(0.01)
            waiters.resolve(("t", "b"), "for b")
            waiters.resolve(("t", "a"), "for a")

        async def nothing() -> None:
            return None

        task = asyncio.create_task(answer_b_then_a())
        a, b = await asyncio.gather(
            waiters.publish_and_wait(("t", "a"), nothing, 1.0),
            waiters.publish_and_wait(("t", "b"), nothing, 1.0),
        )
        await task
        return a, b

    assert asyncio.run(both()) == ("for a", "for b")


def test_the_same_event_id_of_another_tenant_is_not_my_answer() -> None:
    """Issue 16: waiters were keyed by event id alone, so one caller could receive
    another tenant's decision."""
    waiters: Waiters[str] = Waiters()

    async def publish() -> None:
        waiters.resolve(("tenant-b", "e-1"), "tenant-b's decision")

    got = asyncio.run(waiters.publish_and_wait(("tenant-a", "e-1"), publish, 0.05))
    assert got is None
