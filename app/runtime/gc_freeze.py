"""Python's full garbage collections, kept short: what survives a full collection (and what
exists once a rebalance is complete: Faust, aiokafka, the modules, the tables' recovered
state) is moved out of the collector's sight with ``gc.freeze()``.

Why: a worker holds a few hundred thousand long-lived container objects, and every full
(generation 2) collection walks all of them while the event loop waits.
- ``POST /api/v1/fusion/validate`` at 100 req/s (issue 17, 2026-12-04): a full collection
  every ~10 s took 115-138 ms, and the requests behind it were the p99. Frozen after the
  rebalance, the same collections took 10-30 ms.
- Single readings at 2,200/s on the carbon pipeline (the same day, later): the state built
  while running (dedup segments, table values, recent-readings rings) is not there at the
  rebalance. ~300,000 objects again after a minute, and a full collection every ~1.8 s took
  185-210 ms: the produce-to-output p99 was those stalls (386 ms). Freezing the survivors
  of each full collection, the next one walks only what was created since: 15-50 ms.

The cost: a frozen object that later becomes part of an unreachable reference cycle is not
collected while it is frozen. Objects that die by reference count (the usual way: a
replaced table value, a finished request) are freed as before. So the heap is thawed every
``worker.gc_thaw_interval_s``: the next full collection walks everything once and frees any
such cycle (in the run above, a thawed collection after 9 frozen periods found 12 objects).
``gc.freeze`` is also what CPython's documentation recommends before forking workers, for
the same walk.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any, cast

log = logging.getLogger(__name__)


def freeze_after_rebalances(app: Any, thaw_interval_s: float) -> None:
    """Freeze the heap each time ``app`` completes a rebalance (startup included), and from
    the first one on, the survivors of each full collection (:class:`FreezeSurvivors`)."""

    async def freeze_heap(*_: Any, **__: Any) -> None:
        gc.freeze()
        log.info("%d objects frozen out of full garbage collections", gc.get_freeze_count())
        freeze_survivors(thaw_interval_s)

    app.on_rebalance_complete.connect(cast(Any, freeze_heap))


class FreezeSurvivors:
    """A ``gc.callbacks`` entry that freezes the survivors of each full collection, and
    every ``thaw_interval_s`` thaws the heap instead, so that the next full collection walks
    all of it.

    Right after a full collection the younger generations are empty and every tracked
    object was found reachable: freezing then hides no garbage, only objects that are alive.
    ``clock`` is injectable for tests.
    """

    def __init__(self, thaw_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.thaw_interval_s = thaw_interval_s
        self._clock = clock
        self._thawed_at = clock()
        self.frozen = 0
        """How many full collections were followed by a freeze."""
        self.thawed = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        now = self._clock()
        if now - self._thawed_at >= self.thaw_interval_s:
            gc.unfreeze()
            self._thawed_at = now
            self.thawed += 1
        else:
            gc.freeze()
            self.frozen += 1


def freeze_survivors(thaw_interval_s: float) -> FreezeSurvivors:
    """Install :class:`FreezeSurvivors`, once per process: a later call keeps the one
    installed (each rebalance calls this)."""
    for installed in gc.callbacks:
        if isinstance(installed, FreezeSurvivors):
            return installed
    callback = FreezeSurvivors(thaw_interval_s)
    gc.callbacks.append(callback)
    return callback
