"""The AsyncAPI 3.0 document of Governor's topics, generated from topics.yaml and the
pydantic contracts: what producers and consumers of Governor read first.

``governor asyncapi`` writes ``asyncapi.yaml``; a test fails when the checked-in document
is not what the catalogue and the schemas generate now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.topics import Catalogue, TopicRole, TopicSpec

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "asyncapi.yaml"
KAFKA_BINDING_VERSION = "0.5.0"


class SchemaClash(ValueError):
    """Two contracts define different schemas under one name."""


def _hoist(schema: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's ``$defs`` into the document's ``components.schemas``: a ``$ref`` in an
    AsyncAPI document resolves from the document root, not from the payload."""
    for name, definition in schema.pop("$defs", {}).items():
        definition = _rewrite(definition)
        if name in shared and shared[name] != definition:
            raise SchemaClash(f"two contracts define different schemas named {name!r}")
        shared[name] = definition
    rewritten: dict[str, Any] = _rewrite(schema)
    return rewritten


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rewrite(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def _channel(spec: TopicSpec, message_ids: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cleanup.policy": [spec.cleanup_policy.value],
        "retention.ms": spec.retention_ms,
    }
    channel: dict[str, Any] = {
        "address": spec.name,
        "title": spec.name,
        "description": f"{spec.description} Kafka key: {spec.key}.".strip(),
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in message_ids},
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "replicas": spec.replication_factor,
                "topicConfiguration": config,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if spec.ledger_id is not None:
        channel["x-governor-ledger-id"] = spec.ledger_id
    return channel


def build(catalogue: Catalogue, version: str) -> dict[str, Any]:
    """The whole document, deterministic for a given catalogue and set of contracts."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for spec in catalogue.topics:
        ids = []
        for model in spec.value_models():
            message_id = f"{spec.name}.{model.__name__}"
            ids.append(message_id)
            payload = _hoist(model.model_json_schema(mode="serialization"), schemas)
            messages[message_id] = {
                "name": model.__name__,
                "title": model.__name__,
                "contentType": "application/json",
                "payload": payload,
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": spec.key},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
        channels[spec.name] = _channel(spec, ids)
        # Operations are Governor's: it receives inputs, sends outputs, and does both with
        # its internal repartition topics.
        actions = {
            TopicRole.INPUT: ["receive"],
            TopicRole.OUTPUT: ["send"],
            TopicRole.STATE: ["send", "receive"],
        }[spec.role]
        for action in actions:
            operations[f"{action}-{spec.name}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{spec.name}"},
                "messages": [{"$ref": f"#/channels/{spec.name}/messages/{m}"} for m in ids],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Governor",
            "version": version,
            "description": (
                "Topics of Governor, the stream processor governing energy, carbon, AI cost and"
                " API traffic. Values are JSON (UTF-8); keys are UTF-8 strings. Generated from"
                " topics.yaml and schemas/ by `governor asyncapi`; do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker `governor kafka` or `bin/demo` starts",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def render(catalogue: Catalogue, version: str) -> str:
    return yaml.safe_dump(build(catalogue, version), sort_keys=False, allow_unicode=True, width=100)
