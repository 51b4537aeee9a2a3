"""`governor kafka`: every way the command ends ends its broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.harness import REPO, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_broker_ends_with_the_command(tmp_path: Path, how: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNOR_")}
    if "GOVERNOR_KAFKA__LOCAL_VERSION" in os.environ:
        env["GOVERNOR_KAFKA__LOCAL_VERSION"] = os.environ["GOVERNOR_KAFKA__LOCAL_VERSION"]
    work = tmp_path / "kafka"
    log = (tmp_path / "governor-kafka.log").open("wb")
    command = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "kafka", "--dir", str(work)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: (work / "bootstrap").exists() or command.poll() is not None, 120, 0.5)
        assert command.poll() is None, (tmp_path / "governor-kafka.log").read_text()
        (broker,) = [p for p in psutil.Process(command.pid).children() if "java" in p.name()]
        command.send_signal(how)
        command.wait(timeout=60)
        deadline = time.monotonic() + 60
        while broker.is_running() and broker.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, f"broker {broker.pid} outlived {how.name}"
            time.sleep(0.3)
    finally:
        if command.poll() is None:
            command.kill()
        log.close()
