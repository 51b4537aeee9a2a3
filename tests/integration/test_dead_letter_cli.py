"""`governor dlq list` and `governor dlq republish` against a real broker and worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.factories import BASE_TIME, reading
from tests.integration.harness import (
    REPO,
    Cluster,
    WorkerProcess,
    governor_env,
    produce,
    wait_for,
)
from tests.integration.test_carbon_pipeline import http_totals

pytestmark = pytest.mark.integration


def governor(cluster: Cluster, prefix: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=governor_env(cluster, prefix),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_list_then_republish_after_the_fix(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess]
) -> None:
    """A reading from a meter whose clock ran ahead is dead-lettered; once the skew limit is
    raised (the fix), re-publishing its original bytes gets it counted."""
    worker = workers()
    worker.wait_ready()
    ahead = reading(1, timestamp=BASE_TIME + timedelta(hours=2))
    produced_ms = int(BASE_TIME.timestamp() * 1000)
    record = [(ahead.facility_id.encode(), ahead.to_json_bytes())]
    asyncio.run(produce(cluster, prefix + "meter-readings", record, produced_ms))

    def listed() -> str | None:
        out = governor(cluster, prefix, "dlq", "list")
        return out if "timestamp_in_future" in out else None

    listing = wait_for(listed)
    assert "1 dead letter(s)" in listing
    ref = listing.split()[0]
    assert governor(cluster, prefix, "dlq", "list", "--reason", "undecodable").strip() == (
        "0 dead letter(s) with reason undecodable"
    )
    assert "would re-publish" in governor(cluster, prefix, "dlq", "republish", "--ref", ref,
                                          "--dry-run")  # fmt: skip

    worker.stop()
    fixed = workers(GOVERNOR_CARBON__MAX_FUTURE_SKEW_S="86400")
    fixed.wait_ready()
    out = governor(cluster, prefix, "dlq", "republish", "--ref", ref)
    assert "re-published 1 dead letter(s)" in out
    wait_for(lambda: http_totals(fixed, ahead.facility_id)[2] == 1)
