"""What every settings section shares: strict fields, and secrets read from a value or a
file without being logged."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Section(BaseModel):
    """A section of ``config/governor.yaml``: a misspelt key is an error, not a default."""

    model_config = ConfigDict(extra="forbid")


class WithOutbox(Section):
    """A section of a pipeline whose outputs depend on earlier state (:mod:`app.runtime.outbox`)."""

    outbox_records_per_partition: int = Field(default=5_000, ge=100)
    """Outputs of recent source records kept beside the state they came from, per source
    partition, so a record re-delivered after a crash re-sends exactly what it sent."""


def read_secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret given inline or as the first line of a file; ``None`` if neither."""
    if value is not None:
        return value.get_secret_value().strip() or None
    if path is not None and path.exists():
        return path.read_text(encoding="utf-8").strip() or None
    return None
