"""A request forwarded to the owning worker carries only what the owner needs (issue 16:
it carried every header, cookies included)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from app.web.peers import LOCAL_ONLY_HEADER, forward_to_owner


class _Response:
    status = 200
    content_type = "application/json"

    async def read(self) -> bytes:
        return b"{}"

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_only_the_needed_headers_are_forwarded() -> None:
    sent: dict[str, Any] = {}

    def request(method: str, url: str, **kwargs: Any) -> _Response:
        sent.update(kwargs, url=url)
        return _Response()

    app = SimpleNamespace(
        router=SimpleNamespace(key_store=lambda table, key: "http://owner:8088"),
        conf=SimpleNamespace(canonical_url="http://me:8088"),
        http_client=SimpleNamespace(request=request),
    )
    incoming = SimpleNamespace(
        method="POST", path_qs="/api/v1/fusion/validate",
        headers={
            "Host": "me:8088", "Content-Length": "2", "Authorization": "Bearer t",
            "Content-Type": "application/json", "X-Approval-Token": "1:ab",
            "Cookie": "session=secret", "X-Forwarded-For": "10.0.0.1",
        },
    )  # fmt: skip
    table = SimpleNamespace(name="fusion-tenants")
    got = await forward_to_owner(SimpleNamespace(faust=app), table, "acme", incoming, b"{}")  # type: ignore[arg-type]
    assert got == (200, b"{}", "application/json")
    assert sent["url"] == "http://owner:8088/api/v1/fusion/validate"
    assert sent["headers"] == {
        "Authorization": "Bearer t", "Content-Type": "application/json",
        "X-Approval-Token": "1:ab", LOCAL_ONLY_HEADER: "1",
    }  # fmt: skip
