"""Write-behind state and SIGKILL: a worker killed after its tables' changelog records are in
the log but before the offsets they cover are committed, killed when only the first half of
a flush reached the log, or killed right after a commit, loses nothing and counts nothing
twice once restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.integration.harness import (
    Cluster,
    WorkerProcess,
    committed_offsets,
    fault_injection,
    produce,
    read_all,
    wait_for,
)
from tests.integration.test_carbon_pipeline import (
    as_records,
    expected_totals,
    sample_readings,
    wait_for_totals,
)

pytestmark = pytest.mark.integration

# Loaded by the worker's interpreter at start (PYTHONPATH). Once the trigger file exists and a
# flush has sent changelog records, the next offset commit first waits until every record
# queued so far is in the log, then SIGKILLs the worker: the flush is durable, the commit
# never happens. In "half" mode that flush only got the first half of its records (in flush
# order) out, as a process that died while sending them would have. In "after-commit" mode
# the worker dies right after a commit: what survives of its state is what was flushed
# before that commit, which must cover every committed record.
FAULT = """
import os
import signal

import faust.transport.consumer as consumer
from app.runtime.state import WriteBehindTable

_trigger = os.environ["GOVERNOR_TEST_FAULT_TRIGGER"]
_mode = os.environ["GOVERNOR_TEST_FAULT_MODE"]
_commit = consumer.Consumer._commit_offsets
_flush = WriteBehindTable.flush_changelog
_flushed = []


def flush_changelog(self, partitions=None):
    if not os.path.exists(_trigger):
        return _flush(self, partitions)
    if _mode == "half" and self.dirty > 1:
        order = sorted(self._dirty, key=lambda k: not k.startswith("@"))  # journal keys first
        for key in order[self.dirty // 2 :]:
            del self._dirty[key]
    sent = _flush(self, partitions)
    _flushed.append(sent)
    return sent


async def _commit_offsets(self, offsets, *args, **kwargs):
    if not os.path.exists(_trigger):
        return await _commit(self, offsets, *args, **kwargs)
    if _mode == "after-commit":
        done = await _commit(self, offsets, *args, **kwargs)
        if done:
            os.kill(os.getpid(), signal.SIGKILL)
        return done
    if sum(_flushed):
        await self.app.producer.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return await _commit(self, offsets, *args, **kwargs)


WriteBehindTable.flush_changelog = flush_changelog
consumer.Consumer._commit_offsets = _commit_offsets
"""


@pytest.mark.parametrize("mode", ["after-flush", "half", "after-commit"])
def test_a_kill_between_flush_and_commit_or_mid_flush_loses_and_doubles_nothing(
    cluster: Cluster,
    prefix: str,
    workers: Callable[..., WorkerProcess],
    tmp_path: Path,
    mode: str,
) -> None:
    fault, trigger = fault_injection(tmp_path, FAULT)
    worker = workers(
        GOVERNOR_TEST_FAULT_MODE=mode, GOVERNOR_WORKER__GROUP_INSTANCE_ID=f"flush-{mode}", **fault
    )
    worker.wait_ready()
    source = worker.prefix + "meter-readings"
    first = sample_readings(60, facilities=6)
    asyncio.run(produce(cluster, source, as_records(first)))
    wait_for_totals(worker, expected_totals(first))

    def committed() -> int:
        return sum(asyncio.run(committed_offsets(cluster, worker.app_id, source)).values())

    wait_for(lambda: committed() == len(first), 30)
    trigger.touch()
    later = sample_readings(300, facilities=6, start=60)
    asyncio.run(produce(cluster, source, as_records(later)))
    assert worker.process is not None
    wait_for(lambda: worker.process is not None and worker.process.poll() is not None, 60)
    assert worker.process.returncode == -9, "the fault did not kill the worker at a commit"
    if mode == "after-commit":
        assert committed() > len(first), "the kill came before any commit past the first batch"
    else:
        assert committed() == len(first), "offsets past the flush were committed"

    trigger.unlink()
    worker.start()
    worker.wait_ready()
    readings = first + later
    wait_for_totals(worker, expected_totals(readings), timeout_s=90)
    emitted = asyncio.run(read_all(cluster, worker.prefix + "carbon-emissions", 10**9, 5))
    ids = {orjson.loads(m.value)["event_id"] for m in emitted}
    assert ids == {r.event_id for r in readings}
