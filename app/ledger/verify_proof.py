"""A small, independent RFC 6962 proof verifier (SHA-256; leaf prefix 0x00, node prefix 0x01).

Self-contained on purpose: it imports nothing from the code that builds trees and proofs,
so a proof checked here is checked by different code than the code that made it. It
follows the verification algorithm of RFC 9162 section 2.1.3 / 2.1.4 (as transparency-dev's
merkle package implements it) and is tested against that package's published vectors.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HASH_SIZE = 32


class ProofError(ValueError):
    """The proof does not prove what it claims."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _inner_proof_size(index: int, size: int) -> int:
    return (index ^ (size - 1)).bit_length()


def _decompose(index: int, size: int) -> tuple[int, int]:
    inner = _inner_proof_size(index, size)
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = _node(seed, h) if (index >> i) & 1 == 0 else _node(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = _node(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = _node(h, seed)
    return seed


def _match(calculated: bytes, expected: bytes) -> None:
    if not hmac.compare_digest(calculated, expected):
        raise ProofError(f"root mismatch: calculated {calculated.hex()}, expected {expected.hex()}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a leaf hash and its audit path imply for a tree of ``size`` leaves."""
    if index < 0 or index >= size:
        raise ProofError(f"index {index} is beyond size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash has {len(leaf)} bytes, want {HASH_SIZE}")
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {inner + border}")
    result = _chain_inner(leaf, proof[:inner], index)
    return _chain_border_right(result, proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``leaf`` is at ``index`` of the tree with ``root``."""
    _match(root_from_inclusion_proof(index, size, leaf, proof), root)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise :class:`ProofError` unless the tree ``root2`` (``size2`` leaves) extends the
    tree ``root1`` (``size1`` leaves) by appending only."""
    if size1 <= 0:
        raise ProofError(
            "consistency needs size1 > 0: the empty tree proves nothing (RFC 6962 2.1.2)"
        )
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == size2:
        if proof:
            raise ProofError("size1 = size2, but the proof is not empty")
        _match(root1, root2)
        return
    if not proof:
        raise ProofError("empty proof")
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    inner -= shift
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    _match(hash1, root1)
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    _match(hash2, root2)
