"""The values of a table with an outbox (:mod:`app.runtime.outbox`): a key's state, or a block of
recent records' outputs. Pure models, so rules can name their table's value type without
importing the runtime."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

Outputs = TypeVar("Outputs")
State = TypeVar("State")


class OutboxBlock(BaseModel, Generic[Outputs]):
    """The outputs of consecutive records of one source partition, by offset. Mutable: the
    outbox adds to the block it holds in the table."""

    model_config = ConfigDict(extra="forbid")

    entries: dict[int, Outputs] = {}


class Entry(BaseModel, Generic[State, Outputs]):
    """A value of a table with an outbox: a key's state, or a block of outputs (under an
    outbox key); ``outputs`` is the single record's outputs of a value written before
    blocks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: State | None = None
    outputs: Outputs | None = None
    block: OutboxBlock[Outputs] | None = None
