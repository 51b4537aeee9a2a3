"""The worker's consumer waits at most ``worker.consumer_fetch_max_wait_ms`` per fetch
(faust-streaming fixes 1,500 ms; app/runtime/fetch_wait.py says why that matters)."""

from __future__ import annotations

import pytest

from app.runtime.topology import build
from app.settings import load_settings


@pytest.mark.parametrize("configured", [None, "40"])
async def test_the_worker_consumer_fetch_wait_is_the_setting(
    monkeypatch: pytest.MonkeyPatch, configured: str | None
) -> None:
    monkeypatch.setenv("GOVERNOR_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    if configured is not None:
        monkeypatch.setenv("GOVERNOR_WORKER__CONSUMER_FETCH_MAX_WAIT_MS", configured)
    app = build(load_settings()).gov.faust
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == int(configured or 25)
        assert consumer._group_id == app.conf.id, "otherwise Faust's own worker consumer"
    finally:
        await consumer.stop()
