"""request-events: one API request observed at the edge (traffic governance input)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from schemas.common import Contract, EntityId, EventId, UtcDatetime

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class RequestEvent(Contract):
    """A completed request on a platform: what was called, the outcome and how long it took.

    ``url`` is the full URL or just the path; only its path takes part in contract
    matching, and the raw path is never a metric label. Kafka key: the platform (any key
    is accepted: the traffic pipeline repartitions by endpoint before it keeps state).
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    platform: EntityId
    url: str = Field(min_length=1, max_length=2048)
    method: HttpMethod
    status_code: int = Field(ge=100, le=599)
    latency_ms: float = Field(ge=0, allow_inf_nan=False)
    timestamp: UtcDatetime
    error_count: int = Field(default=0, ge=0)
    retry_count: int = Field(default=0, ge=0)
    client_id: EntityId | None = None

    @field_validator("url")
    @classmethod
    def _has_path(cls, value: str) -> str:
        """A URL must parse and carry an absolute path (``/`` at least)."""
        path = urlsplit(value).path if "://" in value else value.split("?", 1)[0]
        if not path.startswith("/"):
            raise ValueError("url must be an absolute URL or a path starting with '/'")
        return value

    @property
    def path(self) -> str:
        """The request path without scheme, host, query or fragment."""
        if "://" in self.url:
            return urlsplit(self.url).path or "/"
        return self.url.split("?", 1)[0].split("#", 1)[0]
