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
from pydantic import BaseModel

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
    # ASCII digits only, and few of them: str.isdigit() accepts "²", which int() refuses,
    # and int() refuses numbers over 4,300 digits.
    if not (issued_text.isascii() and issued_text.isdigit() and len(issued_text) <= 12):
        return TokenCheck.MALFORMED
    if len(signature) != 64:
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


def approval_fields(request: BaseModel) -> dict[str, Any]:
    """What an approval seal covers: every field of the request but the approval itself."""
    fields: dict[str, Any] = request.model_dump(mode="json", exclude={"manual_approval_id"})
    return fields


def seal_approval(secret: bytes, token_id: str, fields: dict[str, Any]) -> str:
    """The ``manual_approval_id`` Governor's approval endpoint puts on a request it has
    checked a token for: ``<token id, 32 hex>.<HMAC-SHA256 over the request's other fields>``.

    The admission agent accepts an approval on ``fusion-requests`` only with this seal
    (:func:`approval_sealed`), so a producer that writes to the topic cannot approve its
    own spend; the id part is what the tenant's state records for single use.
    """
    return f"{token_id[:32]}.{_seal(secret, fields)}"


def approval_sealed(secret: bytes | None, approval_id: str, fields: dict[str, Any]) -> bool:
    """Whether ``approval_id`` is :func:`seal_approval` of ``fields`` under ``secret``."""
    if secret is None:
        return False
    _, dot, seal = approval_id.partition(".")
    if not dot or len(seal) != 64:
        return False
    return hmac.compare_digest(seal.encode(), _seal(secret, fields).encode())


def _seal(secret: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(secret, b"approval|" + canonical(fields), hashlib.sha256).hexdigest()
