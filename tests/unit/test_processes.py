"""A supervised child: a failure ends its parent, but a child stopped by SIGTERM with its
parent (a process manager signals the whole group) is not a failure while the parent stops."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import psutil

from app.runtime.processes import supervise

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


async def _child_pid() -> int:
    """The newest child of this process (the sleeper), once it runs."""
    for _ in range(100):
        children = psutil.Process().children()
        if children:
            return int(children[-1].pid)
        await asyncio.sleep(0.05)
    raise AssertionError("the child did not start")


async def test_a_child_that_fails_is_a_failure_at_once() -> None:
    failures: list[int] = []
    await supervise([sys.executable, "-c", "raise SystemExit(3)"], failures.append)
    assert failures == [3]


async def test_a_signalled_child_waits_for_its_parents_stop() -> None:
    failures: list[int] = []
    task = asyncio.create_task(supervise(SLEEPER, failures.append, signalled_grace_s=5))
    os.kill(await _child_pid(), signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert failures == [] and not task.done()  # within the grace: the parent may be stopping
    task.cancel()  # it is: the worker's stop cancels its tasks
    await asyncio.gather(task, return_exceptions=True)
    assert failures == []


async def test_a_signalled_child_is_a_failure_if_its_parent_goes_on() -> None:
    failures: list[int] = []
    task = asyncio.create_task(supervise(SLEEPER, failures.append, signalled_grace_s=0.3))
    os.kill(await _child_pid(), signal.SIGTERM)
    await asyncio.wait_for(task, 10)
    assert failures == [-signal.SIGTERM]
