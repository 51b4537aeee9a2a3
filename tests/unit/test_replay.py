"""`governor replay` offline: JSONL and Parquet in, decisions and a linked ledger out."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest

from agents.traffic.rules.policy import ActivePolicy
from app.settings import Settings
from app.tools.generate import Workload, generate
from app.tools.replay import ReplayError, read_values, replay, write
from app.tools.sample import sample_policy
from app.topics import Catalogue

SETTINGS = Settings()
ACTIVE = ActivePolicy.of(sample_policy(), "settings")


def test_jsonl_and_parquet_give_the_same_emissions_and_bad_records_are_named(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = list(generate("meter-readings", Workload(hours=1, facilities=2)))
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_bytes(b"\n".join([*lines[:10], b"{not json", *lines[10:]]) + b"\n")
    from_jsonl = replay("meter-readings", list(read_values(jsonl)), SETTINGS, ACTIVE)
    assert [n for n, _ in from_jsonl.rejected] == [11]
    rows = [orjson.loads(line) for line in lines]
    parquet = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    from_parquet = replay("meter-readings", list(read_values(parquet)), SETTINGS, ACTIVE)
    assert from_parquet.outputs == from_jsonl.outputs
    assert len(from_jsonl.outputs["carbon-emissions"]) == len(lines)


def test_the_ledger_links_every_decision_from_genesis(tmp_path: Path) -> None:
    lines = list(generate("request-events", Workload(hours=0.1, requests_per_s=2.0)))
    out = replay("request-events", lines, SETTINGS, ACTIVE)
    written = write(out, tmp_path, Catalogue.load(), 1000)
    ledger = [orjson.loads(x) for x in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]
    decided = sum(len(v) for v in out.outputs.values())
    assert written["ledger.jsonl"] == len(ledger) == decided + 1
    assert ledger[0]["kind"] == "genesis"
    for before, record in itertools.pairwise(ledger):
        assert record["prev_hash"] == before["record_hash"]
        assert record["seq"] == before["seq"] + 1
    again = replay("request-events", lines, SETTINGS, ACTIVE)
    assert again.outputs == out.outputs  # deterministic


def test_unsupported_topics_are_refused() -> None:
    with pytest.raises(ReplayError, match="cannot replay"):
        replay("balancing-commands", [], SETTINGS, ACTIVE)
