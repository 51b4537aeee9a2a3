"""request-events: one API request observed at the edge (traffic governance input)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Contract, EntityId, EventId, UtcDatetime

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class RequestEvent(Contract):
    """A completed request: who called what, the outcome and how long it took.

    ``path`` is the raw request path; traffic rules map it to a route template before it is
    used as a metric label. Kafka key: ``client_id``.
    """

    schema_version: Literal[1] = 1
    event_id: EventId
    client_id: EntityId
    method: HttpMethod
    path: str = Field(min_length=1, max_length=2048, pattern=r"^/")
    status_code: int = Field(ge=100, le=599)
    latency_ms: float = Field(ge=0, allow_inf_nan=False)
    error_count: int = Field(default=0, ge=0)
    retry_count: int = Field(default=0, ge=0)
    timestamp: UtcDatetime
