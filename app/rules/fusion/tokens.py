"""HMAC-SHA256 tokens for manual approvals and overrides (the reference's scheme, fixed).

token = ``<unix seconds>:<hex HMAC-SHA256(secret, canonical_request | unix seconds)>``.
The reference joined an ISO timestamp with ``:`` and split on the first ``:``, which an ISO
time itself contains; whole seconds avoid that. Checks: well-formed, not older than
``max_age_s`` and not from the future (beyond a small skew), signature compared in constant
time. Single use is the caller's part (it keeps the signatures it has seen until they
expire).
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Any

import orjson

FUTURE_SKEW_S = 30.0


class TokenCheck(StrEnum):
    OK = "ok"
    MALFORMED = "malformed"
    EXPIRED = "expired"
    FROM_THE_FUTURE = "from_the_future"
    BAD_SIGNATURE = "bad_signature"


def canonical(request: dict[str, Any]) -> bytes:
    return orjson.dumps(request, option=orjson.OPT_SORT_KEYS)


def _signature(secret: bytes, request: dict[str, Any], issued_s: int) -> str:
    message = canonical(request) + b"|" + str(issued_s).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def make_token(secret: bytes, request: dict[str, Any], issued_s: int) -> str:
    return f"{issued_s}:{_signature(secret, request, issued_s)}"


def check_token(
    secret: bytes, token: str, request: dict[str, Any], now_s: float, max_age_s: float
) -> TokenCheck:
    issued_text, _, signature = token.partition(":")
    if not issued_text.isdigit() or len(signature) != 64:
        return TokenCheck.MALFORMED
    issued_s = int(issued_text)
    if now_s - issued_s > max_age_s:
        return TokenCheck.EXPIRED
    if issued_s - now_s > FUTURE_SKEW_S:
        return TokenCheck.FROM_THE_FUTURE
    expected = _signature(secret, request, issued_s)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return TokenCheck.BAD_SIGNATURE
    return TokenCheck.OK


def token_id(token: str) -> str:
    """A token's identity for the single-use check (its signature)."""
    return token.partition(":")[2]
