"""Fixtures shared by the unit tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def placed_where_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agents under Faust's test_context get every record on one made-up partition, with no
    cluster metadata to place keys by: take records where they are delivered
    (placement itself is tested in test_placement.py and on a real broker)."""

    async def stay(self: Any, record: Any) -> bool:
        return False

    monkeypatch.setattr("app.runtime.placement.Placement.forward_if_misplaced", stay)


@pytest.fixture(autouse=True)
def own_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Each test's worker state (the RocksDB store, the default) in a directory of its own."""
    monkeypatch.setenv("GOVERNOR_WORKER__DATA_DIR", str(tmp_path / "governor"))


@pytest.fixture(autouse=True)
def one_record_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's ``agent.test_context().put`` returns once the stream has taken the record,
    which, for an agent handling batches, is before the batch is handled: the agent tests
    that look at state between puts take records one at a time
    (``worker.batch_max_records: 1``). The batch path has tests of its own
    (``test_batches.py``) that wait for the outputs instead."""
    monkeypatch.setenv("GOVERNOR_WORKER__BATCH_MAX_RECORDS", "1")
