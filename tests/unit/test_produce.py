"""`governor produce`: every line validated before anything is sent, bad lines named."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from app.cli import main
from app.tools.produce import parse
from app.topics import Catalogue
from schemas.control_tick import ControlTick
from tests.factories import batch, reading, tick

CATALOGUE = Catalogue.load()


def test_jsonl_lines_are_validated_and_keyed() -> None:
    good = reading(1).to_json_bytes().decode()
    envelope = batch([reading(2), reading(3)]).to_json_bytes().decode()
    invalid = orjson.dumps({**orjson.loads(good), "consumption_kwh": "lots"}).decode()
    text = "\n".join([good, "{broken", "", invalid, envelope]) + "\n"
    parsed = parse(io.StringIO(text), CATALOGUE["meter-readings"], "jsonl")
    assert [line.number for line in parsed.good] == [1, 5]
    assert all(line.key == b"facility-001" for line in parsed.good)
    assert parsed.good[0].value == reading(1).to_json_bytes()
    assert [number for number, _ in parsed.bad] == [2, 4]
    assert "not JSON" in parsed.bad[0][1] and "consumption_kwh" in parsed.bad[1][1]


def test_csv_rows_use_the_header_and_line_numbers() -> None:
    fields = list(ControlTick.model_fields)
    rows = [tick(0), tick(1)]
    lines = [",".join(fields)]
    for t in rows:
        values = orjson.loads(t.to_json_bytes())
        lines.append(",".join(str(values[f]).lower() if isinstance(values[f], bool)
                              else str(values[f]) for f in fields))  # fmt: skip
    lines.append(lines[1].replace("site-001", "", 1))  # no site: invalid
    parsed = parse(io.StringIO("\n".join(lines) + "\n"), CATALOGUE["control-ticks"], "csv")
    assert [ControlTick.from_json_bytes(g.value) for g in parsed.good] == rows
    assert [g.key for g in parsed.good] == [b"site-001", b"site-001"]
    assert [number for number, _ in parsed.bad] == [4] and "site_id" in parsed.bad[0][1]


def test_the_command_refuses_output_topics_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "readings.jsonl"
    source.write_text(reading(1).to_json_bytes().decode() + "\nnot json\n")
    assert main(["produce", "meter-readings", str(source), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "1 valid record(s), 1 bad" in out and "line 2: not JSON" in out
    assert main(["produce", "carbon-emissions", str(source)]) == 2
    assert "output topic" in capsys.readouterr().err
    assert main(["produce", "nowhere", str(source)]) == 2
