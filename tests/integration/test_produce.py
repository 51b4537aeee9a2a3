"""`governor produce` publishes the valid lines of a file to a real broker, keyed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.meter_reading import MeterReading
from tests.factories import reading
from tests.integration.harness import REPO, Cluster, governor_env, read_all

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
