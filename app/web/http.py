"""What every view needs: JSON replies, problem messages, bearer auth, request counting."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from app.runtime.faust_app import Governor

JSON = "application/json"


def reply(view: Any, request: Any, gov: Governor, route: str, body: Any, status: int = 200) -> Any:
    """A JSON response (pydantic models, lists of them, or plain JSON values), counted."""
    payload: Any
    if isinstance(body, BaseModel):
        payload = body.model_dump(mode="json")
    elif isinstance(body, list):
        payload = [b.model_dump(mode="json") if isinstance(b, BaseModel) else b for b in body]
    else:
        payload = body
    labels = {"route": route, "method": request.method, "status": str(status)}
    gov.metrics.http_requests.labels(**labels).inc()
    return view.bytes(
        orjson.dumps(payload, option=orjson.OPT_UTC_Z), content_type=JSON, status=status
    )


def problem(
    view: Any, request: Any, gov: Governor, route: str, status: int, message: str, **extra: Any
) -> Any:
    """A 4xx/5xx with a message a person can act on."""
    return reply(view, request, gov, route, {"error": message, **extra}, status=status)


async def read_body(request: Any, gov: Governor) -> bytes | None:
    """The request body, or ``None`` when it is larger than ``api.max_body_bytes``."""
    import aiohttp.web

    limit = gov.settings.api.max_body_bytes
    if (request.content_length or 0) > limit:
        return None
    try:
        body: bytes = await request.read()
    except aiohttp.web.HTTPRequestEntityTooLarge:
        return None
    return body if len(body) <= limit else None


def too_large(gov: Governor) -> str:
    return f"request body larger than {gov.settings.api.max_body_bytes} bytes (api.max_body_bytes)"


def authorised(gov: Governor, request: Any) -> tuple[bool, str]:
    """Check ``Authorization: Bearer <token>`` in constant time; the token is never logged."""
    token = gov.settings.api.resolved_token()
    if token is None:
        return False, "writes are disabled: the server has no API token configured"
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False, "missing bearer token: send 'Authorization: Bearer <token>'"
    # A header that is not UTF-8 reaches us with surrogate escapes: compare its bytes.
    given_bytes = given.strip().encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given_bytes, token.get_secret_value().encode()):
        return False, "invalid bearer token"
    return True, ""


class BadInput(ValueError):
    """A request body a person has to fix: 400 (not JSON) or 422 (not the contract)."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.details = details or []


Alternative = Callable[[dict[str, Any]], Any]
"""Parses a body in another accepted form (a reference design's payload), or answers
``None`` when the body is not in that form."""


def parse(
    model: type[Any], body: bytes, defaults: dict[str, Any], alternative: Alternative | None = None
) -> Any:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(400, f"body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadInput(400, "body must be a JSON object")
    try:
        found = alternative(raw) if alternative is not None else None
        return found if found is not None else model.model_validate({**defaults, **raw})
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        raise BadInput(422, f"body does not match {model.__name__}", details) from None
    except ValueError as exc:  # a reference payload lacking what Governor needs
        raise BadInput(422, str(exc)) from None


async def read_contract(
    view: Any, request: Any, gov: Governor, route: str, model: type[Any],
    defaults: dict[str, Any], alternative: Alternative | None = None,
) -> tuple[Any, bytes] | Any:  # fmt: skip
    """An authorised request's body parsed as ``model``, with the raw bytes; or the 401,
    413, 400 or 422 response to return instead."""
    ok, why = authorised(gov, request)
    if not ok:
        return problem(view, request, gov, route, 401, why)
    body = await read_body(request, gov)
    if body is None:
        return problem(view, request, gov, route, 413, too_large(gov))
    try:
        return parse(model, body, defaults, alternative), body
    except BadInput as exc:
        return problem(view, request, gov, route, exc.status, str(exc), details=exc.details)


async def publish(
    view: Any, request: Any, gov: Governor, route: str, model: type[Any],
    defaults: dict[str, Any], topic: str, key_field: str,
) -> Any:  # fmt: skip
    """Validate an authorised body as ``model`` and publish it to ``topic`` keyed by its
    ``key_field``: 202 with where it landed, or the 4xx and nothing published."""
    parsed = await read_contract(view, request, gov, route, model, defaults)
    if not isinstance(parsed, tuple):
        return parsed
    value, _ = parsed
    key = getattr(value, key_field)
    metadata = await gov.publish(topic, key.encode(), value.to_json_bytes())
    accepted = {key_field: key, "topic": topic, "partition": metadata.partition,
                "offset": metadata.offset}  # fmt: skip
    return reply(view, request, gov, route, accepted, status=202)
