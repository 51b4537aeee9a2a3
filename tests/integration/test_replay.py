"""`governor replay` gives byte for byte the records the live pipelines publish for the same
input: carbon emissions in order, traffic decisions per endpoint."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from app.tools.generate import Workload, generate
from app.tools.sample import sample_policy
from tests.integration.harness import (
    REPO,
    Cluster,
    WorkerProcess,
    governor_env,
    produce,
    read_all,
    wait_for,
)

pytestmark = pytest.mark.integration


def replay(cluster: Cluster, prefix: str, topic: str, lines: list[bytes], out: Path,
           policy: str, **settings: str) -> dict[str, list[bytes]]:  # fmt: skip
    """`governor replay` of ``lines`` as ``topic`` (``settings``: environment overrides, the
    live workers' own)."""
    source = out.with_suffix(".jsonl")
    source.write_bytes(b"".join(line + b"\n" for line in lines))
    env = governor_env(cluster, prefix, GOVERNOR_TRAFFIC__POLICY=policy, **settings)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "replay", topic, str(source), "--out", str(out)],
        cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return {p.stem: p.read_bytes().splitlines() for p in out.glob("*.jsonl")}


def test_replay_matches_the_live_pipelines_byte_for_byte(
    cluster: Cluster, prefix: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    policy = sample_policy().model_dump_json()
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) - timedelta(hours=3)
    workload = Workload(seed=3, start=start, hours=1, facilities=1, requests_per_s=2.0)
    readings = list(generate("meter-readings", workload))
    requests = list(generate("request-events", workload))[:3000]
    asyncio.run(produce(cluster, prefix + "meter-readings",
                        [(b"facility-000", line) for line in readings]))  # fmt: skip
    platform_of = [orjson.loads(line)["platform"].encode() for line in requests]
    asyncio.run(
        produce(cluster, prefix + "request-events", list(zip(platform_of, requests, strict=True)))
    )
    worker = workers(GOVERNOR_TRAFFIC__POLICY=policy)
    worker.wait_ready()

    live_emissions = wait_for(
        lambda: len(got := asyncio.run(read_all(cluster, prefix + "carbon-emissions",
                                                len(readings), 5))) >= len(readings) and got,
        120, 1,
    )  # fmt: skip
    offline = replay(cluster, prefix, "meter-readings", readings, tmp_path / "carbon", policy)
    assert [m.value for m in live_emissions] == offline["carbon-emissions"]
    assert len(offline["ledger"]) == len(readings) + 1

    live_decisions = wait_for(
        lambda: len(got := asyncio.run(read_all(cluster, prefix + "traffic-decisions",
                                                len(requests), 5))) >= len(requests) and got,
        120, 1,
    )  # fmt: skip
    offline = replay(cluster, prefix, "request-events", requests, tmp_path / "traffic", policy)
    assert Counter(m.value for m in live_decisions) == Counter(offline["traffic-decisions"])
    live_transitions = asyncio.run(read_all(cluster, prefix + "circuit-breaker-events", 10**6, 3))
    assert Counter(m.value for m in live_transitions) == Counter(offline["circuit-breaker-events"])
