"""What a pipeline sees of one of its tables: a typed mapping of string keys to one value
model, behind which :class:`app.runtime.state.WriteBehindTable` keeps its record cache and
changelog (Kafka Streams' state store interface, in the terms a pipeline needs)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Generic, Protocol, TypeVar, cast, overload

V = TypeVar("V")
D = TypeVar("D")


class StateTable(Protocol[V]):
    """A table of ``V`` values by string key; writes reach the changelog before the offsets
    that cover them are committed."""

    @property
    def partitions(self) -> int | None: ...

    @overload
    def get(self, key: str) -> V | None: ...

    @overload
    def get(self, key: str, default: D) -> V | D: ...

    def __getitem__(self, key: str) -> V: ...

    def __setitem__(self, key: str, value: V) -> None: ...

    def __delitem__(self, key: str) -> None: ...

    @overload
    def pop(self, key: str) -> V: ...

    @overload
    def pop(self, key: str, default: D) -> V | D: ...

    def __contains__(self, key: object) -> bool: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[str]: ...

    def keys(self) -> KeysView[str]: ...

    def values(self) -> ValuesView[V]: ...

    def items(self) -> ItemsView[str, V]: ...


_GONE = object()


class Overlay(Generic[V]):
    """A batch's reads and writes of one table, kept apart until :meth:`write_back`: reads
    see the batch's own writes, the table sees one write (or delete) per key. A batch that
    fails before writing back leaves the table as it was."""

    def __init__(self, table: StateTable[V]) -> None:
        self._table = table
        self._written: dict[str, object] = {}

    def get(self, key: str) -> V | None:
        if key in self._written:
            found = self._written[key]
            return None if found is _GONE else cast(V, found)
        return self._table.get(key)

    def __setitem__(self, key: str, value: V) -> None:
        self._written[key] = value

    def pop(self, key: str) -> None:
        """Delete ``key`` (if present) when written back."""
        self._written[key] = _GONE

    def write_back(self) -> None:
        """Write each key once, in order of its first write in the batch."""
        for key, value in self._written.items():
            if value is _GONE:
                self._table.pop(key, None)
            else:
                self._table[key] = cast(V, value)
        self._written.clear()
