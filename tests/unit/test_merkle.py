"""Tree heads and proofs built here verify with the independent verifier."""

from __future__ import annotations

import pytest

from app.ledger import verify_proof
from app.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
)

LEAVES = [leaf_hash(f"record {i}".encode()) for i in range(40)]


def test_rfc6962_reference_roots() -> None:
    # The empty tree and the one-leaf tree of the empty string, as in RFC 6962's test data.
    assert EMPTY_ROOT.hex().startswith("e3b0c442")
    assert leaf_hash(b"").hex().startswith("6e340b9c")


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 40])
def test_frontier_root_equals_the_recursive_root(size: int) -> None:
    frontier = Frontier()
    for leaf in LEAVES[:size]:
        frontier = frontier.append(leaf)
    assert frontier.size == size
    assert frontier.root() == root(LEAVES[:size])
    assert len(frontier.hashes) == bin(size).count("1")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 40])
def test_every_inclusion_proof_verifies_and_a_wrong_leaf_does_not(size: int) -> None:
    head = root(LEAVES[:size])
    for index in range(size):
        proof = inclusion_proof(index, LEAVES[:size])
        verify_proof.verify_inclusion(index, size, LEAVES[index], proof, head)
    with pytest.raises(verify_proof.ProofError):
        verify_proof.verify_inclusion(
            0, size, leaf_hash(b"forged"), inclusion_proof(0, LEAVES[:size]), head
        )


@pytest.mark.parametrize("size2", [2, 3, 7, 8, 9, 40])
def test_every_consistency_proof_verifies(size2: int) -> None:
    for size1 in range(1, size2 + 1):
        proof = consistency_proof(size1, LEAVES[:size2])
        verify_proof.verify_consistency(
            size1, size2, proof, root(LEAVES[:size1]), root(LEAVES[:size2])
        )


def test_a_rewritten_prefix_is_not_consistent() -> None:
    forged = [leaf_hash(b"rewritten"), *LEAVES[1:10]]
    proof = consistency_proof(4, forged)
    with pytest.raises(verify_proof.ProofError):
        verify_proof.verify_consistency(4, 10, proof, root(LEAVES[:4]), root(forged))
