"""The batch overlay over a table (app/runtime/table_view.Overlay): a batch reads its own
writes, and the table sees one write or delete per key, only when written back."""

from __future__ import annotations

from typing import Any

from app.runtime.table_view import Overlay


class Table(dict[str, int]):
    """A table that counts its writes and deletes."""

    def __init__(self, **items: int) -> None:
        super().__init__(items)
        self.writes: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: int) -> None:
        self.writes.append((key, value))
        super().__setitem__(key, value)

    def pop(self, key: str, default: Any = None) -> Any:
        self.writes.append((key, None))
        return super().pop(key, default)


def test_reads_see_the_batch_and_the_table_one_write_per_key() -> None:
    table = Table(a=1, b=2)
    batch: Overlay[int] = Overlay(table)  # type: ignore[arg-type]
    batch["a"] = 10
    batch["a"] = 11
    batch.pop("b")
    batch["c"] = 3
    batch.pop("c")
    batch["d"] = 4
    assert (batch.get("a"), batch.get("b"), batch.get("c"), batch.get("d")) == (11, None, None, 4)
    assert table == {"a": 1, "b": 2} and table.writes == []  # nothing until written back
    batch.write_back()
    assert table == {"a": 11, "d": 4}
    assert table.writes == [("a", 11), ("b", None), ("c", None), ("d", 4)]
    assert batch.get("b") is None and batch.get("a") == 11  # read through again
