"""``governor schemas``, ``asyncapi``, ``dashboards``: the published contracts (JSON
Schemas, the AsyncAPI document) and the Grafana dashboards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.topics import Catalogue


def cmd_schemas(args: argparse.Namespace) -> int:
    """Write one JSON Schema per topic value (and alternative value, e.g. a batch envelope)."""
    import json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in Catalogue.load().topics:
        for model in spec.value_models():
            schema = model.model_json_schema(mode="serialization")
            schema["$id"] = f"governor/{spec.name}/{model.__name__}"
            schema["x-kafka-topic"] = spec.name
            schema["x-kafka-key"] = spec.key
            path = out / f"{spec.name}.{model.__name__}.json"
            path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            print(path)
    return 0


def cmd_asyncapi(args: argparse.Namespace) -> int:
    """Write (or with --check, verify) the AsyncAPI document of every topic."""
    from importlib.metadata import version

    from app.tools.asyncapi import render

    text = render(Catalogue.load(), version("governor"))
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is out of date: run `governor asyncapi`", file=sys.stderr)
            return 1
        print(f"{out} is current")
        return 0
    out.write_text(text, encoding="utf-8")
    print(out)
    return 0


def cmd_dashboards(args: argparse.Namespace) -> int:
    """Write (or with --check, verify) the Grafana dashboards of deploy/grafana/dashboards."""
    from app.tools.dashboards import OUT, files

    stale = []
    for name, text in files().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(path)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `governor dashboards`", file=sys.stderr)
        return 1
    return 0


def add(sub: Any) -> None:
    """Register schemas, asyncapi, dashboards on the ``governor`` parser."""
    schemas = sub.add_parser("schemas", help="export JSON Schemas of every topic value")
    schemas.add_argument("action", choices=["export"])
    schemas.add_argument("--out", default="schemas/json", help="output directory")
    schemas.set_defaults(func=cmd_schemas)
    asyncapi = sub.add_parser("asyncapi", help="write the AsyncAPI document of the topics")
    asyncapi.add_argument("--out", default="asyncapi.yaml")
    asyncapi.add_argument("--check", action="store_true", help="only verify it is current")
    asyncapi.set_defaults(func=cmd_asyncapi)
    dashboards = sub.add_parser("dashboards", help="write the Grafana dashboards")
    dashboards.add_argument("--check", action="store_true", help="only verify they are current")
    dashboards.set_defaults(func=cmd_dashboards)
