"""What a pipeline sees of one of its tables: a typed mapping of string keys to one value
model, behind which :class:`app.runtime.state.WriteBehindTable` keeps its record cache and
changelog (Kafka Streams' state store interface, in the terms a pipeline needs)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Protocol, TypeVar, overload

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
