"""`governor produce` publishes the valid lines of a file to a real broker, keyed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.meter_reading import MeterReading
from tests.factories import reading
from tests.integration.harness import REPO, Cluster, governor_env, produce, read_all

pytestmark = pytest.mark.integration


def test_valid_lines_are_sent_and_bad_ones_reported(
    cluster: Cluster, prefix: str, tmp_path: Path
) -> None:
    readings = [reading(n, facility_id=f"facility-{n % 3:03d}") for n in range(30)]
    lines = [r.to_json_bytes().decode() for r in readings]
    lines.insert(10, '{"event_id": "half a reading"}')
    source = tmp_path / "readings.jsonl"
    source.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "produce", "meter-readings", str(source),
         "--rate", "500"],
        cwd=REPO, env=governor_env(cluster, prefix), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "sent 30 record(s) to meter-readings" in done.stdout
    assert "1 bad line(s) not sent" in done.stdout and "line 11:" in done.stdout
    sent = asyncio.run(read_all(cluster, prefix + "meter-readings", 30, 30))
    assert sorted((m.key, m.value) for m in sent) == sorted(
        (r.facility_id.encode(), r.to_json_bytes()) for r in readings
    )
    assert all(MeterReading.from_json_bytes(m.value) for m in sent)


def test_tail_prints_a_topics_records_filtered_by_key(
    cluster: Cluster, prefix: str, tmp_path: Path
) -> None:
    readings = [reading(n, facility_id=f"facility-{n % 3:03d}") for n in range(9)]
    records = [(r.facility_id.encode(), r.to_json_bytes()) for r in readings]
    asyncio.run(produce(cluster, prefix + "meter-readings", records))
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "tail", "meter-readings", "--key", "facility-001",
         "--from-beginning", "--max", "3"],
        cwd=REPO, env=governor_env(cluster, prefix), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    headers = [line for line in done.stdout.splitlines() if "key=" in line]
    assert len(headers) == 3 and all(h.endswith("key=facility-001") for h in headers), headers
    assert '"event_id": "evt-000001"' in done.stdout and "evt-000000" not in done.stdout
    assert '"consumption_kwh": 150.5' in done.stdout
