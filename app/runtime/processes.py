"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """In a child (the broker, the demo's worker, the ledger process) before exec: have Linux
    send it SIGTERM when the process that started it ends, however it ends (a SIGKILL
    included), so that nothing outlives its owner."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


SIGNALLED_GRACE_S = 30.0
"""How long a child ended by SIGTERM or SIGINT may wait for its parent's own stop."""


async def supervise(
    command: list[str],
    on_failure: Callable[[int], None],
    signalled_grace_s: float = SIGNALLED_GRACE_S,
) -> None:
    """Run ``command`` as a child for as long as the caller's task runs.

    The child dies with this process, even on SIGKILL (:func:`end_with_parent`); cancelling
    the task stops it (SIGTERM, then 30 s). A non-zero exit calls ``on_failure`` with the
    code; exit 0 (stopped on request) is only logged.

    A child ended by SIGTERM or SIGINT was most likely stopped with its parent (a process
    manager signals the whole group, as systemd does and ``kill -- -PGID``): the parent is
    then stopping too, and cancels this task on its way. So such an exit is a failure only if
    the task is still running ``signalled_grace_s`` later; calling it a failure at once would
    turn every group stop into a crash (a worker's local state store would then not count
    its stop as clean, see :mod:`app.runtime.local_store`).
    """
    child = await asyncio.create_subprocess_exec(*command, preexec_fn=end_with_parent)
    try:
        code = await child.wait()
    except asyncio.CancelledError:
        if child.returncode is None:
            child.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.wait(), 30)
        raise
    if code == 0:
        log.warning("%s stopped", " ".join(command[-2:]))
        return
    if code in (-signal.SIGTERM, -signal.SIGINT):
        log.warning("%s ended by signal %d: a failure unless this process stops within %.0f s",
                    " ".join(command[-2:]), -code, signalled_grace_s)  # fmt: skip
        await asyncio.sleep(signalled_grace_s)  # a stop of this process cancels it here
    on_failure(code)


async def on_own_thread(main: Callable[[], Awaitable[None]], name: str) -> None:
    """Run ``main()`` on a thread with its own event loop until it returns; the caller's loop
    never waits behind its work (the two share only the interpreter)."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not ended.done():
            ended.set_result(None)

    async def run_main() -> None:
        await main()

    def run() -> None:
        try:
            asyncio.run(run_main())
        finally:
            with contextlib.suppress(RuntimeError):  # the caller's loop already closed
                loop.call_soon_threadsafe(finish)

    threading.Thread(target=run, name=name, daemon=True).start()
    await ended
