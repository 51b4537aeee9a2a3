"""The heap is frozen out of full garbage collections once a rebalance completes, and so
are the survivors of every full collection after it, thawed on an interval."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from app.runtime.gc_freeze import FreezeSurvivors, freeze_after_rebalances, freeze_survivors


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[object] = []

    def connect(self, receiver: object) -> None:
        self.receivers.append(receiver)


class _App:
    def __init__(self) -> None:
        self.on_rebalance_complete = _Signal()


@pytest.fixture
def clean_gc() -> Iterator[None]:
    """No freeze and no survivors callback before or after the test."""
    gc.unfreeze()
    kept = [c for c in gc.callbacks if not isinstance(c, FreezeSurvivors)]
    gc.callbacks[:] = kept
    try:
        yield
    finally:
        gc.callbacks[:] = [c for c in gc.callbacks if not isinstance(c, FreezeSurvivors)]
        gc.unfreeze()


@pytest.mark.usefixtures("clean_gc")
def test_a_completed_rebalance_freezes_what_exists_and_installs_one_survivors_freeze() -> None:
    app = _App()
    freeze_after_rebalances(app, thaw_interval_s=600)
    (receiver,) = app.on_rebalance_complete.receivers
    kept = [[n] for n in range(1000)]  # container objects the collector tracks
    assert gc.get_freeze_count() == 0
    asyncio.run(receiver(sender=app))  # type: ignore[operator]
    assert gc.get_freeze_count() >= len(kept)
    asyncio.run(receiver(sender=app))  # type: ignore[operator]  # a second rebalance
    assert sum(isinstance(c, FreezeSurvivors) for c in gc.callbacks) == 1


@pytest.mark.usefixtures("clean_gc")
def test_a_full_collection_freezes_its_survivors_and_the_interval_thaws_them() -> None:
    now = [0.0]
    survivors = FreezeSurvivors(thaw_interval_s=60, clock=lambda: now[0])
    gc.callbacks.append(survivors)
    kept = [[n] for n in range(1000)]
    gc.collect(1)  # not a full collection: nothing frozen
    assert gc.get_freeze_count() == 0 and survivors.frozen == 0
    gc.collect()
    assert gc.get_freeze_count() >= len(kept) and survivors.frozen == 1
    # Frozen objects are out of sight: a cycle among them is not freed until a thaw.
    node = _Node()
    node.me = node
    alive = weakref.ref(node)
    gc.collect()  # the cycle is alive here, and frozen after
    del node
    gc.collect()
    assert alive() is not None
    now[0] = 61.0
    gc.collect()  # past the interval: thawed instead of frozen
    assert gc.get_freeze_count() == 0 and survivors.thawed == 1
    gc.collect()  # the whole heap walked
    assert alive() is None


class _Node:
    me: object = None


def test_freeze_survivors_installs_once(clean_gc: None) -> None:
    first = freeze_survivors(600)
    assert freeze_survivors(30) is first
    assert first.thaw_interval_s == 600
