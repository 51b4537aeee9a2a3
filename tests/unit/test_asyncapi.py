"""asyncapi.yaml is generated from topics.yaml and the contracts, and must be current."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import yaml

from app.tools.asyncapi import DEFAULT_PATH, render
from app.topics import Catalogue


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_checked_in_document_is_current() -> None:
    generated = render(Catalogue.load(), version("governor"))
    assert DEFAULT_PATH.read_text(encoding="utf-8") == generated, "run `governor asyncapi`"


def test_every_topic_is_a_channel_and_every_reference_resolves() -> None:
    document = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    catalogue = Catalogue.load()
    assert set(document["channels"]) == {spec.name for spec in catalogue.topics}
    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        assert _resolve(document, ref) is not None, ref
    received = {o["channel"]["$ref"] for o in document["operations"].values()
                if o["action"] == "receive"}  # fmt: skip
    assert "#/channels/meter-readings" in received
    alert = document["components"]["messages"]["carbon-budget-alerts.CarbonBudgetAlert"]
    assert alert["bindings"]["kafka"]["key"]["description"] == "facility_id"
    assert document["channels"]["carbon-budget-alerts"]["x-governor-ledger-id"] == "alert_id"
