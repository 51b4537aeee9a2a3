"""The independent proof verifier against transparency-dev/merkle's RFC 6962 test vectors:
every happy path verifies, every mutated case is rejected."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from app.ledger.verify_proof import ProofError, verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[1] / "data" / "rfc6962-vectors"


def cases(kind: str) -> list[Any]:
    found = sorted((VECTORS / kind).rglob("*.json"))
    assert len(found) > 40, f"test vectors missing under {VECTORS / kind}"
    return [pytest.param(path, id=str(path.relative_to(VECTORS))) for path in found]


def b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


@pytest.mark.parametrize("path", cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [b64(p) for p in case["proof"] or []]

    def check() -> None:
        verify_inclusion(
            case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"])
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


@pytest.mark.parametrize("path", cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [b64(p) for p in case["proof"] or []]

    def check() -> None:
        verify_consistency(
            case["size1"], case["size2"], proof, b64(case["root1"]), b64(case["root2"])
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()
