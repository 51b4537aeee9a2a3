"""Which worker serves what, from Faust's router: this worker's URL, the other workers
holding table partitions, and the owner of a table key (for app/web/peers.py)."""

from __future__ import annotations

from typing import Any

from app.runtime.faust_app import Governor


def own_url(gov: Governor) -> str:
    """This worker's base URL as its peers reach it (``worker.web_url``)."""
    return str(gov.faust.conf.canonical_url).rstrip("/")


def peer_urls(gov: Governor) -> list[str]:
    """Base URLs of the other workers that hold table partitions."""
    urls = {str(url).rstrip("/") for url in gov.faust.router.tables_metadata()}
    return sorted(urls - {own_url(gov)})


def owner_url(gov: Governor, table: Any, key: str) -> str:
    """Base URL of the worker that owns ``key`` in ``table`` (this one's included)."""
    return str(gov.faust.router.key_store(table.name, key)).rstrip("/")


def http_client(gov: Governor) -> Any:
    """The worker's shared aiohttp client session."""
    return gov.faust.http_client
