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
