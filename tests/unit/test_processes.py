"""A supervised child: a failure ends its parent, but a child stopped by SIGTERM with its
parent (a process manager signals the whole group) is not a failure while the parent stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid

import psutil

from app.runtime.processes import supervise


def sleeper() -> list[str]:
    """A child that sleeps, named by a token of its own: the test process has other children
    (the suite's Kafka broker among them), and only this one may be signalled."""
    return [sys.executable, "-c", "import time; time.sleep(60)", f"sleeper-{uuid.uuid4().hex}"]


async def _pid_of(command: list[str]) -> int:
    """The child of this process running ``command``, once it runs."""
    for _ in range(200):
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if child.cmdline()[-1:] == command[-1:]:
                    return int(child.pid)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{command[-1]} did not start")


async def test_a_child_that_fails_is_a_failure_at_once() -> None:
    failures: list[int] = []
    await supervise([sys.executable, "-c", "raise SystemExit(3)"], failures.append)
    assert failures == [3]


async def test_a_signalled_child_waits_for_its_parents_stop() -> None:
    failures: list[int] = []
    command = sleeper()
    task = asyncio.create_task(supervise(command, failures.append, signalled_grace_s=5))
    os.kill(await _pid_of(command), signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert failures == [] and not task.done()  # within the grace: the parent may be stopping
    task.cancel()  # it is: the worker's stop cancels its tasks
    await asyncio.gather(task, return_exceptions=True)
    assert failures == []


async def test_a_signalled_child_is_a_failure_if_its_parent_goes_on() -> None:
    failures: list[int] = []
    command = sleeper()
    task = asyncio.create_task(supervise(command, failures.append, signalled_grace_s=0.3))
    os.kill(await _pid_of(command), signal.SIGTERM)
    await asyncio.wait_for(task, 10)
    assert failures == [-signal.SIGTERM]
