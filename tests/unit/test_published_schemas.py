"""schemas/json/ is the published contract: it must match what the models export."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import main

PUBLISHED = Path(__file__).resolve().parents[2] / "schemas" / "json"


def test_published_json_schemas_match_the_models(tmp_path: Path) -> None:
    assert main(["schemas", "export", "--out", str(tmp_path)]) == 0
    exported = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    published = {p.name: json.loads(p.read_text()) for p in PUBLISHED.glob("*.json")}
    assert exported, "nothing exported"
    assert exported == published, "run `governor schemas export` and commit schemas/json/"


def test_every_topic_value_has_a_schema_naming_topic_and_key() -> None:
    reading = json.loads((PUBLISHED / "meter-readings.MeterReading.json").read_text())
    assert reading["x-kafka-topic"] == "meter-readings"
    assert reading["x-kafka-key"] == "facility_id"
    assert reading["additionalProperties"] is False
    assert "consumption_kwh" in reading["required"]
    assert (PUBLISHED / "meter-readings.MeterReadingBatch.json").exists()
    assert (PUBLISHED / "dead-letters.DeadLetter.json").exists()
