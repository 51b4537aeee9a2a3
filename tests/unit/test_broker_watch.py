"""The broker watch: not ready while the cluster does not answer, counted, and the worker
ends only after an outage longer than the deadline."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from app.metrics import Metrics
from app.runtime import broker_watch
from app.runtime.broker_watch import BrokerWatch


def test_an_outage_is_reported_counted_and_ends_the_worker_only_past_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[BaseException] = []

    def fail_stop(pipeline: str, exc: BaseException) -> None:
        stopped.append(exc)

    monkeypatch.setattr(broker_watch, "fail_stop", fail_stop)
    registry = CollectorRegistry()
    metrics = Metrics(100, registry)
    watch = BrokerWatch(object(), metrics, interval_s=2, timeout_s=5, deadline_s=60)
    assert watch.reachable is None
    watch.record(True, 0)
    assert watch.reachable is True
    for now in (10, 40, 70):
        watch.record(False, now)
    assert watch.reachable is False and stopped == []
    assert registry.get_sample_value("governor_broker_reachable") == 0
    assert registry.get_sample_value("governor_broker_unreachable_checks_total") == 3
    watch.record(True, 75)
    assert watch.reachable is True and watch.down_since is None
    watch.record(False, 100)
    watch.record(False, 161)
    assert len(stopped) == 1 and "61 s" in str(stopped[0])


async def test_a_check_without_a_broker_says_unreachable() -> None:
    class _Client:
        async def fetch_all_metadata(self) -> Any:
            raise ConnectionError("no broker")

    class _Producer:
        client = _Client()

        def _ensure_producer(self) -> Any:
            return self

    class _App:
        producer = _Producer()

    watch = BrokerWatch(_App(), None, interval_s=1, timeout_s=1, deadline_s=60)
    assert await watch.check() is False


class _Broker:
    def __init__(self, node_id: int) -> None:
        self.nodeId = node_id


class _Cluster:
    def brokers(self) -> set[_Broker]:
        return {_Broker(1), _Broker(2)}


def _watch_over(client: Any) -> BrokerWatch:
    class _Producer:
        def _ensure_producer(self) -> Any:
            return self

    producer = _Producer()
    producer.client = client  # type: ignore[attr-defined]

    class _App:
        pass

    app = _App()
    app.producer = producer  # type: ignore[attr-defined]
    return BrokerWatch(app, None, interval_s=1, timeout_s=1, deadline_s=60)


async def test_a_check_asks_each_broker_for_no_topics_until_one_answers() -> None:
    asked: list[tuple[int, Any]] = []

    class _Client:
        cluster = _Cluster()

        async def send(self, node_id: int, request: Any) -> None:
            asked.append((node_id, request))
            if len(asked) == 1:
                raise ConnectionError("this broker is down")

        async def fetch_all_metadata(self) -> Any:
            raise AssertionError("a check must not ask for every topic of the cluster")

    assert await _watch_over(_Client()).check() is True
    assert sorted(node for node, _ in asked) == [1, 2]
    # An empty topic list (Metadata v1 and later) asks for no topics at all.
    assert [request._topics for _, request in asked] == [[], []]


async def test_a_check_where_no_broker_answers_says_unreachable() -> None:
    class _Client:
        cluster = _Cluster()

        async def send(self, node_id: int, request: Any) -> None:
            raise ConnectionError("down")

    assert await _watch_over(_Client()).check() is False
