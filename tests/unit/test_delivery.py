"""The delivery guard: a record the broker refuses stops the worker before Faust can commit
the offsets that cover it (aiokafka reports it only on the send's future)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, NoReturn

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from app.metrics import Metrics
from app.runtime.dead_letters import DeadLetterSink
from app.runtime.delivery import delivery_guard
from schemas.dead_letter import DeadLetterReason


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
    with contextlib.suppress(Stopped):
        await app.producer.flush()  # Faust's commit would come next: it never does
    assert app.producer.flushed == 2 and len(stops) == 1  # stopped before the flush returned


async def test_a_check_sees_a_failed_delivery_before_its_callback_runs(
    stops: list[BaseException],
) -> None:
    guard = delivery_guard(_App())
    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    guard.watch(refused)
    refused.set_exception(MessageSizeTooLargeError())
    with pytest.raises(Stopped):
        guard.check()  # no await in between: the callback has not run
    assert len(stops) == 1


async def test_a_dead_letter_the_broker_refuses_stops_the_worker(
    stops: list[BaseException],
) -> None:
    app = _App()

    class _Topic:
        def __init__(self) -> None:
            self.app = app
            self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def send(self, key: bytes, value: bytes) -> asyncio.Future[Any]:
            return self.future  # Faust's FutureMessage: resolved once published

    topic = _Topic()
    sink = DeadLetterSink(topic, "carbon", Metrics(50, CollectorRegistry()), "", 1_024)
    await sink.send(
        source_topic="meter-readings", partition=0, offset=7, timestamp_ms=None, key=b"k",
        value=b"{oops", reason=DeadLetterReason.UNDECODABLE, error="not JSON",
    )  # fmt: skip
    assert stops == []
    topic.future.set_exception(MessageSizeTooLargeError())
    with contextlib.suppress(Stopped):
        await app.producer.flush()
    assert len(stops) == 1
