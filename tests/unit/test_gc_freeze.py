"""The heap is frozen out of full garbage collections once a rebalance completes."""

from __future__ import annotations

import asyncio
import gc

from app.runtime.gc_freeze import freeze_after_rebalances


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[object] = []

    def connect(self, receiver: object) -> None:
        self.receivers.append(receiver)


class _App:
    def __init__(self) -> None:
        self.on_rebalance_complete = _Signal()


def test_a_completed_rebalance_freezes_what_exists() -> None:
    app = _App()
    freeze_after_rebalances(app)
    (receiver,) = app.on_rebalance_complete.receivers
    kept = [[n] for n in range(1000)]  # container objects the collector tracks
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        asyncio.run(receiver(sender=app))  # type: ignore[operator]
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
