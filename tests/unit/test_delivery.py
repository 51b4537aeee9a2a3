"""The delivery guard: a record the broker refuses stops the worker before Faust can commit
the offsets that cover it (aiokafka reports it only on the send's future)."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from app.runtime.delivery import delivery_guard


class Stopped(Exception):
    pass


class _Producer:
    def __init__(self) -> None:
        self.flushed = 0

    async def flush(self) -> None:
        self.flushed += 1


class _App:
    def __init__(self) -> None:
        self.producer = _Producer()


@pytest.fixture
def stops(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    stopped: list[BaseException] = []

    def fail_stop(pipeline: str, exc: BaseException) -> NoReturn:
        stopped.append(exc)
        raise Stopped(pipeline)

    monkeypatch.setattr("app.runtime.delivery.fail_stop", fail_stop)
    return stopped


async def test_a_refused_record_stops_the_worker_when_its_delivery_fails(
    stops: list[BaseException],
) -> None:
    app = _App()
    guard = delivery_guard(app)
    assert delivery_guard(app) is guard  # one per app
    delivered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    guard.watch(delivered)
    guard.watch(refused)
    delivered.set_result("metadata")
    await asyncio.sleep(0)
    assert stops == []
    refused.set_exception(MessageSizeTooLargeError())
    await asyncio.sleep(0)  # the callback stops the worker as the failure arrives
    assert [type(e) for e in stops] == [MessageSizeTooLargeError]


async def test_the_flush_before_a_commit_stops_on_a_failure_whose_callback_has_not_run(
    stops: list[BaseException],
) -> None:
    app = _App()
    guard = delivery_guard(app)
    await app.producer.flush()  # nothing watched: the commit may go ahead
    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    guard.watch(refused)
    refused.set_exception(MessageSizeTooLargeError())  # its callback is only scheduled
    with pytest.raises(Stopped):
        await app.producer.flush()  # Faust's commit would come next: it never does
    assert app.producer.flushed == 2 and len(stops) == 1
