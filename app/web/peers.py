"""Asking the other workers of the group: for queries whose key (and so owner) is unknown.

Queries by key are routed to the one owner by Faust (``table_route``); a lookup by a
secondary id, or a listing of every site, asks every other worker instead. The header marks
a peer request so the peer answers from its own state and does not ask further.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from app.runtime.faust_app import Governor
from app.runtime.table_routes import http_client, own_url, owner_url, peer_urls

LOCAL_ONLY_HEADER = "X-Governor-Local-Only"
PEER_TIMEOUT_S = 5.0
FORWARDED_HEADERS = frozenset({"authorization", "content-type", "accept", "x-approval-token"})
"""What the owner needs of a forwarded request; cookies, proxies' headers and anything else
a caller sent stay with the worker it reached."""


def is_peer_request(request: Any) -> bool:
    return LOCAL_ONLY_HEADER in request.headers


async def ask_peers(gov: Governor, path_qs: str) -> list[bytes | None]:
    """GET ``path_qs`` from every peer; one body per peer, ``None`` where it failed or
    answered other than 200."""

    async def one(base: str) -> bytes | None:
        try:
            async with http_client(gov).get(
                base + path_qs,
                headers={LOCAL_ONLY_HEADER: "1"},
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S),
            ) as response:
                return await response.read() if response.status == 200 else None
        except (TimeoutError, OSError, aiohttp.ClientError):
            return None

    return list(await asyncio.gather(*(one(p) for p in peer_urls(gov))))


async def forward_to_owner(
    gov: Governor, table: Any, key: str, request: Any, body: bytes
) -> tuple[int, bytes, str] | None:
    """Send this request, body included, to the worker owning ``key`` in ``table``.

    ``None`` when this worker is the owner (or the request already came from a peer).
    Faust's ``table_route`` forwards without the body, which a POST needs.
    """
    if is_peer_request(request):
        return None
    owner = owner_url(gov, table, key)
    if owner == own_url(gov):
        return None
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
    headers[LOCAL_ONLY_HEADER] = "1"
    async with http_client(gov).request(
        request.method, owner + request.path_qs, data=body, headers=headers,
        timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S * 3),
    ) as response:  # fmt: skip
        return response.status, await response.read(), response.content_type


async def reply_from_owner(
    view: Any, gov: Governor, table: Any, key: str, request: Any, body: bytes = b""
) -> Any | None:
    """The owner's response to this request when another worker owns ``key`` (see
    :func:`forward_to_owner`); ``None`` when this worker should answer itself."""
    forwarded = await forward_to_owner(gov, table, key, request, body)
    if forwarded is None:
        return None
    status, payload, _ = forwarded
    return view.bytes(payload, content_type="application/json", status=status)
